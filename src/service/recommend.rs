//! Serving recommendations: resolve a recommender version, build the user's history
//! (stored training history, logged interactions, posted items), score inline with a
//! reused per-thread scratch; and log posted interactions to the durable per-model log
//! that `interactions.rs` keeps.

use std::cell::RefCell;
use std::sync::Arc;

use serde::Serialize;

use super::predict::{resolve_and_load, PredictError, VersionSelector};
use super::{AppState, ErrorCode};
use crate::recommend::{recency_weights, ItemSet, Recommender, ScoreScratch};
use crate::registry::{LoadedModel, RegistryError, ServingModel};

pub use super::interactions::{append_logged, InteractionLogs, LoggedInteraction, LOG_FILE};

thread_local! {
    static SCRATCH: RefCell<ScoreScratch> = RefCell::new(ScoreScratch::default());
}

/// Why a recommendation request failed.
#[derive(Debug, thiserror::Error)]
pub enum RecommendServeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("model `{model}` is a {kind} model, not a recommender")]
    WrongModelKind { model: String, kind: &'static str },
    #[error("`k` = {k} must be in 1..={max}, the limit `recommend.max_k`")]
    InvalidK { k: usize, max: usize },
    #[error("model `{model}` has no item `{item}`")]
    ItemNotFound { model: String, item: String },
    #[error("`interactions` has {found} items; the limit `limits.max_instances` is {limit}")]
    TooMany { found: usize, limit: usize },
    #[error("{message}")]
    Invalid {
        code: ErrorCode,
        field: String,
        message: String,
    },
    #[error("give either `version` or `alias`, not both")]
    VersionAndAlias,
    #[error("interaction log: {0}")]
    Log(crate::storage::StoreError),
    #[error("recommendation failed: {0}")]
    Internal(String),
}

impl From<PredictError> for RecommendServeError {
    fn from(e: PredictError) -> Self {
        match e {
            PredictError::Registry(r) => RecommendServeError::Registry(r),
            PredictError::VersionAndAlias => RecommendServeError::VersionAndAlias,
            other => RecommendServeError::Internal(other.to_string()),
        }
    }
}

/// A recommendation request, with ids as given by the caller.
#[derive(Debug, Clone, Default)]
pub struct RecommendQuery {
    pub model: String,
    pub version: Option<u32>,
    pub user: Option<String>,
    pub history: Vec<String>,
    pub k: usize,
    pub exclude_seen: bool,
    pub exclude: Vec<String>,
    pub candidates: Option<Vec<String>>,
    /// Item attribute → accepted values; every clause must match.
    pub filter: Vec<(String, Vec<String>)>,
    /// Return each item's attributes.
    pub include_attributes: bool,
    /// Return the history the answer was computed from.
    pub include_history: bool,
}

/// One served item: id, score and, when asked for, its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedItem {
    pub item: String,
    pub score: f32,
    /// `(attribute, values)`; `None` unless requested.
    pub attributes: Option<Vec<(String, Vec<String>)>>,
}

