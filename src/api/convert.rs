//! Service and storage errors mapped to problem+json answers, in one place:
//! every `From<…> for ApiError` of a service error is here. (The `/v2` routes
//! answer the inference protocol's own errors, `api/oip`; handlers add the few
//! refusals of their own request shapes.)

use axum::http::StatusCode;

use super::error::ApiError;
use crate::data::RecordError;
use crate::jobs::{CancelError, SubmitError};
use crate::registry::RegistryError;
use crate::service::datasets::UploadError;
use crate::service::predict::PredictError;
use crate::service::recommend::RecommendServeError;
use crate::service::training::SubmitTrainError;
use crate::service::ErrorCode;
use crate::storage::StoreError;

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        let detail = e.to_string();
        match e {
            RegistryError::InvalidName(_) => {
                ApiError::unprocessable(ErrorCode::InvalidName, detail)
            }
            RegistryError::ModelNotFound(name) => {
                ApiError::not_found(ErrorCode::ModelNotFound, detail).with("model", name)
            }
            RegistryError::VersionNotFound { name, version } => {
                ApiError::not_found(ErrorCode::VersionNotFound, detail)
                    .with("model", name)
                    .with("version", version)
            }
            RegistryError::AliasNotFound { name, alias } => {
                ApiError::not_found(ErrorCode::AliasNotFound, detail)
                    .with("model", name)
                    .with("alias", alias)
            }
            RegistryError::VersionAliased { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::VersionAliased, detail)
            }
            RegistryError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                detail,
            ),
            RegistryError::Corrupt(_) | RegistryError::Io { .. } => ApiError::internal(detail),
        }
    }
}

/// A store failure: 503 `store_unavailable` when the store cannot be
/// reached, else 507 `store_write_failed`.
pub fn store_error(e: StoreError) -> ApiError {
    let detail = e.to_string();
    store_error_saying(e, detail)
}

/// [`store_error`] with the detail the caller gives (the context of the write).
fn store_error_saying(e: StoreError, detail: String) -> ApiError {
    match e {
        StoreError::Unavailable { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            detail,
        ),
        StoreError::NotFound { .. } | StoreError::InvalidKey { .. } | StoreError::Io { .. } => {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::StoreWriteFailed,
                detail,
            )
        }
    }
}

