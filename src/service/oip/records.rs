//! Input tensors to raw records, as MLServer's pandas codec reads them: one
//! tensor per raw column named after it (shape `[N]` or `[N, 1]`), or, for
//! models whose features are all numeric, one `[N, F]` tensor named `input`
//! with the columns in schema order.

use serde_json::{Map, Number, Value};

use super::tensor::{InputTensor, TensorData};
use super::OipError;
use crate::data::{ColumnKind, RecordError};
use crate::tabular::InstanceError;

/// The name of the `[N, F]` tensor of all-numeric models.
pub const MATRIX_INPUT: &str = "input";

/// How the request laid out its inputs, to name the tensor and element of a
/// record the model refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One tensor per column.
    Columns,
    /// The `[N, F]` `input` tensor.
    Matrix,
}

/// Whether a model with these input columns takes the `[N, F]` `input` tensor.
pub fn takes_matrix(columns: &[(String, ColumnKind)]) -> bool {
    !columns.is_empty()
        && columns.iter().all(|(_, kind)| *kind == ColumnKind::Numeric)
        && !columns.iter().any(|(name, _)| name == MATRIX_INPUT)
}

/// One raw record per row of the input tensors.
///
/// Errors: no tensors, a tensor named twice, an unknown tensor, a missing
/// column, a shape other than `[N]`/`[N, 1]` (or `[N, F]` for `input`),
/// tensors disagreeing on N, or an element that is not valid UTF-8.
pub fn to_records(
    columns: &[(String, ColumnKind)],
    inputs: &[InputTensor],
) -> Result<(Vec<Map<String, Value>>, Layout), OipError> {
    if inputs.is_empty() {
        return Err(OipError::invalid(
            "no_inputs",
            "the request has no input tensors",
        ));
    }
    for (i, tensor) in inputs.iter().enumerate() {
        tensor.check_shape()?;
        if inputs[..i].iter().any(|t| t.name == tensor.name) {
            return Err(OipError::invalid(
                "duplicate_input",
                format!("input tensor `{}` is given twice", tensor.name),
            ));
        }
    }
    if takes_matrix(columns) {
        if let Some(matrix) = inputs.iter().find(|t| t.name == MATRIX_INPUT) {
            if let Some(other) = inputs.iter().find(|t| t.name != MATRIX_INPUT) {
                return Err(OipError::invalid(
                    "unknown_input",
                    format!(
                        "input tensor `{}` given with `{MATRIX_INPUT}`; send either the \
                         `{MATRIX_INPUT}` matrix or one tensor per column",
                        other.name
                    ),
                ));
            }
            return matrix_records(columns, matrix).map(|r| (r, Layout::Matrix));
        }
    }
    column_records(columns, inputs).map(|r| (r, Layout::Columns))
}

fn column_records(
    columns: &[(String, ColumnKind)],
    inputs: &[InputTensor],
) -> Result<Vec<Map<String, Value>>, OipError> {
    let mut rows: Option<(usize, &str)> = None;
    for tensor in inputs {
        if !columns.iter().any(|(name, _)| *name == tensor.name) {
            return Err(unknown_input(columns, &tensor.name));
        }
        let n = match tensor.shape.as_slice() {
            [n] | [n, 1] => *n as usize,
            _ => {
                return Err(OipError::invalid(
                    "shape_mismatch",
                    format!(
                        "input tensor `{}` has shape {:?}; a column tensor has shape [N] or [N, 1]",
                        tensor.name, tensor.shape
                    ),
                ))
            }
        };
        match rows {
            Some((first, first_name)) if first != n => {
                return Err(OipError::invalid(
                    "shape_mismatch",
                    format!(
                        "input tensor `{}` has {n} rows but `{first_name}` has {first}",
                        tensor.name
                    ),
                ))
            }
            _ => rows = Some((n, &tensor.name)),
        }
    }
    if let Some((missing, _)) = columns
        .iter()
        .find(|(name, _)| !inputs.iter().any(|t| t.name == *name))
    {
        return Err(OipError::invalid(
            "missing_input",
            format!("missing input tensor `{missing}` (one tensor per model input column)"),
        ));
    }
    let n = rows.map_or(0, |(n, _)| n);
    let mut records: Vec<Map<String, Value>> = (0..n).map(|_| Map::new()).collect();
    for tensor in inputs {
        for (index, record) in records.iter_mut().enumerate() {
            let value = element(&tensor.data, index, &tensor.name, || index.to_string())?;
            record.insert(tensor.name.clone(), value);
        }
    }
    Ok(records)
}

fn matrix_records(
    columns: &[(String, ColumnKind)],
    matrix: &InputTensor,
) -> Result<Vec<Map<String, Value>>, OipError> {
    let width = columns.len();
    let n = match matrix.shape.as_slice() {
        [n, f] if *f as usize == width => *n as usize,
        _ => {
            return Err(OipError::invalid(
                "shape_mismatch",
                format!(
                    "input tensor `{MATRIX_INPUT}` has shape {:?}; expected [N, {width}] with the \
                     columns {}",
                    matrix.shape,
                    names(columns)
                ),
            ))
        }
    };
    if matches!(matrix.data, TensorData::Bytes(_)) {
        return Err(OipError::invalid(
            "wrong_datatype",
            format!("input tensor `{MATRIX_INPUT}` must hold numbers, not BYTES"),
        ));
    }
    (0..n)
        .map(|i| {
            columns
                .iter()
                .enumerate()
                .map(|(j, (name, _))| {
                    let value = element(&matrix.data, i * width + j, MATRIX_INPUT, || {
                        format!("[{i}, {j}]")
                    })?;
                    Ok((name.clone(), value))
                })
                .collect()
        })
        .collect()
}

