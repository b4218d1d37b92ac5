//! Jobs shared by several replicas through the coordination database
//! ([`crate::storage::db`]): any replica queues, every replica's workers
//! claim the oldest queued job with a lease, renew it while the job runs,
//! and write the job's record only while they hold it. A replica that dies
//! stops renewing; any replica then puts the job back in the queue (or
//! marks it interrupted after `jobs.max_attempts` runs). Cancels and
//! progress travel through the job's row: the lease renewal reads the
//! cancel flag, other replicas' event streams poll the record.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;

use super::{JobEvent, JobRecord, JobStatus, JobSystem};
use crate::storage::db::{Admission, Database, NewJob};
use crate::storage::StoreError;

/// How this replica takes part in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub db: Database,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Runs a job may have before a lost lease marks it interrupted.
    pub max_attempts: u32,
}

pub(super) struct Cluster {
    pub(super) db: Database,
    /// This replica's identity in leases (unique per process).
    pub(super) owner: String,
    pub(super) lease: Duration,
    pub(super) max_attempts: u32,
}

/// How often a worker with nothing to do looks at the queue, besides the
/// notifications of queued jobs.
pub(super) const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often another replica's job is read for its event stream.
const EVENT_POLL: Duration = Duration::from_millis(300);

pub(super) fn to_value(record: &JobRecord) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

pub(super) fn from_value(value: Value) -> Option<JobRecord> {
    match serde_json::from_value(value) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(error = %e, "skipping an unreadable job record in the database");
            None
        }
    }
}

impl Cluster {
    pub(super) fn new(options: ClusterOptions) -> Cluster {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
        Cluster {
            db: options.db,
            owner: format!("{host}/{}", uuid::Uuid::now_v7().simple()),
            lease: options.lease,
            max_attempts: options.max_attempts.max(1),
        }
    }

    pub(super) fn admit(
        &self,
        record: &JobRecord,
        capacity: usize,
        max_active: usize,
    ) -> Result<Admission, StoreError> {
        let mut datasets: Vec<String> = Vec::new();
        if !record.input.owned && !record.input.path.is_empty() {
            datasets.push(record.input.path.clone());
        }
        datasets.extend(record.input.shared.iter().cloned());
        datasets.dedup();
        let job = NewJob {
            id: record.id.clone(),
            model: record.model.clone(),
            record: to_value(record),
            datasets,
            capacity,
            max_active_per_model: max_active,
        };
        self.db.block(|db| async move { db.insert_job(job).await })
    }

    /// Writes a record of a job this replica runs; false when the lease is lost.
    pub(super) fn save_owned(&self, record: &JobRecord) -> Result<bool, StoreError> {
        let (id, owner, status, value) = (
            record.id.clone(),
            self.owner.clone(),
            record.status.as_str(),
            to_value(record),
        );
        self.db
            .block(|db| async move { db.save_owned_job(&id, &owner, status, &value).await })
    }

    pub(super) fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_string();
        let row = self.db.block(|db| async move { db.get_job(&id).await })?;
        Ok(row.and_then(|r| from_value(r.record)))
    }
}

impl JobSystem {
    fn cluster(&self) -> &Cluster {
        match &self.cluster {
            Some(c) => c,
            None => unreachable!("cluster paths run only with a database"),
        }
    }

    /// Claims the next queued job of the cluster, if any.
    pub(super) fn claim(&self) -> Option<(JobRecord, i32)> {
        let cluster = self.cluster();
        let (owner, lease) = (cluster.owner.clone(), cluster.lease);
        let started = std::time::Instant::now();
        let claimed = match cluster
            .db
            .block(|db| async move { db.claim_job(&owner, lease).await })
        {
            Ok(claimed) => claimed?,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a job from the database");
                return None;
            }
        };
        metrics::histogram!("myelin_job_claim_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("myelin_jobs_claimed_total").increment(1);
        let record = from_value(claimed.record)?;
        Some((record, claimed.attempts))
    }

