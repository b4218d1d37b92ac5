//! Training parameters, the service's hard caps, their validation, and the optimizer
//! settings the parameters give.

use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::loss::{Head, RegressionLoss};
use super::mlp::{Architecture, Init};
use super::optim::{OptimizerConfig, OptimizerKind, Schedule};

/// A rejected parameter: its name (dotted for nested fields), its value, and why.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ParamError {
    /// `name` (dotted for nested fields) has the rejected `value`, for `reason`.
    #[error("parameter `{name}` = {value}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// A [`ParamError::Invalid`] naming the parameter and its value.
pub fn invalid_param(
    name: &'static str,
    value: impl std::fmt::Debug,
    reason: impl Into<String>,
) -> ParamError {
    ParamError::Invalid {
        name,
        value: format!("{value:?}"),
        reason: reason.into(),
    }
}

use invalid_param as invalid;

/// Loss used by regression heads, as chosen in [`TrainParams::loss`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLossKind {
    Mse,
    Huber,
}

/// Training parameters. Every field has a default, so `{}` deserialises to
/// [`TrainParams::default`]; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    /// Hidden layer widths, input side first; may be empty (a linear model). Default `[128, 64]`.
    pub hidden_layers: Vec<usize>,
    /// Hidden-layer activation. Default `relu`.
    pub activation: Activation,
    /// Default `adam_w`.
    pub optimizer: OptimizerKind,
    /// Initial learning rate, `> 0`. Default `1e-3`.
    pub learning_rate: f32,
    /// SGD momentum in `[0, 1)`. Default `0.9`.
    pub momentum: f32,
    /// Nesterov momentum for SGD. Default `false`.
    pub nesterov: bool,
    /// Adam first-moment decay in `[0, 1)`. Default `0.9`.
    pub beta1: f32,
    /// Adam second-moment decay in `[0, 1)`. Default `0.999`.
    pub beta2: f32,
    /// Adam denominator term, `> 0`. Default `1e-8`.
    pub epsilon: f32,
    /// Decoupled weight decay applied by `adam_w` to weights (not biases); ignored by the
    /// other optimizers. `>= 0`, default `1e-4`.
    pub weight_decay: f32,
    /// Penalty `½·l2·‖W‖²` over all weights (not biases) added to the loss, for every
    /// optimizer. `>= 0`, default `0`.
    pub l2: f32,
    /// Inverted-dropout rate on hidden activations during training, in `[0, 1)`. Default `0`.
    pub dropout: f32,
    /// Weight initialisation. Default `auto`.
    pub init: Init,
    /// Learning-rate schedule, stepped once per epoch. Default `constant`.
    pub schedule: Schedule,
    /// Rescale the whole gradient when its global L2 norm exceeds this, `> 0`. Default none.
    pub clip_grad_norm: Option<f32>,
    /// Rows per mini-batch, `1..=caps.max_batch_size`. Default `256`.
    pub batch_size: usize,
    /// Maximum epochs, `1..=caps.max_epochs`. Default `30`.
    pub epochs: usize,
    /// Share of the training rows held out for validation when no validation set is given,
    /// in `[0, 0.5]`. Default `0.1`.
    pub validation_fraction: f32,
    /// Stop after this many consecutive epochs without improvement of the monitored loss
    /// (`0` acts as `1`) and restore the best weights; `None` trains all epochs and keeps the
    /// last weights. Default `Some(5)`.
    pub early_stopping_patience: Option<usize>,
    /// Minimum decrease of the monitored loss that counts as improvement, `>= 0`. Default `0`.
    pub min_delta: f32,
    /// Reshuffle training rows every epoch. Default `true`.
    pub shuffle: bool,
    /// Seeds initialisation, the validation split, shuffling and dropout. Default `42`.
    pub seed: u64,
    /// Regression loss for callers building a regression [`Head`]; see
    /// [`TrainParams::regression_loss`]. Default `mse`.
    pub loss: RegressionLossKind,
    /// Huber threshold, `> 0`. Default `1.0`.
    pub huber_delta: f32,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            hidden_layers: vec![128, 64],
            activation: Activation::Relu,
            optimizer: OptimizerKind::AdamW,
            learning_rate: 1e-3,
            momentum: 0.9,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1e-4,
            l2: 0.0,
            dropout: 0.0,
            init: Init::Auto,
            schedule: Schedule::Constant,
            clip_grad_norm: None,
            batch_size: 256,
            epochs: 30,
            validation_fraction: 0.1,
            early_stopping_patience: Some(5),
            min_delta: 0.0,
            shuffle: true,
            seed: 42,
            loss: RegressionLossKind::Mse,
            huber_delta: 1.0,
        }
    }
}

