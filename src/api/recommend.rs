//! `GET|POST /recommend`, `POST /interactions` and
//! `GET /models/{name}/items/{item}/similar`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::service::recommend::{
    self, NewInteraction, RecommendOutput, RecommendQuery, ServedItem, Strategy,
};
use crate::service::{AppState, ErrorCode};

const DEFAULT_K: usize = 10;

fn default_k() -> usize {
    DEFAULT_K
}

fn default_true() -> bool {
    true
}

/// A recommendation request. Give a `user`, a `history`, both, or neither (popular items).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"model": "shop", "user": "u42", "k": 5}))]
pub struct RecommendRequest {
    /// Model name (a recommender).
    pub model: String,
    /// Version to use; default: the `production` alias, else the latest.
    #[serde(default)]
    pub version: Option<u32>,
    /// User id. A user known at training gets their stored history plus logged
    /// interactions; an unknown one gets their logged interactions.
    #[serde(default)]
    pub user: Option<String>,
    /// Item ids the user interacted with, oldest first (added to the user's history).
    #[serde(default)]
    pub history: Vec<String>,
    /// Number of items, `1..=max_k` (default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Leave out items already in the history (default true).
    #[serde(default = "default_true")]
    pub exclude_seen: bool,
    /// Item ids never to recommend.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Recommend only among these item ids.
    #[serde(default)]
    pub candidates: Option<Vec<String>>,
    /// Item attribute filter: attribute → value or list of accepted values (strings,
    /// numbers or booleans); an item must match every attribute. Needs a model trained
    /// with `item_attributes`.
    #[serde(default)]
    #[schema(value_type = Option<Object>, example = json!({"genre": ["Comedy", "Drama"], "brand": "acme"}))]
    pub filter: Option<Map<String, Value>>,
    /// Return each item's attributes (default false).
    #[serde(default)]
    pub include_attributes: bool,
    /// Return the user's history the answer was computed from (default false).
    #[serde(default)]
    pub include_history: bool,
}

/// The filter as `(attribute, accepted values)`, naming a bad entry.
fn filter_clauses(filter: Option<Map<String, Value>>) -> ApiResult<Vec<(String, Vec<String>)>> {
    let Some(filter) = filter else {
        return Ok(Vec::new());
    };
    let scalar = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    filter
        .into_iter()
        .map(|(name, value)| {
            let values = match &value {
                Value::Array(list) => list.iter().map(scalar).collect::<Option<Vec<_>>>(),
                other => scalar(other).map(|v| vec![v]),
            };
            match values {
                Some(values) if !values.is_empty() => Ok((name, values)),
                _ => Err(ApiError::unprocessable(
                    ErrorCode::InvalidFilter,
                    format!(
                        "`filter.{name}` must be a string, number or boolean, or a non-empty list of them"
                    ),
                )
                .with("field", format!("filter.{name}"))),
            }
        })
        .collect()
}

/// Query of `GET /recommend`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecommendParams {
    /// Model name (a recommender).
    pub model: String,
    /// User id.
    pub user: Option<String>,
    /// Number of items (default 10).
    pub k: Option<usize>,
    /// Version to use.
    pub version: Option<u32>,
}

/// One recommended or similar item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoredItem {
    pub item: String,
    /// Higher is better; comparable only within one answer.
    pub score: f32,
    /// With `include_attributes`: attribute → value (a list when the item has several).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

fn scored(items: Vec<ServedItem>) -> Vec<ScoredItem> {
    items
        .into_iter()
        .map(|served| ScoredItem {
            item: served.item,
            score: served.score,
            attributes: served.attributes.map(|attrs| {
                attrs
                    .into_iter()
                    .map(|(name, mut values)| {
                        let value = if values.len() == 1 {
                            Value::String(values.swap_remove(0))
                        } else {
                            Value::from(values)
                        };
                        (name, value)
                    })
                    .collect()
            }),
        })
        .collect()
}

