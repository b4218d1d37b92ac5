//! `POST /train`: a JSON request with inline rows, inline CSV or a dataset
//! id; or a raw CSV / NDJSON body with the rest in the query string. The
//! request is read here into `service::training::TrainRequest`, naming the
//! field that does not parse; checking and queuing it is the service's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::ApiQuery;
use crate::jobs::JobRecord;
use crate::service::training::{self, DataSource, TrainRequest};
use crate::service::{AppState, ErrorCode};

/// Query parameters for a raw CSV or NDJSON body.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrainQuery {
    /// Model name.
    pub model: Option<String>,
    /// Column to predict.
    pub target: Option<String>,
    /// `classification` or `regression`.
    pub task: Option<String>,
    /// Comma-separated columns to leave out.
    pub ignore: Option<String>,
    /// Training parameters as a JSON object.
    pub params: Option<String>,
    /// Feature pipeline options as a JSON object.
    pub pipeline: Option<String>,
    /// `none` or `balanced`.
    pub class_weight: Option<String>,
    /// Validation as a JSON object, e.g. `{"kind": "kfold", "folds": 5}`.
    pub validation: Option<String>,
}

/// Reads a training request, naming the offending field on error.
fn parse_request(value: Value) -> ApiResult<TrainRequest> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let code = if path.starts_with("params")
            || path.starts_with("pipeline")
            || path.starts_with("validation")
        {
            ErrorCode::InvalidParameter
        } else {
            ErrorCode::InvalidBody
        };
        ApiError::unprocessable(code, format!("`{path}`: {}", e.inner())).with("field", path)
    })
}

impl TrainQuery {
    /// The query as the equivalent JSON request (without data).
    fn into_json(self) -> ApiResult<Value> {
        let mut object = Map::new();
        let recommendation = self.task.as_deref() == Some("recommendation");
        for (key, value) in [("model", self.model), ("target", self.target)] {
            if key == "target" && recommendation && value.is_none() {
                continue;
            }
            let value = value.ok_or_else(|| {
                ApiError::unprocessable(
                    ErrorCode::MissingField,
                    format!("query parameter `{key}` is required"),
                )
                .with("field", key)
            })?;
            object.insert(key.into(), Value::String(value));
        }
        if let Some(task) = self.task {
            object.insert("task".into(), Value::String(task));
        }
        if let Some(class_weight) = self.class_weight {
            object.insert("class_weight".into(), Value::String(class_weight));
        }
        if let Some(ignore) = self.ignore {
            let columns = ignore
                .split(',')
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .map(|c| Value::String(c.to_string()))
                .collect();
            object.insert("ignore".into(), Value::Array(columns));
        }
        for (key, value) in [
            ("params", self.params),
            ("pipeline", self.pipeline),
            ("validation", self.validation),
        ] {
            if let Some(text) = value {
                let parsed: Value = serde_json::from_str(&text).map_err(|e| {
                    ApiError::unprocessable(
                        ErrorCode::InvalidParameter,
                        format!("query parameter `{key}` is not JSON: {e}"),
                    )
                    .with("field", key)
                })?;
                object.insert(key.into(), parsed);
            }
        }
        Ok(Value::Object(object))
    }
}

/// Start a training job.
///
/// Answers 202 with the queued job and `Location: /jobs/{id}`. Everything that
/// can be checked before queuing is checked (model name, target column,
/// parameters, data) and refused with 422 naming it.
#[utoipa::path(
    post,
    path = "/train",
    tag = "training",
    params(TrainQuery),
    request_body(
        description = "A JSON training request, or a raw CSV (`text/csv`) or NDJSON (`application/x-ndjson`) body with `model` and `target` in the query",
        content(
            (TrainRequest = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson")
        )
    ),
    responses(
        (status = 202, description = "Job queued", body = JobRecord,
            headers(("location" = String, description = "URL of the job"))),
        (status = 400, description = "Malformed request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown dataset", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported content type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Queue full", body = Problem, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The store cannot be reached (`store_unavailable`): the job was not accepted", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn train(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<TrainQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let content_type = super::extract::media_type(&headers);
    let request = match content_type.as_str() {
        "application/json" => {
            let value: Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(ErrorCode::MalformedJson, format!("malformed JSON: {e}"))
            })?;
            parse_request(value)?
        }
        "text/csv" | "application/x-ndjson" => {
            let mut request = parse_request(query.into_json()?)?;
            let bytes = body.to_vec();
            request.data = Some(if content_type == "text/csv" {
                DataSource::Csv(bytes)
            } else {
                DataSource::Body(bytes)
            });
            request
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                format!("Content-Type {other:?} is not supported; use application/json, text/csv or application/x-ndjson"),
            ))
        }
    };
    let retry_after = state.settings.jobs.retry_after_secs;
    let state2 = state.clone();
    let record = tokio::task::spawn_blocking(move || training::submit(&state2, request))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            let err = ApiError::from(e);
            if err.status == StatusCode::TOO_MANY_REQUESTS {
                err.retry_after(retry_after)
            } else {
                err
            }
        })?;
    let location = format!("/jobs/{}", record.id);
    let mut response = (StatusCode::ACCEPTED, axum::Json(record)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}