/// Element `index` as the JSON value `/predict` would read: NaN is missing.
fn element(
    data: &TensorData,
    index: usize,
    tensor: &str,
    position: impl Fn() -> String,
) -> Result<Value, OipError> {
    Ok(match data {
        TensorData::Bool(v) => Value::Bool(v[index]),
        TensorData::Int(v) => Value::Number(v[index].into()),
        TensorData::Uint(v) => Value::Number(v[index].into()),
        TensorData::F32(v) => {
            Number::from_f64(f64::from(v[index])).map_or(Value::Null, Value::Number)
        }
        TensorData::F64(v) => Number::from_f64(v[index]).map_or(Value::Null, Value::Number),
        TensorData::Bytes(v) => match std::str::from_utf8(&v[index]) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => {
                return Err(OipError::invalid(
                    "invalid_tensor_data",
                    format!(
                        "input tensor `{tensor}` element {}: BYTES must be UTF-8 text \
                         (base64 for images)",
                        position()
                    ),
                ))
            }
        },
    })
}

/// A record the model refused, named by tensor and element.
pub fn instance_error(
    error: &InstanceError,
    layout: Layout,
    columns: &[(String, ColumnKind)],
) -> OipError {
    let (field, detail) = match &error.error {
        RecordError::MissingField { field } => (field, "missing".to_string()),
        RecordError::WrongType {
            field,
            expected,
            found,
        } => (field, format!("expected {expected}, found {found}")),
        RecordError::InvalidImage { field, reason }
        | RecordError::InvalidAudio { field, reason } => (field, reason.clone()),
    };
    let i = error.index;
    let place = match layout {
        Layout::Columns => format!("input tensor `{field}` element {i}"),
        Layout::Matrix => {
            let j = columns.iter().position(|(n, _)| n == field).unwrap_or(0);
            format!("input tensor `{MATRIX_INPUT}` element [{i}, {j}] (column `{field}`)")
        }
    };
    OipError::invalid("invalid_instance", format!("{place}: {detail}"))
}

fn unknown_input(columns: &[(String, ColumnKind)], name: &str) -> OipError {
    let matrix = if takes_matrix(columns) {
        format!(", or `{MATRIX_INPUT}` alone")
    } else {
        String::new()
    };
    OipError::invalid(
        "unknown_input",
        format!(
            "unknown input tensor `{name}`; the model's inputs are {}{matrix}",
            names(columns)
        ),
    )
}

fn names(columns: &[(String, ColumnKind)]) -> String {
    columns
        .iter()
        .map(|(n, _)| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::oip::tensor::DataType;

    fn columns() -> Vec<(String, ColumnKind)> {
        vec![
            ("age".into(), ColumnKind::Numeric),
            ("city".into(), ColumnKind::Categorical),
        ]
    }

    fn tensor(name: &str, shape: Vec<i64>, data: TensorData) -> InputTensor {
        let datatype = match data {
            TensorData::Bytes(_) => DataType::Bytes,
            _ => DataType::Fp64,
        };
        InputTensor {
            name: name.into(),
            datatype,
            shape,
            data,
        }
    }

    #[test]
    fn column_tensors_become_one_record_per_row() {
        let inputs = [
            tensor("age", vec![2, 1], TensorData::F64(vec![30.0, f64::NAN])),
            tensor(
                "city",
                vec![2],
                TensorData::Bytes(vec![b"Oslo".to_vec(), b"Rome".to_vec()]),
            ),
        ];
        let (records, layout) = to_records(&columns(), &inputs).unwrap();
        assert_eq!(layout, Layout::Columns);
        assert_eq!(
            Value::Object(records[0].clone()),
            serde_json::json!({"age": 30.0, "city": "Oslo"})
        );
        assert_eq!(
            Value::Object(records[1].clone()),
            serde_json::json!({"age": null, "city": "Rome"})
        );
    }

    #[test]
    fn a_missing_or_unknown_tensor_is_named() {
        let only_age = [tensor("age", vec![1], TensorData::F64(vec![1.0]))];
        let err = to_records(&columns(), &only_age).unwrap_err();
        assert!(
            err.message.contains("missing input tensor `city`"),
            "{}",
            err.message
        );
        let extra = [tensor("zip", vec![1], TensorData::F64(vec![1.0]))];
        let err = to_records(&columns(), &extra).unwrap_err();
        assert!(
            err.message.contains("unknown input tensor `zip`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_matrix_input_fills_numeric_columns_in_schema_order() {
        let numeric = vec![
            ("a".to_string(), ColumnKind::Numeric),
            ("b".to_string(), ColumnKind::Numeric),
        ];
        let inputs = [tensor("input", vec![1, 2], TensorData::F32(vec![1.0, 2.0]))];
        let (records, layout) = to_records(&numeric, &inputs).unwrap();
        assert_eq!(layout, Layout::Matrix);
        assert_eq!(
            Value::Object(records[0].clone()),
            serde_json::json!({"a": 1.0, "b": 2.0})
        );
        let wide = [tensor(
            "input",
            vec![1, 3],
            TensorData::F32(vec![1.0, 2.0, 3.0]),
        )];
        let err = to_records(&numeric, &wide).unwrap_err();
        assert!(err.message.contains("expected [N, 2]"), "{}", err.message);
    }
}
