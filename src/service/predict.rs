//! The prediction use case: resolve the version, load it (once), predict on
//! raw records — small batches on the request task, large ones off it.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{AppState, ErrorCode};
use crate::registry::{LoadedModel, RegistryError, ServingModel};
use crate::tabular::{
    CompressedNet, InstanceError, Precision, Prediction, PredictionBatch, TabularModel,
};

/// Predictions, one per instance, in order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PredictResponse, example = json!({"model": "churn", "version": 3, "predictions": [{"label": "no", "probabilities": {"no": 0.91, "yes": 0.09}}], "ignored_fields": []}))]
pub struct PredictOutput {
    pub model: String,
    /// The version that answered.
    pub version: u32,
    pub predictions: Vec<Prediction>,
    /// Instance fields the model does not use.
    pub ignored_fields: Vec<String>,
    /// The weights that answered, when not `f32` or when the request named a precision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
}

/// Why a prediction request failed.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("`instances` has {found} items; the limit `limits.max_instances` is {limit}")]
    TooManyInstances { found: usize, limit: usize },
    #[error("`instances` is empty")]
    NoInstances,
    #[error("give either `version` or `alias`, not both")]
    VersionAndAlias,
    #[error("model `{model}` is a {kind} model; {hint}")]
    WrongModelKind {
        model: String,
        kind: &'static str,
        hint: &'static str,
    },
    #[error("{message}")]
    InvalidRequest {
        code: ErrorCode,
        field: &'static str,
        message: String,
    },
    #[error("prediction task failed: {0}")]
    Internal(String),
}

/// Which version to serve.
#[derive(Debug, Default, Clone)]
pub struct VersionSelector {
    pub version: Option<u32>,
    pub alias: Option<String>,
}

/// Resolves and loads the version to serve; loading runs on the blocking pool.
pub async fn resolve_and_load(
    state: &AppState,
    model: &str,
    selector: &VersionSelector,
) -> Result<Arc<LoadedModel>, PredictError> {
    let version = match (&selector.version, &selector.alias) {
        (Some(_), Some(_)) => return Err(PredictError::VersionAndAlias),
        (_, Some(alias)) => state.registry.resolve_alias(model, alias)?,
        (version, None) => state.registry.resolve(model, *version)?,
    };
    if let Some(loaded) = state.registry.cached(model, version) {
        return Ok(loaded);
    }
    let registry = state.registry.clone();
    let name = model.to_string();
    let loaded = tokio::task::spawn_blocking(move || registry.load(&name, version))
        .await
        .map_err(|e| PredictError::Internal(e.to_string()))??;
    metrics::gauge!("myelin_loaded_models").set(state.registry.loaded_count() as f64);
    Ok(loaded)
}

/// Predicts `instances` with the resolved version of `model`.
pub async fn predict(
    state: &AppState,
    model: &str,
    selector: &VersionSelector,
    instances: Vec<Map<String, Value>>,
) -> Result<PredictOutput, PredictError> {
    predict_at(state, model, selector, instances, None).await
}

/// [`predict`] with the weights' precision named (`None`: the configured one).
pub async fn predict_at(
    state: &AppState,
    model: &str,
    selector: &VersionSelector,
    instances: Vec<Map<String, Value>>,
    precision: Option<Precision>,
) -> Result<PredictOutput, PredictError> {
    check_count(state, instances.len())?;
    let loaded = resolve_and_load(state, model, selector).await?;
    predict_loaded_at(state, loaded, instances, precision).await
}

/// Records to predict on: JSON records (`/predict`) or anything else the
/// tabular model can read field by field (inference protocol tensors).
pub trait Instances: Send + Sync + 'static {
    /// Number of records.
    fn count(&self) -> usize;
    /// Predicts every record with the model's own network, or with `net` (a
    /// compressed copy) when given; the first unreadable record fails the batch.
    fn predict(
        &self,
        model: &TabularModel,
        net: Option<&CompressedNet>,
    ) -> Result<PredictionBatch, InstanceError>;
}

impl Instances for Vec<Map<String, Value>> {
    fn count(&self) -> usize {
        self.len()
    }

    fn predict(
        &self,
        model: &TabularModel,
        net: Option<&CompressedNet>,
    ) -> Result<PredictionBatch, InstanceError> {
        match net {
            None => model.predict_records(self),
            Some(net) => model.predict_records_with(self, net),
        }
    }
}

/// Predicts `instances` with a version already resolved and loaded by
/// [`resolve_and_load`]; the same limits as [`predict`] apply.
pub async fn predict_loaded<I: Instances>(
    state: &AppState,
    loaded: Arc<LoadedModel>,
    instances: I,
) -> Result<PredictOutput, PredictError> {
    predict_loaded_at(state, loaded, instances, None).await
}

/// [`predict_loaded`] with the weights' precision named (`None`: the configured one).
pub async fn predict_loaded_at<I: Instances>(
    state: &AppState,
    loaded: Arc<LoadedModel>,
    instances: I,
    precision: Option<Precision>,
) -> Result<PredictOutput, PredictError> {
    check_count(state, instances.count())?;
    let version = loaded.card.version;
    let serving = &state.settings.serving;
    let asked = precision;
    let precision = precision
        .or_else(|| serving.models.get(&loaded.card.name).copied())
        .unwrap_or(serving.precision);
    let max_drop = serving.max_accuracy_drop;
    let (batch, precision) = if instances.count() <= state.settings.limits.inline_predict_instances
    {
        run(&loaded, &instances, precision, max_drop)?
    } else {
        let loaded = loaded.clone();
        tokio::task::spawn_blocking(move || run(&loaded, &instances, precision, max_drop))
            .await
            .map_err(|e| PredictError::Internal(e.to_string()))??
    };
    metrics::counter!(
        "myelin_predictions_total",
        "model" => loaded.card.name.clone(),
        "version" => version.to_string()
    )
    .increment(batch.predictions.len() as u64);
    Ok(PredictOutput {
        model: loaded.card.name.clone(),
        version,
        predictions: batch.predictions,
        ignored_fields: batch.ignored_fields,
        precision: (asked.is_some() || precision != Precision::F32).then_some(precision),
    })
}

pub(crate) fn check_count(state: &AppState, found: usize) -> Result<(), PredictError> {
    let limit = state.settings.limits.max_instances;
    if found == 0 {
        return Err(PredictError::NoInstances);
    }
    if found > limit {
        return Err(PredictError::TooManyInstances { found, limit });
    }
    Ok(())
}

fn run<I: Instances>(
    loaded: &LoadedModel,
    instances: &I,
    precision: Precision,
    max_drop: f64,
) -> Result<(PredictionBatch, Precision), PredictError> {
    match &loaded.model {
        ServingModel::Tabular(model) => match model.serving_copy(precision, max_drop) {
            Ok(Some(net)) => Ok((instances.predict(model, Some(net))?, precision)),
            Ok(None) | Err(_) => Ok((instances.predict(model, None)?, Precision::F32)),
        },
        ServingModel::Recommender(_) => Err(PredictError::WrongModelKind {
            model: loaded.card.name.clone(),
            kind: "recommender",
            hint: "use /recommend instead of /predict",
        }),
    }
}
