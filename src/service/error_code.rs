//! The stable snake_case codes of the refusals and failures the service
//! reports: the `code` of a problem answer, and of a failed job's `error`.
//! Codes of the layers below (a data error's, a tabular error's) come from
//! their own `code()`, and the `/v2` routes answer the inference protocol's
//! own codes (`service/oip`).

/// Declares [`ErrorCode`] and its strings in one table.
macro_rules! error_codes {
    ($($variant:ident = $code:literal,)*) => {
        /// A stable error code; [`ErrorCode::as_str`] is what clients see.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients see it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    // Malformed requests and their shape.
    MalformedRequest = "malformed_request",
    UriTooLong = "uri_too_long",
    HeadersTooLarge = "headers_too_large",
    MalformedJson = "malformed_json",
    InvalidBody = "invalid_body",
    InvalidQuery = "invalid_query",
    InvalidPath = "invalid_path",
    BadRequest = "bad_request",
    UnsupportedMediaType = "unsupported_media_type",
    BodyTooLarge = "body_too_large",
    RequestTimeout = "request_timeout",
    RouteNotFound = "route_not_found",
    MethodNotAllowed = "method_not_allowed",
    Unauthorized = "unauthorized",
    Forbidden = "forbidden",
    AssetNotFound = "asset_not_found",
    // Fields and parameters.
    MissingField = "missing_field",
    WrongType = "wrong_type",
    InvalidParameter = "invalid_parameter",
    InvalidName = "invalid_name",
    InvalidRequest = "invalid_request",
    InvalidClass = "invalid_class",
    InvalidFilter = "invalid_filter",
    // Training data and datasets.
    InvalidDataSource = "invalid_data_source",
    EmptyDataset = "empty_dataset",
    DatasetNotFound = "dataset_not_found",
    DatasetInUse = "dataset_in_use",
    UnknownColumn = "unknown_column",
    InvalidValue = "invalid_value",
    InvalidData = "invalid_data",
    InvalidImage = "invalid_image",
    InvalidAudio = "invalid_audio",
    SchemaMismatch = "schema_mismatch",
    UploadInterrupted = "upload_interrupted",
    NoInteractions = "no_interactions",
    // Jobs.
    InvalidJob = "invalid_job",
    JobNotFound = "job_not_found",
    JobFinished = "job_finished",
    QueueFull = "queue_full",
    ModelBusy = "model_busy",
    ShuttingDown = "shutting_down",
    Cancelled = "cancelled",
    TrainingDiverged = "training_diverged",
    // Models, serving and export.
    ModelNotFound = "model_not_found",
    VersionNotFound = "version_not_found",
    AliasNotFound = "alias_not_found",
    VersionAliased = "version_aliased",
    VersionAndAlias = "version_and_alias",
    WrongModelKind = "wrong_model_kind",
    ItemNotFound = "item_not_found",
    NoInstances = "no_instances",
    TooManyInstances = "too_many_instances",
    TooManyInteractions = "too_many_interactions",
    UnsupportedFormat = "unsupported_format",
    UnsupportedColumn = "unsupported_column",
    UnsupportedModel = "unsupported_model",
    // The store and the process.
    StoreUnavailable = "store_unavailable",
    StoreReadFailed = "store_read_failed",
    StoreWriteFailed = "store_write_failed",
    NotReady = "not_ready",
    InternalError = "internal_error",
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

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is listed twice");
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text} is not snake_case"
            );
        }
    }
}
