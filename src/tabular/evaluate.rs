//! Scoring a tabular model on labelled rows.

use serde::{Deserialize, Serialize};

use super::TabularModel;
use crate::data::{Table, Task};
use crate::nn::metrics;
use crate::tabular::TabularError;

/// Metrics of a model on labelled rows; classification fills the
/// classification fields, regression the regression ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Metrics {
    /// Rows scored.
    pub rows: usize,
    /// Which rows a trained model was scored on: `validation` (the held-out rows) or
    /// `training` (with fewer than 10 labelled rows nothing is held out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balanced_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_loss: Option<f64>,
    /// Binary targets only: area under the ROC curve of the positive label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Rows are true labels, columns predicted labels, in label order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion_matrix: Option<Vec<Vec<u64>>>,
    /// Regression, in target units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
}

/// Scores `model` on `rows` of `table` (the target column must be present).
pub fn evaluate(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
) -> Result<Metrics, TabularError> {
    let (x, sparse) = model.pipeline.transform_split(table, rows)?;
    let out = model
        .mlp
        .predict_split(x.view(), (sparse.cols() > 0).then_some(&sparse));
    let mut m = Metrics {
        rows: rows.len(),
        ..Metrics::default()
    };
    match model.encoder.task() {
        Task::Classification => {
            let truth = model.encoder.label_indices(table, rows)?;
            let classes = model.encoder.classes();
            let probs = class_probabilities(&out, classes);
            let predicted: Vec<usize> = probs
                .rows()
                .into_iter()
                .map(|r| argmax(r.as_slice().unwrap_or(&[])))
                .collect();
            m.accuracy = Some(metrics::accuracy(&truth, &predicted));
            m.balanced_accuracy = Some(metrics::balanced_accuracy(&truth, &predicted));
            m.log_loss = Some(metrics::log_loss(&truth, probs.view()));
            m.macro_f1 = Some(metrics::macro_f1(&truth, &predicted, classes));
            m.confusion_matrix = Some(metrics::confusion_matrix(&truth, &predicted, classes));
            if classes == 2 {
                let positive: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
                let scores: Vec<f32> = out.column(0).to_vec();
                m.roc_auc = Some(metrics::roc_auc(&positive, &scores));
            }
        }
        Task::Regression => {
            let y = model.encoder.encode(table, rows)?;
            let truth: Vec<f64> = y
                .column(0)
                .iter()
                .map(|&z| model.encoder.decode_value(z))
                .collect();
            let pred: Vec<f64> = out
                .column(0)
                .iter()
                .map(|&z| model.encoder.decode_value(z))
                .collect();
            m.rmse = Some(metrics::rmse(&truth, &pred));
            m.mae = Some(metrics::mae(&truth, &pred));
            m.r2 = Some(metrics::r2(&truth, &pred));
        }
    }
    Ok(m)
}

/// (n, classes) probabilities from head outputs: a binary head's single
/// column p becomes [1 - p, p].
pub(crate) fn class_probabilities(
    out: &ndarray::Array2<f32>,
    classes: usize,
) -> ndarray::Array2<f32> {
    if classes == 2 && out.ncols() == 1 {
        let mut probs = ndarray::Array2::zeros((out.nrows(), 2));
        for (mut row, &p) in probs.rows_mut().into_iter().zip(out.column(0)) {
            row[0] = 1.0 - p;
            row[1] = p;
        }
        probs
    } else {
        out.clone()
    }
}

pub(crate) fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}
