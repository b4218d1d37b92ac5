//! Protocol buffer messages to and from the transport-neutral types of
//! `service::oip`. Answers carry their tensors in `raw_output_contents`,
//! which every client reads (tritonclient reads nothing else).

use std::collections::HashMap;

use super::proto::infer_parameter::ParameterChoice;
use super::proto::model_infer_request::InferInputTensor;
use super::proto::model_infer_response::InferOutputTensor;
use super::proto::model_metadata_response::TensorMetadata as ProtoTensorMetadata;
use super::proto::{
    InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse,
    ModelMetadataResponse,
};
use crate::service::oip::{
    DataType, InferRequest, InferResponse, InputTensor, ModelMetadata, OipError, TensorData,
    TensorMetadata,
};

fn classes(classes: Option<String>) -> HashMap<String, InferParameter> {
    classes
        .map(|c| {
            let value = InferParameter {
                parameter_choice: Some(ParameterChoice::StringParam(c)),
            };
            HashMap::from([("classes".to_string(), value)])
        })
        .unwrap_or_default()
}

/// Model metadata as the protocol message (class order is REST-only: the
/// message has no parameters).
pub fn metadata(meta: ModelMetadata) -> ModelMetadataResponse {
    let tensor = |t: TensorMetadata| ProtoTensorMetadata {
        name: t.name,
        datatype: t.datatype.as_str().to_string(),
        shape: t.shape,
    };
    ModelMetadataResponse {
        name: meta.name,
        versions: meta.versions,
        platform: meta.platform.to_string(),
        inputs: meta.inputs.into_iter().map(tensor).collect(),
        outputs: meta.outputs.into_iter().map(tensor).collect(),
    }
}

/// The request's tensors, from `raw_input_contents` (one entry per input)
/// or from each input's typed `contents`.
pub fn infer_request(request: ModelInferRequest) -> Result<InferRequest, OipError> {
    let raw = request.raw_input_contents;
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(OipError::invalid(
            "invalid_tensor_data",
            format!(
                "`raw_input_contents` has {} entries but there are {} inputs",
                raw.len(),
                request.inputs.len()
            ),
        ));
    }
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for (i, input) in request.inputs.into_iter().enumerate() {
        let datatype = DataType::parse(&input.datatype, &input.name)?;
        let data = match raw.get(i) {
            Some(bytes) => TensorData::from_raw(datatype, bytes, &input.name)?,
            None => typed(datatype, &input)?,
        };
        inputs.push(InputTensor {
            name: input.name,
            datatype,
            shape: input.shape,
            data,
        });
    }
    let outputs = (!request.outputs.is_empty())
        .then(|| request.outputs.into_iter().map(|o| o.name).collect());
    Ok(InferRequest {
        model: request.model_name,
        version: (!request.model_version.is_empty()).then_some(request.model_version),
        id: (!request.id.is_empty()).then_some(request.id),
        inputs,
        outputs,
    })
}

fn typed(datatype: DataType, input: &InferInputTensor) -> Result<TensorData, OipError> {
    let empty = InferTensorContents::default();
    let c = input.contents.as_ref().unwrap_or(&empty);
    let name = &input.name;
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(c.bool_contents.clone()),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            let (min, max) = datatype.int_range().unwrap_or((0, 0));
            if let Some(i) = c
                .int_contents
                .iter()
                .position(|&x| !(min..=max).contains(&i128::from(x)))
            {
                return Err(OipError::invalid(
                    "invalid_tensor_data",
                    format!(
                        "input tensor `{name}` element {i}: {} is outside {}",
                        c.int_contents[i],
                        datatype.as_str()
                    ),
                ));
            }
            TensorData::Int(c.int_contents.iter().map(|&x| i64::from(x)).collect())
        }
        DataType::Int64 => TensorData::Int(c.int64_contents.clone()),
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => {
            let (_, max) = datatype.int_range().unwrap_or((0, 0));
            if let Some(i) = c.uint_contents.iter().position(|&x| i128::from(x) > max) {
                return Err(OipError::invalid(
                    "invalid_tensor_data",
                    format!(
                        "input tensor `{name}` element {i}: {} is outside {}",
                        c.uint_contents[i],
                        datatype.as_str()
                    ),
                ));
            }
            TensorData::Uint(c.uint_contents.iter().map(|&x| u64::from(x)).collect())
        }
        DataType::Uint64 => TensorData::Uint(c.uint64_contents.clone()),
        DataType::Fp32 => TensorData::F32(c.fp32_contents.clone()),
        DataType::Fp64 => TensorData::F64(c.fp64_contents.clone()),
        DataType::Bytes => TensorData::Bytes(c.bytes_contents.clone()),
        DataType::Fp16 => {
            return Err(OipError::invalid(
                "invalid_tensor_data",
                format!("input tensor `{name}`: FP16 data must come in `raw_input_contents`"),
            ))
        }
    })
}

/// The answer with every tensor in `raw_output_contents`.
pub fn infer_response(answer: InferResponse) -> ModelInferResponse {
    let mut raw = Vec::with_capacity(answer.outputs.len());
    let outputs = answer
        .outputs
        .into_iter()
        .map(|o| {
            raw.push(o.data.to_raw());
            InferOutputTensor {
                name: o.name,
                datatype: o.datatype.as_str().to_string(),
                shape: o.shape,
                parameters: classes(o.classes),
                contents: None,
            }
        })
        .collect();
    ModelInferResponse {
        model_name: answer.model_name,
        model_version: answer.model_version,
        id: answer.id.unwrap_or_default(),
        parameters: HashMap::new(),
        outputs,
        raw_output_contents: raw,
    }
}
