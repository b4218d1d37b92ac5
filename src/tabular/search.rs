//! Budgeted search: successive halving over a fixed space of network, optimizer
//! and pipeline settings, every trial scored on one seeded holdout, then the
//! best trial's settings trained (by the caller) as the version.
//!
//! The space (a parameter the request set is kept as given, not searched):
//!
//! | setting | values |
//! |---|---|
//! | hidden width | 64, 128, 256, 512 (every hidden layer) |
//! | depth | 1, 2, 3 hidden layers |
//! | `dropout` | 0, 0.1, 0.2, 0.3 |
//! | `learning_rate` | log-uniform in [3e-4, 3e-3], two significant digits |
//! | `weight_decay` | 0, 1e-5, 1e-4, 1e-3 |
//! | `pipeline.numeric_bins` | 0 (scaled value only), 8, 16, 32 piecewise-linear bins |
//!
//! Trial 1 is the default recipe (the adapted defaults); the others are drawn
//! from the space with the job's seed, so the same seed gives the same trials and,
//! unless the time budget cuts the search, the same leaderboard.

use std::collections::BTreeSet;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::cv::renumbered;
use super::fit::fit_rows;
use super::train::target_encoder;
use super::{TabularError, TrainSpec};
use crate::data::{train_test_split, Schema, Table};
use crate::nn::{invalid_param, Caps, Control, EpochReport, ParamError, TrainError, TrainParams};

/// Most trials a search may ask for.
pub const MAX_TRIALS: usize = 256;
/// Each rung keeps the best third of its trials.
pub const ETA: usize = 3;
/// Fewest labelled rows a search accepts (its holdout needs rows to rank on).
pub const MIN_SEARCH_ROWS: usize = 20;
/// ChaCha stream of the trial sampling.
const SAMPLE_STREAM: u64 = 7;

const WIDTHS: [usize; 4] = [64, 128, 256, 512];
const DEPTHS: [usize; 3] = [1, 2, 3];
const DROPOUTS: [f64; 4] = [0.0, 0.1, 0.2, 0.3];
const WEIGHT_DECAYS: [f64; 4] = [0.0, 1e-5, 1e-4, 1e-3];
const NUMERIC_BINS: [usize; 4] = [0, 8, 16, 32];
const LEARNING_RATES: (f64, f64) = (3e-4, 3e-3);

/// `"search": {"max_trials": 16, "max_seconds": 120}` on a tabular training request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchOptions {
    /// Configurations sampled, `1..=256`. Default 16.
    #[serde(default = "default_trials")]
    pub max_trials: usize,
    /// Wall-clock budget of the search (the final fit excluded), `> 0`. Trials not
    /// started by then are skipped and the report says so. Default 120.
    #[serde(default = "default_seconds")]
    pub max_seconds: f64,
}

fn default_trials() -> usize {
    16
}

fn default_seconds() -> f64 {
    120.0
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            max_trials: default_trials(),
            max_seconds: default_seconds(),
        }
    }
}

impl SearchOptions {
    /// # Errors
    /// [`ParamError::Invalid`] naming `search.max_trials` or `search.max_seconds`.
    pub fn check(&self) -> Result<(), ParamError> {
        if !(1..=MAX_TRIALS).contains(&self.max_trials) {
            return Err(invalid_param(
                "search.max_trials",
                self.max_trials,
                format!("must be in 1..={MAX_TRIALS}"),
            ));
        }
        if !(self.max_seconds.is_finite() && self.max_seconds > 0.0) {
            return Err(invalid_param(
                "search.max_seconds",
                self.max_seconds,
                "must be finite and > 0",
            ));
        }
        Ok(())
    }
}

/// The searched settings of one trial.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TrialParams {
    pub hidden_layers: Vec<usize>,
    pub dropout: f64,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// `pipeline.numeric_bins`.
    pub numeric_bins: usize,
}

