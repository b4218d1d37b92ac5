//! The REST wire format of the inference protocol: request and answer
//! documents, and tensor `data` in JSON (flat or nested row-major arrays).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::service::oip::{DataType, OipError, OutputTensor, TensorData, TensorMetadata};

/// An inference request (`POST /v2/models/{name}/infer`).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"inputs": [
    {"name": "tenure", "shape": [1], "datatype": "FP64", "data": [5.0]},
    {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["basic"]}]}))]
pub struct InferenceRequest {
    /// Echoed in the answer.
    #[serde(default)]
    pub id: Option<String>,
    /// `binary_data_output: true` asks for every output in binary.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Parameters>,
    /// One tensor per raw column, named after it, shape `[N]` or `[N, 1]`;
    /// or, for all-numeric models, `input` `[N, F]` in schema order.
    pub inputs: Vec<RequestInput>,
    /// Outputs to return; all when absent.
    #[serde(default)]
    pub outputs: Option<Vec<RequestOutput>>,
}

/// An input tensor.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestInput {
    pub name: String,
    pub shape: Vec<i64>,
    /// `BOOL`, `UINT8`…`UINT64`, `INT8`…`INT64`, `FP16`, `FP32`, `FP64` or `BYTES`.
    pub datatype: String,
    /// `binary_data_size`: the tensor's bytes follow the JSON header.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Parameters>,
    /// Row-major elements, flat or nested; absent when sent in binary.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<Value>,
}

/// The request parameters the server reads (others are accepted and
/// ignored): `binary_data_size` of an input, `binary_data_output` of the
/// request, `binary_data` of a requested output.
#[derive(Debug, Default, Deserialize)]
pub struct Parameters {
    #[serde(default)]
    pub binary_data_size: Option<Value>,
    #[serde(default)]
    pub binary_data_output: Option<Value>,
    #[serde(default)]
    pub binary_data: Option<Value>,
}

/// A requested output.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestOutput {
    /// `label`, `probabilities` or `value`.
    pub name: String,
    /// `binary_data: true` sends this output in binary.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Parameters>,
}

/// An inference answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"model_name": "churn", "model_version": "3", "outputs": [
    {"name": "label", "shape": [1], "datatype": "BYTES", "data": ["no"]},
    {"name": "probabilities", "shape": [1, 2], "datatype": "FP32",
     "parameters": {"classes": "[\"no\",\"yes\"]"}, "data": [0.91, 0.09]}]}))]
pub struct InferenceResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<ResponseOutput>,
}

/// An output tensor.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseOutput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    /// `classes` (a JSON array in a string: the column order of
    /// `probabilities`); `binary_data_size` when the data is binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<OutputParameters>,
    /// Row-major elements; absent when sent in binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<JsonData>,
}

/// The parameters of an output tensor.
#[derive(Debug, Default, Serialize)]
pub struct OutputParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_data_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<String>,
}

/// Output elements in JSON.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum JsonData {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Uint(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Text(Vec<String>),
}

impl ResponseOutput {
    /// The output with its data in JSON, or, when `binary`, without data and
    /// with `binary_data_size` (the caller appends the bytes).
    pub fn new(output: OutputTensor, binary: Option<usize>) -> ResponseOutput {
        let data = match binary {
            Some(_) => None,
            None => Some(match output.data {
                TensorData::Bool(v) => JsonData::Bool(v),
                TensorData::Int(v) => JsonData::Int(v),
                TensorData::Uint(v) => JsonData::Uint(v),
                TensorData::F32(v) => JsonData::F32(v),
                TensorData::F64(v) => JsonData::F64(v),
                TensorData::Bytes(v) => JsonData::Text(
                    v.into_iter()
                        .map(|b| {
                            String::from_utf8(b)
                                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
                        })
                        .collect(),
                ),
            }),
        };
        let parameters =
            (binary.is_some() || output.classes.is_some()).then_some(OutputParameters {
                binary_data_size: binary,
                classes: output.classes,
            });
        ResponseOutput {
            name: output.name,
            shape: output.shape,
            datatype: output.datatype.as_str().to_string(),
            parameters,
            data,
        }
    }
}

