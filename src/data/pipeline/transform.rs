//! Applying the fitted pipeline: table rows (training, batch scoring) and one
//! record at a time (serving) into a dense block and a sparse text block.

use ndarray::{s, Array2};
use serde_json::{Map, Value};

use super::encoder::{Encoder, Reject, SparseRow};
use super::{check_rows, FeaturePipeline};
use crate::data::canon::Raw;
use crate::data::error::{snippet, DataError, RecordError};
use crate::data::image::ImageInput;
use crate::data::table::Table;
use crate::nn::CsrMatrix;

impl FeaturePipeline {
    /// Transforms `rows` of `table` (columns looked up by name) into a dense
    /// `(rows.len(), width)` matrix. Materializes the text block: prefer
    /// [`FeaturePipeline::transform_split`] for wide text vocabularies.
    ///
    /// Errors: as [`FeaturePipeline::transform_split`].
    pub fn transform(&self, table: &Table, rows: &[usize]) -> Result<Array2<f32>, DataError> {
        let (dense, sparse) = self.transform_split(table, rows)?;
        let mut out = Array2::zeros((rows.len(), self.width));
        out.slice_mut(s![.., ..self.dense_width]).assign(&dense);
        for r in 0..rows.len() {
            let (indices, values) = sparse.row(r);
            for (&c, &v) in indices.iter().zip(values) {
                out[[r, self.dense_width + c as usize]] = v;
            }
        }
        Ok(out)
    }

    /// Transforms `rows` of `table` into the dense block `(rows.len(), dense_width)`
    /// and the sparse text block `(rows.len(), width − dense_width)`.
    ///
    /// Errors: `MissingColumn` for a needed column absent from the table,
    /// `RowOutOfRange`, `InvalidValue` naming row, column and value for a cell
    /// that does not parse as its column's kind.
    pub fn transform_split(
        &self,
        table: &Table,
        rows: &[usize],
    ) -> Result<(Array2<f32>, CsrMatrix), DataError> {
        self.transform_rows(table, rows, None)
    }

