//! Dataset metadata: one row per dataset, its data file in the object store.

use serde_json::Value;

use super::jobs::{begin_admission, INPUT_IN_USE};
use super::Database;
use crate::storage::StoreError;

/// What [`Database::remove_dataset`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetRemoval {
    Removed,
    Missing,
    /// A queued or running job reads it.
    InUse,
}

impl Database {
    /// Records a dataset whose data file is published at `data_key`.
    pub async fn insert_dataset(
        &self,
        id: &str,
        data_key: &str,
        meta: &Value,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("INSERT INTO datasets (id, data_key, meta) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(data_key)
            .bind(meta)
            .execute(&self.pool)
            .await;
        self.record("insert_dataset", result).map(|_| ())
    }

    /// One dataset's metadata.
    pub async fn get_dataset(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let result = sqlx::query_scalar("SELECT meta FROM datasets WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        self.record("get_dataset", result)
    }

    /// Every dataset's metadata, oldest first.
    pub async fn list_datasets(&self) -> Result<Vec<Value>, StoreError> {
        let result = sqlx::query_scalar("SELECT meta FROM datasets ORDER BY id")
            .fetch_all(&self.pool)
            .await;
        self.record("list_datasets", result)
    }

    /// Removes a dataset's row unless a queued or running job reads it,
    /// under the lock job admission takes.
    pub async fn remove_dataset(&self, id: &str) -> Result<DatasetRemoval, StoreError> {
        let result = async {
            let mut tx = begin_admission(&self.pool).await?;
            let key: Option<String> =
                sqlx::query_scalar("SELECT data_key FROM datasets WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(key) = key else {
                return Ok(DatasetRemoval::Missing);
            };
            let in_use: bool = sqlx::query_scalar(INPUT_IN_USE)
                .bind(&key)
                .fetch_one(&mut *tx)
                .await?;
            if in_use {
                return Ok(DatasetRemoval::InUse);
            }
            sqlx::query("DELETE FROM datasets WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(DatasetRemoval::Removed)
        }
        .await;
        self.record("remove_dataset", result)
    }
}