/// Recommended items, best first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"model": "shop", "version": 2, "user": "u42", "strategy": "personalized", "items": [{"item": "i7", "score": 2.31}], "unknown_items": []}))]
pub struct RecommendResponse {
    pub model: String,
    /// The version that answered.
    pub version: u32,
    pub user: Option<String>,
    /// `personalized` (user known at training), `history` (posted or logged history
    /// only) or `popular` (no history).
    pub strategy: Strategy,
    pub items: Vec<ScoredItem>,
    /// Posted item ids (history, exclude, candidates) the model does not know; ignored.
    pub unknown_items: Vec<String>,
    /// `true` when fewer than `k` items could be served: every other item is seen,
    /// excluded, filtered out or not a candidate (an empty `items` with `exhausted`
    /// means the user has seen everything the filters allow).
    pub exhausted: bool,
    /// With `include_history`: the items the answer was computed from (stored,
    /// logged and posted), `score` being each one's weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ScoredItem>>,
}

impl From<RecommendOutput> for RecommendResponse {
    fn from(out: RecommendOutput) -> Self {
        RecommendResponse {
            model: out.model,
            version: out.version,
            user: out.user,
            strategy: out.strategy,
            items: scored(out.items),
            unknown_items: out.unknown_items,
            exhausted: out.exhausted,
            history: out.history.map(scored),
        }
    }
}

/// Recommend items for a user and/or a history.
///
/// A known user gets personalised items from their stored and logged history; an unknown
/// user with a posted or logged history gets items for that history; otherwise the most
/// popular items. Unknown posted items are ignored and listed.
#[utoipa::path(post, path = "/recommend", tag = "recommendation", request_body = RecommendRequest,
    responses((status = 200, body = RecommendResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown model or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `k` or `filter`, or not a recommender", body = Problem, content_type = "application/problem+json")))]
pub async fn recommend_post(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<RecommendRequest>,
) -> ApiResult<Json<RecommendResponse>> {
    let query = RecommendQuery {
        model: request.model,
        version: request.version,
        user: request.user,
        history: request.history,
        k: request.k,
        exclude_seen: request.exclude_seen,
        exclude: request.exclude,
        candidates: request.candidates,
        filter: filter_clauses(request.filter)?,
        include_attributes: request.include_attributes,
        include_history: request.include_history,
    };
    Ok(Json(recommend::recommend(&state, query).await?.into()))
}

/// Recommend items for a user (seen items excluded).
#[utoipa::path(get, path = "/recommend", tag = "recommendation", params(RecommendParams),
    responses((status = 200, body = RecommendResponse),
        (status = 404, description = "Unknown model or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `k`, or not a recommender", body = Problem, content_type = "application/problem+json")))]
pub async fn recommend_get(
    State(state): State<Arc<AppState>>,
    ApiQuery(params): ApiQuery<RecommendParams>,
) -> ApiResult<Json<RecommendResponse>> {
    let query = RecommendQuery {
        model: params.model,
        version: params.version,
        user: params.user,
        k: params.k.unwrap_or(DEFAULT_K),
        exclude_seen: true,
        ..RecommendQuery::default()
    };
    Ok(Json(recommend::recommend(&state, query).await?.into()))
}

/// One interaction to log.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionIn {
    pub user: String,
    pub item: String,
    /// Rating, count or weight (`>= 0`).
    #[serde(default)]
    pub value: Option<f32>,
    /// Unix seconds; default: now.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// Interactions to log for a recommender.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"model": "shop", "interactions": [{"user": "u42", "item": "i7"}]}))]
pub struct InteractionsRequest {
    /// Model name (a recommender).
    pub model: String,
    /// At most `limits.max_instances` interactions.
    pub interactions: Vec<InteractionIn>,
}

/// Interactions stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct InteractionsResponse {
    pub model: String,
    /// How many interactions were logged.
    pub logged: usize,
    /// Logged item ids the serving version does not know (a retrain with
    /// `include_logged_interactions` learns them).
    pub unknown_items: Vec<String>,
}

