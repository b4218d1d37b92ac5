//! Why a training request was refused before it was queued.

use crate::data::DataError;
use crate::jobs::SubmitError;
use crate::nn::{ParamError, TrainError};
use crate::recommend::RecommendError;
use crate::registry::RegistryError;
use crate::service::ErrorCode;
use crate::storage::StoreError;
use crate::tabular::TabularError;

/// Why a training request was refused before it was queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitTrainError {
    /// A field that applies only to recommendation jobs was set on another task.
    #[error("`{field}` applies only to `\"task\": \"recommendation\"`")]
    OnlyForRecommendation { field: &'static str },
    /// A field that applies only to classification and regression was set on a
    /// recommendation job.
    #[error("`{field}` applies only to classification and regression")]
    OnlyForTabular { field: &'static str },
    /// `init_from` names a model or version that cannot be had (answered as the
    /// registry error: 404 for an unknown model or version).
    #[error("`init_from`: {0}")]
    InitFrom(RegistryError),
    /// `init_from` names a model of another kind.
    #[error("{message}")]
    InitFromKind { code: ErrorCode, message: String },
    /// A classification or regression request without `target`.
    #[error("`target` is required for classification and regression")]
    MissingTarget,
    /// An attribute table without exactly one of `data`, `csv` and `dataset`.
    #[error("`{field}`: give the rows as exactly one of `data`, `csv` or `dataset`")]
    NoAttributeSource { field: &'static str },
    /// A request without exactly one of `data`, `csv` and `dataset`.
    #[error("give the data as exactly one of `data`, `csv` or `dataset`")]
    NoDataSource,
    /// `params` do not read as the task's parameters; `field` is the dotted path
    /// of the offending one (`params.epochs`, or `params` itself).
    #[error("`{field}`: {reason}")]
    InvalidParams { field: String, reason: String },
    /// A parameter out of its range; the error names it (`validation.folds`).
    #[error(transparent)]
    Parameter(ParamError),
    /// A refusal no one request field is named for: an invalid model name,
    /// attribute tables on a tabular job, recommender parameters over their
    /// limits, data without rows or without the interaction columns.
    #[error("{message}")]
    Invalid { code: ErrorCode, message: String },
    /// An attribute table's data was refused; the detail names the table
    /// (`field`), as it always has, rather than a `field` member.
    #[error("`{field}`: {message}")]
    InAttributes {
        field: &'static str,
        code: ErrorCode,
        message: String,
    },
    #[error("dataset `{0}` does not exist")]
    DatasetNotFound(String),
    /// The job input could not be written to or read from the store.
    #[error("could not store the job input: {0}")]
    Store(StoreError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The data breaks a rule or a limit.
    #[error(transparent)]
    Data(DataError),
    /// The data breaks a rule of the tabular model other than a data error's
    /// (too few labelled rows, parameters over the limits); its `code()` names it.
    #[error(transparent)]
    Tabular(TabularError),
}

impl SubmitTrainError {
    /// The request field a refusal names in its `field` member.
    pub fn field(&self) -> Option<&str> {
        match self {
            SubmitTrainError::OnlyForRecommendation { field }
            | SubmitTrainError::OnlyForTabular { field }
            | SubmitTrainError::NoAttributeSource { field } => Some(field),
            SubmitTrainError::InitFrom(_) | SubmitTrainError::InitFromKind { .. } => {
                Some("init_from")
            }
            SubmitTrainError::Tabular(TabularError::Mismatch { field, .. }) => Some(field),
            SubmitTrainError::Tabular(TabularError::Train(TrainError::Params(
                ParamError::Invalid { name, .. },
            ))) => Some(name),
            SubmitTrainError::MissingTarget => Some("target"),
            SubmitTrainError::InvalidParams { field, .. } => Some(field),
            SubmitTrainError::Parameter(ParamError::Invalid { name, .. }) => Some(name),
            _ => None,
        }
    }
}

pub(super) fn invalid(code: ErrorCode, message: impl Into<String>) -> SubmitTrainError {
    SubmitTrainError::Invalid {
        code,
        message: message.into(),
    }
}

/// Names the attribute table (`field`) a refusal of its data is about.
pub(super) fn in_attributes(field: &'static str, e: SubmitTrainError) -> SubmitTrainError {
    match e {
        SubmitTrainError::Invalid { code, message } => SubmitTrainError::InAttributes {
            field,
            code,
            message,
        },
        other => other,
    }
}

impl From<TabularError> for SubmitTrainError {
    fn from(e: TabularError) -> Self {
        match e {
            TabularError::Data(d) => SubmitTrainError::Data(d),
            other => SubmitTrainError::Tabular(other),
        }
    }
}

impl From<DataError> for SubmitTrainError {
    fn from(e: DataError) -> Self {
        SubmitTrainError::Data(e)
    }
}

/// A recommendation engine refusal with its stable code.
pub(super) fn recommend_error(e: RecommendError) -> SubmitTrainError {
    invalid(recommend_code(&e), e.to_string())
}

/// The stable code of a recommendation engine error.
pub(super) fn recommend_code(e: &RecommendError) -> ErrorCode {
    match e {
        RecommendError::Params(_) => ErrorCode::InvalidParameter,
        RecommendError::MissingColumn { .. } => ErrorCode::UnknownColumn,
        RecommendError::BadCell { .. } => ErrorCode::InvalidValue,
        RecommendError::Data(_) => ErrorCode::InvalidData,
        RecommendError::Request(_) => ErrorCode::InvalidRequest,
        RecommendError::Cancelled => ErrorCode::Cancelled,
        RecommendError::NonFinite { .. } => ErrorCode::TrainingDiverged,
        RecommendError::Artifact(_) => ErrorCode::StoreWriteFailed,
    }
}
