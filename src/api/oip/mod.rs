//! The Open Inference Protocol (V2) over HTTP: `/v2` health, metadata and
//! inference routes, JSON and binary tensors. Errors are `{"error": "..."}`
//! (with a `code`) as the protocol has it, not problem+json.

pub mod binary;
pub mod json;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::service::oip::{
    self, DataType, InferRequest, InputTensor, OipError, OipErrorKind, TensorData,
};
use crate::service::AppState;
use json::{
    ErrorBody, InferenceRequest, InferenceResponse, Live, MetadataTensor, ModelMetadata, Ready,
    ResponseOutput, ServerMetadata,
};

/// Marks a response as a protocol error so the problem+json rewriting of
/// bare errors leaves it alone.
#[derive(Clone, Copy, Debug)]
pub struct ProtocolError;

/// An [`OipError`] as an HTTP answer: 400, 404 or 500 with `{"error", "code"}`.
pub struct OipFailure(pub OipError);

impl From<OipError> for OipFailure {
    fn from(e: OipError) -> OipFailure {
        OipFailure(e)
    }
}

impl IntoResponse for OipFailure {
    fn into_response(self) -> Response {
        let status = match self.0.kind {
            OipErrorKind::Invalid => StatusCode::BAD_REQUEST,
            OipErrorKind::NotFound => StatusCode::NOT_FOUND,
            OipErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            OipErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            OipErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = ErrorBody {
            error: self.0.message,
            code: self.0.code.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(ProtocolError);
        response
    }
}

type OipResult<T> = Result<T, OipFailure>;

fn bad_path(rejection: axum::extract::rejection::PathRejection) -> OipFailure {
    OipFailure(OipError::invalid("invalid_path", rejection.body_text()))
}

/// Server metadata: name, version and supported extensions.
#[utoipa::path(get, path = "/v2", tag = "inference-protocol", security(()),
    responses((status = 200, body = ServerMetadata)))]
pub async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: oip::SERVER_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extensions: oip::EXTENSIONS.iter().map(|e| e.to_string()).collect(),
    })
}

/// Server liveness.
#[utoipa::path(get, path = "/v2/health/live", tag = "inference-protocol", security(()),
    responses((status = 200, body = Live)))]
pub async fn live() -> Json<Live> {
    Json(Live { live: true })
}

/// Server readiness: the store is writable and the training workers alive.
#[utoipa::path(get, path = "/v2/health/ready", tag = "inference-protocol", security(()),
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = oip::server_ready(&state).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, Json(Ready { name: None, ready })).into_response();
    response.extensions_mut().insert(ProtocolError);
    response
}

async fn metadata(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> OipResult<Json<ModelMetadata>> {
    let meta = oip::model_metadata(state, name, version).await?;
    Ok(Json(ModelMetadata {
        name: meta.name,
        versions: meta.versions,
        platform: meta.platform.to_string(),
        inputs: meta.inputs.into_iter().map(MetadataTensor::from).collect(),
        outputs: meta.outputs.into_iter().map(MetadataTensor::from).collect(),
    }))
}

/// Model metadata of the version serving by default (`production`, else the
/// latest): versions, platform `myelin`, inputs and outputs.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "inference-protocol",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = ModelMetadata),
        (status = 404, description = "Unknown model", body = ErrorBody)))]
pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> OipResult<Json<ModelMetadata>> {
    let Path(name) = path.map_err(bad_path)?;
    metadata(&state, &name, None).await
}

/// Model metadata of a version (a number, or an alias such as `production`).
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "inference-protocol",
    params(("name" = String, Path, description = "Model name"),
        ("version" = String, Path, description = "Version number or alias")),
    responses((status = 200, body = ModelMetadata),
        (status = 404, description = "Unknown model, version or alias", body = ErrorBody)))]
pub async fn version_metadata(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> OipResult<Json<ModelMetadata>> {
    let Path((name, version)) = path.map_err(bad_path)?;
    metadata(&state, &name, Some(&version)).await
}

async fn model_ready_answer(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> OipResult<Json<Ready>> {
    oip::load(state, name, version).await?;
    Ok(Json(Ready {
        name: Some(name.to_string()),
        ready: true,
    }))
}

/// Model readiness: 200 when the version loads, 404 when it does not exist.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "inference-protocol",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = Ready),
        (status = 404, description = "Unknown model", body = ErrorBody)))]
pub async fn model_ready(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> OipResult<Json<Ready>> {
    let Path(name) = path.map_err(bad_path)?;
    model_ready_answer(&state, &name, None).await
}

/// Readiness of a model version.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "inference-protocol",
    params(("name" = String, Path, description = "Model name"),
        ("version" = String, Path, description = "Version number or alias")),
    responses((status = 200, body = Ready),
        (status = 404, description = "Unknown model, version or alias", body = ErrorBody)))]
