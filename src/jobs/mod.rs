//! Training jobs: a bounded queue, workers running each job on a thread of
//! its own (`worker.rs`), cancellation, per-epoch progress events, and
//! records persisted so a restart knows what happened. With a coordination
//! database the queue and the records are the cluster's (`cluster.rs`).

mod cluster;
mod record;
mod store;
mod thread;
mod worker;

pub use cluster::ClusterOptions;
pub use record::{JobError, JobInput, JobRecord, JobStage, JobStatus};
pub use store::JobStore;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, Notify};

use crate::nn::EpochReport;

/// What a successful run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub version: u32,
    pub metrics: Value,
    /// Time of each training stage, copied into the record.
    pub stages: Vec<JobStage>,
}

/// Why a run ended without a version.
#[derive(Debug)]
pub enum RunFailure {
    /// The cancellation flag was seen.
    Cancelled,
    /// The job failed; shown to the user.
    Failed(JobError),
}

/// Handed to the runner: the cancellation flag and the progress sink.
pub struct JobControl {
    pub cancel: Arc<AtomicBool>,
    /// This run's number: above 1 when an earlier run's replica died.
    pub attempt: u32,
    on_epoch: Box<dyn Fn(&EpochReport) + Send + Sync>,
    fence: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl JobControl {
    /// Reports a finished epoch (updates the record, emits an event).
    pub fn epoch(&self, report: &EpochReport) {
        (self.on_epoch)(report)
    }

    /// Whether the run may publish its version now: always on a single
    /// node; in a cluster, only while this replica holds the job's lease
    /// (a job whose lease was lost may be running elsewhere).
    pub fn may_publish(&self) -> bool {
        self.fence.as_ref().is_none_or(|still_owned| still_owned())
    }
}

/// Runs one job on the job's own thread: trains and stores a version.
pub type Runner =
    Arc<dyn Fn(&JobRecord, &JobControl) -> Result<RunOutcome, RunFailure> + Send + Sync>;

/// An event on `GET /jobs/{id}/events`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// One per finished epoch.
    Epoch {
        #[serde(flatten)]
        report: EpochReport,
        progress: f64,
        eta_secs: Option<f64>,
    },
    /// A status change; terminal statuses end the stream.
    Status { job: Box<JobRecord> },
}

/// How the job system runs.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// Jobs training at the same time.
    pub workers: usize,
    /// Jobs that may wait in the queue.
    pub capacity: usize,
    /// Finished job records kept (0: all).
    pub retain_finished: usize,
    /// Queued plus running jobs of one model (0: no bound).
    pub max_active_per_model: usize,
    /// Niceness (0..=19) of training threads, so serving threads win the CPU.
    pub training_nice: i32,
    /// With a coordination database: the queue is the cluster's.
    pub cluster: Option<ClusterOptions>,
}

/// A job's current record and, while it runs, a receiver of its later events.
pub type Subscription = (JobRecord, Option<broadcast::Receiver<JobEvent>>);

/// Submission refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(
        "the training queue is full ({capacity} jobs waiting, the limit `jobs.queue_capacity`)"
    )]
    QueueFull { capacity: usize },
    #[error("model `{model}` already has {limit} queued or running jobs, the limit `jobs.max_active_per_model`")]
    ModelBusy { model: String, limit: usize },
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("the dataset at `{0}` was deleted")]
    InputGone(String),
    #[error("could not store the job record: {0}")]
    Store(#[from] crate::storage::StoreError),
}

