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
use crate::data::{ColumnKind, PipelineOptions};
use crate::jobs::JobRecord;
use crate::recommend::InteractionColumns;
use crate::service::training::{
    self, AttributeColumnsIn, AttributeInputs, JobSpec, TaskKind, TrainData,
};
use crate::service::AppState;
use crate::tabular::{ClassWeight, Validation};

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
    /// Column to predict; required for classification and regression.
    #[serde(default)]
    pub target: Option<String>,
    /// `classification`, `regression` or `recommendation`; classification or regression
    /// is inferred from the target when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub task: Option<TaskKind>,
    /// Column kind overrides: column → numeric | boolean | categorical | text | image | audio | identifier.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub columns: BTreeMap<String, ColumnKind>,
    /// Columns never used as features.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Training parameters of the task; every key is optional (see the README).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Option<Value>,
    /// `none`, `balanced`, or a weight per label.
    #[serde(default)]
    pub class_weight: Option<ClassWeight>,
    /// How the model is validated: `{"kind": "auto"}` (default: a holdout of
    /// `params.validation_fraction`, or 5-fold cross-validation below 2,000 labelled
    /// rows), `{"kind": "holdout"}`, or `{"kind": "kfold", "folds": 5, "stratified": true}`
    /// (folds 2..=20; stratified applies to classification). With k-fold the metrics are
    /// fold means with `cross_validation` per fold, mean and std, and the served model
    /// is refit on all rows for the epoch count the folds chose.
    #[serde(default)]
    pub validation: Validation,
    /// Feature pipeline options: `max_one_hot` (64), `hash_buckets` (32), `standardize` (true), `numeric_bins` (16),
    /// `text` (`ngram_range` [1, 2], `char_ngrams` null, `min_df` 2, `max_features` 20000, `hashing` null, `sublinear_tf` true),
    /// `text_columns` (per-column text options),
    /// `image` (`width` 28, `height` 28, `mode` grayscale|rgb, `pixels` {width, height, channels} for pixel arrays, `pixel_max` 255),
    /// `audio` (`sample_rate` 16000, `duration_secs` 1.0, `n_mels` 40, `window_ms` 25, `hop_ms` 10, `deltas` false,
    /// `augment` null or {`copies` 1, `max_shift_ms` 100, `snr_db` 20, `gain_db` 6}).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub pipeline: PipelineOptions,
    /// Recommendation: interaction column names `{user, item, value, timestamp}`
    /// (defaults `user_id`, `item_id`, `value`, `timestamp`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub interaction_columns: Option<InteractionColumns>,
    /// Recommendation: also train on the interactions logged with `POST /interactions`.
    #[serde(default)]
    pub include_logged_interactions: bool,
    /// Recommendation: item attributes — filters, `include_attributes`, cold-start items
    /// (ids without interactions, scored from items with similar attributes), and side
    /// information of the item-item model (items sharing values; `attribute_weight`).
    #[serde(default)]
    pub item_attributes: Option<AttributeTable>,
    /// Recommendation: user attributes — users without history get the popular items of
    /// their segments (users sharing an attribute value), and known users' values are
    /// inputs of the item-item model (`user_attribute_weight`).
    #[serde(default)]
    pub user_attributes: Option<AttributeTable>,
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

/// A table of item or user attributes: give the rows as exactly one of `data`, `csv` or
/// `dataset`. Every column other than the id is a categorical attribute unless `columns`
/// lists them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "item_id", "separator": "|", "data": [{"item_id": "i7", "genre": "Action|Comedy", "brand": "acme"}]}))]
pub struct AttributeTable {
    /// Id column; default: the interaction column of the same kind (`item_id`, `user_id`).
    #[serde(default)]
    pub id: Option<String>,
    /// Attribute columns; default: every other column.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Splits cells into several values (e.g. `|`); default none.
    #[serde(default)]
    pub separator: Option<String>,
    /// Inline rows.
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

fn one_source(
    data: Option<Vec<Map<String, Value>>>,
    csv: Option<String>,
    dataset: Option<String>,
) -> Option<TrainData> {
    match (data, csv, dataset) {
        (Some(rows), None, None) => Some(TrainData::Rows(rows)),
        (None, Some(csv), None) => Some(TrainData::Csv(csv.into_bytes())),
        (None, None, Some(id)) => Some(TrainData::Dataset(id)),
        _ => None,
    }
}

impl AttributeTable {
    fn into_input(self, field: &str) -> ApiResult<(TrainData, AttributeColumnsIn)> {
        let data = one_source(self.data, self.csv, self.dataset).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_body",
                format!("`{field}`: give the rows as exactly one of `data`, `csv` or `dataset`"),
            )
            .with("field", field.to_string())
        })?;
        let columns = AttributeColumnsIn {
            id: self.id,
            columns: self.columns,
            separator: self.separator,
        };
        Ok((data, columns))
    }
}

