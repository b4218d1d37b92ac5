//! Job records: what a training job was asked to do and what happened to it,
//! persisted as JSON so a restart knows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::nn::EpochReport;

/// One stage of a training run and its cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobStage {
    /// What ran, e.g. `autoencoder (validation, 40 epochs)`.
    pub stage: String,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// CPU seconds of the training thread.
    pub cpu_secs: f64,
}

/// Lifecycle: queued → running → succeeded | failed | cancelled;
/// interrupted when the process stopped while the job ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
        }
    }

    /// Every status, for metrics.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Interrupted,
    ];
}

/// A failure, with a stable code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// A training job as stored and as shown by `GET /jobs/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct JobRecord {
    /// Job id (UUID v7, time ordered).
    pub id: String,
    /// Model the job trains.
    pub model: String,
    pub status: JobStatus,
    /// 0..1: epochs done over maximum epochs (1 when succeeded).
    pub progress: f64,
    /// Last finished epoch.
    pub epoch: usize,
    /// Maximum epochs.
    pub epochs: usize,
    /// Per-epoch training loss, validation loss and metric.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<EpochReport>,
    /// Estimated seconds left while running (from the mean epoch time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<f64>,
    /// Final validation metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<Value>,
    /// Wall and CPU time of each training stage, in order (recommenders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<JobStage>,
    /// The version the job produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The training request (data excluded).
    #[schema(value_type = Object)]
    pub request: Value,
    /// Where the job's data lives in the store.
    #[schema(ignore)]
    #[serde(default)]
    pub input: JobInput,
}

/// The job's input data on disk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobInput {
    /// Path relative to the store root.
    pub path: String,
    /// `csv`, `json` or `ndjson`.
    pub format: String,
    /// Whether the file belongs to the job (deleted with it) or to a dataset.
    pub owned: bool,
    /// Further files owned by the job (e.g. attribute tables), relative to the store root;
    /// deleted with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
    /// Further files the job reads but does not own (uploaded datasets), relative to the
    /// store root; they cannot be deleted while the job is queued or running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
}
