//! Errors of the recommendation engine.

use crate::nn::ParamError;

/// Everything that can go wrong while reading interactions, training, serving or
/// persisting a recommender. Each `Display` is a user-facing sentence naming the
/// offending column, row, parameter or value.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    /// A parameter is out of range; names the parameter and its value.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// A required column is absent from the table.
    #[error("column `{column}` is missing (columns present: {present})")]
    MissingColumn { column: String, present: String },
    /// A cell cannot be used; `row` is the 1-based data row.
    #[error("row {row}, column `{column}`: {reason}")]
    BadCell {
        row: usize,
        column: String,
        reason: String,
    },
    /// Inconsistent or unusable interactions.
    #[error("invalid interactions: {0}")]
    Data(String),
    /// A serving request is invalid (k, item index, weight).
    #[error("invalid request: {0}")]
    Request(String),
    /// Training was cancelled through the control flag.
    #[error("training cancelled")]
    Cancelled,
    /// Training diverged.
    #[error("loss or weights became non-finite in epoch {epoch}; lower learning_rate")]
    NonFinite { epoch: usize },
    /// Reading or writing a model directory failed.
    #[error("model files: {0}")]
    Artifact(String),
}

impl RecommendError {
    pub(crate) fn artifact(context: &str, err: impl std::fmt::Display) -> RecommendError {
        RecommendError::Artifact(format!("{context}: {err}"))
    }
}