impl TrainRequest {
    fn into_spec(self) -> ApiResult<(JobSpec, Option<TrainData>, AttributeInputs)> {
        let attributes = AttributeInputs {
            items: self
                .item_attributes
                .map(|t| t.into_input("item_attributes"))
                .transpose()?,
            users: self
                .user_attributes
                .map(|t| t.into_input("user_attributes"))
                .transpose()?,
        };
        let data = one_source(self.data, self.csv, self.dataset);
        let spec = JobSpec {
            model: self.model,
            target: self.target,
            task: self.task,
            columns: self.columns,
            ignore: self.ignore,
            params: self.params.unwrap_or_else(|| Value::Object(Map::new())),
            class_weight: self.class_weight,
            validation: self.validation,
            pipeline: self.pipeline,
            interaction_columns: self.interaction_columns,
            include_logged_interactions: self.include_logged_interactions,
            item_attributes: None,
            user_attributes: None,
            source: String::new(),
        };
        Ok((spec, data, attributes))
    }
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
    /// Feature pipeline options as a JSON object.
    pub pipeline: Option<String>,
    /// `none` or `balanced`.
    pub class_weight: Option<String>,
    /// Validation as a JSON object, e.g. `{"kind": "kfold", "folds": 5}`.
    pub validation: Option<String>,
}

/// Parses a training request, naming the offending field on error.
fn parse_request(value: Value) -> ApiResult<TrainRequest> {
    let request: TrainRequest = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let code = if path.starts_with("params")
            || path.starts_with("pipeline")
            || path.starts_with("validation")
        {
            "invalid_parameter"
        } else {
            "invalid_body"
        };
        ApiError::unprocessable(code, format!("`{path}`: {}", e.inner())).with("field", path)
    })?;
    let recommendation = request.task == Some(TaskKind::Recommendation);
    if !recommendation {
        for (field, set) in [
            ("interaction_columns", request.interaction_columns.is_some()),
            (
                "include_logged_interactions",
                request.include_logged_interactions,
            ),
        ] {
            if set {
                return Err(ApiError::unprocessable(
                    "invalid_body",
                    format!("`{field}` applies only to `\"task\": \"recommendation\"`"),
                )
                .with("field", field));
            }
        }
    }
    if !recommendation && request.target.is_none() {
        return Err(ApiError::unprocessable(
            "missing_field",
            "`target` is required for classification and regression",
        )
        .with("field", "target"));
    }
    Ok(request)
}

/// Checks that `params` parse for the task, naming the offending field.
fn check_params(spec: &JobSpec) -> ApiResult<()> {
    spec.check_params()
        .map_err(|e| ApiError::unprocessable("invalid_parameter", e.message).with("field", e.field))
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
                    "missing_field",
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
                        "invalid_parameter",
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
    let (spec, data, attributes) = match content_type.as_str() {
        "application/json" => {
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
            let (spec, data, attributes) = parse_request(value)?.into_spec()?;
            let data = data.ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_data_source",
                    "give the data as exactly one of `data`, `csv` or `dataset`",
                )
            })?;
            (spec, data, attributes)
        }
        "text/csv" | "application/x-ndjson" => {
            let (spec, _, attributes) = parse_request(query.into_json()?)?.into_spec()?;
            let bytes = body.to_vec();
            let data = if content_type == "text/csv" {
                TrainData::Csv(bytes)
            } else {
                TrainData::Ndjson(bytes)
            };
            (spec, data, attributes)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other:?} is not supported; use application/json, text/csv or application/x-ndjson"),
            ))
        }
    };
    check_params(&spec)?;
    spec.validation.check().map_err(|e| {
        let crate::nn::ParamError::Invalid { name, .. } = &e;
        let field = *name;
        ApiError::unprocessable("invalid_parameter", e.to_string()).with("field", field)
    })?;
    let retry_after = state.settings.jobs.retry_after_secs;
    let state2 = state.clone();
    let record =
        tokio::task::spawn_blocking(move || training::submit(&state2, spec, data, attributes))
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
