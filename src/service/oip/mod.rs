//! The Open Inference Protocol (V2, as spoken by Triton, KServe and MLServer),
//! independent of transport: server and model readiness, metadata, and
//! inference through the same path as `/predict`. The REST routes (`api::oip`)
//! and the gRPC service (`grpc`) translate their wire formats to these types.

pub mod records;
pub mod tensor;

use std::sync::Arc;

use super::predict::{self, PredictError, VersionSelector};
use super::AppState;
use crate::data::{ColumnKind, Task};
use crate::registry::{LoadedModel, RegistryError, ServingModel};
use crate::tabular::{Prediction, TabularModel};
use records::MATRIX_INPUT;
pub use tensor::{DataType, InputTensor, OutputTensor, TensorData, TensorMetadata};

/// The `platform` of every model in metadata.
pub const PLATFORM: &str = "myelin";

/// Protocol extensions the server supports.
pub const EXTENSIONS: [&str; 1] = ["binary_tensor_data"];

/// The server's name and version.
pub const SERVER_NAME: &str = "myelin";

/// Why a protocol request failed; transports map `kind` to a status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct OipError {
    pub kind: OipErrorKind,
    /// Stable snake_case code, as in the REST API's problems.
    pub code: &'static str,
    /// What is wrong, naming the tensor and element.
    pub message: String,
}

/// The class of an [`OipError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OipErrorKind {
    /// The request is wrong (HTTP 400, gRPC INVALID_ARGUMENT).
    Invalid,
    /// No such model, version or alias (HTTP 404, gRPC NOT_FOUND).
    NotFound,
    /// Over a configured limit (HTTP 413, gRPC RESOURCE_EXHAUSTED).
    TooLarge,
    /// The model store cannot be reached (HTTP 503, gRPC UNAVAILABLE).
    Unavailable,
    /// A failure on the server (HTTP 500, gRPC INTERNAL); logged.
    Internal,
}

impl OipError {
    /// An invalid request.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> OipError {
        OipError {
            kind: OipErrorKind::Invalid,
            code,
            message: message.into(),
        }
    }

    fn not_found(code: &'static str, message: impl Into<String>) -> OipError {
        OipError {
            kind: OipErrorKind::NotFound,
            code,
            message: message.into(),
        }
    }

    fn unavailable(message: impl Into<String>) -> OipError {
        OipError {
            kind: OipErrorKind::Unavailable,
            code: "store_unavailable",
            message: message.into(),
        }
    }

    fn internal(message: impl std::fmt::Display) -> OipError {
        tracing::error!(error = %message, "inference protocol request failed");
        OipError {
            kind: OipErrorKind::Internal,
            code: "internal_error",
            message: "an internal error occurred; see the server log".into(),
        }
    }
}

impl From<RegistryError> for OipError {
    fn from(error: RegistryError) -> OipError {
        let message = error.to_string();
        match error {
            RegistryError::InvalidName(_) | RegistryError::ModelNotFound(_) => {
                OipError::not_found("model_not_found", message)
            }
            RegistryError::VersionNotFound { .. } => {
                OipError::not_found("version_not_found", message)
            }
            RegistryError::AliasNotFound { .. } => OipError::not_found("alias_not_found", message),
            RegistryError::VersionAliased { .. }
            | RegistryError::Corrupt(_)
            | RegistryError::Io { .. } => OipError::internal(message),
            RegistryError::Unavailable(_) => OipError::unavailable(message),
        }
    }
}

impl From<PredictError> for OipError {
    fn from(error: PredictError) -> OipError {
        let message = error.to_string();
        match error {
            PredictError::Registry(e) => e.into(),
            PredictError::TooManyInstances { found, limit } => OipError {
                kind: OipErrorKind::TooLarge,
                code: "too_many_instances",
                message: format!(
                    "the input tensors have {found} rows; the limit is {limit} (limits.max_instances)"
                ),
            },
            PredictError::NoInstances => {
                OipError::invalid("no_instances", "the input tensors have no rows")
            }
            PredictError::VersionAndAlias => OipError::invalid("version_and_alias", message),
            PredictError::WrongModelKind { model, kind, .. } => OipError::invalid(
                "wrong_model_kind",
                format!(
                    "model `{model}` is a {kind} model; use /recommend, not the inference protocol"
                ),
            ),
            // Rewritten with the tensor's name by `infer`.
            PredictError::Instance(e) => OipError::invalid("invalid_instance", e.to_string()),
            PredictError::InvalidRequest { code, .. } => OipError::invalid(code.as_str(), message),
            PredictError::Internal(e) => OipError::internal(e),
        }
    }
}

