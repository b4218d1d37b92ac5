//! The stable snake_case codes of the refusals and failures the service
//! reports: the `code` of a problem answer, and of a failed job's `error`.
//! Codes of the layers below (a data error's, a tabular error's) come from
//! their own `code()`.

/// A stable error code; [`ErrorCode::as_str`] is what clients see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // The request as a whole.
    MalformedJson,
    InvalidBody,
    UnsupportedMediaType,
    BodyTooLarge,
    MissingField,
    WrongType,
    InvalidParameter,
    InvalidName,
    InvalidRequest,
    // Training data.
    InvalidDataSource,
    EmptyDataset,
    DatasetNotFound,
    UnknownColumn,
    InvalidValue,
    InvalidData,
    InvalidImage,
    InvalidAudio,
    UploadInterrupted,
    // Jobs.
    InvalidJob,
    JobNotFound,
    JobFinished,
    QueueFull,
    ModelBusy,
    ShuttingDown,
    Cancelled,
    TrainingDiverged,
    // Models and serving.
    ModelNotFound,
    VersionNotFound,
    AliasNotFound,
    VersionAliased,
    VersionAndAlias,
    WrongModelKind,
    ItemNotFound,
    NoInstances,
    TooManyInstances,
    TooManyInteractions,
    // The store and the process.
    StoreUnavailable,
    StoreReadFailed,
    StoreWriteFailed,
    InternalError,
}

impl ErrorCode {
    /// The code as clients see it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::WrongType => "wrong_type",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidDataSource => "invalid_data_source",
            ErrorCode::EmptyDataset => "empty_dataset",
            ErrorCode::DatasetNotFound => "dataset_not_found",
            ErrorCode::UnknownColumn => "unknown_column",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::InvalidData => "invalid_data",
            ErrorCode::InvalidImage => "invalid_image",
            ErrorCode::InvalidAudio => "invalid_audio",
            ErrorCode::UploadInterrupted => "upload_interrupted",
            ErrorCode::InvalidJob => "invalid_job",
            ErrorCode::JobNotFound => "job_not_found",
            ErrorCode::JobFinished => "job_finished",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::ModelBusy => "model_busy",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::TrainingDiverged => "training_diverged",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::VersionNotFound => "version_not_found",
            ErrorCode::AliasNotFound => "alias_not_found",
            ErrorCode::VersionAliased => "version_aliased",
            ErrorCode::VersionAndAlias => "version_and_alias",
            ErrorCode::WrongModelKind => "wrong_model_kind",
            ErrorCode::ItemNotFound => "item_not_found",
            ErrorCode::NoInstances => "no_instances",
            ErrorCode::TooManyInstances => "too_many_instances",
            ErrorCode::TooManyInteractions => "too_many_interactions",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::StoreReadFailed => "store_read_failed",
            ErrorCode::StoreWriteFailed => "store_write_failed",
            ErrorCode::InternalError => "internal_error",
        }
    }
}

impl From<ErrorCode> for &'static str {
    fn from(code: ErrorCode) -> &'static str {
        code.as_str()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
