//! Fitting a tabular model: split, fit the pipeline on the training rows,
//! encode the target, train the network, score the validation rows.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{evaluate, Metrics, TabularModel};
use crate::data::{
    check_audio, check_images, infer_schema, rows_with_target, train_test_split, ColumnKind,
    DataError, FeaturePipeline, PipelineOptions, Schema, Table, TargetEncoder, Task,
};
use crate::nn::{self, Caps, Control, EpochReport, Head, RegressionLoss, TrainParams, TrainSet};

/// How rows are weighted by their class (classification only).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ClassWeight {
    /// `"none"` (every row weighs 1) or `"balanced"` (n / (classes * count)).
    Mode(ClassWeightMode),
    /// An explicit weight per label; labels not listed weigh 1.
    PerLabel(BTreeMap<String, f32>),
}

/// Named class-weighting modes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeightMode {
    None,
    Balanced,
}

/// What to train: the target, the task, column handling and parameters.
#[derive(Clone, Debug, Default)]
pub struct TrainSpec {
    /// Column to predict.
    pub target: String,
    /// Classification or regression; `None` infers it from the target column.
    pub task: Option<Task>,
    /// Per-column kind overrides.
    pub overrides: BTreeMap<String, ColumnKind>,
    /// Columns never used as features.
    pub ignore: Vec<String>,
    /// Network and optimizer parameters.
    pub params: TrainParams,
    /// Encoding options (one-hot cap, hashing).
    pub pipeline: PipelineOptions,
    /// Row weights by class; `None` weighs every row 1.
    pub class_weight: Option<ClassWeight>,
}

/// Timing of the network fit (pipeline fitting excluded).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TrainingTiming {
    /// Epochs run.
    pub epochs: usize,
    /// Rows the network trained on.
    pub train_rows: usize,
    /// Rows held out for validation.
    pub validation_rows: usize,
    /// CPU time of the training thread in the fit, seconds.
    pub fit_cpu_seconds: f64,
    /// Wall time of the fit, seconds.
    pub fit_wall_seconds: f64,
    /// `fit_cpu_seconds / epochs`.
    pub cpu_seconds_per_epoch: f64,
    /// Training rows processed per wall second.
    pub rows_per_second: f64,
}

/// A trained model with what is recorded about its training.
#[derive(Debug)]
pub struct TrainedModel {
    pub model: TabularModel,
    pub schema: Schema,
    /// Metrics on the validation rows, or on the training rows when none were held out.
    pub metrics: Metrics,
    pub history: Vec<EpochReport>,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub timing: TrainingTiming,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TabularError {
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("{0}")]
    Train(#[from] nn::TrainError),
    #[error("{0}")]
    Invalid(String),
}

impl TabularError {
    /// Stable snake_case code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            TabularError::Data(e) => e.code(),
            TabularError::Train(nn::TrainError::Params(_)) => "invalid_parameter",
            TabularError::Train(nn::TrainError::Cancelled) => "cancelled",
            TabularError::Train(nn::TrainError::NonFinite { .. }) => "training_diverged",
            TabularError::Train(nn::TrainError::Shape(_)) => "invalid_data",
            TabularError::Invalid(_) => "invalid_data",
        }
    }
}

/// Checks what can be checked before a job is queued: the target exists,
/// parameters are valid, the schema can be inferred, the target has at least
/// two classes for classification.
pub fn precheck(table: &Table, spec: &TrainSpec, caps: &Caps) -> Result<Schema, TabularError> {
    spec.params.check(caps).map_err(nn::TrainError::from)?;
    spec.pipeline.validate()?;
    if table.column_index(&spec.target).is_none() {
        return Err(DataError::UnknownColumn {
            name: spec.target.clone(),
        }
        .into());
    }
    let schema = infer_schema(table, &spec.overrides, &spec.ignore)?;
    let features = schema
        .columns
        .iter()
        .filter(|c| c.is_feature() && c.name != spec.target)
        .count();
    if features == 0 {
        return Err(DataError::NoFeatures.into());
    }
    // Every feature column gives at least one input and the head at least
    // one output, so this bound is known before the pipeline is fitted.
    let widths: Vec<usize> = std::iter::once(features)
        .chain(spec.params.hidden_layers.iter().copied())
        .chain(std::iter::once(1))
        .collect();
    let least_parameters: usize = widths
        .windows(2)
        .map(|w| w[0].saturating_mul(w[1]).saturating_add(w[1]))
        .fold(0, usize::saturating_add);
    if least_parameters > caps.max_parameters {
        return Err(nn::TrainError::from(nn::invalid_param(
            "parameters",
            least_parameters,
            format!(
                "at least; exceeds the limit `training.max_parameters` = {}",
                caps.max_parameters
            ),
        ))
        .into());
    }
    spec.pipeline.check_columns(&schema)?;
    let rows = rows_with_target(table, &spec.target);
    if rows.len() < 2 {
        return Err(TabularError::Invalid(format!(
            "target column `{}` has {} non-missing values; at least 2 are needed",
            spec.target,
            rows.len()
        )));
    }
    TargetEncoder::fit_limited(table, &rows, &spec.target, spec.task, caps.max_categories)?;
    check_images(table, &rows, &schema, &spec.target, &spec.pipeline.image)?;
    check_audio(table, &rows, &schema, &spec.target, &spec.pipeline.audio)?;
    Ok(schema)
}

