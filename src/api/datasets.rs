//! Datasets: streamed uploads, listing, deletion.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::ApiPath;
use crate::service::datasets::DatasetRemoval;
use crate::service::datasets::{DatasetMeta, UploadError};
use crate::service::{AppState, ErrorCode};

/// Upload a dataset (CSV with a header row, or NDJSON). The body streams to
/// disk; the answer has the id, row count and inferred schema.
#[utoipa::path(post, path = "/datasets", tag = "datasets",
    request_body(content((String = "text/csv"), (String = "application/x-ndjson")), description = "The dataset"),
    responses((status = 201, body = DatasetMeta),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unreadable data, naming the line", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store cannot be reached (`store_unavailable`): nothing was stored", body = Problem, content_type = "application/problem+json")))]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<DatasetMeta>)> {
    let content_type = super::extract::media_type(&headers);
    let format = match content_type.as_str() {
        "text/csv" => "csv",
        "application/x-ndjson" => "ndjson",
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                format!(
                    "Content-Type {other:?} is not supported; use text/csv or application/x-ndjson"
                ),
            ))
        }
    };
    let limit = state.settings.limits.max_upload_bytes;
    let datasets = state.datasets.clone();
    let mut upload = datasets
        .begin(format, limit)
        .await
        .map_err(super::convert::store_error)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let result = match chunk {
            Ok(bytes) => upload.write(&bytes).await,
            Err(e) => Err(body_error(&e.to_string(), limit)),
        };
        if let Err(e) = result {
            datasets.abort(upload).await;
            return Err(e.into());
        }
    }
    let upload = upload.close().await?;
    let limits = state.settings.read_limits();
    let meta = tokio::task::spawn_blocking(move || datasets.finish(upload, &limits))
        .await
        .map_err(ApiError::internal)??;
    Ok((StatusCode::CREATED, Json(meta)))
}

fn body_error(message: &str, limit: u64) -> UploadError {
    if message.contains("length limit") {
        UploadError::TooLarge { limit }
    } else {
        UploadError::Body(message.to_string())
    }
}

/// Datasets.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    pub datasets: Vec<DatasetMeta>,
}

/// List datasets.
#[utoipa::path(get, path = "/datasets", tag = "datasets", responses((status = 200, body = DatasetList)))]
pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult<Json<DatasetList>> {
    let datasets = state
        .datasets
        .list()
        .await
        .map_err(super::convert::store_error)?;
    Ok(Json(DatasetList { datasets }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(
        ErrorCode::DatasetNotFound,
        format!("dataset `{id}` does not exist"),
    )
    .with("dataset", id)
}

/// Get a dataset's metadata and schema.
#[utoipa::path(get, path = "/datasets/{id}", tag = "datasets", params(("id" = String, Path, description = "Dataset id")),
    responses((status = 200, body = DatasetMeta), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DatasetMeta>> {
    state
        .datasets
        .find(&id)
        .await
        .map_err(super::convert::store_error)?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

/// Delete a dataset.
#[utoipa::path(delete, path = "/datasets/{id}", tag = "datasets", params(("id" = String, Path, description = "Dataset id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A queued or running job uses the dataset", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let found = state
        .datasets
        .find(&id)
        .await
        .map_err(super::convert::store_error)?;
    let in_use = || {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::DatasetInUse,
            format!("dataset `{id}` is the input of a queued or running job; cancel it or wait"),
        )
        .with("dataset", id.clone())
    };
    if let Some(meta) = found {
        let jobs = state.jobs.clone();
        let key = state.datasets.relative_path(&meta);
        let used = tokio::task::spawn_blocking(move || jobs.input_in_use(&key))
            .await
            .unwrap_or(true);
        if used {
            return Err(in_use());
        }
    }
    match state.datasets.delete(&id).await {
        Ok(DatasetRemoval::Removed) => Ok(StatusCode::NO_CONTENT),
        Ok(DatasetRemoval::Missing) => Err(not_found(&id)),
        Ok(DatasetRemoval::InUse) => Err(in_use()),
        Err(e) => Err(super::convert::store_error(e)),
    }
}
