//! The on-disk model artifact: `weights.safetensors` (tensors by layer name)
//! and `model.json` (everything else).

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::data::{Fingerprint, Schema};
use crate::nn::{Architecture, EpochReport, Mlp, NamedTensor};
use crate::recommend::{Recommender, RecommenderSpec};
use crate::tabular::{TabularModel, TabularSpec, TrainingTiming};

/// Version of the `model.json` layout.
pub const FORMAT_VERSION: u32 = 1;
/// File holding the network tensors.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// File holding the model card.
pub const CARD_FILE: &str = "model.json";

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
}

/// A model version ready to serve.
#[derive(Debug)]
pub struct LoadedModel {
    pub card: ModelCard,
    pub model: ServingModel,
}

/// The servable part of a loaded model.
#[derive(Debug)]
// One value per loaded version, always behind an `Arc`: the size difference is moot.
#[allow(clippy::large_enum_variant)]
pub enum ServingModel {
    Tabular(TabularModel),
    Recommender(Recommender),
}

impl ServingModel {
    pub fn kind(&self) -> &'static str {
        match self {
            ServingModel::Tabular(_) => "tabular",
            ServingModel::Recommender(_) => "recommender",
        }
    }
}

/// Errors reading an artifact; the message names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ArtifactError {
    pub file: String,
    pub reason: String,
}

fn artifact_err(file: &Path, reason: impl ToString) -> ArtifactError {
    ArtifactError {
        file: file.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Serializes the network tensors to safetensors bytes (little-endian f32).
pub fn weights_bytes(mlp: &Mlp) -> Result<Vec<u8>, ArtifactError> {
    let tensors = mlp.tensors();
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for (tensor, bytes) in tensors.iter().zip(&raw) {
        let view = TensorView::new(Dtype::F32, tensor.shape.clone(), bytes)
            .map_err(|e| artifact_err(Path::new(WEIGHTS_FILE), e))?;
        views.push((tensor.name.clone(), view));
    }
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "myelin".to_string());
    safetensors::serialize(views, Some(meta)).map_err(|e| artifact_err(Path::new(WEIGHTS_FILE), e))
}

/// Reads tensors from safetensors bytes; every tensor must be F32.
pub fn tensors_from_bytes(bytes: &[u8], file: &Path) -> Result<Vec<NamedTensor>, ArtifactError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| artifact_err(file, e))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(artifact_err(
                file,
                format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    Ok(out)
}

/// Loads a version directory: parses `model.json`, reads the weights and
/// checks that they fit the architecture and the pipeline.
pub fn load_dir(dir: &Path) -> Result<LoadedModel, ArtifactError> {
    let card_path = dir.join(CARD_FILE);
    let card_bytes =
        crate::storage::fsops::read(&card_path).map_err(|e| artifact_err(&card_path, e))?;
    let card: ModelCard =
        serde_json::from_slice(&card_bytes).map_err(|e| artifact_err(&card_path, e))?;
    if card.format != FORMAT_VERSION {
        return Err(artifact_err(
            &card_path,
            format!(
                "format {} is not supported (expected {FORMAT_VERSION})",
                card.format
            ),
        ));
    }
    let model = match &card.spec {
        ModelSpec::Tabular(spec) => {
            let architecture = card
                .architecture
                .as_ref()
                .ok_or_else(|| artifact_err(&card_path, "`architecture` is missing"))?;
            let weights_path = dir.join(WEIGHTS_FILE);
            let weights = crate::storage::fsops::read(&weights_path)
                .map_err(|e| artifact_err(&weights_path, e))?;
            let tensors = tensors_from_bytes(&weights, &weights_path)?;
            let mlp = Mlp::from_tensors(architecture, &tensors)
                .map_err(|e| artifact_err(&weights_path, e))?;
            ServingModel::Tabular(
                TabularModel::from_parts(spec.clone(), mlp)
                    .map_err(|e| artifact_err(&card_path, e))?,
            )
        }
        ModelSpec::Recommender(spec) => ServingModel::Recommender(
            Recommender::load(spec, dir).map_err(|e| artifact_err(dir, e))?,
        ),
    };
    Ok(LoadedModel { card, model })
}

/// Reads only `model.json` of a version directory.
pub fn read_card(dir: &Path) -> Result<ModelCard, ArtifactError> {
    let card_path = dir.join(CARD_FILE);
    let bytes = crate::storage::fsops::read(&card_path).map_err(|e| artifact_err(&card_path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| artifact_err(&card_path, e))
}
