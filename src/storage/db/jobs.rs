//! The job queue: one row per job with its record (JSON), status, the store
//! keys it reads, and while it runs the replica holding its lease.
//!
//! - Submission checks the cluster-wide limits and that the datasets the
//!   job reads still exist, under one advisory lock shared with dataset
//!   deletion, so a dataset is never deleted under a queued job.
//! - Workers claim the oldest queued job with `FOR UPDATE SKIP LOCKED`, as
//!   the running replica's lease; the running worker renews it, and any
//!   write it makes is fenced on still holding it.
//! - A lease that expires (its replica died) puts the job back in the queue,
//!   or marks it `interrupted` once it has run `max_attempts` times.

use serde_json::Value;
use sqlx::Row;

use super::Database;
use crate::storage::StoreError;

/// Advisory lock key serialising job admission and dataset deletion.
const ADMISSION_LOCK: i64 = 0x6d79_656c_696e;

/// Whether a queued or running job reads the store key `$1`.
pub(super) const INPUT_IN_USE: &str =
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN ('queued', 'running') AND $1 = ANY(inputs))";

/// A transaction holding the lock job admission and dataset deletion share.
pub(super) async fn begin_admission(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ADMISSION_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// A job to queue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: String,
    pub model: String,
    /// The record as `GET /jobs/{id}` shows it (status `queued`).
    pub record: Value,
    /// Store keys of datasets the job reads: each must still exist.
    pub datasets: Vec<String>,
    /// Jobs that may wait in the queue, cluster-wide.
    pub capacity: usize,
    /// Queued plus running jobs of the model, cluster-wide (0: no bound).
    pub max_active_per_model: usize,
}

/// What submission decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Queued,
    QueueFull,
    ModelBusy,
    /// A dataset the job reads is gone (deleted meanwhile).
    DatasetMissing(String),
}

/// A job a worker claimed.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    pub record: Value,
    /// Runs so far, this one included.
    pub attempts: i32,
}

/// One stored job.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub record: Value,
    pub owner: Option<String>,
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

