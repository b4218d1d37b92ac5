//! The `fit` loop: validation split, epochs, schedules, early stopping, progress
//! reporting and cancellation (the data checks it runs first are in `set`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::dense::Dense;
use super::loss::Head;
use super::mlp::{Architecture, Mlp};
use super::optim::LrScheduler;
use super::params::{Caps, TrainParams};
use super::set::{check_set, TrainError, TrainSet};
use super::sparse::CsrMatrix;
use super::trainer::Trainer;

/// ChaCha stream for the held-out validation split.
const SPLIT_STREAM: u64 = 1;
/// ChaCha stream for per-epoch shuffling.
const SHUFFLE_STREAM: u64 = 2;

/// Progress after one epoch. Losses are mean weighted losses `Σ wᵢ·lossᵢ / n` without the
/// L2 penalty; `train_loss` averages the epoch's batches as they were trained.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    /// Mean weighted training loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean weighted validation loss after the epoch; `None` without validation rows.
    pub valid_loss: Option<f64>,
    /// Unweighted validation metric named by `metric`.
    pub valid_metric: Option<f64>,
    /// [`Head::metric_name`].
    pub metric: String,
    /// Rate used during this epoch.
    pub learning_rate: f64,
    /// Seconds since `fit` started.
    pub elapsed_secs: f64,
    /// 1-based trial of a budgeted search this epoch belongs to; `None` outside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<usize>,
}

/// Hooks into a running `fit`: `on_epoch` after every epoch; training stops with
/// [`TrainError::Cancelled`] at the next batch (or epoch end) after `cancel` becomes true.
pub struct Control<'a> {
    /// Called synchronously after every completed epoch.
    pub on_epoch: &'a mut dyn FnMut(&EpochReport),
    /// Polled before every batch and after every epoch.
    pub cancel: &'a AtomicBool,
}

impl<'a> Control<'a> {
    /// Hooks with a progress callback.
    pub fn new(on_epoch: &'a mut dyn FnMut(&EpochReport), cancel: &'a AtomicBool) -> Self {
        Control { on_epoch, cancel }
    }

    /// No progress callback; stops only if `cancel` is set.
    pub fn none(cancel: &'a AtomicBool) -> Self {
        Control {
            on_epoch: Box::leak(Box::new(|_: &EpochReport| {})),
            cancel,
        }
    }

    /// A point between two units of work (a batch, a block): yields the CPU on
    /// a background thread (see [`crate::cooperative::yield_point`]), then tells whether
    /// training should stop.
    pub fn stop_requested(&self) -> bool {
        should_stop(self.cancel)
    }
}

/// [`Control::stop_requested`] for code that holds only the flag.
pub fn should_stop(cancel: &AtomicBool) -> bool {
    crate::cooperative::yield_point();
    cancel.load(Ordering::Relaxed)
}

/// Result of a successful `fit`.
#[derive(Clone, Debug)]
pub struct FitOutcome {
    /// The trained network (best weights under early stopping).
    pub model: Mlp,
    /// One report per completed epoch.
    pub history: Vec<EpochReport>,
    /// 1-based epoch whose weights `model` holds: the best monitored loss with early
    /// stopping, else the last epoch.
    pub best_epoch: usize,
    /// Whether early stopping ended training before `epochs`.
    pub stopped_early: bool,
}

/// Trains an [`Mlp`] with architecture `(x.ncols(), params.hidden_layers, head.outputs(),
/// params.activation, head)`, starting from `Mlp::new(arch, params.init, params.seed)`.
///
/// Validation uses `valid` if given, else a seeded random `validation_fraction` of `train`
/// (none when that rounds to zero rows or leaves no training rows). The monitored loss for
/// early stopping and `reduce_on_plateau` is the validation loss, or the training loss
/// without validation. With `early_stopping_patience`, training stops after that many
/// epochs without improvement by more than `min_delta`, and the best weights are
/// restored. Regression heads use the loss inside `head`. Deterministic: the same seed and
/// data give bit-identical weights.
///
/// # Errors
/// [`TrainError::Params`] if `params`, the architecture or the batch buffer size
/// (`min(batch_size, training rows)`) violate `caps` (checked first);
/// [`TrainError::Shape`] for mismatched, empty or out-of-range data;
/// [`TrainError::Cancelled`]; [`TrainError::NonFinite`] if the loss or weights diverge.
pub fn fit(
    train: TrainSet,
    valid: Option<TrainSet>,
    head: Head,
    params: &TrainParams,
    caps: &Caps,
    control: Control,
) -> Result<FitOutcome, TrainError> {
    fit_inner(None, train, valid, head, params, caps, control)
}

