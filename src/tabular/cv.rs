//! k-fold cross-validation: one fit per fold (pipeline and network fitted on
//! the other folds, early-stopped and scored on the fold), the stopping epoch
//! from the mean validation-loss curve, and a refit on every labelled row for
//! that many epochs — the model that is served.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evaluate::{histogram, residual_bins, residuals};
use super::fit::fit_rows;
use super::{evaluate, Metrics, TabularError, TrainSpec, TrainedModel, TrainingTiming};
use crate::data::{kfold, Schema, Table, Task};
use crate::nn::{Caps, Control, EpochReport, TrainParams};

/// What a k-fold validation measured, reported under `metrics.cross_validation`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CrossValidation {
    pub folds: usize,
    /// Whether the folds keep the class mix.
    pub stratified: bool,
    /// Epochs of the final fit on all rows: where the validation loss averaged
    /// over the folds is lowest.
    pub chosen_epochs: usize,
    /// Each fold's metrics, scored on the fold by the model fitted on the others
    /// (at that model's best epoch).
    pub per_fold: Vec<FoldMetrics>,
    /// Mean over the folds of each metric.
    pub mean: BTreeMap<String, f64>,
    /// Sample standard deviation over the folds of each metric.
    pub std: BTreeMap<String, f64>,
}

/// One fold's scores.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct FoldMetrics {
    /// 1-based.
    pub fold: usize,
    /// Rows scored (the fold's rows).
    pub rows: usize,
    /// Epoch with the lowest validation loss on this fold.
    pub best_epoch: usize,
    /// `accuracy`, `balanced_accuracy`, `log_loss`, `macro_f1`, `roc_auc` (binary),
    /// or `rmse`, `mae`, `r2`.
    pub metrics: BTreeMap<String, f64>,
}

/// Cross-validates `spec` on the `labelled` rows with `folds` folds, then refits
/// on all of them for the chosen number of epochs. Epoch reports of every fit go
/// to `control` numbered on from the previous fit's, so they keep increasing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_kfold(
    table: &Table,
    schema: Schema,
    spec: &TrainSpec,
    params: TrainParams,
    labelled: &[usize],
    folds: usize,
    stratified: bool,
    caps: &Caps,
    control: Control,
) -> Result<TrainedModel, TabularError> {
    // One label vocabulary (or target scaling) for every fold, so every fold's
    // network has the same outputs even when a fold misses a rare class.
    let encoder = super::train::target_encoder(table, labelled, spec, caps)?;
    let classification = encoder.task() == Task::Classification;
    let strata = if stratified && classification {
        Some(encoder.label_indices(table, labelled)?)
    } else {
        None
    };
    let assignment = kfold(labelled.len(), folds, strata.as_deref(), params.seed);
    let Control { on_epoch, cancel } = control;
    let mut offset = 0;
    let mut curves = Vec::with_capacity(assignment.len());
    let mut per_fold = Vec::with_capacity(assignment.len());
    let mut fold_metrics = Vec::with_capacity(assignment.len());
    let (mut cpu, mut wall) = (0.0, 0.0);
    let mut out_of_fold = Vec::new();
    for (index, held_out) in assignment.iter().enumerate() {
        let valid_rows: Vec<usize> = held_out.iter().map(|&i| labelled[i]).collect();
        let mut in_fold = vec![false; labelled.len()];
        for &i in held_out {
            in_fold[i] = true;
        }
        let train_rows: Vec<usize> = labelled
            .iter()
            .zip(&in_fold)
            .filter(|(_, &held)| !held)
            .map(|(&row, _)| row)
            .collect();
        let mut forward = |r: &EpochReport| on_epoch(&renumbered(r, offset));
        let fitted = fit_rows(
            table,
            &schema,
            spec,
            &params,
            encoder.clone(),
            &train_rows,
            &valid_rows,
            caps,
            Control {
                on_epoch: &mut forward,
                cancel,
            },
        )?;
        offset += fitted.history.len();
        cpu += fitted.cpu_seconds;
        wall += fitted.wall_seconds;
        curves.push(
            fitted
                .history
                .iter()
                .map(|r| r.valid_loss.unwrap_or(r.train_loss))
                .collect::<Vec<f64>>(),
        );
        let metrics = evaluate(&fitted.model, table, &valid_rows)?;
        if !classification {
            out_of_fold.extend(residuals(&fitted.model, table, &valid_rows)?);
        }
        per_fold.push(FoldMetrics {
            fold: index + 1,
            rows: valid_rows.len(),
            best_epoch: fitted.best_epoch,
            metrics: scalars(&metrics),
        });
        fold_metrics.push(metrics);
    }
    let chosen_epochs = best_mean_epoch(&curves);
    let refit_params = TrainParams {
        epochs: chosen_epochs,
        early_stopping_patience: None,
        validation_fraction: 0.0,
        ..params.clone()
    };
    let mut forward = |r: &EpochReport| on_epoch(&renumbered(r, offset));
    let fitted = fit_rows(
        table,
        &schema,
        spec,
        &refit_params,
        encoder,
        labelled,
        &[],
        caps,
        Control {
            on_epoch: &mut forward,
            cancel,
        },
    )?;
    cpu += fitted.cpu_seconds;
    wall += fitted.wall_seconds;
    let epochs_run = offset + fitted.history.len();
    let (mean, std) = mean_and_std(&per_fold);
    let mut metrics = summary(&fold_metrics, &mean, classification);
    metrics.residual_histogram = histogram(&out_of_fold, residual_bins(out_of_fold.len()));
    let timing = TrainingTiming {
        epochs: epochs_run,
        train_rows: labelled.len(),
        validation_rows: 0,
        fit_cpu_seconds: cpu,
        fit_wall_seconds: wall,
        cpu_seconds_per_epoch: cpu / epochs_run.max(1) as f64,
        rows_per_second: (labelled.len() * epochs_run) as f64 / wall.max(1e-9),
    };
    Ok(TrainedModel {
        model: fitted.model,
        schema,
        metrics: Metrics {
            cross_validation: Some(CrossValidation {
                folds: assignment.len(),
                stratified: strata.is_some(),
                chosen_epochs,
                per_fold,
                mean,
                std,
            }),
            ..metrics
        },
        history: fitted.history,
        best_epoch: chosen_epochs,
        stopped_early: false,
        timing,
        params,
        init_from: spec.init.as_ref().map(|init| init.from.clone()),
    })
}

