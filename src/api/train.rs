//! `POST /train`: a JSON request with inline rows, inline CSV or a dataset
//! id; or a raw CSV / NDJSON body with the rest in the query string.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::ApiQuery;
use crate::jobs::JobRecord;
use crate::service::training::{self, JobSpec, TrainData};
use crate::service::AppState;
use crate::tabular::ClassWeight;

/// A training request. Give the data as exactly one of `data`, `csv` or `dataset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "model": "churn",
    "target": "churned",
    "params": {"hidden_layers": [64, 32], "epochs": 20},
    "data": [
        {"tenure": 3, "plan": "basic", "monthly": 29.5, "churned": "yes"},
        {"tenure": 40, "plan": "pro", "monthly": 79.0, "churned": "no"}
    ]
}))]
pub struct TrainRequest {
    /// Model name, `[a-z0-9][a-z0-9._-]{0,63}`; each successful job adds a version.
    pub model: String,
    /// Column to predict.
    pub target: String,
    /// `classification` or `regression`; inferred from the target when absent.
    #[serde(default)]
    pub task: Option<String>,
    /// Column kind overrides: column → numeric | boolean | categorical | text | identifier.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Columns never used as features.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Training parameters; every key is optional (see the README).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Value,
    /// `none`, `balanced`, or a weight per label.
    #[serde(default)]
    pub class_weight: Option<ClassWeight>,
    /// Inline rows: JSON objects of raw values.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<Vec<Map<String, Value>>>,
    /// Inline CSV text with a header row.
    #[serde(default)]
    pub csv: Option<String>,
    /// Id of a dataset uploaded with `POST /datasets`.
    #[serde(default)]
    pub dataset: Option<String>,
}

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
    /// `none` or `balanced`.
    pub class_weight: Option<String>,
}

fn enum_from_str<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &str,
    expected: &str,
) -> ApiResult<T> {
    serde_json::from_value(Value::String(value.to_string())).map_err(|_| {
        ApiError::unprocessable(
            "invalid_field",
            format!("`{field}` = {value:?}: expected {expected}"),
        )
        .with("field", field)
    })
}

fn spec_from(
    model: String,
    target: String,
    task: Option<String>,
    columns: BTreeMap<String, String>,
    ignore: Vec<String>,
    params: Value,
    class_weight: Option<ClassWeight>,
) -> ApiResult<JobSpec> {
    let task = task
        .map(|t| enum_from_str("task", &t, "classification or regression"))
        .transpose()?;
    let mut kinds = BTreeMap::new();
    for (column, kind) in columns {
        let parsed = enum_from_str(
            &format!("columns.{column}"),
            &kind,
            "numeric, boolean, categorical, text or identifier",
        )?;
        kinds.insert(column, parsed);
    }
    let params = match params {
        Value::Null => Default::default(),
        other => serde_json::from_value(other).map_err(|e| {
            ApiError::unprocessable("invalid_parameter", format!("`params`: {e}"))
                .with("field", "params")
        })?,
    };
    Ok(JobSpec {
        model,
        target,
        task,
        columns: kinds,
        ignore,
        params,
        class_weight,
        source: String::new(),
    })
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
            headers(("retry-after" = u64, description = "Seconds to wait")))
    )
)]
pub async fn train(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<TrainQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (spec, data) = match content_type.as_str() {
        "application/json" => {
            let request: TrainRequest = serde_json::from_slice(&body).map_err(|e| {
                if e.is_data() {
                    ApiError::unprocessable("invalid_body", format!("invalid training request: {e}"))
                } else {
                    ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
                }
            })?;
            let sources = [request.data.is_some(), request.csv.is_some(), request.dataset.is_some()];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(ApiError::unprocessable(
                    "invalid_data_source",
                    "give the data as exactly one of `data`, `csv` or `dataset`",
                ));
            }
            let data = if let Some(rows) = request.data {
                TrainData::Rows(rows)
            } else if let Some(csv) = request.csv {
                TrainData::Csv(csv.into_bytes())
            } else {
                TrainData::Dataset(request.dataset.unwrap_or_default())
            };
            let spec = spec_from(
                request.model,
                request.target,
                request.task,
                request.columns,
                request.ignore,
                request.params,
                request.class_weight,
            )?;
            (spec, data)
        }
        "text/csv" | "application/x-ndjson" => {
            let model = query
                .model
                .ok_or_else(|| ApiError::unprocessable("missing_field", "query parameter `model` is required").with("field", "model"))?;
            let target = query
                .target
                .ok_or_else(|| ApiError::unprocessable("missing_field", "query parameter `target` is required").with("field", "target"))?;
            let params = match query.params {
                Some(p) => serde_json::from_str(&p).map_err(|e| {
                    ApiError::unprocessable("invalid_parameter", format!("query parameter `params` is not a JSON object: {e}"))
                        .with("field", "params")
                })?,
                None => Value::Null,
            };
            let class_weight = query
                .class_weight
                .map(|c| enum_from_str("class_weight", &c, "none or balanced"))
                .transpose()?;
            let ignore = query
                .ignore
                .map(|s| s.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect())
                .unwrap_or_default();
            let spec = spec_from(model, target, query.task, BTreeMap::new(), ignore, params, class_weight)?;
            let bytes = body.to_vec();
            let data = if content_type == "text/csv" {
                TrainData::Csv(bytes)
            } else {
                TrainData::Ndjson(bytes)
            };
            (spec, data)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other:?} is not supported; use application/json, text/csv or application/x-ndjson"),
            ))
        }
    };
    let retry_after = state.settings.jobs.retry_after_secs;
    let state2 = state.clone();
    let record = tokio::task::spawn_blocking(move || training::submit(&state2, spec, data))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            let err = ApiError::from(e);
            if err.code == "queue_full" {
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
