//! `model.json`: the model card, the whole description of one version beside
//! its weights, and the one way each kind of model gets one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{Fingerprint, Schema, Task};
use crate::nn::{Architecture, EpochReport};
#[cfg(doc)]
use crate::recommend::FitReport;
use crate::recommend::{HoldoutMetrics, Recommender, RecommenderParams, RecommenderSpec};
use crate::tabular::{InitFrom, TabularModel, TabularSpec, TrainedModel, TrainingTiming};

/// Version of the `model.json` layout.
pub const FORMAT_VERSION: u32 = 1;

/// What a model is, with the kind-specific parts needed to serve it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum ModelSpec {
    /// A tabular classifier or regressor on raw records.
    Tabular(TabularSpec),
    /// Stored nested under `recommender`: its fields (`format`, `params`, `metrics`)
    /// would otherwise collide with the card's.
    #[serde(with = "nested_recommender")]
    Recommender(Box<RecommenderSpec>),
}

mod nested_recommender {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::recommend::RecommenderSpec;

    #[derive(Serialize)]
    struct Out<'a> {
        recommender: &'a RecommenderSpec,
    }

    #[derive(Deserialize)]
    struct In {
        recommender: RecommenderSpec,
    }

    pub fn serialize<S: Serializer>(spec: &RecommenderSpec, s: S) -> Result<S::Ok, S::Error> {
        Out { recommender: spec }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<RecommenderSpec>, D::Error> {
        In::deserialize(d).map(|i| Box::new(i.recommender))
    }
}

impl ModelSpec {
    /// The kind as a string: `tabular`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Tabular(_) => "tabular",
            ModelSpec::Recommender(_) => "recommender",
        }
    }
}

/// `model.json`: the whole description of one model version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelCard {
    pub format: u32,
    pub name: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    /// `classification`, `regression` or `recommendation`.
    pub task: String,
    #[serde(flatten)]
    pub spec: ModelSpec,
    /// Network layout (tabular models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    /// Training parameters of the model's kind.
    pub params: serde_json::Value,
    /// Metrics on the validation split (tabular) or the holdout users (recommender).
    pub metrics: serde_json::Value,
    #[serde(default)]
    pub history: Vec<EpochReport>,
    #[serde(default)]
    pub best_epoch: usize,
    /// Input schema (tabular models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    pub fingerprint: Fingerprint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TrainingTiming>,
    /// The job that trained it, when trained by the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Warm start (tabular): the model and version training continued from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<InitFrom>,
}

impl ModelCard {
    /// The card of a tabular model without a record of its training: null
    /// `params` and `metrics`, no history, schema or timing. [`ModelCard::tabular`]
    /// completes it; fixtures use it as is.
    pub fn tabular_model(name: &str, model: &TabularModel, fingerprint: Fingerprint) -> ModelCard {
        ModelCard {
            format: FORMAT_VERSION,
            name: name.to_string(),
            version: 0,
            created_at: Utc::now(),
            task: match model.encoder.task() {
                Task::Classification => "classification".into(),
                Task::Regression => "regression".into(),
            },
            spec: ModelSpec::Tabular(model.spec()),
            architecture: Some(model.mlp.architecture()),
            params: Value::Null,
            metrics: Value::Null,
            history: Vec::new(),
            best_epoch: 0,
            schema: None,
            fingerprint,
            timing: None,
            job_id: None,
            init_from: None,
        }
    }

    /// The card of a freshly trained tabular model. Its `params` are those the
    /// network was trained with (the request's, completed by sizing from the data).
    pub fn tabular(
        name: &str,
        trained: &TrainedModel,
        fingerprint: Fingerprint,
        job_id: Option<String>,
    ) -> ModelCard {
        ModelCard {
            params: serde_json::to_value(&trained.params).unwrap_or_default(),
            metrics: serde_json::to_value(&trained.metrics).unwrap_or_default(),
            history: trained.history.clone(),
            best_epoch: trained.best_epoch,
            schema: Some(trained.schema.clone()),
            timing: Some(trained.timing.clone()),
            job_id,
            init_from: trained.init_from.clone(),
            ..ModelCard::tabular_model(name, &trained.model, fingerprint)
        }
    }

    /// The card of a freshly trained recommender: `model` is the fitted model as
    /// it is stored (with its attributes), `params` the parameters it was trained
    /// with, `metrics` and `history` those of its fit ([`FitReport`]).
    pub fn recommender(
        name: &str,
        model: &Recommender,
        params: &RecommenderParams,
        metrics: Option<&HoldoutMetrics>,
        history: &[EpochReport],
        fingerprint: Fingerprint,
        job_id: Option<String>,
    ) -> ModelCard {
        ModelCard {
            format: FORMAT_VERSION,
            name: name.to_string(),
            version: 0,
            created_at: Utc::now(),
            task: "recommendation".into(),
            spec: ModelSpec::Recommender(Box::new(model.spec().clone())),
            architecture: None,
            params: serde_json::to_value(params).unwrap_or(Value::Null),
            metrics: serde_json::to_value(metrics).unwrap_or(Value::Null),
            history: history.to_vec(),
            best_epoch: model.spec().epochs_trained,
            schema: None,
            fingerprint,
            timing: None,
            job_id,
            init_from: None,
        }
    }
}