/// Cancellation refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("job `{0}` does not exist")]
    NotFound(String),
    #[error("job `{id}` already ended ({status})")]
    Finished { id: String, status: &'static str },
    #[error("cannot reach the job's record: {0}")]
    Store(#[from] crate::storage::StoreError),
}

struct Live {
    cancel: Arc<AtomicBool>,
    events: broadcast::Sender<JobEvent>,
    started: Option<Instant>,
    /// When the previous epoch ended (or the job started).
    last_epoch: Option<Instant>,
    /// When progress was last written to disk.
    persisted: Option<Instant>,
}

/// Progress is written to disk at most this often; the final record always is.
const PERSIST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

struct Inner {
    records: HashMap<String, JobRecord>,
    live: HashMap<String, Live>,
    queue: VecDeque<String>,
    /// Jobs whose lease this replica lost (cluster): their run ends without a result.
    lost: HashSet<String>,
}

/// The job system.
pub struct JobSystem {
    store: JobStore,
    capacity: usize,
    retain_finished: usize,
    inner: Mutex<Inner>,
    notify: Arc<Notify>,
    runner: Runner,
    shutting_down: AtomicBool,
    workers_alive: AtomicUsize,
    workers: usize,
    max_active_per_model: usize,
    training_nice: i32,
    /// The cluster's queue, when a database coordinates replicas.
    cluster: Option<cluster::Cluster>,
}

impl JobSystem {
    /// Loads records from `store` (running ones become interrupted, queued
    /// ones are queued again) and starts `workers` workers on the runtime.
    pub fn start(
        store: JobStore,
        options: JobOptions,
        runner: Runner,
    ) -> Result<Arc<JobSystem>, crate::storage::StoreError> {
        let JobOptions {
            workers,
            capacity,
            retain_finished,
            max_active_per_model,
            training_nice,
            cluster,
        } = options;
        let mut records = HashMap::new();
        let mut queue = VecDeque::new();
        // In a cluster the database holds the records; a job that ran here
        // before a restart comes back when its lease expires.
        let local = if cluster.is_some() {
            Vec::new()
        } else {
            store.load_all()?
        };
        for mut record in local {
            match record.status {
                JobStatus::Running => {
                    record.status = JobStatus::Interrupted;
                    record.finished_at = Some(Utc::now());
                    record.eta_secs = None;
                    record.error = Some(JobError {
                        code: "interrupted".into(),
                        message: "the service stopped while the job was running".into(),
                    });
                    store.save(&record)?;
                }
                JobStatus::Queued => queue.push_back(record.id.clone()),
                _ => {}
            }
            records.insert(record.id.clone(), record);
        }
        let live = queue.iter().map(|id| (id.clone(), Live::new())).collect();
        let system = Arc::new(JobSystem {
            store,
            capacity,
            retain_finished,
            inner: Mutex::new(Inner {
                records,
                live,
                queue,
                lost: HashSet::new(),
            }),
            notify: Arc::new(Notify::new()),
            runner,
            shutting_down: AtomicBool::new(false),
            workers_alive: AtomicUsize::new(0),
            workers,
            max_active_per_model,
            training_nice,
            cluster: cluster.map(cluster::Cluster::new),
        });
        if let Some(cluster) = &system.cluster {
            cluster.db.listen_for_jobs(system.notify.clone());
            system.watch_leases();
        }
        for _ in 0..workers {
            let s = system.clone();
            s.workers_alive.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                s.worker().await;
                s.workers_alive.fetch_sub(1, Ordering::SeqCst);
            });
        }
        Ok(system)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where records and job inputs are stored.
    pub fn store(&self) -> &JobStore {
        &self.store
    }

    /// Queues a new job. The record must be `queued`.
    pub fn submit(&self, record: JobRecord) -> Result<JobRecord, SubmitError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if let Some(cluster) = &self.cluster {
            use crate::storage::db::Admission;
            match cluster.admit(&record, self.capacity, self.max_active_per_model)? {
                Admission::Queued => {}
                Admission::QueueFull => {
                    return Err(SubmitError::QueueFull {
                        capacity: self.capacity,
                    })
                }
                Admission::ModelBusy => {
                    return Err(SubmitError::ModelBusy {
                        model: record.model.clone(),
                        limit: self.max_active_per_model,
                    })
                }
                Admission::DatasetMissing(key) => return Err(SubmitError::InputGone(key)),
            }
            self.notify.notify_one();
            return Ok(record);
        }
        {
            let mut inner = self.lock();
            if inner.queue.len() >= self.capacity {
                return Err(SubmitError::QueueFull {
                    capacity: self.capacity,
                });
            }
            if self.max_active_per_model > 0 {
                let active = inner
                    .records
                    .values()
                    .filter(|r| r.model == record.model && !r.status.is_terminal())
                    .count();
                if active >= self.max_active_per_model {
                    return Err(SubmitError::ModelBusy {
                        model: record.model.clone(),
                        limit: self.max_active_per_model,
                    });
                }
            }
            self.store.save(&record)?;
            inner.queue.push_back(record.id.clone());
            inner.live.insert(record.id.clone(), Live::new());
            inner.records.insert(record.id.clone(), record.clone());
        }
        self.notify.notify_one();
        Ok(record)
    }

    /// A job's record.
    pub fn get(&self, id: &str) -> Result<Option<JobRecord>, crate::storage::StoreError> {
        let local = self.lock().records.get(id).cloned();
        match &self.cluster {
            Some(cluster) if local.is_none() => cluster.get(id),
            _ => Ok(local),
        }
    }

    /// Jobs, newest first, filtered by status and model, paged.
    pub fn list(
        &self,
        status: Option<JobStatus>,
        model: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<JobRecord>, usize), crate::storage::StoreError> {
        if let Some(cluster) = &self.cluster {
            let (status, model) = (status.map(|s| s.as_str()), model.map(str::to_string));
            let (records, total) = cluster.db.block(|db| async move {
                db.list_jobs(status, model.as_deref(), offset, limit).await
            })?;
            let records = records
                .into_iter()
                .filter_map(cluster::from_value)
                .collect();
            return Ok((records, total));
        }
        let inner = self.lock();
        let mut matching: Vec<&JobRecord> = inner
            .records
            .values()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .filter(|r| model.is_none_or(|m| r.model == m))
            .collect();
        matching.sort_by(|a, b| b.id.cmp(&a.id));
        let total = matching.len();
        let page = matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        Ok((page, total))
    }

    /// Cancels a queued job at once, a running one at its next batch.
    pub fn cancel(&self, id: &str) -> Result<JobRecord, CancelError> {
        if self.cluster.is_some() {
            return self.cancel_in_cluster(id);
        }
        let mut inner = self.lock();
        let Some(record) = inner.records.get(id).cloned() else {
            return Err(CancelError::NotFound(id.into()));
        };
        match record.status {
            JobStatus::Queued => {
                inner.queue.retain(|q| q != id);
                drop(inner);
                Ok(self.finish(id, JobStatus::Cancelled, None, None))
            }
            JobStatus::Running => {
                if let Some(live) = inner.live.get(id) {
                    live.cancel.store(true, Ordering::SeqCst);
                }
                Ok(record)
            }
            status => Err(CancelError::Finished {
                id: id.into(),
                status: status.as_str(),
            }),
        }
    }

    /// The current record and a receiver of later events; `None` if unknown.
    /// For an ended job the receiver gets nothing.
    pub fn subscribe(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<Option<Subscription>, crate::storage::StoreError> {
        {
            let inner = self.lock();
            if let Some(record) = inner.records.get(id) {
                let rx = inner.live.get(id).map(|l| l.events.subscribe());
                return Ok(Some((record.clone(), rx)));
            }
        }
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        let Some(record) = cluster.get(id)? else {
            return Ok(None);
        };
        let rx = (!record.status.is_terminal()).then(|| self.relay(&record));
        Ok(Some((record, rx)))
    }

    /// Whether a queued or running job reads the input at `path`.
    pub fn input_in_use(&self, path: &str) -> bool {
        if let Some(cluster) = &self.cluster {
            let key = path.to_string();
            // Unknown counts as in use: deleting is what cannot be undone.
            return cluster
                .db
                .block(|db| async move { db.input_in_use(&key).await })
                .unwrap_or(true);
        }
        self.lock().records.values().any(|r| {
            !r.status.is_terminal()
                && (r.input.path == path || r.input.shared.iter().any(|p| p == path))
        })
    }

    /// Jobs waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        if self.cluster.is_some() {
            return self.counts().get(&JobStatus::Queued).copied().unwrap_or(0);
        }
        self.lock().queue.len()
    }

    /// Job counts by status (cluster-wide with a database).
    pub fn counts(&self) -> HashMap<JobStatus, usize> {
        if let Some(cluster) = &self.cluster {
            let counted = cluster.db.block(|db| async move { db.job_counts().await });
            let mut counts = HashMap::new();
            for (status, n) in counted.unwrap_or_default() {
                if let Some(s) = JobStatus::ALL.iter().find(|s| s.as_str() == status) {
                    counts.insert(*s, n);
                }
            }
            return counts;
        }
        let inner = self.lock();
        let mut counts = HashMap::new();
        for r in inner.records.values() {
            *counts.entry(r.status).or_insert(0) += 1;
        }
        counts
    }

    /// Whether every worker is alive.
    pub fn healthy(&self) -> bool {
        self.workers_alive.load(Ordering::SeqCst) == self.workers
    }

    /// Stops taking jobs; running jobs stop at their next batch and are
    /// recorded as interrupted. Queued jobs stay queued for the next start;
    /// their event streams end now (they would otherwise hold the graceful
    /// shutdown open forever).
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let mut inner = self.lock();
        let Inner { records, live, .. } = &mut *inner;
        live.retain(|id, live| {
            let running = records
                .get(id)
                .is_some_and(|r| r.status == JobStatus::Running);
            if running {
                live.cancel.store(true, Ordering::SeqCst);
            }
            running
        });
        drop(inner);
        self.notify.notify_waiters();
    }

    /// Waits until no job is running (after `shutdown`), up to `timeout`.
    pub async fn drained(&self, timeout: std::time::Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let running = self
                .lock()
                .records
                .values()
                .any(|r| r.status == JobStatus::Running);
            if !running {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Live {
    fn new() -> Live {
        Live {
            cancel: Arc::new(AtomicBool::new(false)),
            events: broadcast::channel(256).0,
            started: None,
            last_epoch: None,
            persisted: None,
        }
    }
}

#[cfg(test)]
mod tests;