impl Database {
    /// Queues a job if the cluster-wide limits allow it.
    pub async fn insert_job(&self, job: NewJob) -> Result<Admission, StoreError> {
        let result = async {
            let mut tx = begin_admission(&self.pool).await?;
            let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'queued'")
                .fetch_one(&mut *tx)
                .await?;
            if queued as usize >= job.capacity {
                return Ok(Admission::QueueFull);
            }
            if job.max_active_per_model > 0 {
                let active: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM jobs WHERE model = $1 AND status IN ('queued', 'running')",
                )
                .bind(&job.model)
                .fetch_one(&mut *tx)
                .await?;
                if active as usize >= job.max_active_per_model {
                    return Ok(Admission::ModelBusy);
                }
            }
            for key in &job.datasets {
                let exists: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM datasets WHERE data_key = $1)")
                        .bind(key)
                        .fetch_one(&mut *tx)
                        .await?;
                if !exists {
                    return Ok(Admission::DatasetMissing(key.clone()));
                }
            }
            sqlx::query(
                "INSERT INTO jobs (id, model, status, record, inputs) VALUES ($1, $2, 'queued', $3, $4)",
            )
            .bind(&job.id)
            .bind(&job.model)
            .bind(&job.record)
            .bind(&job.datasets)
            .execute(&mut *tx)
            .await?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::JOBS_CHANNEL)
                .bind(&job.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Admission::Queued)
        }
        .await;
        self.record("insert_job", result)
    }

    /// Claims the oldest queued job for `owner` with a lease of `lease`.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease: std::time::Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let result = sqlx::query(
            "UPDATE jobs SET status = 'running', owner = $1, attempts = attempts + 1,
                 lease_until = now() + make_interval(secs => $2), updated_at = now()
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
                         ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
             RETURNING record, attempts",
        )
        .bind(owner)
        .bind(secs(lease))
        .fetch_optional(&self.pool)
        .await;
        let row = self.record("claim_job", result)?;
        Ok(row.map(|r| ClaimedJob {
            record: r.get("record"),
            attempts: r.get("attempts"),
        }))
    }

    /// Extends the lease `owner` holds on job `id`; `None` when it holds it
    /// no more (expired and taken back), else whether a cancel was asked.
    pub async fn renew_lease(
        &self,
        id: &str,
        owner: &str,
        lease: std::time::Duration,
    ) -> Result<Option<bool>, StoreError> {
        let result = sqlx::query_scalar(
            "UPDATE jobs SET lease_until = now() + make_interval(secs => $3)
             WHERE id = $1 AND owner = $2 AND status = 'running' AND lease_until > now()
             RETURNING cancel_requested",
        )
        .bind(id)
        .bind(owner)
        .bind(secs(lease))
        .fetch_optional(&self.pool)
        .await;
        self.record("renew_lease", result)
    }

    /// Writes the record of a job `owner` runs, with its status; a terminal
    /// status releases the lease. False when the lease was lost (the write
    /// is refused: another replica may run the job now).
    pub async fn save_owned_job(
        &self,
        id: &str,
        owner: &str,
        status: &str,
        record: &Value,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE jobs SET status = $3, record = $4, updated_at = now(),
                 owner = CASE WHEN $3 = 'running' THEN owner END,
                 lease_until = CASE WHEN $3 = 'running' THEN lease_until END
             WHERE id = $1 AND owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(status)
        .bind(record)
        .execute(&self.pool)
        .await;
        Ok(self.record("save_job", result)?.rows_affected() == 1)
    }

    /// Replaces a job's record and status if its status is still `from`.
    pub async fn update_job_if(
        &self,
        id: &str,
        from: &str,
        status: &str,
        record: &Value,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE jobs SET status = $3, record = $4, updated_at = now()
             WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from)
        .bind(status)
        .bind(record)
        .execute(&self.pool)
        .await;
        Ok(self.record("update_job", result)?.rows_affected() == 1)
    }

    /// Asks the replica running job `id` to stop it; false if it is not running.
    pub async fn request_cancel(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE jobs SET cancel_requested = TRUE WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .execute(&self.pool)
        .await;
        Ok(self.record("cancel_job", result)?.rows_affected() == 1)
    }

    /// Puts a job `owner` runs back in the queue (a graceful shutdown): the
    /// attempt is not counted.
    pub async fn release_job(
        &self,
        id: &str,
        owner: &str,
        record: &Value,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE jobs SET status = 'queued', record = $3, owner = NULL, lease_until = NULL,
                 attempts = greatest(attempts - 1, 0), cancel_requested = FALSE, updated_at = now()
             WHERE id = $1 AND owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(record)
        .execute(&self.pool)
        .await;
        let released = self.record("release_job", result)?.rows_affected() == 1;
        if released {
            let _ = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::JOBS_CHANNEL)
                .bind(id)
                .execute(&self.pool)
                .await;
        }
        Ok(released)
    }

    /// Jobs whose lease expired: requeued, or `interrupted` with `error`
    /// once they ran `max_attempts` times. Returns the ids and new statuses.
    pub async fn recover_expired_jobs(
        &self,
        max_attempts: u32,
        error: &Value,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let result = sqlx::query(
            "UPDATE jobs SET
                 status = CASE WHEN attempts >= $1 THEN 'interrupted' ELSE 'queued' END,
                 record = record || CASE WHEN attempts >= $1
                     THEN jsonb_build_object('status', 'interrupted', 'eta_secs', NULL,
                          'finished_at', to_jsonb(now()), 'error', $2::jsonb)
                     ELSE jsonb_build_object('status', 'queued', 'eta_secs', NULL, 'started_at', NULL,
                          'progress', 0, 'epoch', 0, 'history', '[]'::jsonb) END,
                 owner = NULL, lease_until = NULL, cancel_requested = FALSE, updated_at = now()
             WHERE status = 'running' AND lease_until < now()
             RETURNING id, status",
        )
        .bind(max_attempts as i32)
        .bind(error)
        .fetch_all(&self.pool)
        .await;
        let rows = self.record("recover_jobs", result)?;
        let recovered: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.get("id"), r.get("status")))
            .collect();
        if recovered.iter().any(|(_, s)| s == "queued") {
            let _ = sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::JOBS_CHANNEL)
                .execute(&self.pool)
                .await;
        }
        Ok(recovered)
    }

    /// One job.
    pub async fn get_job(&self, id: &str) -> Result<Option<JobRow>, StoreError> {
        let result = sqlx::query("SELECT record, owner FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        Ok(self.record("get_job", result)?.map(|r| JobRow {
            record: r.get("record"),
            owner: r.get("owner"),
        }))
    }

    /// Jobs newest first, filtered, paged; and how many match.
    pub async fn list_jobs(
        &self,
        status: Option<&str>,
        model: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Value>, usize), StoreError> {
        let result = async {
            let filter = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR model = $2)";
            let total: i64 =
                sqlx::query_scalar(&format!("SELECT count(*) FROM jobs WHERE {filter}"))
                    .bind(status)
                    .bind(model)
                    .fetch_one(&self.pool)
                    .await?;
            let records: Vec<Value> = sqlx::query_scalar(&format!(
                "SELECT record FROM jobs WHERE {filter} ORDER BY id DESC OFFSET $3 LIMIT $4"
            ))
            .bind(status)
            .bind(model)
            .bind(offset as i64)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            Ok((records, total as usize))
        }
        .await;
        self.record("list_jobs", result)
    }

    /// Job counts by status, cluster-wide.
    pub async fn job_counts(&self) -> Result<Vec<(String, usize)>, StoreError> {
        let result = sqlx::query("SELECT status, count(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await;
        Ok(self
            .record("count_jobs", result)?
            .iter()
            .map(|r| (r.get("status"), r.get::<i64, _>("n") as usize))
            .collect())
    }

    /// Whether a queued or running job reads the store key `key`.
    pub async fn input_in_use(&self, key: &str) -> Result<bool, StoreError> {
        let result = sqlx::query_scalar(INPUT_IN_USE)
            .bind(key)
            .fetch_one(&self.pool)
            .await;
        self.record("input_in_use", result)
    }

    /// Deletes the oldest ended jobs beyond the newest `retain`; returns
    /// their records (so their inputs can be removed).
    pub async fn prune_jobs(&self, retain: usize) -> Result<Vec<Value>, StoreError> {
        let result = sqlx::query_scalar(
            "DELETE FROM jobs WHERE id IN (
                 SELECT id FROM jobs WHERE status NOT IN ('queued', 'running')
                 ORDER BY id DESC OFFSET $1)
             RETURNING record",
        )
        .bind(retain as i64)
        .fetch_all(&self.pool)
        .await;
        self.record("prune_jobs", result)
    }
}
