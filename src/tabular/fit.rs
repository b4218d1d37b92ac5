//! One fit of the pipeline and the network on given training rows, early-stopped
//! on given validation rows (none: the monitored loss is the training loss).

use std::time::Instant;

use super::{ClassWeight, ClassWeightMode, TabularError, TabularModel, TrainSpec};
use crate::data::{FeaturePipeline, PipelineOptions, Schema, Table, TargetEncoder, Task};
use crate::nn::{self, Caps, Control, EpochReport, Head, RegressionLoss, TrainParams, TrainSet};

/// The outcome of [`fit_rows`].
pub(crate) struct Fitted {
    pub model: TabularModel,
    /// Per epoch, validation RMSE in target units.
    pub history: Vec<EpochReport>,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
}

/// Fits the pipeline on `train_rows`, then trains the network with `params` on them,
/// early-stopping on `valid_rows` when there are any. Epoch reports go to
/// `on_epoch` with their validation RMSE in target units.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_rows(
    table: &Table,
    schema: &Schema,
    spec: &TrainSpec,
    params: &TrainParams,
    encoder: TargetEncoder,
    train_rows: &[usize],
    valid_rows: &[usize],
    caps: &Caps,
    control: Control,
) -> Result<Fitted, TabularError> {
    // Columns with more categories than the configured limit are hashed.
    let mut options: PipelineOptions = spec.pipeline.clone();
    options.max_one_hot = options.max_one_hot.min(caps.max_categories);
    // A warm start keeps the stored pipeline as it was fitted.
    let pipeline = match &spec.init {
        Some(init) => init.pipeline.clone(),
        None => FeaturePipeline::fit(table, train_rows, schema, &spec.target, &options)?,
    };
    if pipeline.width() == 0 {
        return Err(TabularError::Invalid(format!(
            "no usable feature columns besides the target `{}`",
            spec.target
        )));
    }
    let head = head_for(&encoder, params);

    // Augmented audio copies follow the original rows; their targets and weights repeat.
    let copies = pipeline.augment_copies();
    let (x_train, sparse_train) =
        pipeline.transform_split_augmented(table, train_rows, params.seed)?;
    let fit_rows: Vec<usize> = (0..=copies)
        .flat_map(|_| train_rows.iter().copied())
        .collect();
    let y_train = encoder.encode(table, &fit_rows)?;
    let weights = row_weights(table, &fit_rows, &encoder, &spec.class_weight)?;
    let valid = if valid_rows.is_empty() {
        None
    } else {
        let (x, sparse) = pipeline.transform_split(table, valid_rows)?;
        Some((x, sparse, encoder.encode(table, valid_rows)?))
    };

    // The network learns the standardized target; reports give its RMSE in the target's units.
    let target_scale = match &encoder {
        TargetEncoder::Regression { std, .. } => Some(*std),
        TargetEncoder::Classes { .. } => None,
    };
    let Control { on_epoch, cancel } = control;
    let mut report_in_target_units = |r: &EpochReport| on_epoch(&in_target_units(r, target_scale));
    let control = Control {
        on_epoch: &mut report_in_target_units,
        cancel,
    };
    let cpu_start = crate::cooperative::thread_cpu_seconds();
    let wall_start = Instant::now();
    let train_set = TrainSet {
        x: x_train.view(),
        sparse: (sparse_train.cols() > 0).then_some(&sparse_train),
        y: y_train.view(),
        weights: weights.as_ref().map(|w| w.view()),
    };
    let valid_set = valid.as_ref().map(|(x, sparse, y)| TrainSet {
        x: x.view(),
        sparse: (sparse.cols() > 0).then_some(sparse),
        y: y.view(),
        weights: None,
    });
    let outcome = match &spec.init {
        Some(init) => nn::fit_from(
            init.mlp.clone(),
            train_set,
            valid_set,
            head,
            params,
            caps,
            control,
        )?,
        None => nn::fit(train_set, valid_set, head, params, caps, control)?,
    };
    let wall_seconds = wall_start.elapsed().as_secs_f64();
    let cpu_seconds = crate::cooperative::thread_cpu_seconds() - cpu_start;
    let baseline = pipeline.baseline_record(table, train_rows);
    Ok(Fitted {
        model: TabularModel {
            target: spec.target.clone(),
            baseline,
            importance: None,
            compression: None,
            copies: Default::default(),
            pipeline,
            encoder,
            mlp: outcome.model,
        },
        history: outcome
            .history
            .iter()
            .map(|r| in_target_units(r, target_scale))
            .collect(),
        best_epoch: outcome.best_epoch,
        stopped_early: outcome.stopped_early,
        cpu_seconds,
        wall_seconds,
    })
}

/// `report` with its validation RMSE multiplied by `scale`, the target's standard
/// deviation (`None` for classification: nothing to convert). Losses stay the
/// network's, on the standardized target.
fn in_target_units(report: &EpochReport, scale: Option<f64>) -> EpochReport {
    let mut report = report.clone();
    if let Some(scale) = scale {
        report.valid_metric = report.valid_metric.map(|rmse| rmse * scale);
    }
    report
}

fn head_for(encoder: &TargetEncoder, params: &TrainParams) -> Head {
    match encoder.classes() {
        0 => Head::Regression {
            outputs: 1,
            loss: match params.loss {
                nn::RegressionLossKind::Mse => RegressionLoss::Mse,
                nn::RegressionLossKind::Huber => RegressionLoss::Huber {
                    delta: params.huber_delta,
                },
            },
        },
        2 => Head::Binary,
        classes => Head::Multiclass { classes },
    }
}

fn row_weights(
    table: &Table,
    rows: &[usize],
    encoder: &TargetEncoder,
    class_weight: &Option<ClassWeight>,
) -> Result<Option<ndarray::Array1<f32>>, TabularError> {
    if encoder.task() != Task::Classification {
        return match class_weight {
            None | Some(ClassWeight::Mode(ClassWeightMode::None)) => Ok(None),
            _ => Err(TabularError::Invalid(
                "`class_weight` applies to classification targets only".into(),
            )),
        };
    }
    let labels = encoder.labels();
    let per_class: Vec<f32> = match class_weight {
        None | Some(ClassWeight::Mode(ClassWeightMode::None)) => return Ok(None),
        Some(ClassWeight::Mode(ClassWeightMode::Balanced)) => {
            let indices = encoder.label_indices(table, rows)?;
            let mut counts = vec![0usize; labels.len()];
            for &i in &indices {
                counts[i] += 1;
            }
            counts
                .iter()
                .map(|&c| rows.len() as f32 / (labels.len() as f32 * c.max(1) as f32))
                .collect()
        }
        Some(ClassWeight::PerLabel(map)) => {
            for (label, weight) in map {
                if !labels.iter().any(|l| l == label) {
                    return Err(TabularError::Invalid(format!(
                        "`class_weight` names label `{label}`, which the target does not have (labels: {})",
                        labels.join(", ")
                    )));
                }
                if !weight.is_finite() || *weight <= 0.0 {
                    return Err(TabularError::Invalid(format!(
                        "`class_weight` for label `{label}` must be a positive number, got {weight}"
                    )));
                }
            }
            labels
                .iter()
                .map(|l| map.get(l).copied().unwrap_or(1.0))
                .collect()
        }
    };
    let indices = encoder.label_indices(table, rows)?;
    Ok(Some(indices.iter().map(|&i| per_class[i]).collect()))
}
