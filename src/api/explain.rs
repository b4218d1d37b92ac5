//! `POST /explain` and `POST /models/{name}/explain`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use crate::service::explain;
use crate::service::predict::VersionSelector;
use crate::service::{AppState, ErrorCode};
use crate::tabular::{ExplainOptions, Explanation, DEFAULT_STEPS};

/// An explanation request: a prediction request with the explanation's options.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"model": "churn", "instances": [{"tenure": 5, "plan": "basic", "monthly": 31.0}], "steps": 64}))]
pub struct ExplainRequest {
    /// Model name (omit on `/models/{name}/explain`).
    #[serde(default)]
    pub model: Option<String>,
    /// Version to use; default: the `production` alias, else the latest.
    #[serde(default)]
    pub version: Option<u32>,
    /// Alias to use instead of a version.
    #[serde(default)]
    pub alias: Option<String>,
    /// Raw records, as for `/predict`.
    #[schema(value_type = Vec<Object>)]
    pub instances: Vec<Map<String, Value>>,
    /// Integration steps, 1..=1024 (default 64); more are used while the
    /// attributions miss `prediction − base_value` by over 0.5 %.
    #[serde(default)]
    pub steps: Option<usize>,
    /// Class label whose probability is explained; default: the predicted class.
    #[serde(default)]
    pub class: Option<String>,
    /// Add a per-pixel attribution map to image columns.
    #[serde(default)]
    pub pixel_map: bool,
}

/// Explanations, one per instance, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainResponse {
    pub model: String,
    /// The version that answered.
    pub version: u32,
    pub explanations: Vec<Explanation>,
}

async fn run(
    state: &AppState,
    model: String,
    request: ExplainRequest,
) -> ApiResult<Json<ExplainResponse>> {
    let selector = VersionSelector {
        version: request.version,
        alias: request.alias,
    };
    let options = ExplainOptions {
        steps: request.steps.unwrap_or(DEFAULT_STEPS),
        class: request.class,
        pixel_map: request.pixel_map,
    };
    let out = explain::explain(state, &model, &selector, request.instances, options).await?;
    Ok(Json(ExplainResponse {
        model: out.model,
        version: out.version,
        explanations: out.explanations,
    }))
}

/// Explain predictions on raw records.
///
/// Integrated gradients from the model's baseline record (training mean /
/// most frequent value per column, stored in the model card as `baseline`) to
/// each instance, summed back to the raw columns: `base_value + Σ
/// attributions = prediction` within 1 % of `|prediction − base_value|`.
/// Explains the predicted class's probability (or `class`'s), or the
/// regression value.
#[utoipa::path(post, path = "/explain", tag = "prediction", request_body = ExplainRequest,
    responses((status = 200, body = ExplainResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown model, version or alias", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many instances or body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid instance, class or steps", body = Problem, content_type = "application/problem+json")))]
pub async fn explain(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<ExplainRequest>,
) -> ApiResult<Json<ExplainResponse>> {
    let Some(model) = request.model.clone() else {
        return Err(
            ApiError::unprocessable(ErrorCode::MissingField, "`model` is required")
                .with("field", "model"),
        );
    };
    run(&state, model, request).await
}

/// Explain predictions on raw records with the named model.
#[utoipa::path(post, path = "/models/{name}/explain", tag = "prediction", request_body = ExplainRequest,
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = ExplainResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown model, version or alias", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many instances or body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid instance, class or steps", body = Problem, content_type = "application/problem+json")))]
pub async fn explain_named(
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<ExplainRequest>,
) -> ApiResult<Json<ExplainResponse>> {
    run(&state, name, request).await
}
