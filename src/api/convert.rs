//! Service and storage errors mapped to HTTP answers, in one place.

use axum::http::StatusCode;

use super::error::ApiError;
use crate::jobs::{CancelError, SubmitError};
use crate::registry::RegistryError;
use crate::service::datasets::UploadError;
use crate::service::predict::PredictError;
use crate::service::training::SubmitTrainError;

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        let detail = e.to_string();
        match e {
            RegistryError::InvalidName(_) => ApiError::unprocessable("invalid_name", detail),
            RegistryError::ModelNotFound(name) => {
                ApiError::not_found("model_not_found", detail).with("model", name)
            }
            RegistryError::VersionNotFound { name, version } => {
                ApiError::not_found("version_not_found", detail)
                    .with("model", name)
                    .with("version", version)
            }
            RegistryError::AliasNotFound { name, alias } => {
                ApiError::not_found("alias_not_found", detail)
                    .with("model", name)
                    .with("alias", alias)
            }
            RegistryError::VersionAliased { .. } => {
                ApiError::new(StatusCode::CONFLICT, "version_aliased", detail)
            }
            RegistryError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", detail)
            }
            RegistryError::Corrupt(_) | RegistryError::Io { .. } => ApiError::internal(detail),
        }
    }
}

/// A store failure: 503 `store_unavailable` when the store cannot be
/// reached, else 507 `store_write_failed`.
pub fn store_error(e: crate::storage::StoreError) -> ApiError {
    let detail = e.to_string();
    store_error_saying(e, detail)
}

/// [`store_error`] with the detail the caller gives (the context of the write).
fn store_error_saying(e: crate::storage::StoreError, detail: String) -> ApiError {
    match e {
        crate::storage::StoreError::Unavailable { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", detail)
        }
        crate::storage::StoreError::NotFound { .. }
        | crate::storage::StoreError::InvalidKey { .. }
        | crate::storage::StoreError::Io { .. } => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "store_write_failed",
            detail,
        ),
    }
}

impl From<PredictError> for ApiError {
    fn from(e: PredictError) -> ApiError {
        let detail = e.to_string();
        match e {
            PredictError::Registry(r) => r.into(),
            PredictError::Instance(i) => {
                let (code, field) = match &i.error {
                    crate::data::RecordError::MissingField { field } => {
                        ("missing_field", field.clone())
                    }
                    crate::data::RecordError::WrongType { field, .. } => {
                        ("wrong_type", field.clone())
                    }
                    crate::data::RecordError::InvalidImage { field, .. } => {
                        ("invalid_image", field.clone())
                    }
                    crate::data::RecordError::InvalidAudio { field, .. } => {
                        ("invalid_audio", field.clone())
                    }
                };
                ApiError::unprocessable(code, detail)
                    .with("instance_index", i.index)
                    .with("field", field)
            }
            PredictError::TooManyInstances { limit, .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many_instances", detail)
                    .with_limit("limits.max_instances", limit)
            }
            PredictError::NoInstances => ApiError::unprocessable("no_instances", detail),
            PredictError::VersionAndAlias => ApiError::unprocessable("version_and_alias", detail),
            PredictError::WrongModelKind { model, kind, .. } => {
                ApiError::unprocessable("wrong_model_kind", detail)
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

impl From<SubmitTrainError> for ApiError {
    fn from(e: SubmitTrainError) -> ApiError {
        let detail = e.to_string();
        match e {
            SubmitTrainError::Invalid { code, .. } => ApiError::unprocessable(code, detail),
            SubmitTrainError::DatasetNotFound(id) => {
                ApiError::not_found("dataset_not_found", detail).with("dataset", id)
            }
            SubmitTrainError::Store(e) => store_error_saying(e, detail),
            SubmitTrainError::Submit(s) => s.into(),
            SubmitTrainError::Data(d) => data_error(&d, detail),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        let detail = e.to_string();
        match e {
            SubmitError::QueueFull { capacity } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", detail)
                    .with_limit("jobs.queue_capacity", capacity)
            }
            SubmitError::ModelBusy { model, limit } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "model_busy", detail)
                    .with("model", model)
                    .with_limit("jobs.max_active_per_model", limit)
            }
            SubmitError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", detail)
            }
            SubmitError::InputGone(_) => ApiError::not_found("dataset_not_found", detail),
            SubmitError::Store(e) => store_error(e),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(e: CancelError) -> ApiError {
        let detail = e.to_string();
        match e {
            CancelError::NotFound(_) => ApiError::not_found("job_not_found", detail),
            CancelError::Finished { .. } => {
                ApiError::new(StatusCode::CONFLICT, "job_finished", detail)
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
            UploadError::TooLarge { limit } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", detail)
                    .with_limit("limits.max_upload_bytes", limit)
            }
            UploadError::Body(_) => ApiError::bad_request("upload_interrupted", detail),
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
