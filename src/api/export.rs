//! `GET /models/{name}/versions/{version}/export`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiPath, ApiQuery};
use crate::service::export::{export_onnx, EXPORT_FORMATS};
use crate::service::{AppState, ErrorCode};

/// Export options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `onnx` (the default and only format).
    #[serde(default)]
    pub format: Option<String>,
}

/// Export a version as one ONNX model (pipeline and network).
///
/// One input per raw column, shape `[N, 1]`: numeric and boolean columns as
/// `float` (NaN is missing), categorical columns as `string` (an empty string
/// is missing). Outputs `label` and `probabilities` (classification) or
/// `value` (regression), equal to `/predict`'s within 1e-5. Models with text,
/// image, audio or hashed categorical columns answer 422 naming the column.
#[utoipa::path(get, path = "/models/{name}/versions/{version}/export", tag = "models",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), ExportQuery),
    responses((status = 200, description = "The ONNX model", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown format, or a column with no ONNX encoding", body = Problem, content_type = "application/problem+json")))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    ApiPath((name, version)): ApiPath<(String, u32)>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = query.format.unwrap_or_else(|| "onnx".into());
    if !EXPORT_FORMATS.contains(&format.as_str()) {
        return Err(ApiError::unprocessable(
            ErrorCode::UnsupportedFormat,
            format!(
                "`format` is `{format}`; supported: {}",
                EXPORT_FORMATS.join(", ")
            ),
        )
        .with("field", "format"));
    }
    let exported = export_onnx(&state, &name, version).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", exported.file_name),
            ),
        ],
        exported.bytes,
    )
        .into_response())
}