/// The served form of ranked `(index, score)` pairs.
fn served(
    model: &Recommender,
    ranked: Vec<(u32, f32)>,
    include_attributes: bool,
) -> Vec<ServedItem> {
    ranked
        .into_iter()
        .filter_map(|(i, score)| {
            let item = model.item_id(i)?.to_string();
            let attributes = include_attributes.then(|| {
                model
                    .item_attributes()
                    .map(|attrs| {
                        attrs
                            .describe(i as usize)
                            .into_iter()
                            .map(|(name, values)| {
                                (
                                    name.to_string(),
                                    values.into_iter().map(str::to_string).collect(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            });
            Some(ServedItem {
                item,
                score,
                attributes,
            })
        })
        .collect()
}

/// How the answer was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A user known at training, with their stored and logged history.
    Personalized,
    /// A user unknown at training, from a posted or logged history.
    History,
    /// No history: most popular items.
    Popular,
}

/// A recommendation answer.
#[derive(Debug)]
pub struct RecommendOutput {
    pub model: String,
    pub version: u32,
    pub user: Option<String>,
    pub strategy: Strategy,
    pub items: Vec<ServedItem>,
    pub unknown_items: Vec<String>,
    /// Fewer than `k` items are left once seen, excluded, filtered-out and
    /// non-candidate items are left out (none at all when the user has seen everything).
    pub exhausted: bool,
    /// With `include_history`: the items the answer was computed from, with
    /// their weights as scores (stored, logged and posted; known items only).
    pub history: Option<Vec<ServedItem>>,
}

/// Similar items.
#[derive(Debug)]
pub struct SimilarOutput {
    pub model: String,
    pub version: u32,
    pub item: String,
    pub items: Vec<ServedItem>,
}

/// Loads the version to serve and checks that it is a recommender.
async fn load_recommender(
    state: &AppState,
    model: &str,
    version: Option<u32>,
) -> Result<Arc<LoadedModel>, RecommendServeError> {
    let selector = VersionSelector {
        version,
        alias: None,
    };
    let loaded = resolve_and_load(state, model, &selector).await?;
    match &loaded.model {
        ServingModel::Recommender(_) => Ok(loaded),
        other => Err(RecommendServeError::WrongModelKind {
            model: model.to_string(),
            kind: other.kind(),
        }),
    }
}

fn recommender(loaded: &LoadedModel) -> &Recommender {
    match &loaded.model {
        ServingModel::Recommender(r) => r,
        ServingModel::Tabular(_) => unreachable!("checked by load_recommender"),
    }
}

fn check_k(k: usize, model: &Recommender, state: &AppState) -> Result<(), RecommendServeError> {
    let max = model.spec().max_k.min(state.settings.recommend.max_k);
    if k == 0 || k > max {
        return Err(RecommendServeError::InvalidK { k, max });
    }
    Ok(())
}

/// Top `k` items for a user and/or a posted history.
pub async fn recommend(
    state: &AppState,
    query: RecommendQuery,
) -> Result<RecommendOutput, RecommendServeError> {
    let loaded = load_recommender(state, &query.model, query.version).await?;
    let model = recommender(&loaded);
    check_k(query.k, model, state)?;
    let logged = match &query.user {
        Some(user) => state
            .interactions
            .user_items(&query.model, user)
            .await
            .map_err(RecommendServeError::Log)?,
        None => Vec::new(),
    };
    let mut unknown_items = Vec::new();
    let mut indices = |ids: &[String]| -> Vec<u32> {
        ids.iter()
            .filter_map(|id| {
                let index = model.item_index(id);
                if index.is_none() && !unknown_items.contains(id) {
                    unknown_items.push(id.clone());
                }
                index
            })
            .collect()
    };
    let posted = indices(&query.history);
    let excluded = indices(&query.exclude);
    let candidates = query.candidates.as_deref().map(&mut indices);
    let n = model.n_items();
    let mut seen = ItemSet::new(n);
    let known = query.user.as_deref().and_then(|u| model.user_index(u));
    let mut history: Vec<(u32, f32)> = match known {
        Some(u) => model.user_history(u),
        None => Vec::new(),
    };
    for &(item, _) in &history {
        seen.insert(item);
    }
    let extra: Vec<u32> = logged
        .iter()
        .filter_map(|id| model.item_index(id))
        .chain(posted)
        .collect();
    let strategy = if known.is_some() {
        for item in extra {
            if !seen.contains(item) {
                seen.insert(item);
                history.push((item, 1.0));
            }
        }
        Strategy::Personalized
    } else {
        let mut ordered = Vec::new();
        for item in extra {
            if !seen.contains(item) {
                seen.insert(item);
                ordered.push((item, 1.0, ordered.len() as i64));
            }
        }
        history = recency_weights(&ordered, model.spec().recency());
        if history.is_empty() {
            Strategy::Popular
        } else {
            Strategy::History
        }
    };
    let mut exclude = if query.exclude_seen {
        seen
    } else {
        ItemSet::new(n)
    };
    for item in excluded {
        exclude.insert(item);
    }
    let filter = if query.filter.is_empty() {
        None
    } else {
        Some(
            model
                .item_filter(&query.filter)
                .map_err(|e| RecommendServeError::Invalid {
                    code: ErrorCode::InvalidFilter,
                    field: "filter".into(),
                    message: e.to_string().replace("invalid request: ", ""),
                })?,
        )
    };
    let skip = |i: u32| {
        exclude.contains(i) || filter.as_ref().is_some_and(|f| !model.filter_matches(f, i))
    };
    let internal =
        |e: crate::recommend::RecommendError| RecommendServeError::Internal(e.to_string());
    let ranked = SCRATCH.with(|scratch| {
        let scratch = &mut scratch.borrow_mut();
        if strategy == Strategy::Popular {
            if let Some(user) = &query.user {
                let segment = model
                    .recommend_for_segment(user, query.k, &skip, candidates.as_deref(), scratch)
                    .map_err(internal)?;
                if let Some(ranked) = segment {
                    return Ok(ranked);
                }
            }
        }
        model
            .recommend_user_with(
                known,
                &history,
                query.k,
                &skip,
                candidates.as_deref(),
                scratch,
            )
            .map_err(internal)
    })?;
    let items = served(model, ranked, query.include_attributes);
    let exhausted = items.len() < query.k;
    let history = query
        .include_history
        .then(|| served(model, history, query.include_attributes));
    metrics::counter!("myelin_recommendations_total", "model" => query.model.clone()).increment(1);
    Ok(RecommendOutput {
        model: query.model,
        version: loaded.card.version,
        user: query.user,
        strategy,
        items,
        unknown_items,
        exhausted,
        history,
    })
}

/// Users known at training, in training order.
#[derive(Debug)]
pub struct UsersOutput {
    pub model: String,
    pub version: u32,
    /// The first `limit` user ids.
    pub users: Vec<String>,
    /// Users known at training.
    pub total: usize,
}

/// The first `limit` users a recommender version was trained on.
pub async fn users(
    state: &AppState,
    model_name: &str,
    version: Option<u32>,
    limit: usize,
) -> Result<UsersOutput, RecommendServeError> {
    let loaded = load_recommender(state, model_name, version).await?;
    let model = recommender(&loaded);
    let total = model.n_users();
    let users = (0..total.min(limit))
        .filter_map(|u| model.user_id(u as u32).map(str::to_string))
        .collect();
    Ok(UsersOutput {
        model: model_name.to_string(),
        version: loaded.card.version,
        users,
        total,
    })
}

/// The `k` items most similar to `item`.
pub async fn similar(
    state: &AppState,
    model_name: &str,
    item: &str,
    k: usize,
    version: Option<u32>,
) -> Result<SimilarOutput, RecommendServeError> {
    let loaded = load_recommender(state, model_name, version).await?;
    let model = recommender(&loaded);
    check_k(k, model, state)?;
    let index = model
        .item_index(item)
        .ok_or_else(|| RecommendServeError::ItemNotFound {
            model: model_name.to_string(),
            item: item.to_string(),
        })?;
    let ranked = model
        .similar(index, k)
        .map_err(|e| RecommendServeError::Internal(e.to_string()))?;
    Ok(SimilarOutput {
        model: model_name.to_string(),
        version: loaded.card.version,
        item: item.to_string(),
        items: served(model, ranked, false),
    })
}

/// One interaction as posted.
#[derive(Clone, Debug)]
pub struct NewInteraction {
    pub user: String,
    pub item: String,
    pub value: Option<f32>,
    pub timestamp: Option<i64>,
}

/// Logs interactions for a recommender; returns how many were stored and the
/// distinct item ids the serving version does not know (logged all the same: a
/// retrain with the log learns them).
pub async fn log_interactions(
    state: &AppState,
    model: &str,
    interactions: Vec<NewInteraction>,
) -> Result<(usize, Vec<String>), RecommendServeError> {
    let limit = state.settings.limits.max_instances;
    if interactions.is_empty() {
        return Err(RecommendServeError::Invalid {
            code: ErrorCode::NoInteractions,
            field: "interactions".into(),
            message: "`interactions` is empty".into(),
        });
    }
    if interactions.len() > limit {
        return Err(RecommendServeError::TooMany {
            found: interactions.len(),
            limit,
        });
    }
    let now = chrono::Utc::now().timestamp();
    let mut events = Vec::with_capacity(interactions.len());
    for (i, it) in interactions.into_iter().enumerate() {
        let bad = |field: &str, message: String| RecommendServeError::Invalid {
            code: ErrorCode::InvalidValue,
            field: format!("interactions[{i}].{field}"),
            message: format!("`interactions[{i}].{field}`: {message}"),
        };
        let user = it.user.trim().to_string();
        let item = it.item.trim().to_string();
        if user.is_empty() {
            return Err(bad("user", "must not be empty".into()));
        }
        if item.is_empty() {
            return Err(bad("item", "must not be empty".into()));
        }
        if let Some(v) = it.value {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad("value", format!("{v} must be finite and >= 0")));
            }
        }
        events.push(LoggedInteraction {
            user,
            item,
            value: it.value,
            timestamp: it.timestamp.unwrap_or(now),
        });
    }
    let loaded = load_recommender(state, model, None).await?;
    let known = recommender(&loaded);
    let mut unknown_items: Vec<String> = Vec::new();
    for event in &events {
        if known.item_index(&event.item).is_none() && !unknown_items.contains(&event.item) {
            unknown_items.push(event.item.clone());
        }
    }
    let count = events.len();
    let logs = state.interactions.clone();
    let name = model.to_string();
    tokio::task::spawn_blocking(move || logs.append(&name, &events))
        .await
        .map_err(|e| RecommendServeError::Internal(e.to_string()))?
        .map_err(RecommendServeError::Log)?;
    metrics::counter!("myelin_interactions_logged_total", "model" => model.to_string())
        .increment(count as u64);
    Ok((count, unknown_items))
}