/// Trains a tabular model on `table`.
///
/// Rows with a missing target are dropped. `params.validation_fraction` of the
/// remaining rows (seeded by `params.seed`) are held out: the pipeline is
/// fitted on the rest, the network early-stops on the held-out rows and the
/// returned metrics are computed on them.
pub fn train(
    table: &Table,
    spec: &TrainSpec,
    caps: &Caps,
    control: Control,
) -> Result<TrainedModel, TabularError> {
    let schema = precheck(table, spec, caps)?;
    let labelled = rows_with_target(table, &spec.target);
    let fraction = f64::from(spec.params.validation_fraction);
    let (train_rows, valid_rows) = if fraction > 0.0 && labelled.len() >= 10 {
        let (train_idx, valid_idx) = train_test_split(labelled.len(), fraction, spec.params.seed);
        (
            train_idx.iter().map(|&i| labelled[i]).collect::<Vec<_>>(),
            valid_idx.iter().map(|&i| labelled[i]).collect::<Vec<_>>(),
        )
    } else {
        (labelled, Vec::new())
    };

    // Columns with more categories than the configured limit are hashed.
    let mut options = spec.pipeline.clone();
    options.max_one_hot = options.max_one_hot.min(caps.max_categories);
    let pipeline = FeaturePipeline::fit(table, &train_rows, &schema, &spec.target, &options)?;
    if pipeline.width() == 0 {
        return Err(TabularError::Invalid(format!(
            "no usable feature columns besides the target `{}`",
            spec.target
        )));
    }
    let encoder = TargetEncoder::fit_limited(
        table,
        &train_rows,
        &spec.target,
        spec.task,
        caps.max_categories,
    )?;
    let head = head_for(&encoder, &spec.params);

    // Augmented audio copies follow the original rows; their targets and weights repeat.
    let copies = pipeline.augment_copies();
    let (x_train, sparse_train) =
        pipeline.transform_split_augmented(table, &train_rows, spec.params.seed)?;
    let fit_rows: Vec<usize> = (0..=copies)
        .flat_map(|_| train_rows.iter().copied())
        .collect();
    let y_train = encoder.encode(table, &fit_rows)?;
    let weights = row_weights(table, &fit_rows, &encoder, &spec.class_weight)?;
    let valid = if valid_rows.is_empty() {
        None
    } else {
        let (x, sparse) = pipeline.transform_split(table, &valid_rows)?;
        Some((x, sparse, encoder.encode(table, &valid_rows)?))
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
    let cpu_start = nn::thread_cpu_seconds();
    let wall_start = Instant::now();
    let outcome = nn::fit(
        TrainSet {
            x: x_train.view(),
            sparse: (sparse_train.cols() > 0).then_some(&sparse_train),
            y: y_train.view(),
            weights: weights.as_ref().map(|w| w.view()),
        },
        valid.as_ref().map(|(x, sparse, y)| TrainSet {
            x: x.view(),
            sparse: (sparse.cols() > 0).then_some(sparse),
            y: y.view(),
            weights: None,
        }),
        head,
        &spec.params,
        caps,
        control,
    )?;
    let fit_wall_seconds = wall_start.elapsed().as_secs_f64();
    let fit_cpu_seconds = nn::thread_cpu_seconds() - cpu_start;
    let epochs = outcome.history.len();
    let timing = TrainingTiming {
        epochs,
        train_rows: train_rows.len(),
        validation_rows: valid_rows.len(),
        fit_cpu_seconds,
        fit_wall_seconds,
        cpu_seconds_per_epoch: fit_cpu_seconds / epochs.max(1) as f64,
        rows_per_second: (train_rows.len() * epochs) as f64 / fit_wall_seconds.max(1e-9),
    };

    let model = TabularModel {
        target: spec.target.clone(),
        pipeline,
        encoder,
        mlp: outcome.model,
    };
    // Too few rows to hold any out: score the rows it learned from, and say so.
    let (scored, evaluated_on) = if valid_rows.is_empty() {
        (&train_rows, "training")
    } else {
        (&valid_rows, "validation")
    };
    let mut metrics = evaluate(&model, table, scored)?;
    metrics.evaluated_on = Some(evaluated_on.to_string());
    Ok(TrainedModel {
        model,
        schema,
        metrics,
        history: outcome
            .history
            .iter()
            .map(|r| in_target_units(r, target_scale))
            .collect(),
        best_epoch: outcome.best_epoch,
        stopped_early: outcome.stopped_early,
        timing,
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
