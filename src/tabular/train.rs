//! Fitting a tabular model: split, fit the pipeline on the training rows,
//! encode the target, train the network, score the validation rows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::adapt::{adapt, Validation};
use super::fit::fit_rows;
use super::search::SearchOptions;
use super::warm::{InitFrom, WarmStart};
use super::{evaluate, Metrics, TabularModel};
use crate::data::{
    check_audio, check_images, infer_schema, rows_with_target, train_test_split, ColumnKind,
    DataError, PipelineOptions, Schema, Table, TargetEncoder, Task,
};
use crate::nn::{self, Caps, Control, EpochReport, TrainParams};

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
    /// Holdout, k-fold, or `auto` (k-fold on small tables).
    pub validation: Validation,
    /// Names of the `params` fields the request set; the others are sized from the data.
    pub explicit: BTreeSet<String>,
    /// Warm start: the stored version training continues from (set with
    /// [`WarmStart::apply`]); its pipeline and target encoding are kept.
    pub init: Option<Arc<WarmStart>>,
    /// Budgeted search over the space of [`super::search`] before the final fit.
    pub search: Option<SearchOptions>,
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
    /// The parameters the network was trained with, after sizing from the data.
    pub params: TrainParams,
    /// Warm start: the version training continued from.
    pub init_from: Option<InitFrom>,
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
    /// A warm start whose data or request does not fit the stored model; `field`
    /// is the request field at fault (`init_from` for the data).
    #[error("{message}")]
    Mismatch { field: String, message: String },
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
            TabularError::Mismatch { .. } => "schema_mismatch",
        }
    }
}

/// Checks everything [`train`] would refuse before fitting: [`check_spec`],
/// then [`check_table`]. Returns the table's schema.
pub fn precheck(table: &Table, spec: &TrainSpec, caps: &Caps) -> Result<Schema, TabularError> {
    check_spec(spec, caps)?;
    check_table(table, spec, caps)
}

/// The checks of a spec that need no data: parameters within `caps`, the
/// validation and the pipeline options.
pub fn check_spec(spec: &TrainSpec, caps: &Caps) -> Result<(), TabularError> {
    spec.params.check(caps).map_err(nn::TrainError::from)?;
    spec.validation.check().map_err(nn::TrainError::from)?;
    if let Some(search) = &spec.search {
        search.check().map_err(nn::TrainError::from)?;
    }
    spec.pipeline.validate()?;
    Ok(())
}

/// The checks of a spec against a table: the target exists and has at least
/// two labelled rows (two classes for classification), the schema can be
/// inferred and leaves features, the network fits `caps.max_parameters`, the
/// folds fit the labelled rows, and every image and audio cell decodes.
/// Returns the table's schema.
pub fn check_table(table: &Table, spec: &TrainSpec, caps: &Caps) -> Result<Schema, TabularError> {
    if table.column_index(&spec.target).is_none() {
        return Err(DataError::UnknownColumn {
            name: spec.target.clone(),
        }
        .into());
    }
    let schema = match &spec.init {
        Some(init) => init.check_table(table, spec)?,
        None => infer_schema(table, &spec.overrides, &spec.ignore)?,
    };
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
    if spec.search.is_some() && rows.len() < super::MIN_SEARCH_ROWS {
        return Err(nn::TrainError::from(nn::invalid_param(
            "search",
            rows.len(),
            format!(
                "labelled rows; a search needs at least {}",
                super::MIN_SEARCH_ROWS
            ),
        ))
        .into());
    }
    if let Validation::Kfold { folds, .. } = spec.validation {
        if folds > rows.len() {
            return Err(nn::TrainError::from(nn::invalid_param(
                "validation.folds",
                folds,
                format!("exceeds the {} labelled rows", rows.len()),
            ))
            .into());
        }
    }
    if spec.init.is_none() {
        TargetEncoder::fit_limited(table, &rows, &spec.target, spec.task, caps.max_categories)?;
    }
    check_images(table, &rows, &schema, &spec.target, &spec.pipeline.image)?;
    check_audio(table, &rows, &schema, &spec.target, &spec.pipeline.audio)?;
    Ok(schema)
}

/// Epochs a training run on `labelled` labelled rows is expected to report: the
/// sized epoch budget, times folds + 1 under cross-validation (an upper bound when
/// early stopping ends fits sooner).
pub fn planned_epochs(spec: &TrainSpec, labelled: usize) -> usize {
    let params = adapt(&spec.params, &spec.explicit, labelled);
    let searched = spec
        .search
        .as_ref()
        .map_or(0, |s| super::search_epochs(s.max_trials, params.epochs));
    searched.saturating_add(
        match spec
            .validation
            .folds_for(labelled, &spec.params, &spec.explicit)
        {
            Some((folds, _)) => params.epochs.saturating_mul(folds + 1),
            None => params.epochs,
        },
    )
}

/// Trains a tabular model on `table`.
///
/// Rows with a missing target are dropped. Parameters the request did not set
/// are sized from the labelled rows ([`adapt`]). With a holdout,
/// `params.validation_fraction` of the labelled rows (seeded by `params.seed`)
/// are held out: the pipeline is fitted on the rest, the network early-stops on
/// the held-out rows and the returned metrics are computed on them. With k-fold
/// validation (asked for, or `auto` on a small table) see [`super::cv`].
///
/// The spec and table are checked first ([`precheck`]); a caller that checked
/// them already (the service, at submit) calls [`train_checked`].
pub fn train(
    table: &Table,
    spec: &TrainSpec,
    caps: &Caps,
    control: Control,
) -> Result<TrainedModel, TabularError> {
    let schema = precheck(table, spec, caps)?;
    train_checked(table, schema, spec, caps, control)
}

