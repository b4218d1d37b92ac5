//! Training jobs: a bounded queue, a worker pool running each job on a
//! thread of its own, cancellation, per-epoch progress events, and records
//! persisted so a restart knows what happened.

mod cluster;
mod record;
mod store;
mod thread;

pub use cluster::ClusterOptions;
pub use record::{JobError, JobInput, JobRecord, JobStage, JobStatus};
pub use store::JobStore;

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
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

/// Runs one job on a blocking thread: trains and stores a version.
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

    async fn worker(self: &Arc<Self>) {
        loop {
            let notified = self.notify.notified();
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            if self.cluster.is_some() {
                let system = self.clone();
                let claimed = tokio::task::spawn_blocking(move || system.claim())
                    .await
                    .ok()
                    .flatten();
                let Some((record, attempt)) = claimed else {
                    let _ = tokio::time::timeout(cluster::IDLE_POLL, notified).await;
                    continue;
                };
                let id = record.id.clone();
                {
                    let mut inner = self.lock();
                    inner.live.insert(id.clone(), Live::new());
                    inner.records.insert(id.clone(), record);
                }
                self.run(id, attempt.max(1) as u32).await;
                self.notify.notify_one();
                continue;
            }
            let next = self.lock().queue.pop_front();
            let Some(id) = next else {
                notified.await;
                continue;
            };
            self.run(id, 1).await;
            // Wake another worker in case several jobs were queued at once.
            self.notify.notify_one();
        }
    }

    async fn run(self: &Arc<Self>, id: String, attempt: u32) {
        let (record, cancel) = {
            let mut inner = self.lock();
            let Some(record) = inner.records.get_mut(&id) else {
                return;
            };
            // Cancelled between leaving the queue and starting: nothing to run.
            if record.status != JobStatus::Queued {
                return;
            }
            // Shutting down: leave it queued for the next start.
            if self.shutting_down.load(Ordering::SeqCst) {
                if let Some(record) = inner.records.remove(&id) {
                    if self.cluster.is_some() {
                        drop(inner);
                        self.release(&record);
                        return;
                    }
                    inner.records.insert(id.clone(), record);
                }
                inner.queue.push_front(id);
                return;
            }
            record.status = JobStatus::Running;
            record.started_at = Some(Utc::now());
            let record = record.clone();
            let live = inner.live.entry(id.clone()).or_insert_with(Live::new);
            live.started = Some(Instant::now());
            live.last_epoch = live.started;
            (record, live.cancel.clone())
        };
        self.persist_and_announce(&record);

        let system = self.clone();
        let job_id = id.clone();
        let fence: Option<Box<dyn Fn() -> bool + Send + Sync>> = self.cluster.as_ref().map(|_| {
            let system = self.clone();
            let job_id = id.clone();
            Box::new(move || system.still_owned(&job_id)) as Box<dyn Fn() -> bool + Send + Sync>
        });
        if self.cluster.is_some() {
            self.keep_lease(id.clone(), cancel.clone());
        }
        let control = JobControl {
            cancel: cancel.clone(),
            attempt,
            on_epoch: Box::new(move |report| system.on_epoch(&job_id, report)),
            fence,
        };
        let runner = self.runner.clone();
        let span = tracing::info_span!("job", job_id = %id, model = %record.model);
        // A thread of its own rather than the blocking pool: its lowered
        // priority must not carry over to pooled threads that later serve
        // requests.
        let nice = self.training_nice;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            // Thread names keep 15 bytes: the id's random tail tells jobs apart.
            .name(format!(
                "train-{}",
                id.get(id.len().saturating_sub(8)..).unwrap_or(&id)
            ))
            .spawn(move || {
                thread::lower_thread_priority(nice);
                crate::cooperative::mark_background_thread();
                let _enter = span.enter();
                tracing::info!(job_id = %record.id, model = %record.model, "job started");
                let outcome =
                    std::panic::catch_unwind(AssertUnwindSafe(|| runner(&record, &control)));
                let _ = tx.send(outcome);
            });
        let result = match spawned {
            Ok(_) => rx.await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot start a training thread: {e}")),
        };
        let interrupted = self.shutting_down.load(Ordering::SeqCst);
        match result {
            Ok(Ok(Ok(outcome))) => {
                self.finish(&id, JobStatus::Succeeded, Some(outcome), None);
            }
            Ok(Ok(Err(RunFailure::Cancelled))) if interrupted => {
                let error = JobError {
                    code: "interrupted".into(),
                    message: "the service shut down while the job was running".into(),
                };
                self.finish(&id, JobStatus::Interrupted, None, Some(error));
            }
            Ok(Ok(Err(RunFailure::Cancelled))) => {
                self.finish(&id, JobStatus::Cancelled, None, None);
            }
            Ok(Ok(Err(RunFailure::Failed(error)))) => {
                self.finish(&id, JobStatus::Failed, None, Some(error));
            }
            Ok(Err(panic)) => {
                let message = panic_message(&panic);
                tracing::error!(job_id = %id, %message, "training panicked");
                let error = JobError {
                    code: "training_panicked".into(),
                    message: format!("training failed unexpectedly: {message}"),
                };
                self.finish(&id, JobStatus::Failed, None, Some(error));
            }
            Err(join) => {
                let error = JobError {
                    code: "training_aborted".into(),
                    message: format!("training task ended abnormally: {join}"),
                };
                self.finish(&id, JobStatus::Failed, None, Some(error));
            }
        }
    }

    fn on_epoch(&self, id: &str, report: &EpochReport) {
        let mut inner = self.lock();
        let now = Instant::now();
        let (started, epoch_secs, persist) = match inner.live.get_mut(id) {
            Some(live) => {
                let epoch_secs = live.last_epoch.map(|t| now.duration_since(t).as_secs_f64());
                live.last_epoch = Some(now);
                let persist = live
                    .persisted
                    .is_none_or(|t| now.duration_since(t) >= PERSIST_EVERY);
                if persist {
                    live.persisted = Some(now);
                }
                (live.started, epoch_secs, persist)
            }
            None => (None, None, true),
        };
        let Some(record) = inner.records.get_mut(id) else {
            return;
        };
        record.epoch = report.epoch;
        record.history.push(report.clone());
        record.progress = (report.epoch as f64 / record.epochs.max(1) as f64).min(1.0);
        record.eta_secs = started.map(|s| {
            let per_epoch = s.elapsed().as_secs_f64() / report.epoch.max(1) as f64;
            per_epoch * record.epochs.saturating_sub(report.epoch) as f64
        });
        let snapshot = record.clone();
        let event = JobEvent::Epoch {
            report: report.clone(),
            progress: snapshot.progress,
            eta_secs: snapshot.eta_secs,
        };
        if let Some(live) = inner.live.get(id) {
            let _ = live.events.send(event);
        }
        drop(inner);
        if let Some(secs) = epoch_secs {
            metrics::histogram!("myelin_training_epoch_seconds").record(secs);
        }
        if persist {
            if let Some(cluster) = &self.cluster {
                if let Err(e) = cluster.save_owned(&snapshot) {
                    tracing::warn!(job_id = %id, error = %e, "could not persist job progress");
                }
            } else if let Err(e) = self.store.save(&snapshot) {
                tracing::warn!(job_id = %id, error = %e, "could not persist job progress");
            }
        }
    }

    fn finish(
        &self,
        id: &str,
        status: JobStatus,
        outcome: Option<RunOutcome>,
        error: Option<JobError>,
    ) -> JobRecord {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else {
            return JobRecord::placeholder(id);
        };
        record.status = status;
        record.finished_at = Some(Utc::now());
        record.eta_secs = None;
        record.error = error;
        if let Some(outcome) = outcome {
            record.version = Some(outcome.version);
            record.metrics = Some(outcome.metrics);
            record.stages = outcome.stages;
            record.progress = 1.0;
        }
        let snapshot = record.clone();
        let live = inner.live.remove(id);
        if self.cluster.is_some() {
            let lost = inner.lost.remove(id);
            inner.records.remove(id);
            drop(inner);
            if !self.finish_in_cluster(&snapshot, lost) {
                return snapshot;
            }
        } else {
            // Persist before others see the job ended, so `drained` never
            // returns ahead of the final record reaching the disk.
            if let Err(e) = self.store.save(&snapshot) {
                tracing::error!(job_id = %id, error = %e, "could not persist job result");
            }
            drop(inner);
        }
        if let Some(live) = live {
            let _ = live.events.send(JobEvent::Status {
                job: Box::new(snapshot.clone()),
            });
        }
        metrics::counter!("myelin_jobs_finished_total", "status" => status.as_str()).increment(1);
        match snapshot.version {
            Some(version) => {
                tracing::info!(job_id = %id, model = %snapshot.model, version, status = status.as_str(), "job ended")
            }
            None => {
                tracing::info!(job_id = %id, model = %snapshot.model, status = status.as_str(), "job ended")
            }
        }
        // The job's table and matrices are freed: give their pages back.
        crate::memory::request_trim();
        self.prune();
        snapshot
    }

    /// Writes a job's end to the database; false when the job is not this
    /// replica's to end (its lease was lost, or it stops for a shutdown and
    /// goes back to the queue).
    fn finish_in_cluster(&self, snapshot: &JobRecord, lost: bool) -> bool {
        let Some(cluster) = &self.cluster else {
            return true;
        };
        if lost {
            return false;
        }
        if snapshot.status == JobStatus::Interrupted && self.shutting_down.load(Ordering::SeqCst) {
            let mut running = snapshot.clone();
            running.status = JobStatus::Running;
            if self.release(&running) {
                tracing::info!(job_id = %snapshot.id, "job put back in the queue for another replica");
            }
            return false;
        }
        match cluster.save_owned(snapshot) {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(job_id = %snapshot.id, "the job's lease was lost before its end was recorded");
                metrics::counter!("myelin_job_leases_lost_total").increment(1);
                false
            }
            Err(e) => {
                tracing::error!(job_id = %snapshot.id, error = %e, "could not persist job result");
                true
            }
        }
    }

    fn persist_and_announce(&self, record: &JobRecord) {
        if let Some(cluster) = &self.cluster {
            if let Err(e) = cluster.save_owned(record) {
                tracing::warn!(job_id = %record.id, error = %e, "could not persist job");
            }
        } else if let Err(e) = self.store.save(record) {
            tracing::warn!(job_id = %record.id, error = %e, "could not persist job");
        }
        let inner = self.lock();
        if let Some(live) = inner.live.get(&record.id) {
            let _ = live.events.send(JobEvent::Status {
                job: Box::new(record.clone()),
            });
        }
    }

    fn prune(&self) {
        if self.retain_finished == 0 {
            return;
        }
        if let Some(cluster) = &self.cluster {
            let retain = self.retain_finished;
            match cluster
                .db
                .block(|db| async move { db.prune_jobs(retain).await })
            {
                Ok(pruned) => {
                    for record in pruned.into_iter().filter_map(cluster::from_value) {
                        self.store.remove_inputs(&owned_inputs(&record));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot prune finished jobs"),
            }
            return;
        }
        let mut inner = self.lock();
        let mut finished: Vec<String> = inner
            .records
            .values()
            .filter(|r| r.status.is_terminal())
            .map(|r| r.id.clone())
            .collect();
        if finished.len() <= self.retain_finished {
            return;
        }
        finished.sort();
        let excess = finished.len() - self.retain_finished;
        for id in finished.into_iter().take(excess) {
            if let Some(record) = inner.records.remove(&id) {
                self.store.remove(&record);
            }
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

impl JobRecord {
    fn placeholder(id: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            model: String::new(),
            status: JobStatus::Failed,
            progress: 0.0,
            epoch: 0,
            epochs: 0,
            history: Vec::new(),
            eta_secs: None,
            metrics: None,
            stages: Vec::new(),
            version: None,
            error: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            request: Value::Null,
            input: JobInput::default(),
        }
    }
}

/// The input keys a job owns (deleted with it).
fn owned_inputs(record: &JobRecord) -> Vec<String> {
    let mut keys = Vec::new();
    if record.input.owned {
        keys.push(record.input.path.clone());
    }
    keys.extend(record.input.extra.iter().cloned());
    keys
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

#[cfg(test)]
mod tests;
