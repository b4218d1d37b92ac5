//! The on-disk model artifact: `weights.safetensors` (tensors by layer name,
//! through [`crate::codec`]) and `model.json` (the [`ModelCard`]: everything else).

use std::path::Path;

use super::card::{ModelCard, ModelSpec, FORMAT_VERSION};
use crate::codec::{self, Tensor};
use crate::nn::{Mlp, NamedTensor};
use crate::recommend::Recommender;
use crate::tabular::TabularModel;

pub use crate::codec::WEIGHTS_FILE;

/// File holding the model card.
pub const CARD_FILE: &str = "model.json";

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
    let tensors: Vec<Tensor> = mlp
        .tensors()
        .into_iter()
        .map(|t| Tensor::f32(t.name, t.shape, t.data))
        .collect();
    codec::encode(&tensors, "myelin").map_err(|e| artifact_err(Path::new(WEIGHTS_FILE), e))
}

/// Reads tensors from safetensors bytes; every tensor must be F32.
pub fn tensors_from_bytes(bytes: &[u8], file: &Path) -> Result<Vec<NamedTensor>, ArtifactError> {
    let tensors = codec::decode_f32(bytes).map_err(|e| artifact_err(file, e))?;
    Ok(tensors
        .into_iter()
        .map(|t| NamedTensor {
            name: t.name,
            shape: t.shape,
            data: t.values,
        })
        .collect())
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
