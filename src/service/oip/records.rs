//! Input tensors as the records of a prediction, read as MLServer's pandas
//! codec reads them: one tensor per raw column named after it (shape `[N]`
//! or `[N, 1]`), or, for models whose features are all numeric, one `[N, F]`
//! tensor named `input` with the columns in schema order. The elements go
//! straight into the feature pipeline, as `/predict`'s JSON fields would.

use super::tensor::{InputTensor, TensorData};
use super::OipError;
use crate::data::{ColumnKind, Field, RecordError};
use crate::service::predict::Instances;
use crate::tabular::{CompressedNet, InstanceError, PredictionBatch, TabularModel};

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
pub fn takes_matrix(columns: &[(&str, ColumnKind)]) -> bool {
    !columns.is_empty()
        && columns.iter().all(|(_, kind)| *kind == ColumnKind::Numeric)
        && !columns.iter().any(|(name, _)| *name == MATRIX_INPUT)
}

/// Checked input tensors, read as `rows` records of the model's columns.
#[derive(Debug)]
pub struct TensorRecords {
    inputs: Vec<InputTensor>,
    /// Per model column (in `pipeline.inputs()` order), the index of its
    /// tensor in `inputs` (`Columns`); empty for `Matrix`.
    sources: Vec<usize>,
    layout: Layout,
    rows: usize,
    /// Columns of the model (the width of the `input` matrix).
    width: usize,
}

impl TensorRecords {
    /// How the request laid out its inputs.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Column `column` of record `row`, as `/predict` would read the JSON
    /// value: NaN and infinities are missing.
    pub fn field(&self, row: usize, column: usize) -> Option<Field<'_>> {
        let (tensor, index) = match self.layout {
            Layout::Columns => (self.inputs.get(*self.sources.get(column)?)?, row),
            Layout::Matrix => (self.inputs.first()?, row * self.width + column),
        };
        Some(match &tensor.data {
            TensorData::Bool(v) => Field::Bool(*v.get(index)?),
            TensorData::Int(v) => number(*v.get(index)? as f64),
            TensorData::Uint(v) => number(*v.get(index)? as f64),
            TensorData::F32(v) => number(f64::from(*v.get(index)?)),
            TensorData::F64(v) => number(*v.get(index)?),
            // Checked to be UTF-8 when the records were built.
            TensorData::Bytes(v) => {
                std::str::from_utf8(v.get(index)?).map_or(Field::Missing, Field::Text)
            }
        })
    }
}

fn number(x: f64) -> Field<'static> {
    if x.is_finite() {
        Field::Number(x)
    } else {
        Field::Missing
    }
}

impl Instances for TensorRecords {
    fn count(&self) -> usize {
        self.rows
    }

    fn predict(
        &self,
        model: &TabularModel,
        net: Option<&CompressedNet>,
    ) -> Result<PredictionBatch, InstanceError> {
        model.predict_fields(self.rows, net, |row, column| self.field(row, column))
    }
}

/// The records of the input tensors.
///
/// Errors: no tensors, a tensor named twice, an unknown tensor, a missing
/// column, a shape other than `[N]`/`[N, 1]` (or `[N, F]` for `input`),
/// tensors disagreeing on N, or an element that is not valid UTF-8.
pub fn to_records(
    columns: &[(&str, ColumnKind)],
    inputs: Vec<InputTensor>,
) -> Result<TensorRecords, OipError> {
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
    let width = columns.len();
    if takes_matrix(columns) {
        if let Some(at) = inputs.iter().position(|t| t.name == MATRIX_INPUT) {
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
            let rows = matrix_rows(columns, &inputs[at])?;
            return Ok(TensorRecords {
                inputs,
                sources: Vec::new(),
                layout: Layout::Matrix,
                rows,
                width,
            });
        }
    }
    let (rows, sources) = column_sources(columns, &inputs)?;
    for tensor in &inputs {
        check_utf8(tensor)?;
    }
    Ok(TensorRecords {
        inputs,
        sources,
        layout: Layout::Columns,
        rows,
        width,
    })
}