    /// Keeps the lease of a running job alive and carries cancels from
    /// other replicas; on a lost lease, stops the job without a result.
    pub(super) fn keep_lease(
        self: &Arc<Self>,
        id: String,
        cancel: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let system = self.clone();
        tokio::spawn(async move {
            let every = system.cluster().lease / 3;
            loop {
                tokio::time::sleep(every).await;
                let running = system
                    .lock()
                    .records
                    .get(&id)
                    .is_some_and(|r| r.status == JobStatus::Running);
                if !running {
                    return;
                }
                let cluster = system.cluster();
                let (db, owner, lease, job) = (
                    cluster.db.clone(),
                    cluster.owner.clone(),
                    cluster.lease,
                    id.clone(),
                );
                let renewed = tokio::task::spawn_blocking(move || {
                    db.block(|db| async move { db.renew_lease(&job, &owner, lease).await })
                })
                .await;
                match renewed {
                    Ok(Ok(Some(cancel_requested))) => {
                        if cancel_requested {
                            cancel.store(true, Ordering::SeqCst);
                        }
                    }
                    Ok(Ok(None)) => {
                        tracing::warn!(job_id = %id, "lost the job's lease; stopping it here");
                        metrics::counter!("myelin_job_leases_lost_total").increment(1);
                        system.lock().lost.insert(id.clone());
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(Err(e)) => {
                        // The database is away: keep training; the final
                        // write is fenced on the lease anyway.
                        tracing::warn!(job_id = %id, error = %e, "cannot renew the job's lease");
                    }
                    Err(_) => return,
                }
            }
        });
    }

    /// Whether this replica still holds the lease of job `id` (renewing
    /// it): checked just before a version is published.
    pub(super) fn still_owned(&self, id: &str) -> bool {
        let cluster = self.cluster();
        let (owner, lease, job) = (cluster.owner.clone(), cluster.lease, id.to_string());
        matches!(
            cluster
                .db
                .block(|db| async move { db.renew_lease(&job, &owner, lease).await }),
            Ok(Some(_))
        )
    }

    /// Requeues or interrupts jobs whose replica stopped renewing their lease;
    /// runs on every replica.
    pub(super) fn watch_leases(self: &Arc<Self>) {
        let system = Arc::downgrade(self);
        let every = self.cluster().lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(system) = system.upgrade() else {
                    return;
                };
                if system.shutting_down.load(Ordering::SeqCst) {
                    return;
                }
                let recovered = tokio::task::spawn_blocking(move || {
                    let cluster = system.cluster();
                    let error = serde_json::json!({
                        "code": "interrupted",
                        "message": format!(
                            "the replica running the job stopped, and the job has run {} times (`jobs.max_attempts`)",
                            cluster.max_attempts
                        ),
                    });
                    let max = cluster.max_attempts;
                    let recovered = cluster
                        .db
                        .block(|db| async move { db.recover_expired_jobs(max, &error).await });
                    if matches!(&recovered, Ok(r) if !r.is_empty()) {
                        system.notify.notify_one();
                    }
                    recovered
                })
                .await;
                match recovered {
                    Ok(Ok(jobs)) => {
                        for (id, status) in jobs {
                            tracing::warn!(job_id = %id, status, "a replica stopped while running the job");
                            metrics::counter!("myelin_jobs_recovered_total", "status" => status)
                                .increment(1);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot check job leases"),
                    Err(_) => return,
                }
            }
        });
    }

    /// A stream of a job another replica runs: its record polled from the
    /// database, with an epoch event per new history entry and a status
    /// event per status change, until it ends.
    pub(super) fn relay(self: &Arc<Self>, record: &JobRecord) -> broadcast::Receiver<JobEvent> {
        let (tx, rx) = broadcast::channel(256);
        let system = Arc::downgrade(self);
        let mut last = record.clone();
        tokio::spawn(async move {
            while !last.status.is_terminal() {
                tokio::time::sleep(EVENT_POLL).await;
                let Some(system) = system.upgrade() else {
                    return;
                };
                let id = last.id.clone();
                let fresh = tokio::task::spawn_blocking(move || system.cluster().get(&id)).await;
                let Ok(Ok(Some(fresh))) = fresh else {
                    if tx.receiver_count() == 0 {
                        return;
                    }
                    continue;
                };
                if fresh.history.len() < last.history.len() {
                    last.history.clear(); // requeued: the run starts over
                }
                for report in &fresh.history[last.history.len().min(fresh.history.len())..] {
                    let _ = tx.send(JobEvent::Epoch {
                        report: report.clone(),
                        progress: fresh.progress,
                        eta_secs: fresh.eta_secs,
                    });
                }
                if fresh.status != last.status {
                    let _ = tx.send(JobEvent::Status {
                        job: Box::new(fresh.clone()),
                    });
                }
                if tx.receiver_count() == 0 {
                    return;
                }
                last = fresh;
            }
        });
        rx
    }

    /// Cancels a job of the cluster: a queued one at once, a running one
    /// through its row (its replica sees it at the next lease renewal).
    pub(super) fn cancel_in_cluster(&self, id: &str) -> Result<JobRecord, super::CancelError> {
        use super::CancelError;
        let cluster = self.cluster();
        for _ in 0..3 {
            let Some(record) = cluster.get(id)? else {
                return Err(CancelError::NotFound(id.into()));
            };
            match record.status {
                JobStatus::Queued => {
                    let mut cancelled = record.clone();
                    cancelled.status = JobStatus::Cancelled;
                    cancelled.finished_at = Some(chrono::Utc::now());
                    let (job, value) = (id.to_string(), to_value(&cancelled));
                    let done = cluster.db.block(|db| async move {
                        db.update_job_if(&job, "queued", "cancelled", &value).await
                    });
                    if done? {
                        metrics::counter!("myelin_jobs_finished_total", "status" => "cancelled")
                            .increment(1);
                        return Ok(cancelled);
                    }
                }
                JobStatus::Running => {
                    // Running here: the worker stops at its next batch.
                    if let Some(live) = self.lock().live.get(id) {
                        live.cancel.store(true, Ordering::SeqCst);
                        return Ok(record);
                    }
                    let job = id.to_string();
                    let asked = cluster
                        .db
                        .block(|db| async move { db.request_cancel(&job).await });
                    if asked? {
                        return Ok(record);
                    }
                }
                status => {
                    return Err(CancelError::Finished {
                        id: id.into(),
                        status: status.as_str(),
                    })
                }
            }
        }
        Err(CancelError::NotFound(id.into()))
    }

    /// Puts a job this replica stops on shutdown back in the queue.
    pub(super) fn release(&self, record: &JobRecord) -> bool {
        let cluster = self.cluster();
        let mut queued = record.clone();
        queued.status = JobStatus::Queued;
        queued.started_at = None;
        queued.progress = 0.0;
        queued.epoch = 0;
        queued.history.clear();
        queued.eta_secs = None;
        let (id, owner, value) = (record.id.clone(), cluster.owner.clone(), to_value(&queued));
        matches!(
            cluster
                .db
                .block(|db| async move { db.release_job(&id, &owner, &value).await }),
            Ok(true)
        )
    }
}