impl TrialParams {
    /// These settings applied to `params` and `spec`'s pipeline.
    fn apply(&self, spec: &TrainSpec, params: &TrainParams) -> (TrainSpec, TrainParams) {
        let params = TrainParams {
            hidden_layers: self.hidden_layers.clone(),
            dropout: self.dropout as f32,
            learning_rate: self.learning_rate as f32,
            weight_decay: self.weight_decay as f32,
            ..params.clone()
        };
        let mut spec = spec.clone();
        spec.pipeline.numeric_bins = self.numeric_bins;
        (spec, params)
    }
}

/// One rung of successive halving: how many trials it trains, for how many epochs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Rung {
    pub trials: usize,
    pub epochs: usize,
}

/// The rungs of a search of `trials` configurations whose full budget is
/// `max_epochs`: each rung keeps the best `1/ETA` (rounded up) of the previous
/// one, down to the last rung of at most `ETA` trials, which trains for
/// `max_epochs`; each earlier rung for `ETA` times fewer epochs (at least 1).
pub fn halving_schedule(trials: usize, max_epochs: usize) -> Vec<Rung> {
    let mut sizes = vec![trials.max(1)];
    while let Some(&last) = sizes.last() {
        if last <= ETA {
            break;
        }
        sizes.push(last.div_ceil(ETA));
    }
    let rungs = sizes.len();
    sizes
        .into_iter()
        .enumerate()
        .map(|(i, trials)| {
            let shrink = ETA.saturating_pow((rungs - 1 - i) as u32);
            Rung {
                trials,
                epochs: max_epochs.div_ceil(shrink).max(1),
            }
        })
        .collect()
}

/// Epochs a search reports at most: every rung's trials times its epochs.
pub fn search_epochs(trials: usize, max_epochs: usize) -> usize {
    halving_schedule(trials, max_epochs)
        .iter()
        .map(|r| r.trials.saturating_mul(r.epochs))
        .sum()
}

/// Whether a trial keeps the request's value of a setting.
struct Pick(bool);

impl Pick {
    fn of<T>(self, given: T, drawn: T) -> T {
        if self.0 {
            given
        } else {
            drawn
        }
    }
}

/// `n` trials: the first is `base` (the default recipe), the others drawn from
/// the space with `seed`. Settings named in `fixed` keep `base`'s value.
pub fn sample_trials(
    n: usize,
    seed: u64,
    base: &TrialParams,
    fixed: &BTreeSet<&str>,
) -> Vec<TrialParams> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SAMPLE_STREAM);
    let mut trials = vec![base.clone()];
    while trials.len() < n {
        let width = WIDTHS[rng.random_range(0..WIDTHS.len())];
        let depth = DEPTHS[rng.random_range(0..DEPTHS.len())];
        let dropout = DROPOUTS[rng.random_range(0..DROPOUTS.len())];
        let (lo, hi) = LEARNING_RATES;
        let log_lr = rng.random_range(lo.ln()..=hi.ln());
        let weight_decay = WEIGHT_DECAYS[rng.random_range(0..WEIGHT_DECAYS.len())];
        let numeric_bins = NUMERIC_BINS[rng.random_range(0..NUMERIC_BINS.len())];
        // A setting the request gave is kept; the others take the draw.
        let pick = |name: &str| Pick(fixed.contains(name));
        trials.push(TrialParams {
            hidden_layers: pick("hidden_layers").of(base.hidden_layers.clone(), vec![width; depth]),
            dropout: pick("dropout").of(base.dropout, dropout),
            learning_rate: pick("learning_rate").of(base.learning_rate, two_digits(log_lr.exp())),
            weight_decay: pick("weight_decay").of(base.weight_decay, weight_decay),
            numeric_bins: pick("numeric_bins").of(base.numeric_bins, numeric_bins),
        });
    }
    trials
}