/// The rows of the column tensors and, per column, the index of its tensor.
fn column_sources(
    columns: &[(&str, ColumnKind)],
    inputs: &[InputTensor],
) -> Result<(usize, Vec<usize>), OipError> {
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
    let sources = columns
        .iter()
        .map(|(name, _)| {
            inputs.iter().position(|t| t.name == *name).ok_or_else(|| {
                OipError::invalid(
                    "missing_input",
                    format!("missing input tensor `{name}` (one tensor per model input column)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows.map_or(0, |(n, _)| n), sources))
}

fn matrix_rows(columns: &[(&str, ColumnKind)], matrix: &InputTensor) -> Result<usize, OipError> {
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
    Ok(n)
}

/// BYTES elements must be UTF-8 text.
fn check_utf8(tensor: &InputTensor) -> Result<(), OipError> {
    let TensorData::Bytes(items) = &tensor.data else {
        return Ok(());
    };
    match items
        .iter()
        .position(|item| std::str::from_utf8(item).is_err())
    {
        None => Ok(()),
        Some(index) => Err(OipError::invalid(
            "invalid_tensor_data",
            format!(
                "input tensor `{}` element {index}: BYTES must be UTF-8 text \
                 (base64 for images)",
                tensor.name
            ),
        )),
    }
}

/// A record the model refused, named by tensor and element.
pub fn instance_error(
    error: &InstanceError,
    layout: Layout,
    columns: &[(&str, ColumnKind)],
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
            let j = columns
                .iter()
                .position(|(n, _)| *n == field.as_str())
                .unwrap_or(0);
            format!("input tensor `{MATRIX_INPUT}` element [{i}, {j}] (column `{field}`)")
        }
    };
    OipError::invalid("invalid_instance", format!("{place}: {detail}"))
}

fn unknown_input(columns: &[(&str, ColumnKind)], name: &str) -> OipError {
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

fn names(columns: &[(&str, ColumnKind)]) -> String {
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

    const COLUMNS: [(&str, ColumnKind); 2] = [
        ("age", ColumnKind::Numeric),
        ("city", ColumnKind::Categorical),
    ];

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
        let inputs = vec![
            tensor(
                "city",
                vec![2],
                TensorData::Bytes(vec![b"Oslo".to_vec(), b"Rome".to_vec()]),
            ),
            tensor("age", vec![2, 1], TensorData::F64(vec![30.0, f64::NAN])),
        ];
        let records = to_records(&COLUMNS, inputs).unwrap();
        assert_eq!(records.layout(), Layout::Columns);
        assert_eq!(records.count(), 2);
        assert_eq!(records.field(0, 0), Some(Field::Number(30.0)));
        assert_eq!(records.field(0, 1), Some(Field::Text("Oslo")));
        assert_eq!(records.field(1, 0), Some(Field::Missing));
        assert_eq!(records.field(1, 1), Some(Field::Text("Rome")));
    }

    #[test]
    fn a_missing_or_unknown_tensor_is_named() {
        let only_age = vec![tensor("age", vec![1], TensorData::F64(vec![1.0]))];
        let err = to_records(&COLUMNS, only_age).unwrap_err();
        assert!(
            err.message.contains("missing input tensor `city`"),
            "{}",
            err.message
        );
        let extra = vec![tensor("zip", vec![1], TensorData::F64(vec![1.0]))];
        let err = to_records(&COLUMNS, extra).unwrap_err();
        assert!(
            err.message.contains("unknown input tensor `zip`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_by_element() {
        let inputs = vec![
            tensor("age", vec![2], TensorData::F64(vec![1.0, 2.0])),
            tensor(
                "city",
                vec![2],
                TensorData::Bytes(vec![b"Oslo".to_vec(), vec![0xff]]),
            ),
        ];
        let err = to_records(&COLUMNS, inputs).unwrap_err();
        assert!(err.message.contains("`city` element 1"), "{}", err.message);
    }

    #[test]
    fn the_matrix_input_fills_numeric_columns_in_schema_order() {
        let numeric = [("a", ColumnKind::Numeric), ("b", ColumnKind::Numeric)];
        let inputs = vec![tensor("input", vec![1, 2], TensorData::F32(vec![1.0, 2.0]))];
        let records = to_records(&numeric, inputs).unwrap();
        assert_eq!(records.layout(), Layout::Matrix);
        assert_eq!(records.field(0, 0), Some(Field::Number(1.0)));
        assert_eq!(records.field(0, 1), Some(Field::Number(2.0)));
        let wide = vec![tensor(
            "input",
            vec![1, 3],
            TensorData::F32(vec![1.0, 2.0, 3.0]),
        )];
        let err = to_records(&numeric, wide).unwrap_err();
        assert!(err.message.contains("expected [N, 2]"), "{}", err.message);
    }
}
