//! Predicting on raw JSON records.

use std::cell::RefCell;
use std::collections::BTreeMap;

use ndarray::Array2;
use serde::Serialize;
use serde_json::{Map, Value};

use super::evaluate::argmax;
use super::TabularModel;
use crate::data::{Field, RecordError, Task};
use crate::nn::{CsrMatrix, InferenceScratch};

/// One prediction: a label with class probabilities, or a value.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Prediction {
    /// Classification: the most probable label and every label's probability.
    Class {
        label: String,
        probabilities: BTreeMap<String, f32>,
    },
    /// Regression: the predicted value in target units.
    Value { value: f64 },
}

/// A batch of predictions.
#[derive(Debug)]
pub struct PredictionBatch {
    pub predictions: Vec<Prediction>,
    /// Record fields the model does not use, over all records, sorted.
    pub ignored_fields: Vec<String>,
}

/// A record the model could not read: its index and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("instance {index}: {error}")]
pub struct InstanceError {
    pub index: usize,
    pub error: RecordError,
}

thread_local! {
    static BUFFERS: RefCell<(Vec<f32>, InferenceScratch, Vec<f32>, CsrMatrix)> =
        RefCell::new((Vec::new(), InferenceScratch::default(), Vec::new(), CsrMatrix::new(0)));
}

impl TabularModel {
    /// Predicts every record; the first unreadable record fails the batch.
    pub fn predict_records(
        &self,
        records: &[Map<String, Value>],
    ) -> Result<PredictionBatch, InstanceError> {
        self.predict_records_at(records, None)
    }

    /// [`TabularModel::predict_records`] with a compressed copy of the network.
    pub fn predict_records_with(
        &self,
        records: &[Map<String, Value>],
        net: &super::CompressedNet,
    ) -> Result<PredictionBatch, InstanceError> {
        self.predict_records_at(records, Some(net))
    }

    fn predict_records_at(
        &self,
        records: &[Map<String, Value>],
        net: Option<&super::CompressedNet>,
    ) -> Result<PredictionBatch, InstanceError> {
        let mut ignored: Vec<String> = Vec::new();
        let mut batch = self.predict_rows(records.len(), net, |index, dense, sparse| {
            let record = &records[index];
            self.pipeline
                .transform_record_split(record, dense, sparse)?;
            for field in self.pipeline.unknown_fields(record) {
                if !ignored.iter().any(|f| f == field) {
                    ignored.push(field.to_string());
                }
            }
            Ok(())
        })?;
        ignored.sort();
        batch.ignored_fields = ignored;
        Ok(batch)
    }

    /// Predicts `n` records given field by field: `field(row, column)` is
    /// column `column` (in `pipeline.inputs()` order) of record `row`, `None`
    /// when absent. The same answers as [`TabularModel::predict_records`] on
    /// the same values, without building JSON records.
    /// With `net`, the compressed copy of the network answers.
    pub fn predict_fields<'r>(
        &self,
        n: usize,
        net: Option<&super::CompressedNet>,
        field: impl Fn(usize, usize) -> Option<Field<'r>>,
    ) -> Result<PredictionBatch, InstanceError> {
        self.predict_rows(n, net, |index, dense, sparse| {
            self.pipeline
                .transform_fields_split(|column, _| field(index, column), dense, sparse)
        })
    }

    /// Encodes `n` records with `encode(index, dense_row, sparse)` and runs the
    /// network (or `net`, a compressed copy, on the densified features).
    fn predict_rows(
        &self,
        n: usize,
        net: Option<&super::CompressedNet>,
        mut encode: impl FnMut(usize, &mut [f32], &mut CsrMatrix) -> Result<(), RecordError>,
    ) -> Result<PredictionBatch, InstanceError> {
        let width = self.pipeline.dense_width();
        let sparse_width = self.pipeline.width() - width;
        let outputs = self.mlp.outputs();
        BUFFERS.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (features, scratch, out, sparse) = &mut *guard;
            features.clear();
            features.resize(n * width, 0.0);
            *sparse = CsrMatrix::new(sparse_width);
            for index in 0..n {
                encode(
                    index,
                    &mut features[index * width..(index + 1) * width],
                    sparse,
                )
                .map_err(|error| InstanceError { index, error })?;
            }
            if let Some(net) = net {
                let full = self.pipeline.width();
                let mut x = Array2::<f32>::zeros((n, full));
                for (i, mut row) in x.rows_mut().into_iter().enumerate() {
                    for (j, &v) in features[i * width..(i + 1) * width].iter().enumerate() {
                        row[j] = v;
                    }
                    let (indices, values) = sparse.row(i);
                    for (&c, &v) in indices.iter().zip(values) {
                        row[width + c as usize] = v;
                    }
                }
                let y = net.predict(x.view());
                let predictions = y
                    .rows()
                    .into_iter()
                    .map(|r| self.decode(&r.to_vec()))
                    .collect();
                return Ok(PredictionBatch {
                    predictions,
                    ignored_fields: Vec::new(),
                });
            }
            out.clear();
            out.resize(n * outputs, 0.0);
            // Both buffers were just resized to exactly these shapes.
            let x = ndarray::ArrayView2::from_shape((n, width), &features[..])
                .expect("features hold n * width values");
            let y = ndarray::ArrayViewMut2::from_shape((n, outputs), &mut out[..])
                .expect("outputs hold n * outputs values");
            let sparse = (sparse_width > 0).then_some(&*sparse);
            self.mlp.predict_split_into(x, sparse, scratch, y);
            let predictions = (0..n)
                .map(|i| self.decode(&out[i * outputs..(i + 1) * outputs]))
                .collect();
            Ok(PredictionBatch {
                predictions,
                ignored_fields: Vec::new(),
            })
        })
    }

    /// Head outputs for a feature matrix (n, width).
    pub fn predict_features(&self, x: ndarray::ArrayView2<f32>) -> Array2<f32> {
        self.mlp.predict(x)
    }

    fn decode(&self, out: &[f32]) -> Prediction {
        match self.encoder.task() {
            Task::Regression => Prediction::Value {
                value: self.encoder.decode_value(out[0]),
            },
            Task::Classification => {
                let labels = self.encoder.labels();
                let probabilities: Vec<f32> = if labels.len() == 2 && out.len() == 1 {
                    vec![1.0 - out[0], out[0]]
                } else {
                    out.to_vec()
                };
                let best = argmax(&probabilities);
                Prediction::Class {
                    label: labels[best].clone(),
                    probabilities: labels.iter().cloned().zip(probabilities).collect(),
                }
            }
        }
    }
}
