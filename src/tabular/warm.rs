//! Warm start: training continues from an existing version's network, with its
//! fitted feature pipeline and target encoding kept as they are (not refit), on
//! new rows that must fit them.

use serde::{Deserialize, Serialize};

use super::{TabularError, TabularModel, TrainSpec};
use crate::data::{
    infer_schema, rows_with_target, ColumnKind, DataError, FeaturePipeline, Schema, Table,
    TargetEncoder, Task,
};
use crate::nn::{Head, Mlp, RegressionLoss, RegressionLossKind, TrainParams};

/// Where a warm start begins: a model and one of its versions. In a request the
/// version is optional (the `production` alias, else the latest); on a model
/// card it is the version the training started from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitFrom {
    /// Model name.
    pub model: String,
    /// Version number; default: the `production` alias, else the latest version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// The parts of a stored version a warm start continues from.
#[derive(Clone, Debug)]
pub struct WarmStart {
    /// The model and the version they came from.
    pub from: InitFrom,
    pub pipeline: FeaturePipeline,
    pub encoder: TargetEncoder,
    pub mlp: Mlp,
}

impl WarmStart {
    /// The warm start from version `version` of `model`.
    pub fn of(model: &str, version: u32, tabular: &TabularModel) -> WarmStart {
        WarmStart {
            from: InitFrom {
                model: model.to_string(),
                version: Some(version),
            },
            pipeline: tabular.pipeline.clone(),
            encoder: tabular.encoder.clone(),
            mlp: tabular.mlp.clone(),
        }
    }

    /// `version N of `model``, for messages.
    pub fn describe(&self) -> String {
        format!(
            "version {} of `{}`",
            self.from.version.unwrap_or_default(),
            self.from.model
        )
    }

    /// Fits `spec` to this warm start: the network's shape (`hidden_layers`,
    /// `activation`) and the regression loss come from the stored network, and the
    /// pipeline's input kinds become column overrides. `explicit` names the
    /// `params` keys the request set.
    ///
    /// # Errors
    /// [`TabularError::Mismatch`] naming what contradicts the stored model: the
    /// target, the task, `params.hidden_layers`, `params.activation`, or a column
    /// override of another kind.
    pub fn apply(&self, spec: &mut TrainSpec) -> Result<(), TabularError> {
        let what = self.describe();
        let mismatch = |field: &str, message: String| TabularError::Mismatch {
            field: field.to_string(),
            message,
        };
        if spec.target != self.encoder.column() {
            return Err(mismatch(
                "target",
                format!(
                    "`target` is `{}` but {what} predicts `{}`",
                    spec.target,
                    self.encoder.column()
                ),
            ));
        }
        if let Some(task) = spec.task {
            if task != self.encoder.task() {
                return Err(mismatch(
                    "task",
                    format!(
                        "`task` is {} but {what} is a {} model",
                        task_name(task),
                        task_name(self.encoder.task())
                    ),
                ));
            }
        }
        let arch = self.mlp.architecture();
        if spec.explicit.contains("hidden_layers") && spec.params.hidden_layers != arch.hidden {
            return Err(mismatch(
                "params.hidden_layers",
                format!(
                    "`params.hidden_layers` is {:?} but {what} has hidden layers {:?}; a warm start keeps the network's shape (leave it out)",
                    spec.params.hidden_layers, arch.hidden
                ),
            ));
        }
        if spec.explicit.contains("activation") && spec.params.activation != arch.activation {
            return Err(mismatch(
                "params.activation",
                format!(
                    "`params.activation` is {:?} but {what} uses {:?}",
                    spec.params.activation, arch.activation
                ),
            ));
        }
        for (name, kind) in self.pipeline.inputs() {
            match spec.overrides.get(&name) {
                Some(&given) if given != kind => {
                    return Err(mismatch(
                        "columns",
                        format!(
                            "`columns` makes `{name}` {} but {what} reads it as {}",
                            kind_name(given),
                            kind_name(kind)
                        ),
                    ))
                }
                _ => {
                    spec.overrides.insert(name.clone(), kind);
                }
            }
            if spec.ignore.contains(&name) {
                return Err(mismatch(
                    "ignore",
                    format!("`ignore` names `{name}`, an input of {what}"),
                ));
            }
        }
        spec.task = Some(self.encoder.task());
        spec.params.hidden_layers = arch.hidden.clone();
        spec.params.activation = arch.activation;
        set_loss(&mut spec.params, &arch.head);
        Ok(())
    }

    /// Checks that `table` fits the stored pipeline and target encoding: every
    /// input column is present and reads as the kind the pipeline was fitted on,
    /// and every target value is one the model knows (a number for regression).
    /// Returns the table's schema (the pipeline's kinds as overrides, as
    /// [`WarmStart::apply`] set them in `spec`).
    ///
    /// # Errors
    /// [`TabularError::Mismatch`] naming the first thing that does not fit.
    pub fn check_table(&self, table: &Table, spec: &TrainSpec) -> Result<Schema, TabularError> {
        let what = self.describe();
        let inputs = self.pipeline.inputs();
        if let Some((name, kind)) = inputs.iter().find(|(n, _)| table.column_index(n).is_none()) {
            return Err(TabularError::Mismatch {
                field: "init_from".into(),
                message: format!(
                    "the data has no column `{name}`, a {} input of {what}",
                    kind_name(*kind)
                ),
            });
        }
        let schema = infer_schema(table, &spec.overrides, &spec.ignore).map_err(|e| match e {
            DataError::InvalidValue {
                column,
                row,
                value,
                expected,
            } if inputs.iter().any(|(n, _)| *n == column) => {
                let kind = inputs
                    .iter()
                    .find(|(n, _)| *n == column)
                    .map_or("", |(_, k)| kind_name(*k));
                TabularError::Mismatch {
                    field: "init_from".into(),
                    message: format!(
                        "column `{column}` is {kind} in {what}, but row {row} holds {value} (expected {expected}): the data does not fit the model's pipeline"
                    ),
                }
            }
            other => other.into(),
        })?;
        let rows = rows_with_target(table, &spec.target);
        match &self.encoder {
            TargetEncoder::Classes { labels, .. } => {
                self.encoder
                    .label_indices(table, &rows)
                    .map_err(|e| match e {
                        DataError::UnknownLabel { column, row, value } => TabularError::Mismatch {
                            field: "init_from".into(),
                            message: format!(
                                "target `{column}` has {value} at row {row}, a class {what} does not know (its classes: {})",
                                labels.join(", ")
                            ),
                        },
                        other => other.into(),
                    })?;
            }
            TargetEncoder::Regression { .. } => {
                self.encoder.encode(table, &rows)?;
            }
        }
        Ok(schema)
    }
}

fn set_loss(params: &mut TrainParams, head: &Head) {
    if let Head::Regression { loss, .. } = head {
        match loss {
            RegressionLoss::Mse => params.loss = RegressionLossKind::Mse,
            RegressionLoss::Huber { delta } => {
                params.loss = RegressionLossKind::Huber;
                params.huber_delta = *delta;
            }
        }
    }
}

fn task_name(task: Task) -> &'static str {
    match task {
        Task::Classification => "classification",
        Task::Regression => "regression",
    }
}

fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Numeric => "numeric",
        ColumnKind::Boolean => "boolean",
        ColumnKind::Categorical => "categorical",
        ColumnKind::Text => "text",
        ColumnKind::Image => "image",
        ColumnKind::Audio => "audio",
        ColumnKind::Identifier => "identifier",
    }
}
