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
    /// Which rows a trained model was scored on: `validation` (the held-out rows),
    /// `cross_validation` (each fold by the model fitted on the others) or
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
    /// Regression: histogram of residuals (actual − predicted, target units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual_histogram: Option<Histogram>,
    /// k-fold validation: per-fold metrics, their mean and standard deviation, and the
    /// epoch count of the final fit (the fields above then hold the fold means).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<super::CrossValidation>,
    /// Budgeted search: the leaderboard of the trials and what the search cost
    /// (the fields above are the final model's, trained with the best trial's
    /// parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Box<super::SearchReport>>,
}

/// Counts of values in equal-width bins: `counts[i]` holds the values in
/// `[edges[i], edges[i + 1])` (the last bin includes its upper edge).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Histogram {
    /// `counts.len() + 1` ascending edges.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// Bins of a residual histogram: about √n, between 5 and 30.
pub const fn residual_bins(n: usize) -> usize {
    let mut bins = 5;
    while bins * bins < n && bins < 30 {
        bins += 1;
    }
    bins
}

/// Histogram of the finite `values` in `bins` equal-width bins spanning
/// their range; `None` without finite values or with `bins == 0`. Equal
/// values get one bin of width 1 centred on them.
pub fn histogram(values: &[f64], bins: usize) -> Option<Histogram> {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let lo = finite().reduce(f64::min)?;
    let hi = finite().reduce(f64::max)?;
    if bins == 0 {
        return None;
    }
    let (lo, hi, bins) = if hi > lo {
        (lo, hi, bins)
    } else {
        (lo - 0.5, lo + 0.5, 1)
    };
    let width = (hi - lo) / bins as f64;
    let edges = (0..=bins)
        .map(|i| if i == bins { hi } else { lo + width * i as f64 })
        .collect();
    let mut counts = vec![0u64; bins];
    for v in finite() {
        let i = (((v - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    Some(Histogram { edges, counts })
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
            let (truth, pred) = regression_values(model, table, rows, &out)?;
            m.rmse = Some(metrics::rmse(&truth, &pred));
            m.mae = Some(metrics::mae(&truth, &pred));
            m.r2 = Some(metrics::r2(&truth, &pred));
            let residuals: Vec<f64> = truth.iter().zip(&pred).map(|(t, p)| t - p).collect();
            m.residual_histogram = histogram(&residuals, residual_bins(residuals.len()));
        }
    }
    Ok(m)
}

/// Regression targets and predictions of `model` on `rows`, in target units,
/// from the head outputs `out` (one row per entry of `rows`).
pub(crate) fn regression_values(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
    out: &ndarray::Array2<f32>,
) -> Result<(Vec<f64>, Vec<f64>), TabularError> {
    let y = model.encoder.encode(table, rows)?;
    let decode = |z: &f32| model.encoder.decode_value(*z);
    Ok((
        y.column(0).iter().map(decode).collect(),
        out.column(0).iter().map(decode).collect(),
    ))
}

/// Regression residuals (actual − predicted, target units) of `model` on `rows`.
pub(crate) fn residuals(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
) -> Result<Vec<f64>, TabularError> {
    let (x, sparse) = model.pipeline.transform_split(table, rows)?;
    let out = model
        .mlp
        .predict_split(x.view(), (sparse.cols() > 0).then_some(&sparse));
    let y = model.encoder.encode(table, rows)?;
    Ok(y.column(0)
        .iter()
        .zip(out.column(0))
        .map(|(&t, &p)| model.encoder.decode_value(t) - model.encoder.decode_value(p))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_value_once_in_equal_bins() {
        let h = histogram(&[0.0, 0.5, 1.0, 2.0, 3.9, 4.0, f64::NAN], 4).unwrap();
        assert_eq!(h.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(h.counts, vec![2, 1, 1, 2]);
    }

    #[test]
    fn histogram_of_equal_values_is_one_bin_around_them() {
        let h = histogram(&[2.0, 2.0], 10).unwrap();
        assert_eq!(h.edges, vec![1.5, 2.5]);
        assert_eq!(h.counts, vec![2]);
    }

    #[test]
    fn histogram_without_finite_values_is_none() {
        assert_eq!(histogram(&[], 5), None);
        assert_eq!(histogram(&[f64::INFINITY], 5), None);
    }

    #[test]
    fn residual_bins_grow_with_the_square_root_between_5_and_30() {
        assert_eq!(residual_bins(3), 5);
        assert_eq!(residual_bins(100), 10);
        assert_eq!(residual_bins(1_000_000), 30);
    }
}