impl From<PredictError> for ApiError {
    fn from(e: PredictError) -> ApiError {
        let detail = e.to_string();
        match e {
            PredictError::Registry(r) => r.into(),
            PredictError::Instance(i) => {
                let (code, field) = match &i.error {
                    RecordError::MissingField { field } => (ErrorCode::MissingField, field.clone()),
                    RecordError::WrongType { field, .. } => (ErrorCode::WrongType, field.clone()),
                    RecordError::InvalidImage { field, .. } => {
                        (ErrorCode::InvalidImage, field.clone())
                    }
                    RecordError::InvalidAudio { field, .. } => {
                        (ErrorCode::InvalidAudio, field.clone())
                    }
                };
                ApiError::unprocessable(code, detail)
                    .with("instance_index", i.index)
                    .with("field", field)
            }
            PredictError::TooManyInstances { limit, .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooManyInstances,
                detail,
            )
            .with_limit("limits.max_instances", limit),
            PredictError::NoInstances => ApiError::unprocessable(ErrorCode::NoInstances, detail),
            PredictError::VersionAndAlias => {
                ApiError::unprocessable(ErrorCode::VersionAndAlias, detail)
            }
            PredictError::WrongModelKind { model, kind, .. } => {
                ApiError::unprocessable(ErrorCode::WrongModelKind, detail)
                    .with("model", model)
                    .with("kind", kind)
            }
            PredictError::InvalidRequest { code, field, .. } => {
                ApiError::unprocessable(code, detail).with("field", field)
            }
            PredictError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<RecommendServeError> for ApiError {
    fn from(e: RecommendServeError) -> ApiError {
        let detail = e.to_string();
        match e {
            RecommendServeError::Registry(r) => r.into(),
            RecommendServeError::WrongModelKind { model, kind } => {
                ApiError::unprocessable(ErrorCode::WrongModelKind, detail)
                    .with("model", model)
                    .with("kind", kind)
            }
            RecommendServeError::InvalidK { max, .. } => {
                ApiError::unprocessable(ErrorCode::InvalidParameter, detail)
                    .with("field", "k")
                    .with("max", max)
                    .with_limit("recommend.max_k", max)
            }
            RecommendServeError::ItemNotFound { model, item } => {
                ApiError::not_found(ErrorCode::ItemNotFound, detail)
                    .with("model", model)
                    .with("item", item)
            }
            RecommendServeError::TooMany { limit, .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooManyInteractions,
                detail,
            )
            .with_limit("limits.max_instances", limit),
            RecommendServeError::Invalid { code, field, .. } => {
                ApiError::unprocessable(code, detail).with("field", field)
            }
            RecommendServeError::VersionAndAlias => {
                ApiError::unprocessable(ErrorCode::VersionAndAlias, detail)
            }
            RecommendServeError::Log(e) => store_error(e),
            RecommendServeError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<SubmitTrainError> for ApiError {
    fn from(e: SubmitTrainError) -> ApiError {
        let detail = e.to_string();
        let field = e.field().map(str::to_string);
        let error = match e {
            SubmitTrainError::OnlyForRecommendation { .. }
            | SubmitTrainError::OnlyForTabular { .. }
            | SubmitTrainError::NoAttributeSource { .. } => {
                ApiError::unprocessable(ErrorCode::InvalidBody, detail)
            }
            SubmitTrainError::MissingTarget => {
                ApiError::unprocessable(ErrorCode::MissingField, detail)
            }
            SubmitTrainError::NoDataSource => {
                ApiError::unprocessable(ErrorCode::InvalidDataSource, detail)
            }
            SubmitTrainError::InvalidParams { .. } | SubmitTrainError::Parameter(_) => {
                ApiError::unprocessable(ErrorCode::InvalidParameter, detail)
            }
            SubmitTrainError::Invalid { code, .. }
            | SubmitTrainError::InAttributes { code, .. } => ApiError::unprocessable(code, detail),
            SubmitTrainError::InitFrom(e) => {
                let mut error = ApiError::from(e);
                error.detail = detail;
                error
            }
            SubmitTrainError::InitFromKind { code, .. } => ApiError::unprocessable(code, detail),
            SubmitTrainError::DatasetNotFound(id) => {
                ApiError::not_found(ErrorCode::DatasetNotFound, detail).with("dataset", id)
            }
            SubmitTrainError::Store(e) => store_error_saying(e, detail),
            SubmitTrainError::Submit(s) => s.into(),
            SubmitTrainError::Data(d) => data_error(&d, detail),
            SubmitTrainError::Tabular(t) => ApiError::unprocessable(t.code(), detail),
        };
        match field {
            Some(field) => error.with("field", field),
            None => error,
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        let detail = e.to_string();
        match e {
            SubmitError::QueueFull { capacity } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::QueueFull, detail)
                    .with_limit("jobs.queue_capacity", capacity)
            }
            SubmitError::ModelBusy { model, limit } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::ModelBusy, detail)
                    .with("model", model)
                    .with_limit("jobs.max_active_per_model", limit)
            }
            SubmitError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ShuttingDown,
                detail,
            ),
            SubmitError::InputGone(_) => ApiError::not_found(ErrorCode::DatasetNotFound, detail),
            SubmitError::Store(e) => store_error(e),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(e: CancelError) -> ApiError {
        let detail = e.to_string();
        match e {
            CancelError::NotFound(_) => ApiError::not_found(ErrorCode::JobNotFound, detail),
            CancelError::Finished { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::JobFinished, detail)
            }
            CancelError::Store(e) => store_error(e),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> ApiError {
        let detail = e.to_string();
        match e {
            UploadError::Data(d) => data_error(&d, detail),
            UploadError::TooLarge { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                detail,
            )
            .with_limit("limits.max_upload_bytes", limit),
            UploadError::Body(_) => ApiError::bad_request(ErrorCode::UploadInterrupted, detail),
            UploadError::Store(e) => store_error(e),
        }
    }
}

/// 422 with the data error's code, naming the limit when it is one.
fn data_error(e: &crate::data::DataError, detail: String) -> ApiError {
    let error = ApiError::unprocessable(e.code(), detail);
    match e.limit() {
        Some((setting, value)) => error.with_limit(setting, value),
        None => error,
    }
}
