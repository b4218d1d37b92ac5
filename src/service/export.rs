//! The export use case: load a stored version and translate it to ONNX.

use super::predict::{resolve_and_load, PredictError, VersionSelector};
use super::{AppState, ErrorCode};
use crate::export::{to_onnx, OnnxError};
use crate::registry::ServingModel;

/// Formats a version can be exported to.
pub const EXPORT_FORMATS: [&str; 1] = ["onnx"];

/// An exported model file.
#[derive(Debug)]
pub struct ExportedModel {
    /// Suggested file name: `<name>-v<version>.onnx`.
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// The ONNX bytes of version `version` of `model`.
pub async fn export_onnx(
    state: &AppState,
    model: &str,
    version: u32,
) -> Result<ExportedModel, PredictError> {
    let selector = VersionSelector {
        version: Some(version),
        alias: None,
    };
    let loaded = resolve_and_load(state, model, &selector).await?;
    tokio::task::spawn_blocking(move || {
        let name = &loaded.card.name;
        let version = loaded.card.version;
        match &loaded.model {
            ServingModel::Tabular(model) => to_onnx(model, name, version)
                .map(|bytes| ExportedModel {
                    file_name: format!("{name}-v{version}.onnx"),
                    bytes,
                })
                .map_err(|e| {
                    let message = e.to_string();
                    match e {
                        OnnxError::UnsupportedColumn { .. } => PredictError::InvalidRequest {
                            code: ErrorCode::UnsupportedColumn,
                            field: "model",
                            message,
                        },
                        OnnxError::UnsupportedHead(_) => PredictError::InvalidRequest {
                            code: ErrorCode::UnsupportedModel,
                            field: "model",
                            message,
                        },
                    }
                }),
            ServingModel::Recommender(_) => Err(PredictError::WrongModelKind {
                model: name.clone(),
                kind: "recommender",
                hint: "only tabular models can be exported",
            }),
        }
    })
    .await
    .map_err(|e| PredictError::Internal(e.to_string()))?
}
