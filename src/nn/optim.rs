//! Optimizers (SGD with momentum, Adam, AdamW) as fused in-place updates, and per-epoch
//! learning-rate schedules.

use ndarray::{ArrayViewMut, Dimension, Zip};
use serde::{Deserialize, Serialize};

use super::dense::Dense;

/// Parameter update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// `v ← μ·v + g; θ ← θ − lr·v` (Nesterov: `θ ← θ − lr·(g + μ·v)`).
    Sgd,
    /// Bias-corrected Adam.
    Adam,
    /// Adam with decoupled weight decay `θ ← θ − lr·weight_decay·θ` on weights.
    AdamW,
}

/// Learning-rate schedule, evaluated once per epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    /// `learning_rate` throughout.
    Constant,
    /// Epoch `e` of `E` (0-based) uses `min_lr + ½(lr − min_lr)(1 + cos(π·e/E))`.
    Cosine {
        #[serde(default)]
        min_lr: f32,
    },
    /// Multiply the rate by `factor` (floored at `min_lr`) once the monitored loss has not
    /// improved by more than `min_delta` for `patience` consecutive epochs.
    ReduceOnPlateau {
        factor: f32,
        patience: usize,
        min_lr: f32,
    },
}

/// Learning-rate state for one training run.
#[derive(Clone, Debug)]
pub(crate) struct LrScheduler {
    schedule: Schedule,
    base_lr: f32,
    current_lr: f32,
    epochs: usize,
    min_delta: f32,
    best_loss: f64,
    epochs_without_improvement: usize,
}

impl LrScheduler {
    pub(crate) fn new(schedule: &Schedule, base_lr: f32, epochs: usize, min_delta: f32) -> Self {
        LrScheduler {
            schedule: schedule.clone(),
            base_lr,
            current_lr: base_lr,
            epochs,
            min_delta,
            best_loss: f64::INFINITY,
            epochs_without_improvement: 0,
        }
    }

    /// Learning rate for 0-based `epoch`.
    pub(crate) fn learning_rate(&self, epoch: usize) -> f32 {
        match self.schedule {
            Schedule::Constant | Schedule::ReduceOnPlateau { .. } => self.current_lr,
            Schedule::Cosine { min_lr } => {
                let progress = epoch as f64 / self.epochs.max(1) as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                (min_lr as f64 + (self.base_lr - min_lr) as f64 * cosine) as f32
            }
        }
    }

    /// Feeds the monitored loss at the end of an epoch.
    pub(crate) fn observe(&mut self, monitored_loss: f64) {
        let Schedule::ReduceOnPlateau {
            factor,
            patience,
            min_lr,
        } = self.schedule
        else {
            return;
        };
        if monitored_loss < self.best_loss - self.min_delta as f64 {
            self.best_loss = monitored_loss;
            self.epochs_without_improvement = 0;
        } else {
            self.epochs_without_improvement += 1;
            if self.epochs_without_improvement > patience {
                self.current_lr = (self.current_lr * factor).max(min_lr);
                self.epochs_without_improvement = 0;
            }
        }
    }
}

/// Hyperparameters read by [`Optimizer::step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub momentum: f32,
    pub nesterov: bool,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

/// Optimizer with per-parameter state shaped like the layers it updates.
#[derive(Clone, Debug)]
pub(crate) struct Optimizer {
    config: OptimizerConfig,
    /// SGD velocity, or Adam first moment.
    first: Vec<Dense>,
    /// Adam second moment (empty for SGD).
    second: Vec<Dense>,
    steps: u64,
}

impl Optimizer {
    pub(crate) fn new(config: OptimizerConfig, layers: &[Dense]) -> Self {
        let zeros = || {
            layers
                .iter()
                .map(|l| Dense::zeros(l.inputs(), l.outputs()))
                .collect::<Vec<_>>()
        };
        let second = match config.kind {
            OptimizerKind::Sgd => Vec::new(),
            OptimizerKind::Adam | OptimizerKind::AdamW => zeros(),
        };
        Optimizer {
            config,
            first: zeros(),
            second,
            steps: 0,
        }
    }

    /// Applies one update with gradients `grads` (same shapes as `layers`) at rate `lr`.
    pub(crate) fn step(&mut self, layers: &mut [Dense], grads: &[Dense], lr: f32) {
        self.steps += 1;
        let c = self.config;
        match c.kind {
            OptimizerKind::Sgd => {
                for ((layer, grad), velocity) in layers.iter_mut().zip(grads).zip(&mut self.first) {
                    sgd(
                        layer.weight.view_mut(),
                        grad.weight.view(),
                        velocity.weight.view_mut(),
                        lr,
                        c,
                    );
                    sgd(
                        layer.bias.view_mut(),
                        grad.bias.view(),
                        velocity.bias.view_mut(),
                        lr,
                        c,
                    );
                }
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let exponent = i32::try_from(self.steps).unwrap_or(i32::MAX);
                let correction1 = 1.0 - c.beta1.powi(exponent);
                let correction2 = 1.0 - c.beta2.powi(exponent);
                let adam = AdamStep {
                    beta1: c.beta1,
                    beta2: c.beta2,
                    step_size: lr / correction1,
                    inv_sqrt_correction2: 1.0 / correction2.sqrt(),
                    epsilon: c.epsilon,
                };
                let decay = if c.kind == OptimizerKind::AdamW {
                    1.0 - lr * c.weight_decay
                } else {
                    1.0
                };
                let states = self.first.iter_mut().zip(self.second.iter_mut());
                for ((layer, grad), (m, v)) in layers.iter_mut().zip(grads).zip(states) {
                    adam.apply(
                        layer.weight.view_mut(),
                        grad.weight.view(),
                        m.weight.view_mut(),
                        v.weight.view_mut(),
                        decay,
                    );
                    adam.apply(
                        layer.bias.view_mut(),
                        grad.bias.view(),
                        m.bias.view_mut(),
                        v.bias.view_mut(),
                        1.0,
                    );
                }
            }
        }
    }
}