impl TrainParams {
    /// The [`RegressionLoss`] selected by `loss` and `huber_delta`, for building
    /// [`Head::Regression`]. `fit` itself uses the loss inside the head it is given.
    pub fn regression_loss(&self) -> RegressionLoss {
        match self.loss {
            RegressionLossKind::Mse => RegressionLoss::Mse,
            RegressionLossKind::Huber => RegressionLoss::Huber {
                delta: self.huber_delta,
            },
        }
    }

    /// Validates every field against its documented range and against `caps`.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] for the first offending field, naming it and its value.
    pub fn check(&self, caps: &Caps) -> Result<(), ParamError> {
        caps.check_hidden_layers(&self.hidden_layers)?;
        positive("learning_rate", self.learning_rate)?;
        unit_interval("momentum", self.momentum)?;
        unit_interval("beta1", self.beta1)?;
        unit_interval("beta2", self.beta2)?;
        positive("epsilon", self.epsilon)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("l2", self.l2)?;
        unit_interval("dropout", self.dropout)?;
        self.check_schedule()?;
        if let Some(clip) = self.clip_grad_norm {
            positive("clip_grad_norm", clip)?;
        }
        in_range(
            "batch_size",
            self.batch_size,
            1,
            caps.max_batch_size,
            "max_batch_size",
        )?;
        in_range("epochs", self.epochs, 1, caps.max_epochs, "max_epochs")?;
        let fraction = self.validation_fraction;
        if !(fraction.is_finite() && (0.0..=0.5).contains(&fraction)) {
            return Err(invalid(
                "validation_fraction",
                fraction,
                "must be in [0, 0.5]",
            ));
        }
        non_negative("min_delta", self.min_delta)?;
        positive("huber_delta", self.huber_delta)?;
        Ok(())
    }

    fn check_schedule(&self) -> Result<(), ParamError> {
        match self.schedule {
            Schedule::Constant => Ok(()),
            Schedule::Cosine { min_lr } => self.check_min_lr(min_lr),
            Schedule::ReduceOnPlateau { factor, min_lr, .. } => {
                if !(factor.is_finite() && factor > 0.0 && factor < 1.0) {
                    return Err(invalid("schedule.factor", factor, "must be in (0, 1)"));
                }
                self.check_min_lr(min_lr)
            }
        }
    }
}

impl OptimizerConfig {
    /// The optimizer settings of checked `params`.
    pub(crate) fn from_params(params: &TrainParams) -> Self {
        OptimizerConfig {
            kind: params.optimizer,
            momentum: params.momentum,
            nesterov: params.nesterov,
            beta1: params.beta1,
            beta2: params.beta2,
            epsilon: params.epsilon,
            weight_decay: params.weight_decay,
        }
    }
}

impl TrainParams {
    fn check_min_lr(&self, min_lr: f32) -> Result<(), ParamError> {
        non_negative("schedule.min_lr", min_lr)?;
        if min_lr > self.learning_rate {
            return Err(invalid(
                "schedule.min_lr",
                min_lr,
                format!("must not exceed learning_rate {}", self.learning_rate),
            ));
        }
        Ok(())
    }
}

fn positive(name: &'static str, value: f32) -> Result<(), ParamError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "must be finite and > 0"))
    }
}

fn non_negative(name: &'static str, value: f32) -> Result<(), ParamError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "must be finite and >= 0"))
    }
}

fn unit_interval(name: &'static str, value: f32) -> Result<(), ParamError> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(name, value, "must be in [0, 1)"))
    }
}

fn in_range(
    name: &'static str,
    value: usize,
    min: usize,
    max: usize,
    cap_name: &str,
) -> Result<(), ParamError> {
    if value < min {
        Err(invalid(name, value, format!("must be at least {min}")))
    } else if value > max {
        Err(invalid(
            name,
            value,
            format!("exceeds the limit `training.{cap_name}` = {max}"),
        ))
    } else {
        Ok(())
    }
}