/// `x` rounded to two significant digits.
fn two_digits(x: f64) -> f64 {
    let scale = 10f64.powi(1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// An `f32` parameter as the `f64` its shortest decimal reads as (`1e-3`, not
/// `0.0010000000474974513`).
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// One trial's result at the highest rung it reached.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TrialResult {
    /// 1-based; trial 1 is the default recipe.
    pub trial: usize,
    pub params: TrialParams,
    /// 1-based rung.
    pub rung: usize,
    /// The rung's epoch budget.
    pub epochs: usize,
    /// Epochs run at that rung (fewer when early stopping ended it).
    pub epochs_run: usize,
    /// Lowest validation loss on the holdout at that rung (what trials are ranked
    /// by); `null` when the trial failed.
    pub valid_loss: Option<f64>,
    /// The validation metric at the best epoch: `metric` names it.
    pub metric: String,
    pub value: Option<f64>,
    /// Wall seconds of this trial over all its rungs.
    pub seconds: f64,
    /// Why the trial failed (it diverged, or its network exceeds a limit): it
    /// ranks last, and the search goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a search did: the leaderboard, best first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SearchReport {
    /// Configurations sampled.
    pub trials: usize,
    /// Trial fits run over all rungs.
    pub fits: usize,
    /// The halving schedule.
    pub rungs: Vec<Rung>,
    /// Always `holdout`: every trial is scored on the same seeded holdout.
    pub scored_on: String,
    pub validation_rows: usize,
    pub max_seconds: f64,
    /// Wall seconds of the search (the final fit excluded).
    pub seconds: f64,
    /// Whether the time budget stopped the search before its schedule ended:
    /// the leaderboard then depends on the machine's speed, not only on the seed.
    pub cut_by_time: bool,
    /// The winner's `trial`, trained with its settings as the version.
    pub best_trial: usize,
    /// Every trial that ran, highest rung first, then lowest validation loss.
    pub leaderboard: Vec<TrialResult>,
}

/// The search's outcome: the spec to train as the version, and the report.
pub(crate) struct Searched {
    pub spec: TrainSpec,
    pub report: SearchReport,
    /// Epochs reported during the search.
    pub epochs: usize,
}

/// Runs the search on the `labelled` rows with `params` (the adapted
/// parameters). Epoch reports of every trial go to `control`, numbered on.
pub(crate) fn search(
    table: &Table,
    schema: &Schema,
    spec: &TrainSpec,
    params: &TrainParams,
    labelled: &[usize],
    caps: &Caps,
    control: Control,
) -> Result<Searched, TabularError> {
    let options = spec.search.clone().unwrap_or_default();
    let started = Instant::now();
    let fraction = match f64::from(params.validation_fraction) {
        f if f > 0.0 => f.max(0.1),
        _ => 0.1,
    };
    let (train_idx, valid_idx) = train_test_split(labelled.len(), fraction, params.seed);
    let train_rows: Vec<usize> = train_idx.iter().map(|&i| labelled[i]).collect();
    let valid_rows: Vec<usize> = valid_idx.iter().map(|&i| labelled[i]).collect();
    let encoder = target_encoder(table, &train_rows, spec, caps)?;
    let base = TrialParams {
        hidden_layers: params.hidden_layers.clone(),
        dropout: shortest(params.dropout),
        learning_rate: shortest(params.learning_rate),
        weight_decay: shortest(params.weight_decay),
        numeric_bins: spec.pipeline.numeric_bins,
    };
    let mut fixed: BTreeSet<&str> = ["hidden_layers", "dropout", "learning_rate", "weight_decay"]
        .into_iter()
        .filter(|k| spec.explicit.contains(*k))
        .collect();
    if spec.pipeline.numeric_bins != crate::data::PipelineOptions::default().numeric_bins {
        fixed.insert("numeric_bins");
    }
    let trials = sample_trials(options.max_trials, params.seed, &base, &fixed);
    let rungs = halving_schedule(trials.len(), params.epochs);
    let Control { on_epoch, cancel } = control;
    let mut offset = 0;
    let mut fits = 0;
    let mut results: Vec<Option<TrialResult>> = vec![None; trials.len()];
    let mut alive: Vec<usize> = (0..trials.len()).collect();
    let mut cut_by_time = false;
    'rungs: for (index, rung) in rungs.iter().enumerate() {
        alive.truncate(rung.trials);
        let mut scored = Vec::with_capacity(alive.len());
        for &trial in &alive {
            if started.elapsed().as_secs_f64() >= options.max_seconds {
                cut_by_time = true;
                break 'rungs;
            }
            let (trial_spec, mut trial_params) = trials[trial].apply(spec, params);
            trial_params.epochs = rung.epochs;
            trial_params.early_stopping_patience = params
                .early_stopping_patience
                .map(|p| p.min(rung.epochs.div_ceil(4).max(2)));
            let mut forward = |r: &EpochReport| {
                on_epoch(&EpochReport {
                    trial: Some(trial + 1),
                    ..renumbered(r, offset)
                })
            };
            let trial_start = Instant::now();
            let outcome = fit_rows(
                table,
                schema,
                &trial_spec,
                &trial_params,
                encoder.clone(),
                &train_rows,
                &valid_rows,
                caps,
                Control {
                    on_epoch: &mut forward,
                    cancel,
                },
            );
            fits += 1;
            let earlier = results[trial].as_ref().map_or(0.0, |r| r.seconds);
            let mut result = TrialResult {
                trial: trial + 1,
                params: trials[trial].clone(),
                rung: index + 1,
                epochs: rung.epochs,
                epochs_run: 0,
                valid_loss: None,
                metric: String::new(),
                value: None,
                seconds: 0.0,
                error: None,
            };
            match outcome {
                Ok(fitted) => {
                    offset += fitted.history.len();
                    let best = fitted
                        .history
                        .get(fitted.best_epoch.saturating_sub(1))
                        .or(fitted.history.last());
                    result.epochs_run = fitted.history.len();
                    result.valid_loss = best.and_then(|r| r.valid_loss);
                    result.metric = best.map(|r| r.metric.clone()).unwrap_or_default();
                    result.value = best.and_then(|r| r.valid_metric);
                }
                // A trial that diverges or does not fit the limits loses; the search goes on.
                Err(TabularError::Train(
                    e @ (TrainError::NonFinite { .. } | TrainError::Params(_)),
                )) => result.error = Some(e.to_string()),
                Err(other) => return Err(other),
            }
            result.seconds = earlier + trial_start.elapsed().as_secs_f64();
            let valid_loss = result.valid_loss.unwrap_or(f64::INFINITY);
            results[trial] = Some(result);
            scored.push((valid_loss, trial));
        }
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        alive = scored.into_iter().map(|(_, t)| t).collect();
    }
    let mut leaderboard: Vec<TrialResult> = results.into_iter().flatten().collect();
    leaderboard.sort_by(|a, b| {
        b.rung
            .cmp(&a.rung)
            .then(
                a.valid_loss
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.valid_loss.unwrap_or(f64::INFINITY)),
            )
            .then(a.trial.cmp(&b.trial))
    });
    let best = leaderboard
        .first()
        .map_or(&trials[0], |r| &trials[r.trial - 1])
        .clone();
    let best_trial = leaderboard.first().map_or(1, |r| r.trial);
    let (mut best_spec, best_params) = best.apply(spec, params);
    best_spec.params = best_params;
    best_spec.search = None;
    // The winner's settings and the adapted sizes are kept as they are by the final fit.
    for key in [
        "hidden_layers",
        "dropout",
        "learning_rate",
        "weight_decay",
        "batch_size",
        "epochs",
        "early_stopping_patience",
    ] {
        best_spec.explicit.insert(key.to_string());
    }
    Ok(Searched {
        spec: best_spec,
        report: SearchReport {
            trials: trials.len(),
            fits,
            rungs,
            scored_on: "holdout".into(),
            validation_rows: valid_rows.len(),
            max_seconds: options.max_seconds,
            seconds: started.elapsed().as_secs_f64(),
            cut_by_time,
            best_trial,
            leaderboard,
        },
        epochs: offset,
    })
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
