//! Jobs: list, inspect, cancel, and follow by server-sent events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::BroadcastStream;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiPath, ApiQuery};
use crate::jobs::{JobEvent, JobRecord, JobStatus};
use crate::service::{AppState, ErrorCode};

/// Filters and paging for `GET /jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Only jobs with this status.
    pub status: Option<JobStatus>,
    /// Only jobs training this model.
    pub model: Option<String>,
    /// Jobs to skip (default 0).
    pub offset: Option<usize>,
    /// Page size (default 50, at most 500).
    pub limit: Option<usize>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobRecord>,
    /// Jobs matching the filter.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// List jobs.
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(JobListQuery),
    responses((status = 200, body = JobList),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json")))]
pub async fn list_jobs(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<JobListQuery>,
) -> ApiResult<Json<JobList>> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let jobs = state.jobs.clone();
    let (jobs, total) =
        tokio::task::spawn_blocking(move || jobs.list(q.status, q.model.as_deref(), offset, limit))
            .await
            .map_err(ApiError::internal)?
            .map_err(super::convert::store_error)?;
    Ok(Json(JobList {
        jobs,
        total,
        offset,
        limit,
    }))
}

fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(ErrorCode::JobNotFound, format!("job `{id}` does not exist"))
        .with("job", id)
}

/// Get a job: status, progress, epoch history, ETA, metrics, version, error.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobRecord),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_job(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JobRecord>> {
    let jobs = state.jobs.clone();
    let key = id.clone();
    tokio::task::spawn_blocking(move || jobs.get(&key))
        .await
        .map_err(ApiError::internal)?
        .map_err(super::convert::store_error)?
        .map(Json)
        .ok_or_else(|| job_not_found(&id))
}

/// Cancel a queued or running job. A running job stops at its next batch and writes no version.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job after cancellation was requested", body = JobRecord),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job already ended", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_job(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JobRecord>> {
    let jobs = state.jobs.clone();
    let cancelled = tokio::task::spawn_blocking(move || jobs.cancel(&id))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(cancelled))
}

/// One server-sent event of `GET /jobs/{id}/events`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct JobStreamEvent {
    /// `epoch`, or the job status (`queued`, `running`, `succeeded`, `failed`,
    /// `cancelled`, `interrupted`).
    event: String,
    /// JSON: the epoch report with `progress` and `eta_secs`, or the job record.
    data: String,
}

fn event_of(event: &JobEvent) -> Event {
    let name = match event {
        JobEvent::Epoch { .. } => "epoch".to_string(),
        JobEvent::Status { job } => job.status.as_str().to_string(),
    };
    let data = match event {
        JobEvent::Epoch { .. } => serde_json::to_string(event),
        JobEvent::Status { job } => serde_json::to_string(job),
    }
    .unwrap_or_default();
    Event::default().event(name).data(data)
}

/// Follow a job: server-sent events `epoch` (one per finished epoch), then
/// the status changes; the terminal one (`succeeded`, `failed`, `cancelled`,
/// `interrupted`) ends the stream. The first event is the current state.
#[utoipa::path(get, path = "/jobs/{id}/events", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = JobStreamEvent),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn job_events(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (record, rx) = state
        .jobs
        .subscribe(&id)
        .map_err(super::convert::store_error)?
        .ok_or_else(|| job_not_found(&id))?;
    let first = event_of(&JobEvent::Status {
        job: Box::new(record.clone()),
    });
    let rest = match rx {
        Some(rx) if !record.status.is_terminal() => BroadcastStream::new(rx)
            .filter_map(|item| async move { item.ok() })
            .scan(false, |done, event| {
                if *done {
                    return futures_util::future::ready(None);
                }
                if let JobEvent::Status { job } = &event {
                    *done = job.status.is_terminal();
                }
                futures_util::future::ready(Some(event_of(&event)))
            })
            .boxed(),
        _ => stream::empty().boxed(),
    };
    let stream = stream::once(async move { first }).chain(rest).map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