pub async fn version_ready(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> OipResult<Json<Ready>> {
    let Path((name, version)) = path.map_err(bad_path)?;
    model_ready_answer(&state, &name, Some(&version)).await
}

/// Inference on raw-column tensors with the version serving by default.
///
/// One input tensor per raw column, named after it, shape `[N]` or `[N, 1]`
/// (numbers in any numeric datatype, `BOOL`, `BYTES` for categories, text and
/// base64 images); all-numeric models also take one `input` tensor `[N, F]`.
/// Outputs: `label` and `probabilities` (classes in its `classes`
/// parameter), or `value`. With `Inference-Header-Content-Length`, the body
/// is the JSON header followed by binary tensors (`binary_data_size`);
/// `binary_data_output` or an output's `binary_data` answers in binary too.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "inference-protocol",
    params(("name" = String, Path, description = "Model name"),
        ("Inference-Header-Content-Length" = Option<u64>, Header, description = "Length of the JSON header of a binary body")),
    request_body(content(
        (InferenceRequest = "application/json"),
        (Vec<u8> = "application/octet-stream"))),
    responses((status = 200, body = InferenceResponse),
        (status = 400, description = "Invalid request, naming the tensor and element", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, description = "Body or rows over the configured limits", body = ErrorBody)))]
pub async fn infer(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    binary::HeaderLength(header_length): binary::HeaderLength,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let Path(name) = path.map_err(bad_path)?;
        run_infer(&state, name, None, header_length.as_ref(), body).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// Inference with a model version (a number, or an alias).
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "inference-protocol",
    params(("name" = String, Path, description = "Model name"),
        ("version" = String, Path, description = "Version number or alias"),
        ("Inference-Header-Content-Length" = Option<u64>, Header, description = "Length of the JSON header of a binary body")),
    request_body(content(
        (InferenceRequest = "application/json"),
        (Vec<u8> = "application/octet-stream"))),
    responses((status = 200, body = InferenceResponse),
        (status = 400, description = "Invalid request, naming the tensor and element", body = ErrorBody),
        (status = 404, description = "Unknown model, version or alias", body = ErrorBody),
        (status = 413, description = "Body or rows over the configured limits", body = ErrorBody)))]
pub async fn infer_version(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    binary::HeaderLength(header_length): binary::HeaderLength,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let Path((name, version)) = path.map_err(bad_path)?;
        run_infer(&state, name, Some(version), header_length.as_ref(), body).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn run_infer(
    state: &AppState,
    model: String,
    version: Option<String>,
    header_length: Option<&HeaderValue>,
    body: Result<Bytes, BytesRejection>,
) -> OipResult<Response> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            OipFailure(OipError {
                kind: OipErrorKind::TooLarge,
                code: "body_too_large",
                message: "the request body exceeds limits.max_request_bytes".into(),
            })
        } else {
            OipFailure(OipError::invalid("invalid_body", rejection.body_text()))
        }
    })?;
    let (head, mut rest) = binary::split(header_length, body)?;
    let request: InferenceRequest = serde_json::from_slice(&head).map_err(|e| {
        OipError::invalid(
            "malformed_json",
            format!("the inference request is not valid: {e}"),
        )
    })?;
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let datatype = DataType::parse(&input.datatype, &input.name)?;
        let data = match (
            binary::binary_size(input.parameters.as_ref(), &input.name)?,
            input.data,
        ) {
            (Some(size), _) => {
                let raw = binary::take(&mut rest, size, &input.name)?;
                TensorData::from_raw(datatype, &raw, &input.name)?
            }
            (None, Some(data)) => json::decode(datatype, data, &input.name)?,
            (None, None) => {
                return Err(OipFailure(OipError::invalid(
                    "missing_data",
                    format!(
                        "input tensor `{}` has neither `data` nor `binary_data_size`",
                        input.name
                    ),
                )))
            }
        };
        inputs.push(InputTensor {
            name: input.name,
            datatype,
            shape: input.shape,
            data,
        });
    }
    if !rest.is_empty() {
        return Err(OipFailure(OipError::invalid(
            "invalid_tensor_data",
            format!(
                "the body has {} bytes of binary data that no input tensor claims",
                rest.len()
            ),
        )));
    }
    let all_binary = binary::flag(
        request
            .parameters
            .as_ref()
            .and_then(|p| p.binary_data_output.as_ref()),
    )
    .unwrap_or(false);
    let binary_outputs: Vec<(String, bool)> = request
        .outputs
        .iter()
        .flatten()
        .map(|o| {
            let binary = binary::flag(o.parameters.as_ref().and_then(|p| p.binary_data.as_ref()))
                .unwrap_or(all_binary);
            (o.name.clone(), binary)
        })
        .collect();
    let answer = oip::infer(
        state,
        InferRequest {
            model,
            version,
            id: request.id,
            inputs,
            outputs: request
                .outputs
                .map(|o| o.into_iter().map(|o| o.name).collect()),
        },
    )
    .await?;
    let mut tail: Vec<u8> = Vec::new();
    let outputs = answer
        .outputs
        .into_iter()
        .map(|output| {
            let binary = binary_outputs
                .iter()
                .find(|(name, _)| *name == output.name)
                .map_or(all_binary, |(_, b)| *b);
            if binary {
                let start = tail.len();
                output.data.write_raw(&mut tail);
                let size = tail.len() - start;
                ResponseOutput::new(output, Some(size))
            } else {
                ResponseOutput::new(output, None)
            }
        })
        .collect();
    let document = InferenceResponse {
        model_name: answer.model_name,
        model_version: answer.model_version,
        id: answer.id,
        outputs,
    };
    if tail.is_empty() {
        return Ok(Json(document).into_response());
    }
    let mut body = Vec::with_capacity(256 + tail.len());
    serde_json::to_writer(&mut body, &document)
        .map_err(|e| OipFailure(OipError::invalid("internal_error", e.to_string())))?;
    let json_length = body.len();
    body.extend_from_slice(&tail);
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(binary::HEADER, HeaderValue::from(json_length));
    Ok(response)
}
