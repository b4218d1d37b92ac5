//! The registry over HTTP: models, versions, aliases.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use crate::registry::{ModelSummary, PRODUCTION_ALIAS};
use crate::service::AppState;

/// A model in listings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    pub name: String,
    /// `tabular`.
    pub kind: Option<String>,
    /// `classification` or `regression`.
    pub task: Option<String>,
    pub latest_version: Option<u32>,
    /// The version serving uses without an explicit one.
    pub serving_version: Option<u32>,
    pub versions: Vec<u32>,
    pub aliases: BTreeMap<String, u32>,
    /// Validation metrics of the latest version.
    #[schema(value_type = Object)]
    pub metrics: Value,
    /// When the latest version was created.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn view(summary: ModelSummary) -> ModelView {
    let latest_version = summary.versions.last().copied();
    let serving_version = summary
        .aliases
        .get(PRODUCTION_ALIAS)
        .copied()
        .or(latest_version);
    let (kind, task, metrics, created_at) = match &summary.latest {
        Some(card) => (
            Some(card.spec.kind().to_string()),
            Some(card.task.clone()),
            serde_json::to_value(&card.metrics).unwrap_or(Value::Null),
            Some(card.created_at),
        ),
        None => (None, None, Value::Null, None),
    };
    ModelView {
        name: summary.name,
        kind,
        task,
        latest_version,
        serving_version,
        versions: summary.versions,
        aliases: summary.aliases,
        metrics,
        created_at,
    }
}

/// Models.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelView>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// List models with their latest version, aliases and headline metrics.
#[utoipa::path(get, path = "/models", tag = "models", responses((status = 200, body = ModelList)))]
pub async fn list_models(State(state): State<Arc<AppState>>) -> ApiResult<Json<ModelList>> {
    blocking(move || {
        let models = state.registry.list()?.into_iter().map(view).collect();
        Ok(Json(ModelList { models }))
    })
    .await
}

/// Get a model.
#[utoipa::path(get, path = "/models/{name}", tag = "models", params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = ModelView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json")))]
pub async fn get_model(
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ModelView>> {
    blocking(move || Ok(Json(view(state.registry.summary(&name)?)))).await
}

/// Get a version: `model.json` — params, metrics, history, schema, pipeline, fingerprint.
#[utoipa::path(get, path = "/models/{name}/versions/{version}", tag = "models",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, description = "The model card (model.json)", body = Object),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_version(
    State(state): State<Arc<AppState>>,
    ApiPath((name, version)): ApiPath<(String, u32)>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let card = state.registry.card(&name, version)?;
        Ok(Json(
            serde_json::to_value(card).map_err(ApiError::internal)?,
        ))
    })
    .await
}

/// Delete a version. Refused with 409 while an alias points at it.
#[utoipa::path(delete, path = "/models/{name}/versions/{version}", tag = "models",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An alias points at the version", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_version(
    State(state): State<Arc<AppState>>,
    ApiPath((name, version)): ApiPath<(String, u32)>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        state.registry.delete_version(&name, version)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// Where an alias should point.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 3}))]
pub struct AliasRequest {
    pub version: u32,
}

/// An alias and its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasView {
    pub model: String,
    pub alias: String,
    pub version: u32,
}

/// Point an alias at a version (promote or roll back). `production` is what serving uses by default.
#[utoipa::path(put, path = "/models/{name}/aliases/{alias}", tag = "models", request_body = AliasRequest,
    params(("name" = String, Path, description = "Model name"), ("alias" = String, Path, description = "Alias name")),
    responses((status = 200, body = AliasView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_alias(
    State(state): State<Arc<AppState>>,
    ApiPath((name, alias)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<AliasRequest>,
) -> ApiResult<Json<AliasView>> {
    blocking(move || {
        state.registry.set_alias(&name, &alias, request.version)?;
        Ok(Json(AliasView {
            model: name,
            alias,
            version: request.version,
        }))
    })
    .await
}

/// Delete an alias.
#[utoipa::path(delete, path = "/models/{name}/aliases/{alias}", tag = "models",
    params(("name" = String, Path, description = "Model name"), ("alias" = String, Path, description = "Alias name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_alias(
    State(state): State<Arc<AppState>>,
    ApiPath((name, alias)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    blocking(move || {
        state.registry.delete_alias(&name, &alias)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
