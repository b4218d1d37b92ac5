//! Tensors of the Open Inference Protocol: datatypes, typed element buffers,
//! and the raw little-endian encoding that the binary extension and gRPC's
//! `raw_*_contents` share.

use super::OipError;

/// A tensor element type, by its protocol name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    /// Every datatype, for error messages and tests.
    pub const ALL: [DataType; 13] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    /// The protocol name: `BOOL`, `UINT8` … `FP64`, `BYTES`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// The datatype named `name`; `tensor` names the tensor in the error.
    pub fn parse(name: &str, tensor: &str) -> Result<DataType, OipError> {
        DataType::ALL
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| {
                OipError::invalid(
                    "unknown_datatype",
                    format!(
                        "input tensor `{tensor}` has datatype `{name}`; expected one of BOOL, \
                         UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, \
                         FP64, BYTES"
                    ),
                )
            })
    }

    /// Bytes per element in the raw encoding; `None` for BYTES.
    pub fn size(self) -> Option<usize> {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => Some(1),
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 => Some(2),
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }

    /// The inclusive range of an integer datatype, as i128.
    pub fn int_range(self) -> Option<(i128, i128)> {
        match self {
            DataType::Uint8 => Some((0, u8::MAX.into())),
            DataType::Uint16 => Some((0, u16::MAX.into())),
            DataType::Uint32 => Some((0, u32::MAX.into())),
            DataType::Uint64 => Some((0, u64::MAX.into())),
            DataType::Int8 => Some((i8::MIN.into(), i8::MAX.into())),
            DataType::Int16 => Some((i16::MIN.into(), i16::MAX.into())),
            DataType::Int32 => Some((i32::MIN.into(), i32::MAX.into())),
            DataType::Int64 => Some((i64::MIN.into(), i64::MAX.into())),
            _ => None,
        }
    }
}

