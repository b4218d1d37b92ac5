//! Triton's binary tensor extension over HTTP: the body is a JSON header of
//! `Inference-Header-Content-Length` bytes followed by the tensors whose
//! `binary_data_size` parameter says how many bytes each takes, in order.

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use serde_json::Value;

use super::json::Parameters;

use crate::service::oip::OipError;

/// The header giving the length of the JSON part of a binary body.
pub const HEADER: &str = "inference-header-content-length";

/// The `Inference-Header-Content-Length` header of a request, if any
/// (taken alone: extracting the whole `HeaderMap` would copy it).
pub struct HeaderLength(pub Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for HeaderLength {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(HeaderLength(parts.headers.get(HEADER).cloned()))
    }
}

/// Splits a body into its JSON header and the binary part (empty without
/// the header).
pub fn split(header: Option<&HeaderValue>, body: Bytes) -> Result<(Bytes, Bytes), OipError> {
    let Some(value) = header else {
        return Ok((body, Bytes::new()));
    };
    let length = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            OipError::invalid(
                "invalid_header",
                "`Inference-Header-Content-Length` must be a byte count",
            )
        })?;
    if length > body.len() {
        return Err(OipError::invalid(
            "invalid_header",
            format!(
                "`Inference-Header-Content-Length` is {length} but the body has {} bytes",
                body.len()
            ),
        ));
    }
    let mut json = body;
    let binary = json.split_off(length);
    Ok((json, binary))
}

/// The `binary_data_size` parameter of a tensor, if any.
pub fn binary_size(
    parameters: Option<&Parameters>,
    tensor: &str,
) -> Result<Option<usize>, OipError> {
    let Some(value) = parameters.and_then(|p| p.binary_data_size.as_ref()) else {
        return Ok(None);
    };
    value
        .as_u64()
        .and_then(|v| usize::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| {
            OipError::invalid(
                "invalid_parameter",
                format!("input tensor `{tensor}`: `binary_data_size` must be a byte count, found {value}"),
            )
        })
}

/// Takes the next `size` bytes of the binary part for `tensor`.
pub fn take(binary: &mut Bytes, size: usize, tensor: &str) -> Result<Bytes, OipError> {
    if size > binary.len() {
        return Err(OipError::invalid(
            "invalid_tensor_data",
            format!(
                "input tensor `{tensor}` has `binary_data_size` {size} but only {} bytes of \
                 binary data are left",
                binary.len()
            ),
        ));
    }
    Ok(binary.split_to(size))
}

/// A boolean parameter (`true`/`false`); absent is `None`.
pub fn flag(value: Option<&Value>) -> Option<bool> {
    value.and_then(Value::as_bool)
}
