//! Logged interactions: one row per event, in commit order per model.

use sqlx::Row;

use super::Database;
use crate::storage::StoreError;

/// One logged interaction.
#[derive(Clone, Debug, PartialEq)]
pub struct InteractionRow {
    pub user: String,
    pub item: String,
    pub value: Option<f32>,
    /// Unix seconds.
    pub timestamp: i64,
}

impl Database {
    /// Appends events to a model's log in one transaction: durable once
    /// this returns.
    pub async fn append_interactions(
        &self,
        model: &str,
        events: &[InteractionRow],
    ) -> Result<(), StoreError> {
        let users: Vec<&str> = events.iter().map(|e| e.user.as_str()).collect();
        let items: Vec<&str> = events.iter().map(|e| e.item.as_str()).collect();
        let values: Vec<Option<f32>> = events.iter().map(|e| e.value).collect();
        let times: Vec<i64> = events.iter().map(|e| e.timestamp).collect();
        let result = sqlx::query(
            "INSERT INTO interactions (model, user_id, item, value, ts)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::real[], $5::bigint[])",
        )
        .bind(model)
        .bind(&users)
        .bind(&items)
        .bind(&values)
        .bind(&times)
        .execute(&self.pool)
        .await;
        self.record("append_interactions", result).map(|_| ())
    }

    /// The items logged for one user of a model, oldest first.
    pub async fn user_interactions(
        &self,
        model: &str,
        user: &str,
    ) -> Result<Vec<String>, StoreError> {
        let result = sqlx::query_scalar(
            "SELECT item FROM interactions WHERE model = $1 AND user_id = $2 ORDER BY id",
        )
        .bind(model)
        .bind(user)
        .fetch_all(&self.pool)
        .await;
        self.record("user_interactions", result)
    }

    /// A model's whole log, oldest first.
    pub async fn model_interactions(&self, model: &str) -> Result<Vec<InteractionRow>, StoreError> {
        let result = sqlx::query(
            "SELECT user_id, item, value, ts FROM interactions WHERE model = $1 ORDER BY id",
        )
        .bind(model)
        .fetch_all(&self.pool)
        .await;
        Ok(self
            .record("model_interactions", result)?
            .iter()
            .map(|r| InteractionRow {
                user: r.get("user_id"),
                item: r.get("item"),
                value: r.get("value"),
                timestamp: r.get("ts"),
            })
            .collect())
    }

    /// Keeps a model's newest `keep` events.
    pub async fn trim_interactions(&self, model: &str, keep: usize) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM interactions WHERE model = $1 AND id <= (
                 SELECT id FROM interactions WHERE model = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
        )
        .bind(model)
        .bind(keep as i64)
        .execute(&self.pool)
        .await;
        Ok(self.record("trim_interactions", result)?.rows_affected())
    }
}