/// Hard caps so no request can allocate unbounded memory; configurable by the service.
/// Missing fields take their defaults; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    /// Default 8.
    pub max_hidden_layers: usize,
    /// Widest hidden layer. Default 4096.
    pub max_layer_width: usize,
    /// Total weights plus biases. Default 20,000,000.
    pub max_parameters: usize,
    /// Default 10,000.
    pub max_epochs: usize,
    /// Default 65,536.
    pub max_batch_size: usize,
    /// Batch rows × `(inputs + Σ hidden + outputs)`: bounds training buffer memory to
    /// about 20 bytes per unit. Default 50,000,000.
    pub max_batch_activations: usize,
    /// Most distinct classes of a classification target; categorical
    /// features with more values are hashed, whatever `max_one_hot` says.
    /// Default 1,000.
    pub max_categories: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_hidden_layers: 8,
            max_layer_width: 4096,
            max_parameters: 20_000_000,
            max_epochs: 10_000,
            max_batch_size: 65_536,
            max_batch_activations: 50_000_000,
            max_categories: 1_000,
        }
    }
}

impl Caps {
    /// Validates an architecture: `inputs >= 1`, hidden layers within the caps,
    /// `outputs == head.outputs() >= 1`, at least two classes for `multiclass`, a finite
    /// positive Huber delta, and at most `max_parameters` parameters.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] naming the offending field (`inputs`, `hidden_layers`,
    /// `outputs`, `head.classes`, `head.loss.delta`, or `parameters`).
    pub fn check_architecture(&self, arch: &Architecture) -> Result<(), ParamError> {
        if arch.inputs == 0 {
            return Err(invalid("inputs", arch.inputs, "must be at least 1"));
        }
        self.check_hidden_layers(&arch.hidden)?;
        if arch.outputs != arch.head.outputs() {
            return Err(invalid(
                "outputs",
                arch.outputs,
                format!("must equal the head's output count {}", arch.head.outputs()),
            ));
        }
        match arch.head {
            Head::Multiclass { classes } if classes < 2 => {
                return Err(invalid("head.classes", classes, "must be at least 2"));
            }
            Head::Regression {
                loss: RegressionLoss::Huber { delta },
                ..
            } => positive("head.loss.delta", delta)?,
            _ => {}
        }
        if arch.outputs == 0 {
            return Err(invalid("outputs", arch.outputs, "must be at least 1"));
        }
        let parameters = arch.parameter_count();
        if parameters > self.max_parameters {
            return Err(invalid(
                "parameters",
                parameters,
                format!(
                    "exceeds the limit `training.max_parameters` = {}",
                    self.max_parameters
                ),
            ));
        }
        Ok(())
    }

    /// Checks that training `arch` in batches of `batch_rows` rows stays within
    /// `max_batch_activations`.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] naming `batch_size`.
    pub fn check_batch_memory(
        &self,
        arch: &Architecture,
        batch_rows: usize,
    ) -> Result<(), ParamError> {
        let units = arch
            .widths()
            .iter()
            .fold(0_usize, |total, &w| total.saturating_add(w));
        let activations = units.saturating_mul(batch_rows);
        if activations > self.max_batch_activations {
            return Err(invalid(
                "batch_size",
                batch_rows,
                format!(
                    "{batch_rows} rows × {units} units = {activations} activations exceed the \
                     limit `training.max_batch_activations` = {}",
                    self.max_batch_activations
                ),
            ));
        }
        Ok(())
    }

    fn check_hidden_layers(&self, hidden: &[usize]) -> Result<(), ParamError> {
        if hidden.len() > self.max_hidden_layers {
            return Err(invalid(
                "hidden_layers",
                hidden,
                format!(
                    "{} layers exceed the limit `training.max_hidden_layers` = {}",
                    hidden.len(),
                    self.max_hidden_layers
                ),
            ));
        }
        if let Some(&width) = hidden.iter().find(|&&w| w == 0) {
            return Err(invalid(
                "hidden_layers",
                hidden,
                format!("layer width {width} must be at least 1"),
            ));
        }
        if let Some(&width) = hidden.iter().find(|&&w| w > self.max_layer_width) {
            return Err(invalid(
                "hidden_layers",
                hidden,
                format!(
                    "layer width {width} exceeds the limit `training.max_layer_width` = {}",
                    self.max_layer_width
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