/// The version a protocol request names: a number is a version, anything
/// else an alias; empty or absent lets the registry choose (`production`,
/// else the latest).
pub fn selector(version: Option<&str>) -> VersionSelector {
    match version.map(str::trim).filter(|v| !v.is_empty()) {
        None => VersionSelector::default(),
        Some(v) => match v.parse::<u32>() {
            Ok(number) => VersionSelector {
                version: Some(number),
                alias: None,
            },
            Err(_) => VersionSelector {
                version: None,
                alias: Some(v.to_string()),
            },
        },
    }
}

/// Whether the server is ready: the store is writable and every training
/// worker is alive.
pub async fn server_ready(state: &AppState) -> bool {
    let registry = state.registry.clone();
    let writable = tokio::task::spawn_blocking(move || registry.check_writable().is_ok())
        .await
        .unwrap_or(false);
    writable && state.jobs.healthy()
}

/// Loads the version to serve; errors when it does not exist or cannot load.
pub async fn load(
    state: &AppState,
    model: &str,
    version: Option<&str>,
) -> Result<Arc<LoadedModel>, OipError> {
    Ok(predict::resolve_and_load(state, model, &selector(version)).await?)
}

/// A model's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMetadata {
    pub name: String,
    /// Every stored version, ascending.
    pub versions: Vec<String>,
    pub platform: &'static str,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// Metadata of the version `version` selects: one input per raw column
/// (`FP64` numbers, `BOOL`, `BYTES` for categories, text and base64 images;
/// shape `[-1]`), plus `input` `[-1, F]` `FP32` for all-numeric models; the
/// outputs `label` and `probabilities` (classification) or `value`
/// (regression). Recommenders have neither.
pub async fn model_metadata(
    state: &AppState,
    model: &str,
    version: Option<&str>,
) -> Result<ModelMetadata, OipError> {
    let loaded = load(state, model, version).await?;
    let registry = state.registry.clone();
    let name = model.to_string();
    let versions = tokio::task::spawn_blocking(move || registry.versions(&name))
        .await
        .map_err(OipError::internal)??;
    let (inputs, outputs) = match &loaded.model {
        ServingModel::Tabular(tabular) => (input_metadata(tabular), output_metadata(tabular)),
        ServingModel::Recommender(_) => (Vec::new(), Vec::new()),
    };
    Ok(ModelMetadata {
        name: model.to_string(),
        versions: versions.iter().map(u32::to_string).collect(),
        platform: PLATFORM,
        inputs,
        outputs,
    })
}

fn meta(name: &str, datatype: DataType, shape: Vec<i64>) -> TensorMetadata {
    TensorMetadata {
        name: name.to_string(),
        datatype,
        shape,
        classes: None,
    }
}

fn input_metadata(model: &TabularModel) -> Vec<TensorMetadata> {
    let columns = model.pipeline.input_columns();
    let mut inputs: Vec<TensorMetadata> = columns
        .iter()
        .map(|(name, kind)| {
            let datatype = match kind {
                ColumnKind::Numeric => DataType::Fp64,
                ColumnKind::Boolean => DataType::Bool,
                ColumnKind::Categorical
                | ColumnKind::Text
                | ColumnKind::Image
                | ColumnKind::Audio
                | ColumnKind::Identifier => DataType::Bytes,
            };
            meta(name, datatype, vec![-1])
        })
        .collect();
    if records::takes_matrix(&columns) {
        inputs.push(meta(
            MATRIX_INPUT,
            DataType::Fp32,
            vec![-1, columns.len() as i64],
        ));
    }
    inputs
}

/// Output names of classifiers and regressors.
pub const LABEL: &str = "label";
pub const PROBABILITIES: &str = "probabilities";
pub const VALUE: &str = "value";

fn classes_parameter(model: &TabularModel) -> String {
    serde_json::to_string(model.encoder.labels()).unwrap_or_default()
}

fn output_metadata(model: &TabularModel) -> Vec<TensorMetadata> {
    match model.encoder.task() {
        Task::Classification => {
            let classes = model.encoder.labels().len() as i64;
            vec![
                meta(LABEL, DataType::Bytes, vec![-1]),
                TensorMetadata {
                    classes: Some(classes_parameter(model)),
                    ..meta(PROBABILITIES, DataType::Fp32, vec![-1, classes])
                },
            ]
        }
        Task::Regression => vec![meta(VALUE, DataType::Fp32, vec![-1])],
    }
}