/// [`fit`] continuing from `initial`'s weights instead of a fresh network (a warm
/// start): its architecture must be the one `fit` would build from `train`, `head`
/// and `params` (inputs, `hidden_layers`, `activation`, outputs). The optimizer
/// state starts fresh.
///
/// # Errors
/// As [`fit`]; [`TrainError::Shape`] when `initial` has another architecture.
pub fn fit_from(
    initial: Mlp,
    train: TrainSet,
    valid: Option<TrainSet>,
    head: Head,
    params: &TrainParams,
    caps: &Caps,
    control: Control,
) -> Result<FitOutcome, TrainError> {
    fit_inner(Some(initial), train, valid, head, params, caps, control)
}

fn fit_inner(
    initial: Option<Mlp>,
    train: TrainSet,
    valid: Option<TrainSet>,
    head: Head,
    params: &TrainParams,
    caps: &Caps,
    control: Control,
) -> Result<FitOutcome, TrainError> {
    let started = Instant::now();
    params.check(caps)?;
    let arch = Architecture {
        inputs: train.inputs(),
        hidden: params.hidden_layers.clone(),
        outputs: head.outputs(),
        activation: params.activation,
        head,
    };
    caps.check_architecture(&arch)?;
    check_set("train", &train, &arch)?;
    if let Some(valid) = &valid {
        check_set("valid", valid, &arch)?;
        if valid.x.ncols() != train.x.ncols() {
            return Err(TrainError::Shape(format!(
                "valid: {} dense columns, train has {}",
                valid.x.ncols(),
                train.x.ncols()
            )));
        }
    }
    let train = train.view();
    let valid = valid.as_ref().map(TrainSet::view);
    let (mut train_indices, validation) = split(&train, valid, params);
    let capacity = params.batch_size.min(train_indices.len());
    // Sparse inputs are never materialized per batch, so only the dense ones count.
    let sparse_inputs = train.sparse.map_or(0, CsrMatrix::cols);
    let batch_arch = Architecture {
        inputs: arch.inputs - sparse_inputs,
        ..arch.clone()
    };
    caps.check_batch_memory(&batch_arch, capacity)?;
    let model = match initial {
        Some(model) if model.architecture() == arch => model,
        Some(model) => {
            return Err(TrainError::Shape(format!(
                "the initial network has architecture {:?}, the data and parameters give {:?}",
                model.architecture().widths(),
                arch.widths()
            )))
        }
        None => Mlp::new(&arch, params.init, params.seed),
    };
    let mut trainer = Trainer::from_model(model, params, capacity, sparse_inputs);
    let mut shuffle_rng = ChaCha8Rng::seed_from_u64(params.seed);
    shuffle_rng.set_stream(SHUFFLE_STREAM);
    let mut scheduler = LrScheduler::new(
        &params.schedule,
        params.learning_rate,
        params.epochs,
        params.min_delta,
    );
    let mut history = Vec::with_capacity(params.epochs.min(1024));
    let mut best = BestWeights::new(trainer.model().layers(), params.min_delta);
    let mut stopped_early = false;
    for epoch in 1..=params.epochs {
        let learning_rate = scheduler.learning_rate(epoch - 1);
        if params.shuffle {
            train_indices.shuffle(&mut shuffle_rng);
        }
        let mut loss_sum = 0.0;
        for batch in train_indices.chunks(capacity) {
            if control.stop_requested() {
                return Err(TrainError::Cancelled);
            }
            loss_sum += trainer.step(&train, batch, learning_rate);
        }
        let train_loss = loss_sum / train_indices.len() as f64;
        if !train_loss.is_finite() || !all_finite(trainer.model()) {
            return Err(TrainError::NonFinite { epoch });
        }
        let evaluation = validation
            .as_ref()
            .map(|(set, indices)| trainer.evaluate(set, indices));
        let valid_loss = evaluation.as_ref().map(|e| e.loss());
        if valid_loss.is_some_and(|loss| !loss.is_finite()) {
            return Err(TrainError::NonFinite { epoch });
        }
        let report = EpochReport {
            epoch,
            train_loss,
            valid_loss,
            valid_metric: evaluation.as_ref().map(|e| e.metric(&head)),
            metric: head.metric_name().to_owned(),
            learning_rate: f64::from(learning_rate),
            elapsed_secs: started.elapsed().as_secs_f64(),
            trial: None,
        };
        (control.on_epoch)(&report);
        history.push(report);
        if control.cancel.load(Ordering::Relaxed) {
            return Err(TrainError::Cancelled);
        }
        let monitored = valid_loss.unwrap_or(train_loss);
        scheduler.observe(monitored);
        best.observe(epoch, monitored, trainer.model().layers());
        if let Some(patience) = params.early_stopping_patience {
            if best.epochs_since_best >= patience.max(1) && epoch < params.epochs {
                stopped_early = true;
                break;
            }
        }
    }
    let best_epoch = if params.early_stopping_patience.is_some() {
        best.restore_into(trainer.layers_mut());
        best.epoch
    } else {
        history.len()
    };
    Ok(FitOutcome {
        model: trainer.into_model(),
        history,
        best_epoch,
        stopped_early,
    })
}