/// Log interactions.
///
/// Appends them durably to the model's interaction log; `/recommend` sees them at once,
/// and training with `include_logged_interactions` uses them.
#[utoipa::path(post, path = "/interactions", tag = "recommendation", request_body = InteractionsRequest,
    responses((status = 201, body = InteractionsResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown model", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too many interactions", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid interaction, or not a recommender", body = Problem, content_type = "application/problem+json")))]
pub async fn log_interactions(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<InteractionsRequest>,
) -> ApiResult<(StatusCode, Json<InteractionsResponse>)> {
    let events = request
        .interactions
        .into_iter()
        .map(|i| NewInteraction {
            user: i.user,
            item: i.item,
            value: i.value,
            timestamp: i.timestamp,
        })
        .collect();
    let (logged, unknown_items) =
        recommend::log_interactions(&state, &request.model, events).await?;
    Ok((
        StatusCode::CREATED,
        Json(InteractionsResponse {
            model: request.model,
            logged,
            unknown_items,
        }),
    ))
}

/// Query of the similar-items route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// Number of items (default 10).
    pub k: Option<usize>,
    /// Version to use.
    pub version: Option<u32>,
}

/// Items similar to one item.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarResponse {
    pub model: String,
    pub version: u32,
    pub item: String,
    pub items: Vec<ScoredItem>,
}

/// Items most similar to an item.
#[utoipa::path(get, path = "/models/{name}/items/{item}/similar", tag = "recommendation",
    params(("name" = String, Path, description = "Model name"),
        ("item" = String, Path, description = "Item id"), SimilarParams),
    responses((status = 200, body = SimilarResponse),
        (status = 404, description = "Unknown model, version or item", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `k`, or not a recommender", body = Problem, content_type = "application/problem+json")))]
pub async fn similar(
    State(state): State<Arc<AppState>>,
    ApiPath((name, item)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<SimilarParams>,
) -> ApiResult<Json<SimilarResponse>> {
    let out = recommend::similar(
        &state,
        &name,
        &item,
        params.k.unwrap_or(DEFAULT_K),
        params.version,
    )
    .await?;
    Ok(Json(SimilarResponse {
        model: out.model,
        version: out.version,
        item: out.item,
        items: scored(out.items),
    }))
}

/// Largest page of `GET /models/{name}/users`.
pub const MAX_USERS_PAGE: usize = 1000;

/// Query of the users route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersParams {
    /// Number of user ids, `1..=1000` (default 100).
    pub limit: Option<usize>,
    /// Version to use.
    pub version: Option<u32>,
}

/// Users a recommender knows from training.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersResponse {
    pub model: String,
    pub version: u32,
    /// The first `limit` user ids, in training order.
    pub users: Vec<String>,
    /// Users known at training.
    pub total: usize,
}

/// Users a recommender was trained on (to pick one to preview).
#[utoipa::path(get, path = "/models/{name}/users", tag = "recommendation",
    params(("name" = String, Path, description = "Model name"), UsersParams),
    responses((status = 200, body = UsersResponse),
        (status = 404, description = "Unknown model or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, or not a recommender", body = Problem, content_type = "application/problem+json")))]
pub async fn users(
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<UsersParams>,
) -> ApiResult<Json<UsersResponse>> {
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_USERS_PAGE {
        return Err(ApiError::unprocessable(
            ErrorCode::InvalidParameter,
            format!("limit must be between 1 and {MAX_USERS_PAGE}, got {limit}"),
        )
        .with("field", "limit")
        .with("limit", MAX_USERS_PAGE));
    }
    let out = recommend::users(&state, &name, params.version, limit).await?;
    Ok(Json(UsersResponse {
        model: out.model,
        version: out.version,
        users: out.users,
        total: out.total,
    }))
}
