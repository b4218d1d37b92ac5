//! The one encoding of stored weights: `weights.safetensors`, tensors of
//! little-endian `F32`, `I64` or `I32` values by name, with a `format` entry
//! in the header. The registry writes tabular networks with [`encode`] and
//! reads them back with [`decode_f32`]; the recommender writes its parts
//! with [`encode`] (and reads its typed tensors with `safetensors` itself).
//!
//! It sits below the models so that both model kinds and the registry can use
//! it (the registry imports the recommender, not the other way round).

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensorError, SafeTensors};

/// File holding the tensors of a model version.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// One tensor to encode: its name, element type, shape and little-endian bytes.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Tensor {
    /// An `F32` tensor of `shape` holding `values` in row-major order.
    pub fn f32(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: impl IntoIterator<Item = f32>,
    ) -> Tensor {
        Tensor {
            name: name.into(),
            dtype: Dtype::F32,
            shape,
            bytes: values.into_iter().flat_map(f32::to_le_bytes).collect(),
        }
    }

    /// A one-dimensional `I64` tensor of `values`.
    pub fn i64(name: impl Into<String>, values: impl IntoIterator<Item = i64>) -> Tensor {
        let bytes: Vec<u8> = values.into_iter().flat_map(i64::to_le_bytes).collect();
        Tensor {
            name: name.into(),
            dtype: Dtype::I64,
            shape: vec![bytes.len() / 8],
            bytes,
        }
    }

    /// A one-dimensional `I32` tensor of `values`.
    pub fn i32(name: impl Into<String>, values: impl IntoIterator<Item = i32>) -> Tensor {
        let bytes: Vec<u8> = values.into_iter().flat_map(i32::to_le_bytes).collect();
        Tensor {
            name: name.into(),
            dtype: Dtype::I32,
            shape: vec![bytes.len() / 4],
            bytes,
        }
    }
}

/// Why tensors could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A tensor's bytes do not match its shape and type.
    #[error("{source}")]
    Tensor {
        name: String,
        source: SafeTensorError,
    },
    /// The file as a whole could not be written (e.g. its header is too large).
    #[error("{0}")]
    File(SafeTensorError),
}

/// Encodes `tensors` as safetensors bytes whose header says `format`.
///
/// # Errors
/// [`EncodeError::Tensor`] naming a tensor whose bytes do not fit its shape,
/// [`EncodeError::File`] when the file cannot be assembled.
pub fn encode(tensors: &[Tensor], format: &str) -> Result<Vec<u8>, EncodeError> {
    let mut views = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let view = TensorView::new(tensor.dtype, tensor.shape.clone(), &tensor.bytes).map_err(
            |source| EncodeError::Tensor {
                name: tensor.name.clone(),
                source,
            },
        )?;
        views.push((tensor.name.as_str(), view));
    }
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), format.to_string());
    safetensors::serialize(views, Some(meta)).map_err(EncodeError::File)
}

/// A decoded `F32` tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct F32Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Why safetensors bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a readable safetensors file.
    #[error("{0}")]
    File(SafeTensorError),
    /// A tensor of another element type than the one expected.
    #[error("tensor `{name}` is {dtype:?}, expected F32")]
    NotF32 { name: String, dtype: Dtype },
}

/// Decodes every tensor of safetensors `bytes`; each must be `F32`.
///
/// # Errors
/// [`DecodeError::File`] for bytes that are not safetensors,
/// [`DecodeError::NotF32`] for a tensor of another type.
pub fn decode_f32(bytes: &[u8]) -> Result<Vec<F32Tensor>, DecodeError> {
    let file = SafeTensors::deserialize(bytes).map_err(DecodeError::File)?;
    let mut out = Vec::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(DecodeError::NotF32 {
                name,
                dtype: view.dtype(),
            });
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(F32Tensor {
            name,
            shape: view.shape().to_vec(),
            values,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_of_every_type_round_trip_with_the_format_in_the_header() {
        let bytes = encode(
            &[
                Tensor::f32("w", vec![2, 2], [1.0, -2.0, 0.5, 3.25]),
                Tensor::i64("offsets", [0, 2, 7]),
                Tensor::i32("items", [4, 1]),
            ],
            "myelin",
        )
        .unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let format = meta.metadata().as_ref().and_then(|m| m.get("format"));
        assert_eq!(format.map(String::as_str), Some("myelin"));
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(file.tensor("offsets").unwrap().dtype(), Dtype::I64);
        assert_eq!(file.tensor("items").unwrap().shape(), &[2]);
        assert!(matches!(
            decode_f32(&bytes),
            Err(DecodeError::NotF32 { .. })
        ));
        let only_f32 = encode(&[Tensor::f32("w", vec![3], [1.0, 2.0, 3.0])], "x").unwrap();
        assert_eq!(
            decode_f32(&only_f32).unwrap(),
            vec![F32Tensor {
                name: "w".into(),
                shape: vec![3],
                values: vec![1.0, 2.0, 3.0],
            }]
        );
    }

    #[test]
    fn bytes_that_do_not_fit_the_shape_name_the_tensor() {
        let bad = Tensor {
            name: "w".into(),
            dtype: Dtype::F32,
            shape: vec![3],
            bytes: vec![0; 4],
        };
        assert!(matches!(
            encode(&[bad], "x"),
            Err(EncodeError::Tensor { name, .. }) if name == "w"
        ));
    }
}