/// The weights at the lowest monitored loss so far.
struct BestWeights {
    layers: Vec<Dense>,
    loss: f64,
    epoch: usize,
    epochs_since_best: usize,
    min_delta: f64,
}

impl BestWeights {
    fn new(layers: &[Dense], min_delta: f32) -> Self {
        BestWeights {
            layers: layers.to_vec(),
            loss: f64::INFINITY,
            epoch: 0,
            epochs_since_best: 0,
            min_delta: f64::from(min_delta),
        }
    }

    /// Records `epoch`'s monitored loss, snapshotting `layers` if it improves on the best
    /// by more than `min_delta`.
    fn observe(&mut self, epoch: usize, loss: f64, layers: &[Dense]) {
        if loss < self.loss - self.min_delta {
            self.loss = loss;
            self.epoch = epoch;
            self.epochs_since_best = 0;
            for (saved, current) in self.layers.iter_mut().zip(layers) {
                saved.weight.assign(&current.weight);
                saved.bias.assign(&current.bias);
            }
        } else {
            self.epochs_since_best += 1;
        }
    }

    fn restore_into(&self, layers: &mut [Dense]) {
        for (layer, saved) in layers.iter_mut().zip(&self.layers) {
            layer.weight.assign(&saved.weight);
            layer.bias.assign(&saved.bias);
        }
    }
}

type Validation<'a> = Option<(TrainSet<'a>, Vec<usize>)>;

/// Training row indices and the validation rows (explicit set, or held out from `train`).
fn split<'a>(
    train: &TrainSet<'a>,
    valid: Option<TrainSet<'a>>,
    params: &TrainParams,
) -> (Vec<usize>, Validation<'a>) {
    let rows = train.rows();
    if let Some(valid) = valid {
        return (
            (0..rows).collect(),
            Some((valid, (0..valid.rows()).collect())),
        );
    }
    let held_out = (rows as f64 * f64::from(params.validation_fraction)).round() as usize;
    if held_out == 0 || held_out >= rows {
        return ((0..rows).collect(), None);
    }
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream(SPLIT_STREAM);
    order.shuffle(&mut rng);
    let mut valid_indices = order[..held_out].to_vec();
    let mut train_indices = order[held_out..].to_vec();
    valid_indices.sort_unstable();
    train_indices.sort_unstable();
    (train_indices, Some((*train, valid_indices)))
}

fn all_finite(model: &Mlp) -> bool {
    model
        .layers()
        .iter()
        .all(|l| l.weight.iter().chain(l.bias.iter()).all(|v| v.is_finite()))
}

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "train_options_tests.rs"]
mod options_tests;