/// An inference request.
#[derive(Debug, Clone, Default)]
pub struct InferRequest {
    pub model: String,
    /// See [`selector`].
    pub version: Option<String>,
    /// Echoed in the answer.
    pub id: Option<String>,
    pub inputs: Vec<InputTensor>,
    /// Outputs to return, by name; `None` for all.
    pub outputs: Option<Vec<String>>,
}

/// An inference answer.
#[derive(Debug, Clone)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    pub id: Option<String>,
    pub outputs: Vec<OutputTensor>,
}

/// Runs inference: the input tensors become raw records, which go through
/// the same prediction path as `/predict`, so the answers are identical.
pub async fn infer(state: &AppState, request: InferRequest) -> Result<InferResponse, OipError> {
    let loaded = load(state, &request.model, request.version.as_deref()).await?;
    let tabular = match &loaded.model {
        ServingModel::Tabular(tabular) => tabular,
        ServingModel::Recommender(_) => {
            return Err(PredictError::WrongModelKind {
                model: request.model.clone(),
                kind: "recommender",
                hint: "",
            }
            .into())
        }
    };
    let available: &[&str] = match tabular.encoder.task() {
        Task::Classification => &[LABEL, PROBABILITIES],
        Task::Regression => &[VALUE],
    };
    let wanted: Vec<&str> = match &request.outputs {
        None => available.to_vec(),
        Some(names) => {
            if let Some(name) = names.iter().find(|n| !available.contains(&n.as_str())) {
                return Err(OipError::invalid(
                    "unknown_output",
                    format!(
                        "unknown output `{name}`; the model's outputs are {}",
                        available
                            .iter()
                            .map(|o| format!("`{o}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            names.iter().map(String::as_str).collect()
        }
    };
    let columns = tabular.pipeline.input_columns();
    let records = records::to_records(&columns, request.inputs)?;
    let layout = records.layout();
    let classes = tabular.encoder.labels();
    let classes_param = wanted
        .contains(&PROBABILITIES)
        .then(|| classes_parameter(tabular));
    let out = match predict::predict_loaded(state, loaded.clone(), records).await {
        Ok(out) => out,
        Err(PredictError::Instance(e)) => {
            return Err(records::instance_error(&e, layout, &columns))
        }
        Err(e) => return Err(e.into()),
    };
    let n = out.predictions.len();
    let outputs = wanted
        .iter()
        .map(|name| output(name, &out.predictions, classes, classes_param.as_ref(), n))
        .collect();
    Ok(InferResponse {
        model_name: out.model,
        model_version: out.version.to_string(),
        id: request.id,
        outputs,
    })
}

fn output(
    name: &str,
    predictions: &[Prediction],
    classes: &[String],
    classes_param: Option<&String>,
    n: usize,
) -> OutputTensor {
    let rows = n as i64;
    match name {
        LABEL => OutputTensor {
            name: LABEL.into(),
            datatype: DataType::Bytes,
            shape: vec![rows],
            data: TensorData::Bytes(
                predictions
                    .iter()
                    .map(|p| match p {
                        Prediction::Class { label, .. } => label.as_bytes().to_vec(),
                        Prediction::Value { value } => value.to_string().into_bytes(),
                    })
                    .collect(),
            ),
            classes: None,
        },
        PROBABILITIES => {
            let mut data = Vec::with_capacity(n * classes.len());
            for p in predictions {
                if let Prediction::Class { probabilities, .. } = p {
                    data.extend(
                        classes
                            .iter()
                            .map(|c| probabilities.get(c).copied().unwrap_or(0.0)),
                    );
                }
            }
            OutputTensor {
                name: PROBABILITIES.into(),
                datatype: DataType::Fp32,
                shape: vec![rows, classes.len() as i64],
                data: TensorData::F32(data),
                classes: classes_param.cloned(),
            }
        }
        _ => OutputTensor {
            name: VALUE.into(),
            datatype: DataType::Fp32,
            shape: vec![rows],
            // `/predict`'s value rounded to the nearest f32.
            data: TensorData::F32(
                predictions
                    .iter()
                    .map(|p| match p {
                        Prediction::Value { value } => *value as f32,
                        Prediction::Class { .. } => f32::NAN,
                    })
                    .collect(),
            ),
            classes: None,
        },
    }
}