/// Server metadata (`GET /v2`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "myelin", "version": "0.1.0", "extensions": ["binary_tensor_data"]}))]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

/// Model metadata (`GET /v2/models/{name}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelMetadata {
    pub name: String,
    /// Every stored version.
    pub versions: Vec<String>,
    /// `myelin`.
    pub platform: String,
    pub inputs: Vec<MetadataTensor>,
    pub outputs: Vec<MetadataTensor>,
}

/// A tensor in model metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetadataTensor {
    pub name: String,
    pub datatype: String,
    /// `-1` is the batch dimension.
    pub shape: Vec<i64>,
    /// `classes` for `probabilities`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
}

impl From<TensorMetadata> for MetadataTensor {
    fn from(t: TensorMetadata) -> MetadataTensor {
        MetadataTensor {
            name: t.name,
            datatype: t.datatype.as_str().to_string(),
            shape: t.shape,
            parameters: t.classes.map(|c| {
                let mut map = Map::new();
                map.insert("classes".into(), Value::String(c));
                map
            }),
        }
    }
}

/// Liveness (`GET /v2/health/live`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    pub live: bool,
}

/// Readiness (`GET /v2/health/ready`, `GET /v2/models/{name}/ready`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub ready: bool,
}

/// An error answer, as the protocol has it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "input tensor `tenure` element 0: expected a number, found \"x\"", "code": "invalid_instance"}))]
pub struct ErrorBody {
    /// What is wrong, naming the tensor and element.
    pub error: String,
    /// Stable machine-readable code.
    pub code: String,
}

/// Decodes JSON `data` of `datatype`; errors name the tensor and element
/// (the index in row-major order).
pub fn decode(datatype: DataType, data: Value, tensor: &str) -> Result<TensorData, OipError> {
    let mut flat = Vec::new();
    flatten(data, &mut flat);
    let wrong = |index: usize, value: &Value, expected: &str| {
        let mut shown = value.to_string();
        if shown.len() > 40 {
            shown = format!("{}…", shown.chars().take(40).collect::<String>());
        }
        OipError::invalid(
            "invalid_tensor_data",
            format!(
                "input tensor `{tensor}` element {index}: expected {expected} for {}, found {shown}",
                datatype.as_str()
            ),
        )
    };
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(
            flat.into_iter()
                .enumerate()
                .map(|(i, v)| v.as_bool().ok_or_else(|| wrong(i, &v, "true or false")))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Fp16 | DataType::Fp32 => TensorData::F32(
            flat.into_iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_f64()
                        .map(|x| x as f32)
                        .ok_or_else(|| wrong(i, &v, "a number"))
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Fp64 => TensorData::F64(
            flat.into_iter()
                .enumerate()
                .map(|(i, v)| v.as_f64().ok_or_else(|| wrong(i, &v, "a number")))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Bytes => TensorData::Bytes(
            flat.into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.into_bytes()),
                    other => Err(wrong(i, &other, "a string")),
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 | DataType::Uint64 => {
            let (_, max) = datatype.int_range().unwrap_or((0, u64::MAX.into()));
            TensorData::Uint(
                flat.into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        integral(&v)
                            .filter(|x| (0..=max).contains(x))
                            .map(|x| x as u64)
                            .ok_or_else(|| wrong(i, &v, &format!("an integer in 0..={max}")))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let (min, max) = datatype
                .int_range()
                .unwrap_or((i64::MIN.into(), i64::MAX.into()));
            TensorData::Int(
                flat.into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        integral(&v)
                            .filter(|x| (min..=max).contains(x))
                            .map(|x| x as i64)
                            .ok_or_else(|| wrong(i, &v, &format!("an integer in {min}..={max}")))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// An integer, or a float with no fractional part (`3.0`, as Python writes
/// numpy floats), widened to i128 for range checks.
fn integral(value: &Value) -> Option<i128> {
    if let Some(x) = value.as_i64() {
        return Some(x.into());
    }
    if let Some(x) = value.as_u64() {
        return Some(x.into());
    }
    value
        .as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
        .map(|f| f as i128)
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, out);
            }
        }
        scalar => out.push(scalar),
    }
}