    /// Most augmented copies any audio column asks for (0: no augmentation).
    pub fn augment_copies(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match &c.encoder {
                Encoder::Audio(audio) => audio.augment_copies(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// Training features with augmentation: `rows` as by
    /// [`FeaturePipeline::transform_split`], followed by `augment_copies()` more passes
    /// over `rows` in which audio columns encode augmented clips drawn from `seed`
    /// (other columns encode as usual). Row `i` of pass `c` is output row
    /// `c · rows.len() + i`.
    pub fn transform_split_augmented(
        &self,
        table: &Table,
        rows: &[usize],
        seed: u64,
    ) -> Result<(Array2<f32>, CsrMatrix), DataError> {
        let copies = self.augment_copies();
        let all: Vec<usize> = (0..=copies).flat_map(|_| rows.iter().copied()).collect();
        self.transform_rows(table, &all, Some((rows.len(), seed)))
    }

    /// `augment`: (rows per pass, seed); pass 0 is never augmented.
    fn transform_rows(
        &self,
        table: &Table,
        rows: &[usize],
        augment: Option<(usize, u64)>,
    ) -> Result<(Array2<f32>, CsrMatrix), DataError> {
        let width = self.dense_width;
        let sources = self
            .columns
            .iter()
            .map(|column| {
                table
                    .column(&column.name)
                    .ok_or_else(|| DataError::MissingColumn {
                        name: column.name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shortest = sources.iter().map(|c| c.len()).min();
        check_rows(shortest.unwrap_or_else(|| table.rows()), rows)?;
        let mut buf = vec![0.0f32; rows.len() * width];
        let mut sparse = CsrMatrix::new(self.width - self.dense_width);
        let mut row = SparseRow::default();
        for (i, &r) in rows.iter().enumerate() {
            crate::cooperative::yield_every(i, crate::data::YIELD_ROWS);
            let out = &mut buf[i * width..(i + 1) * width];
            row.entries.clear();
            for (column, cells) in self.columns.iter().zip(&sources) {
                let raw = Raw::from_cell(&cells[r]);
                let span = column.dense_span();
                let augmented = match (augment, &column.encoder, raw) {
                    (Some((per_pass, seed)), Encoder::Audio(audio), Raw::Text(s))
                        if i >= per_pass =>
                    {
                        let draw =
                            crate::data::canon::fnv1a(&format!("{seed}/{}/{i}", column.name));
                        Some(audio.encode(s, Some(draw), &mut out[span.clone()]))
                    }
                    _ => None,
                };
                let result = match augmented {
                    Some(result) => result.map_err(Reject::Audio),
                    None => column
                        .encoder
                        .encode(raw, &mut out[span], &mut row, column.offset),
                };
                result.map_err(|reject| match reject {
                    Reject::Kind => DataError::InvalidValue {
                        column: column.name.clone(),
                        row: r + 1,
                        value: raw.describe(),
                        expected: column.encoder.expected(),
                    },
                    Reject::Image(reason) => DataError::InvalidImage {
                        column: column.name.clone(),
                        row: r + 1,
                        reason,
                    },
                    Reject::Audio(reason) => DataError::InvalidAudio {
                        column: column.name.clone(),
                        row: r + 1,
                        reason,
                    },
                })?;
            }
            sparse.push_row(&row.entries);
        }
        let dense = Array2::from_shape_vec((rows.len(), width), buf)
            .expect("buffer length is rows * width by construction");
        Ok((dense, sparse))
    }

    /// Serving path: one raw JSON record into `out` (`len == width`, panics
    /// otherwise), text features included densely. See
    /// [`FeaturePipeline::transform_record_split`] for the accepted values and errors.
    pub fn transform_record(
        &self,
        record: &Map<String, Value>,
        out: &mut [f32],
    ) -> Result<(), RecordError> {
        assert_eq!(
            out.len(),
            self.width,
            "output slice length must equal the pipeline width"
        );
        let mut sparse = CsrMatrix::new(self.width - self.dense_width);
        let (dense, text) = out.split_at_mut(self.dense_width);
        self.transform_record_split(record, dense, &mut sparse)?;
        text.fill(0.0);
        let (indices, values) = sparse.row(0);
        for (&c, &v) in indices.iter().zip(values) {
            text[c as usize] = v;
        }
        Ok(())
    }

    /// Serving path: one raw JSON record into `dense` (`len == dense_width`, panics
    /// otherwise) and one row appended to `sparse` (`cols == width − dense_width`).
    /// Allocates little in the common path.
    ///
    /// A needed field absent from the record is `MissingField`; `null` or a
    /// missing-token string is imputed. Numeric accepts numbers and numeric
    /// strings; boolean accepts booleans, 0/1 and true/false/yes/no/t/f/y/n
    /// strings; categorical accepts strings, numbers and booleans (canonical
    /// keys, unseen -> `__unknown__`); text accepts strings (numbers and
    /// booleans are read as their canonical text). Anything else, including
    /// objects and arrays, is `WrongType` naming field, expected kind and the
    /// value found. On error nothing is appended to `sparse`.
    pub fn transform_record_split(
        &self,
        record: &Map<String, Value>,
        dense: &mut [f32],
        sparse: &mut CsrMatrix,
    ) -> Result<(), RecordError> {
        self.transform_fields_split(|_, name| record.get(name).map(Field::Json), dense, sparse)
    }

    /// Serving path without a JSON record: `field(i, name)` gives column
    /// `i` (in [`FeaturePipeline::inputs`] order) of one record, `None` when
    /// absent. Otherwise as [`FeaturePipeline::transform_record_split`].
    pub fn transform_fields_split<'r>(
        &self,
        mut field: impl FnMut(usize, &str) -> Option<Field<'r>>,
        dense: &mut [f32],
        sparse: &mut CsrMatrix,
    ) -> Result<(), RecordError> {
        assert_eq!(
            dense.len(),
            self.dense_width,
            "output slice length must equal the pipeline's dense width"
        );
        dense.fill(0.0);
        let mut row = SparseRow::default();
        for (i, column) in self.columns.iter().enumerate() {
            let value = field(i, &column.name).ok_or_else(|| RecordError::MissingField {
                field: column.name.clone(),
            })?;
            let wrong = || RecordError::WrongType {
                field: column.name.clone(),
                expected: column.encoder.expected(),
                found: value.describe(),
            };
            let raw = match value {
                Field::Missing | Field::Json(Value::Null) => Raw::Missing,
                Field::Bool(b) | Field::Json(&Value::Bool(b)) => Raw::Bool(b),
                Field::Number(x) => Raw::Number(x),
                Field::Json(Value::Number(n)) => Raw::Number(n.as_f64().ok_or_else(wrong)?),
                Field::Text(s) => raw_text(s),
                Field::Json(Value::String(s)) => raw_text(s),
                Field::Json(Value::Array(items)) => {
                    if let Encoder::Image(image) = &column.encoder {
                        image
                            .encode(ImageInput::Array(items), &mut dense[column.dense_span()])
                            .map_err(|reason| RecordError::InvalidImage {
                                field: column.name.clone(),
                                reason,
                            })?;
                        continue;
                    }
                    return Err(wrong());
                }
                Field::Json(Value::Object(_)) => return Err(wrong()),
            };
            let span = column.dense_span();
            column
                .encoder
                .encode(raw, &mut dense[span], &mut row, column.offset)
                .map_err(|reject| match reject {
                    Reject::Kind => wrong(),
                    Reject::Image(reason) => RecordError::InvalidImage {
                        field: column.name.clone(),
                        reason,
                    },
                    Reject::Audio(reason) => RecordError::InvalidAudio {
                        field: column.name.clone(),
                        reason,
                    },
                })?;
        }
        sparse.push_row(&row.entries);
        Ok(())
    }
}

/// One field of a record on the serving path: a JSON value, or an element
/// already typed (inference protocol tensors). Text is read as in JSON: a
/// missing-value token is missing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    Json(&'a Value),
    Missing,
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

impl Field<'_> {
    fn describe(self) -> String {
        match self {
            Field::Json(value) => describe_json(value),
            Field::Missing => "null".to_owned(),
            Field::Number(x) => format!("the number {x}"),
            Field::Bool(b) => format!("the boolean {b}"),
            Field::Text(s) => format!("the string \"{}\"", snippet(s)),
        }
    }
}

fn raw_text(s: &str) -> Raw<'_> {
    if crate::data::canon::is_missing_token(s) {
        Raw::Missing
    } else {
        Raw::Text(s)
    }
}

fn describe_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{}\"", snippet(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}
