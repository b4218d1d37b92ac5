//! The worker side of the job system: taking the next job (from the local
//! queue, or claimed from the cluster's), running it on a thread of its own,
//! recording progress, and recording how it ended.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde_json::Value;

use super::{
    cluster, thread, JobControl, JobError, JobEvent, JobInput, JobRecord, JobStatus, JobSystem,
    Live, RunFailure, RunOutcome, PERSIST_EVERY,
};
use crate::nn::EpochReport;

impl JobSystem {
    pub(super) async fn worker(self: &Arc<Self>) {
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

    pub(super) async fn run(self: &Arc<Self>, id: String, attempt: u32) {
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

    pub(super) fn on_epoch(&self, id: &str, report: &EpochReport) {
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

    pub(super) fn finish(
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
    pub(super) fn finish_in_cluster(&self, snapshot: &JobRecord, lost: bool) -> bool {
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

    pub(super) fn persist_and_announce(&self, record: &JobRecord) {
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

    pub(super) fn prune(&self) {
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

impl JobRecord {
    pub(super) fn placeholder(id: &str) -> JobRecord {
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
