//! Every error answer outside the inference protocol's `/v2` routes (which
//! answer as that protocol has it, `api/oip`): RFC 9457
//! `application/problem+json` with a stable snake_case `code`, including
//! axum's own rejections.

use crate::service::ErrorCode;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A problem document (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:myelin:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this request, naming the field, row or value.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Extra members, such as `instance_index`, `field`, `limit`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// The `code` of a problem answer, kept in the response's extensions so
/// middleware can tell problems apart without parsing bodies.
#[derive(Clone, Copy, Debug)]
pub struct ProblemCode(pub &'static str);

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub extra: Map<String, Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<&'static str>,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// 422 with the given code.
    pub fn unprocessable(code: impl Into<&'static str>, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 400 with the given code.
    pub fn bad_request(code: impl Into<&'static str>, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 404 with the given code.
    pub fn not_found(code: impl Into<&'static str>, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// Adds a member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// Names an exceeded limit: its setting (`setting`) and value (`limit`).
    pub fn with_limit(self, setting: &str, value: impl Into<Value>) -> ApiError {
        self.with("setting", setting).with("limit", value)
    }

    /// Sets `Retry-After` (seconds).
    pub fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    /// 500 for an unexpected failure; the detail is logged, not leaked.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "an internal error occurred; see the server log",
        )
    }
}

fn title_for(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, detail = %self.detail, "request failed");
        }
        let problem = Problem {
            problem_type: format!("urn:myelin:problem:{}", self.code),
            title: title_for(self.status),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
            extra: self.extra,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.extensions_mut().insert(ProblemCode(self.code));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let status = rejection.status();
        let detail = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => {
                ApiError::unprocessable(ErrorCode::InvalidBody, detail)
            }
            JsonRejection::JsonSyntaxError(_) => {
                ApiError::bad_request(ErrorCode::MalformedJson, detail)
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected `Content-Type: application/json`",
            ),
            JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(status, ErrorCode::BodyTooLarge, detail)
            }
            _ => ApiError::new(status, ErrorCode::InvalidBody, detail),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
