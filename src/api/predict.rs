//! `POST /predict` and `POST /models/{name}/predict`: the answer is the
//! service's [`PredictOutput`] as is (its schema is `PredictResponse`).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use crate::service::predict::{self, PredictOutput, VersionSelector};
use crate::service::{AppState, ErrorCode};
use crate::tabular::Precision;

/// A prediction request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"model": "churn", "instances": [{"tenure": 5, "plan": "basic", "monthly": 31.0}]}))]
pub struct PredictRequest {
    /// Model name (omit on `/models/{name}/predict`).
    #[serde(default)]
    pub model: Option<String>,
    /// Version to use; default: the `production` alias, else the latest.
    #[serde(default)]
    pub version: Option<u32>,
    /// Alias to use instead of a version.
    #[serde(default)]
    pub alias: Option<String>,
    /// Raw records: the fields the model was trained on. `null` means missing.
    #[schema(value_type = Vec<Object>)]
    pub instances: Vec<Map<String, Value>>,
    /// Weights to answer with: `f32`, `f16` or `int8` (default: `serving.precision`,
    /// or the model's entry in `serving.models`). A compressed copy that lost more
    /// than `serving.max_accuracy_drop` at training is refused: `f32` answers.
    #[serde(default)]
    pub precision: Option<Precision>,
}

async fn run(
    state: &AppState,
    model: String,
    request: PredictRequest,
) -> ApiResult<Json<PredictOutput>> {
    let selector = VersionSelector {
        version: request.version,
        alias: request.alias,
    };
    let out = predict::predict_at(
        state,
        &model,
        &selector,
        request.instances,
        request.precision,
    )
    .await?;
    Ok(Json(out))
}

/// Predict on raw records.
///
/// A missing field or a wrong type answers 422 naming the instance index and
/// the field; unknown fields are ignored and listed.
#[utoipa::path(post, path = "/predict", tag = "prediction", request_body = PredictRequest,
    responses((status = 200, body = PredictOutput),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown model, version or alias", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many instances or body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid instance", body = Problem, content_type = "application/problem+json")))]
pub async fn predict(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<PredictRequest>,
) -> ApiResult<Json<PredictOutput>> {
    let Some(model) = request.model.clone() else {
        return Err(super::error::ApiError::unprocessable(
            ErrorCode::MissingField,
            "`model` is required",
        )
        .with("field", "model"));
    };
    run(&state, model, request).await
}

/// Predict on raw records with the named model.
#[utoipa::path(post, path = "/models/{name}/predict", tag = "prediction", request_body = PredictRequest,
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = PredictOutput),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown model, version or alias", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many instances or body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid instance", body = Problem, content_type = "application/problem+json")))]
pub async fn predict_named(
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<PredictRequest>,
) -> ApiResult<Json<PredictOutput>> {
    run(&state, name, request).await
}