fn sgd<D: Dimension>(
    param: ArrayViewMut<f32, D>,
    grad: ndarray::ArrayView<f32, D>,
    velocity: ArrayViewMut<f32, D>,
    lr: f32,
    c: OptimizerConfig,
) {
    let mu = c.momentum;
    if c.nesterov {
        Zip::from(param)
            .and(grad)
            .and(velocity)
            .for_each(|p, &g, v| {
                *v = mu * *v + g;
                *p -= lr * (g + mu * *v);
            });
    } else {
        Zip::from(param)
            .and(grad)
            .and(velocity)
            .for_each(|p, &g, v| {
                *v = mu * *v + g;
                *p -= lr * *v;
            });
    }
}

struct AdamStep {
    beta1: f32,
    beta2: f32,
    step_size: f32,
    inv_sqrt_correction2: f32,
    epsilon: f32,
}

impl AdamStep {
    fn apply<D: Dimension>(
        &self,
        param: ArrayViewMut<f32, D>,
        grad: ndarray::ArrayView<f32, D>,
        first: ArrayViewMut<f32, D>,
        second: ArrayViewMut<f32, D>,
        decay: f32,
    ) {
        let (b1, b2) = (self.beta1, self.beta2);
        Zip::from(param)
            .and(grad)
            .and(first)
            .and(second)
            .for_each(|p, &g, m, v| {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let denom = v.sqrt() * self.inv_sqrt_correction2 + self.epsilon;
                *p = *p * decay - self.step_size * *m / denom;
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn scalar_layer(value: f32) -> Vec<Dense> {
        vec![Dense {
            weight: array![[value]],
            bias: array![value],
        }]
    }

    fn config(kind: OptimizerKind) -> OptimizerConfig {
        OptimizerConfig {
            kind,
            momentum: 0.9,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }

    fn run(config: OptimizerConfig, start: f32, grad: f32, lr: f32, steps: usize) -> (f32, f32) {
        let mut layers = scalar_layer(start);
        let grads = scalar_layer(grad);
        let mut optimizer = Optimizer::new(config, &layers);
        for _ in 0..steps {
            optimizer.step(&mut layers, &grads, lr);
        }
        (layers[0].weight[[0, 0]], layers[0].bias[0])
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn sgd_momentum_accumulates_velocity() {
        let (w, _) = run(config(OptimizerKind::Sgd), 0.0, 1.0, 0.1, 2);
        assert!(close(w, -0.29), "{w}");
        let plain = OptimizerConfig {
            momentum: 0.0,
            ..config(OptimizerKind::Sgd)
        };
        let (w, _) = run(plain, 0.0, 1.0, 0.1, 2);
        assert!(close(w, -0.2), "{w}");
    }

    #[test]
    fn nesterov_looks_ahead() {
        let nesterov = OptimizerConfig {
            nesterov: true,
            ..config(OptimizerKind::Sgd)
        };
        let (w, _) = run(nesterov, 0.0, 1.0, 0.1, 2);
        assert!(close(w, -0.19 - 0.271), "{w}");
    }

    #[test]
    fn adam_first_steps_move_by_learning_rate() {
        let (w, b) = run(config(OptimizerKind::Adam), 1.0, 123.0, 0.01, 1);
        assert!(close(w, 0.99) && close(b, 0.99), "{w} {b}");
        let (w, _) = run(config(OptimizerKind::Adam), 1.0, -0.5, 0.01, 3);
        assert!(close(w, 1.03), "{w}");
    }

    #[test]
    fn adam_w_decays_weights_but_not_biases() {
        let decayed = OptimizerConfig {
            weight_decay: 0.5,
            ..config(OptimizerKind::AdamW)
        };
        let (w, b) = run(decayed, 2.0, 0.0, 0.1, 1);
        assert!(close(w, 2.0 * (1.0 - 0.05)), "{w}");
        assert!(close(b, 2.0), "{b}");
        let adam = OptimizerConfig {
            weight_decay: 0.5,
            ..config(OptimizerKind::Adam)
        };
        let (w, _) = run(adam, 2.0, 0.0, 0.1, 1);
        assert!(close(w, 2.0), "adam ignores weight_decay: {w}");
    }

    #[test]
    fn cosine_schedule_anneals_from_base_towards_min() {
        let scheduler = LrScheduler::new(&Schedule::Cosine { min_lr: 0.1 }, 1.0, 10, 0.0);
        assert!(close(scheduler.learning_rate(0), 1.0));
        assert!(close(scheduler.learning_rate(5), 0.55));
        let last = scheduler.learning_rate(9);
        assert!(last > 0.1 && last < 0.15, "{last}");
        let rates: Vec<f32> = (0..10).map(|e| scheduler.learning_rate(e)).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn reduce_on_plateau_cuts_rate_after_patience_and_respects_floor() {
        let schedule = Schedule::ReduceOnPlateau {
            factor: 0.5,
            patience: 1,
            min_lr: 0.3,
        };
        let mut scheduler = LrScheduler::new(&schedule, 1.0, 100, 0.0);
        scheduler.observe(1.0);
        scheduler.observe(1.0);
        assert!(close(scheduler.learning_rate(2), 1.0));
        scheduler.observe(1.0);
        assert!(close(scheduler.learning_rate(3), 0.5));
        scheduler.observe(0.5);
        scheduler.observe(0.6);
        scheduler.observe(0.7);
        assert!(close(scheduler.learning_rate(6), 0.3));
    }
}