/// `report` numbered on after the `offset` epochs reported before it.
pub(super) fn renumbered(report: &EpochReport, offset: usize) -> EpochReport {
    EpochReport {
        epoch: report.epoch + offset,
        ..report.clone()
    }
}

/// 1-based epoch minimising the mean over `curves`; a curve that stopped early
/// counts with its last value for the later epochs.
pub(crate) fn best_mean_epoch(curves: &[Vec<f64>]) -> usize {
    let longest = curves.iter().map(Vec::len).max().unwrap_or(0);
    let mut best = (1, f64::INFINITY);
    for epoch in 0..longest {
        let values: Vec<f64> = curves
            .iter()
            .filter_map(|c| c.get(epoch).or(c.last()).copied())
            .collect();
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        if mean < best.1 {
            best = (epoch + 1, mean);
        }
    }
    best.0
}

/// The scalar metrics of `m` by name.
fn scalars(m: &Metrics) -> BTreeMap<String, f64> {
    [
        ("accuracy", m.accuracy),
        ("balanced_accuracy", m.balanced_accuracy),
        ("log_loss", m.log_loss),
        ("macro_f1", m.macro_f1),
        ("roc_auc", m.roc_auc),
        ("rmse", m.rmse),
        ("mae", m.mae),
        ("r2", m.r2),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name.to_string(), v)))
    .collect()
}

fn mean_and_std(folds: &[FoldMetrics]) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for fold in folds {
        for (name, &v) in &fold.metrics {
            values.entry(name.clone()).or_default().push(v);
        }
    }
    let mut mean = BTreeMap::new();
    let mut std = BTreeMap::new();
    for (name, vs) in values {
        let n = vs.len() as f64;
        let m = vs.iter().sum::<f64>() / n;
        let var = if vs.len() > 1 {
            vs.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        mean.insert(name.clone(), m);
        std.insert(name, var.sqrt());
    }
    (mean, std)
}

/// Top-level metrics of a cross-validation: the fold means, the rows of all
/// folds, and for classification the folds' confusion matrices summed (the
/// caller adds the histogram of the out-of-fold residuals for regression).
fn summary(folds: &[Metrics], mean: &BTreeMap<String, f64>, classification: bool) -> Metrics {
    let get = |name: &str| mean.get(name).copied();
    let confusion_matrix = classification
        .then(|| {
            folds
                .iter()
                .filter_map(|m| m.confusion_matrix.clone())
                .reduce(|mut total, m| {
                    for (row, add) in total.iter_mut().zip(&m) {
                        for (cell, a) in row.iter_mut().zip(add) {
                            *cell += a;
                        }
                    }
                    total
                })
        })
        .flatten();
    Metrics {
        rows: folds.iter().map(|m| m.rows).sum(),
        evaluated_on: Some("cross_validation".into()),
        accuracy: get("accuracy"),
        balanced_accuracy: get("balanced_accuracy"),
        log_loss: get("log_loss"),
        roc_auc: get("roc_auc"),
        macro_f1: get("macro_f1"),
        confusion_matrix,
        rmse: get("rmse"),
        mae: get("mae"),
        r2: get("r2"),
        residual_histogram: None,
        cross_validation: None,
        search: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_epoch_minimises_the_mean_curve_padding_stopped_folds() {
        let curves = vec![vec![3.0, 2.0, 1.0, 1.5], vec![3.0, 1.0, 2.0]];
        // Means: 3.0, 1.5, 1.5, 1.75 (the second fold's last value repeats).
        assert_eq!(best_mean_epoch(&curves), 2);
        assert_eq!(best_mean_epoch(&[]), 1);
    }

    #[test]
    fn mean_and_sample_std_per_metric() {
        let fold = |fold, acc| FoldMetrics {
            fold,
            rows: 10,
            best_epoch: 1,
            metrics: BTreeMap::from([("accuracy".to_string(), acc)]),
        };
        let (mean, std) = mean_and_std(&[fold(1, 0.8), fold(2, 0.6)]);
        assert!((mean["accuracy"] - 0.7).abs() < 1e-12);
        assert!((std["accuracy"] - 0.02f64.sqrt()).abs() < 1e-12);
    }
}