/// A tensor's elements, flattened in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    /// Any signed integer datatype.
    Int(Vec<i64>),
    /// Any unsigned integer datatype.
    Uint(Vec<u64>),
    /// FP16 (widened) and FP32.
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl TensorData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Int(v) => v.len(),
            TensorData::Uint(v) => v.len(),
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes the raw encoding of `datatype`: little-endian elements back to
    /// back; BYTES elements each prefixed by their u32 little-endian length.
    ///
    /// Errors name `tensor` and say how the length does not fit.
    pub fn from_raw(datatype: DataType, raw: &[u8], tensor: &str) -> Result<TensorData, OipError> {
        let Some(size) = datatype.size() else {
            return decode_bytes(raw, tensor).map(TensorData::Bytes);
        };
        if !raw.len().is_multiple_of(size) {
            return Err(OipError::invalid(
                "invalid_tensor_data",
                format!(
                    "input tensor `{tensor}` has {} bytes of {} data, not a multiple of {size}",
                    raw.len(),
                    datatype.as_str()
                ),
            ));
        }
        let chunks = raw.chunks_exact(size);
        Ok(match datatype {
            DataType::Bool => TensorData::Bool(raw.iter().map(|&b| b != 0).collect()),
            DataType::Uint8 => TensorData::Uint(raw.iter().map(|&b| u64::from(b)).collect()),
            DataType::Int8 => TensorData::Int(raw.iter().map(|&b| i64::from(b as i8)).collect()),
            DataType::Uint16 => TensorData::Uint(
                chunks
                    .map(|c| u64::from(u16::from_le_bytes([c[0], c[1]])))
                    .collect(),
            ),
            DataType::Int16 => TensorData::Int(
                chunks
                    .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
                    .collect(),
            ),
            DataType::Fp16 => TensorData::F32(
                chunks
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            DataType::Uint32 => TensorData::Uint(
                chunks
                    .map(|c| u64::from(u32::from_le_bytes(le4(c))))
                    .collect(),
            ),
            DataType::Int32 => TensorData::Int(
                chunks
                    .map(|c| i64::from(i32::from_le_bytes(le4(c))))
                    .collect(),
            ),
            DataType::Fp32 => TensorData::F32(chunks.map(|c| f32::from_le_bytes(le4(c))).collect()),
            DataType::Uint64 => {
                TensorData::Uint(chunks.map(|c| u64::from_le_bytes(le8(c))).collect())
            }
            DataType::Int64 => {
                TensorData::Int(chunks.map(|c| i64::from_le_bytes(le8(c))).collect())
            }
            DataType::Fp64 => TensorData::F64(chunks.map(|c| f64::from_le_bytes(le8(c))).collect()),
            DataType::Bytes => unreachable!("BYTES has no fixed size and returned above"),
        })
    }

    /// The raw encoding of an output tensor (see [`TensorData::from_raw`]).
    /// Integers are written as 64-bit, which is how outputs declare them.
    pub fn to_raw(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_raw(&mut out);
        out
    }

    /// Appends the raw encoding (see [`TensorData::to_raw`]) to `out`.
    pub fn write_raw(&self, out: &mut Vec<u8>) {
        match self {
            TensorData::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
            TensorData::Int(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
            TensorData::Uint(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
            TensorData::F32(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
            TensorData::F64(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
            TensorData::Bytes(v) => {
                out.reserve(v.iter().map(|b| b.len() + 4).sum());
                for item in v {
                    // Elements come from labels and inputs bounded far below 4 GiB.
                    out.extend_from_slice(&(item.len() as u32).to_le_bytes());
                    out.extend_from_slice(item);
                }
            }
        }
    }
}

fn le4(c: &[u8]) -> [u8; 4] {
    [c[0], c[1], c[2], c[3]]
}

fn le8(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

fn decode_bytes(mut raw: &[u8], tensor: &str) -> Result<Vec<Vec<u8>>, OipError> {
    let mut items = Vec::new();
    while !raw.is_empty() {
        let index = items.len();
        let truncated = || {
            OipError::invalid(
                "invalid_tensor_data",
                format!(
                    "input tensor `{tensor}` element {index}: the BYTES data ends inside the \
                     element (each element is a 4-byte little-endian length, then that many bytes)"
                ),
            )
        };
        let (prefix, rest) = raw.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_le_bytes(*prefix) as usize;
        if rest.len() < len {
            return Err(truncated());
        }
        let (item, rest) = rest.split_at(len);
        items.push(item.to_vec());
        raw = rest;
    }
    Ok(items)
}

/// An input tensor of an inference request.
#[derive(Clone, Debug, PartialEq)]
pub struct InputTensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
    pub data: TensorData,
}

impl InputTensor {
    /// Checks that the shape has no negative dimension and holds exactly
    /// the elements given.
    pub fn check_shape(&self) -> Result<(), OipError> {
        let mut elements: usize = 1;
        for &dim in &self.shape {
            let dim = usize::try_from(dim).map_err(|_| {
                OipError::invalid(
                    "shape_mismatch",
                    format!(
                        "input tensor `{}` has shape {:?}; dimensions must be >= 0",
                        self.name, self.shape
                    ),
                )
            })?;
            elements = elements.saturating_mul(dim);
        }
        if elements != self.data.len() {
            return Err(OipError::invalid(
                "shape_mismatch",
                format!(
                    "input tensor `{}` has shape {:?} ({elements} elements) but {} elements of data",
                    self.name,
                    self.shape,
                    self.data.len()
                ),
            ));
        }
        Ok(())
    }
}

/// An output tensor of an inference answer.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
    pub data: TensorData,
    /// Class labels in column order (`probabilities` only), sent as the
    /// `classes` parameter: a JSON array in a string.
    pub classes: Option<String>,
}

/// Metadata of one tensor a model takes or gives.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: DataType,
    /// `-1` marks the batch dimension.
    pub shape: Vec<i64>,
    /// As [`OutputTensor::classes`].
    pub classes: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_round_trip_with_length_prefixes() {
        let data = TensorData::Bytes(vec![b"a".to_vec(), Vec::new(), "é".as_bytes().to_vec()]);
        let raw = data.to_raw();
        assert_eq!(&raw[..5], &[1, 0, 0, 0, b'a']);
        assert_eq!(
            TensorData::from_raw(DataType::Bytes, &raw, "t").unwrap(),
            data
        );
    }

    #[test]
    fn raw_bytes_cut_inside_an_element_names_the_element() {
        let err = TensorData::from_raw(DataType::Bytes, &[1, 0, 0, 0, b'a', 5, 0, 0, 0], "city")
            .unwrap_err();
        assert!(err.message.contains("`city` element 1"), "{}", err.message);
    }

    #[test]
    fn raw_numbers_decode_little_endian_per_datatype() {
        let raw: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            TensorData::from_raw(DataType::Fp32, &raw, "t").unwrap(),
            TensorData::F32(vec![1.5, -2.0])
        );
        assert_eq!(
            TensorData::from_raw(DataType::Int16, &[0xff, 0xff, 2, 0], "t").unwrap(),
            TensorData::Int(vec![-1, 2])
        );
        assert_eq!(
            TensorData::from_raw(DataType::Fp16, &half::f16::from_f32(0.5).to_le_bytes(), "t")
                .unwrap(),
            TensorData::F32(vec![0.5])
        );
        let err = TensorData::from_raw(DataType::Fp64, &[0; 12], "x").unwrap_err();
        assert!(
            err.message.contains("not a multiple of 8"),
            "{}",
            err.message
        );
    }
}
