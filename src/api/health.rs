//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use crate::jobs::JobStatus;
use crate::service::{AppState, ErrorCode};

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a remote model store cannot be reached
    /// (loaded models are still served; training fails `store_unavailable`).
    pub status: String,
    /// Why the store is degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Why the coordination database is degraded (cluster only): models are
    /// still served; jobs, datasets and interactions answer 503 until it is back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        store: None,
        database: None,
    })
}

/// Readiness: the model store is reachable and every training worker is alive.
///
/// A local store must be writable. A remote store that cannot be reached
/// answers 200 `degraded`: every replica shares it, so taking replicas out
/// of rotation would not help, and loaded models are still served.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Health), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> ApiResult<Json<Health>> {
    let registry = state.registry.clone();
    let writable = tokio::task::spawn_blocking(move || registry.check_writable())
        .await
        .map_err(ApiError::internal)?;
    let mut degraded = None;
    if let Err(e) = writable {
        if state.registry.store().local_root().is_none() {
            degraded = Some(e.to_string());
        } else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NotReady,
                format!("model store is not writable: {e}"),
            ));
        }
    }
    let mut database = None;
    if let Some(db) = &state.database {
        if let Err(e) = db.call(|db| async move { db.ping().await }).await {
            database = Some(e.to_string());
        }
    }
    if !state.jobs.healthy() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            "a training worker has stopped",
        ));
    }
    Ok(Json(Health {
        status: if degraded.is_some() || database.is_some() {
            "degraded"
        } else {
            "ok"
        }
        .into(),
        store: degraded,
        database,
    }))
}

/// Prometheus metrics: requests by route and status with latency histograms,
/// predictions by model and version, jobs by status, queue depth, epoch
/// durations, loaded models.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let counts = state.jobs.counts();
    for status in JobStatus::ALL {
        metrics::gauge!("myelin_jobs", "status" => status.as_str())
            .set(*counts.get(&status).unwrap_or(&0) as f64);
    }
    metrics::gauge!("myelin_job_queue_depth").set(state.jobs.queue_depth() as f64);
    metrics::gauge!("myelin_loaded_models").set(state.registry.loaded_count() as f64);
    metrics::gauge!("myelin_store_seconds_since_last_poll")
        .set(state.registry.seconds_since_refresh());
    metrics::gauge!("myelin_store_up").set(if state.registry.store().is_healthy() {
        1.0
    } else {
        0.0
    });
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