/// [`train`] without its checks, for a spec and table already checked (by
/// [`precheck`], or [`check_spec`] and [`check_table`]) whose `schema` they gave.
pub fn train_checked(
    table: &Table,
    schema: Schema,
    spec: &TrainSpec,
    caps: &Caps,
    control: Control,
) -> Result<TrainedModel, TabularError> {
    let labelled = rows_with_target(table, &spec.target);
    let params = adapt(&spec.params, &spec.explicit, labelled.len());
    if spec.search.is_some() {
        return train_searched(table, schema, spec, &params, &labelled, caps, control);
    }
    if let Some((folds, stratified)) =
        spec.validation
            .folds_for(labelled.len(), &spec.params, &spec.explicit)
    {
        let seed = params.seed;
        let mut trained = super::cv::train_kfold(
            table, schema, spec, params, &labelled, folds, stratified, caps, control,
        )?;
        // The served model was refit on every labelled row: measure on those.
        measure_importance_and_compression(&mut trained.model, table, &labelled, seed)?;
        return Ok(trained);
    }
    let fraction = f64::from(params.validation_fraction);
    let (train_rows, valid_rows) = if fraction > 0.0 && labelled.len() >= 10 {
        let (train_idx, valid_idx) = train_test_split(labelled.len(), fraction, params.seed);
        (
            train_idx.iter().map(|&i| labelled[i]).collect::<Vec<_>>(),
            valid_idx.iter().map(|&i| labelled[i]).collect::<Vec<_>>(),
        )
    } else {
        (labelled, Vec::new())
    };
    let encoder = target_encoder(table, &train_rows, spec, caps)?;
    let fitted = fit_rows(
        table,
        &schema,
        spec,
        &params,
        encoder,
        &train_rows,
        &valid_rows,
        caps,
        control,
    )?;
    let epochs = fitted.history.len();
    let timing = TrainingTiming {
        epochs,
        train_rows: train_rows.len(),
        validation_rows: valid_rows.len(),
        fit_cpu_seconds: fitted.cpu_seconds,
        fit_wall_seconds: fitted.wall_seconds,
        cpu_seconds_per_epoch: fitted.cpu_seconds / epochs.max(1) as f64,
        rows_per_second: (train_rows.len() * epochs) as f64 / fitted.wall_seconds.max(1e-9),
    };
    // Too few rows to hold any out: score the rows it learned from, and say so.
    let (scored, evaluated_on) = if valid_rows.is_empty() {
        (&train_rows, "training")
    } else {
        (&valid_rows, "validation")
    };
    let mut model = fitted.model;
    let mut metrics = evaluate(&model, table, scored)?;
    metrics.evaluated_on = Some(evaluated_on.to_string());
    measure_importance_and_compression(&mut model, table, scored, params.seed)?;
    Ok(TrainedModel {
        model,
        schema,
        metrics,
        history: fitted.history,
        best_epoch: fitted.best_epoch,
        stopped_early: fitted.stopped_early,
        timing,
        params,
        init_from: spec.init.as_ref().map(|init| init.from.clone()),
    })
}

/// A search ([`super::search`]), then the final fit with the best trial's settings;
/// its metrics carry the search's report. Epochs are numbered on across both.
fn train_searched(
    table: &Table,
    schema: Schema,
    spec: &TrainSpec,
    params: &TrainParams,
    labelled: &[usize],
    caps: &Caps,
    control: Control,
) -> Result<TrainedModel, TabularError> {
    let Control { on_epoch, cancel } = control;
    let searched = super::search::search(
        table,
        &schema,
        spec,
        params,
        labelled,
        caps,
        Control {
            on_epoch: &mut *on_epoch,
            cancel,
        },
    )?;
    let offset = searched.epochs;
    let mut forward = |r: &EpochReport| {
        on_epoch(&EpochReport {
            epoch: r.epoch + offset,
            ..r.clone()
        })
    };
    let mut trained = train_checked(
        table,
        schema,
        &searched.spec,
        caps,
        Control {
            on_epoch: &mut forward,
            cancel,
        },
    )?;
    trained.metrics.search = Some(Box::new(searched.report));
    Ok(trained)
}

/// The target encoding of a fit on `rows`: the warm start's, kept as it is, or
/// one fitted on the rows.
pub(crate) fn target_encoder(
    table: &Table,
    rows: &[usize],
    spec: &TrainSpec,
    caps: &Caps,
) -> Result<TargetEncoder, TabularError> {
    match &spec.init {
        Some(init) => Ok(init.encoder.clone()),
        None => Ok(TargetEncoder::fit_limited(
            table,
            rows,
            &spec.target,
            spec.task,
            caps.max_categories,
        )?),
    }
}

/// Stores the permutation importance of each input column and the cost of the
/// compressed copies, both measured on `rows`, in `model`.
fn measure_importance_and_compression(
    model: &mut TabularModel,
    table: &Table,
    rows: &[usize],
    seed: u64,
) -> Result<(), TabularError> {
    model.importance = Some(super::permutation_importance(model, table, rows, seed)?);
    model.compression = Some(model.compression_report(table, rows)?);
    Ok(())
}
