//! Output heads: how logits become predictions, and the per-row losses and their gradients.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};
use serde::{Deserialize, Serialize};

use super::activation::sigmoid;

/// What the network predicts and which loss trains it.
///
/// Targets per head: `binary` one column of values in `[0, 1]`; `multiclass` nonnegative
/// rows (one-hot or soft); `multi_label` values in `[0, 1]` per output; `regression` any
/// finite values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Head {
    /// One logit; loss is binary cross-entropy from the logit, `max(z,0) − z·y + ln(1 + e^−|z|)`.
    Binary,
    /// Softmax over `classes` logits; loss `−Σ yᵢ·ln pᵢ` via log-sum-exp, gradient `p·Σy − y`.
    Multiclass { classes: usize },
    /// Independent sigmoid per label; binary cross-entropy averaged over the labels.
    MultiLabel { labels: usize },
    /// Raw outputs; loss averaged over the outputs.
    Regression {
        outputs: usize,
        loss: RegressionLoss,
    },
}

/// Loss for regression heads, per output value with residual `r = prediction − target`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RegressionLoss {
    /// `r²`.
    Mse,
    /// `½r²` when `|r| ≤ delta`, else `delta·(|r| − ½delta)`; `delta > 0`.
    Huber { delta: f32 },
}

impl Head {
    /// Width of the output layer.
    pub fn outputs(&self) -> usize {
        match *self {
            Head::Binary => 1,
            Head::Multiclass { classes } => classes,
            Head::MultiLabel { labels } => labels,
            Head::Regression { outputs, .. } => outputs,
        }
    }

    /// Name of the validation metric reported for this head: `"accuracy"` for
    /// classification heads, `"rmse"` for regression.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Head::Regression { .. } => "rmse",
            _ => "accuracy",
        }
    }

    /// Whether the validation metric improves downward (`rmse`) rather than upward.
    pub fn metric_lower_is_better(&self) -> bool {
        matches!(self, Head::Regression { .. })
    }

    /// Turns logits into head outputs in place: sigmoid for `binary`/`multi_label`,
    /// row softmax for `multiclass`, unchanged for `regression`.
    pub fn apply_output(&self, mut logits: ArrayViewMut2<f32>) {
        match self {
            Head::Binary | Head::MultiLabel { .. } => logits.mapv_inplace(sigmoid),
            Head::Multiclass { .. } => {
                for row in logits.rows_mut() {
                    softmax_in_place(row);
                }
            }
            Head::Regression { .. } => {}
        }
    }

    /// Loss of one row, averaged over outputs for the per-output heads.
    ///
    /// When `grad` is given it receives `scale · ∂loss/∂logits`.
    pub(crate) fn row_loss(
        &self,
        logits: ArrayView1<f32>,
        targets: ArrayView1<f32>,
        grad: Option<(ArrayViewMut1<f32>, f32)>,
    ) -> f64 {
        match *self {
            Head::Binary | Head::MultiLabel { .. } => {
                per_output_loss(logits, targets, grad, bce_with_logits)
            }
            Head::Multiclass { .. } => softmax_cross_entropy(logits, targets, grad),
            Head::Regression {
                loss: RegressionLoss::Mse,
                ..
            } => per_output_loss(logits, targets, grad, squared_error),
            Head::Regression {
                loss: RegressionLoss::Huber { delta },
                ..
            } => per_output_loss(logits, targets, grad, |z, y| huber(z, y, delta)),
        }
    }

    /// Weighted loss sum `Σ wᵢ·lossᵢ` over a batch; when `grad` is given it receives
    /// `wᵢ/grad_rows · ∂lossᵢ/∂logits` per row, i.e. the gradient of `Σ wᵢ·lossᵢ / grad_rows`.
    pub(crate) fn batch_loss(
        &self,
        logits: ArrayView2<f32>,
        targets: ArrayView2<f32>,
        weights: ArrayView1<f32>,
        grad: Option<(ArrayViewMut2<f32>, usize)>,
    ) -> f64 {
        let mut total = 0.0_f64;
        match grad {
            Some((mut grad, grad_rows)) => {
                let inv_rows = 1.0 / grad_rows.max(1) as f32;
                Zip::from(logits.rows())
                    .and(targets.rows())
                    .and(&weights)
                    .and(grad.rows_mut())
                    .for_each(|z, y, &w, g| {
                        total += w as f64 * self.row_loss(z, y, Some((g, w * inv_rows)));
                    });
            }
            None => {
                Zip::from(logits.rows())
                    .and(targets.rows())
                    .and(&weights)
                    .for_each(|z, y, &w| total += w as f64 * self.row_loss(z, y, None));
            }
        }
        total
    }
}

fn per_output_loss(
    logits: ArrayView1<f32>,
    targets: ArrayView1<f32>,
    grad: Option<(ArrayViewMut1<f32>, f32)>,
    element: impl Fn(f32, f32) -> (f32, f32),
) -> f64 {
    let inv_outputs = 1.0 / logits.len().max(1) as f32;
    let mut sum = 0.0_f64;
    match grad {
        Some((mut grad, scale)) => {
            let factor = scale * inv_outputs;
            Zip::from(&logits)
                .and(&targets)
                .and(&mut grad)
                .for_each(|&z, &y, g| {
                    let (loss, dz) = element(z, y);
                    sum += loss as f64;
                    *g = dz * factor;
                });
        }
        None => Zip::from(&logits).and(&targets).for_each(|&z, &y| {
            sum += element(z, y).0 as f64;
        }),
    }
    sum * inv_outputs as f64
}

#[inline]
fn bce_with_logits(z: f32, y: f32) -> (f32, f32) {
    let loss = z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
    (loss, sigmoid(z) - y)
}

#[inline]
fn squared_error(z: f32, y: f32) -> (f32, f32) {
    let r = z - y;
    (r * r, 2.0 * r)
}

#[inline]
fn huber(z: f32, y: f32, delta: f32) -> (f32, f32) {
    let r = z - y;
    if r.abs() <= delta {
        (0.5 * r * r, r)
    } else {
        (delta * (r.abs() - 0.5 * delta), delta * r.signum())
    }
}

fn softmax_cross_entropy(
    logits: ArrayView1<f32>,
    targets: ArrayView1<f32>,
    grad: Option<(ArrayViewMut1<f32>, f32)>,
) -> f64 {
    let max = logits.fold(f32::NEG_INFINITY, |m, &z| m.max(z));
    let sum_exp: f32 = logits.iter().map(|&z| (z - max).exp()).sum();
    let log_sum_exp = max + sum_exp.ln();
    let mut loss = 0.0_f64;
    let mut target_sum = 0.0_f32;
    Zip::from(&logits).and(&targets).for_each(|&z, &y| {
        loss += (y * (log_sum_exp - z)) as f64;
        target_sum += y;
    });
    if let Some((mut grad, scale)) = grad {
        Zip::from(&logits)
            .and(&targets)
            .and(&mut grad)
            .for_each(|&z, &y, g| {
                let p = (z - log_sum_exp).exp();
                *g = (p * target_sum - y) * scale;
            });
    }
    loss
}

/// Numerically stable softmax of one row, in place.
pub(crate) fn softmax_in_place(mut row: ArrayViewMut1<f32>) {
    let max = row.fold(f32::NEG_INFINITY, |m, &z| m.max(z));
    let mut sum = 0.0_f32;
    row.mapv_inplace(|z| {
        let e = (z - max).exp();
        sum += e;
        e
    });
    let inv = 1.0 / sum;
    row.mapv_inplace(|e| e * inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1};

    fn loss_of(head: Head, z: &[f32], y: &[f32]) -> f64 {
        head.row_loss(
            ArrayView1::from(z),
            ArrayView1::from(y),
            None::<(ArrayViewMut1<f32>, f32)>,
        )
    }

    #[test]
    fn binary_cross_entropy_matches_definition_and_is_stable() {
        let z = 0.8_f32;
        let p = 1.0 / (1.0 + (-z as f64).exp());
        let expected = -(0.3 * p.ln() + 0.7 * (1.0 - p).ln());
        assert!((loss_of(Head::Binary, &[z], &[0.3]) - expected).abs() < 1e-6);
        let extreme = loss_of(Head::Binary, &[-200.0], &[1.0]);
        assert!((extreme - 200.0).abs() < 1e-3, "{extreme}");
        assert_eq!(loss_of(Head::Binary, &[200.0], &[1.0]), 0.0);
    }

    #[test]
    fn softmax_cross_entropy_handles_soft_targets_and_large_logits() {
        let head = Head::Multiclass { classes: 3 };
        let z = [1000.0_f32, 1001.0, 999.0];
        let lse = 1001.0 + ((-1.0_f64).exp() + 1.0 + (-2.0_f64).exp()).ln();
        let y = [0.2_f32, 0.5, 0.3];
        let expected = 0.2 * (lse - 1000.0) + 0.5 * (lse - 1001.0) + 0.3 * (lse - 999.0);
        let got = loss_of(head, &z, &y);
        assert!((got - expected).abs() < 1e-3, "{got} vs {expected}");
    }

    #[test]
    fn huber_is_quadratic_inside_and_linear_outside() {
        let head = Head::Regression {
            outputs: 2,
            loss: RegressionLoss::Huber { delta: 1.0 },
        };
        let got = loss_of(head, &[0.5, 3.0], &[0.0, 0.0]);
        assert!((got - (0.125 + 2.5) / 2.0).abs() < 1e-7);
    }

    #[test]
    fn batch_loss_weights_rows_and_scales_gradient() {
        let head = Head::Regression {
            outputs: 1,
            loss: RegressionLoss::Mse,
        };
        let logits = array![[1.0_f32], [3.0]];
        let targets = array![[0.0_f32], [0.0]];
        let weights = Array1::from(vec![2.0_f32, 0.5]);
        let mut grad = ndarray::Array2::zeros((2, 1));
        let total = head.batch_loss(
            logits.view(),
            targets.view(),
            weights.view(),
            Some((grad.view_mut(), 2)),
        );
        assert!((total - (2.0 * 1.0 + 0.5 * 9.0)).abs() < 1e-9);
        assert_eq!(grad, array![[2.0_f32], [1.5]]);
    }

    #[test]
    fn apply_output_produces_probabilities() {
        let mut logits = array![[0.0_f32, 1.0, 2.0]];
        Head::Multiclass { classes: 3 }.apply_output(logits.view_mut());
        assert!((logits.sum() - 1.0).abs() < 1e-6);
        assert!(logits[[0, 2]] > logits[[0, 1]]);
        let mut single = array![[0.0_f32]];
        Head::Binary.apply_output(single.view_mut());
        assert_eq!(single[[0, 0]], 0.5);
    }

    #[test]
    fn serde_layout() {
        let head = Head::Regression {
            outputs: 2,
            loss: RegressionLoss::Huber { delta: 1.5 },
        };
        let json = serde_json::to_string(&head).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"regression","outputs":2,"loss":{"type":"huber","delta":1.5}}"#
        );
        let back: Head = serde_json::from_str(r#"{"kind":"multi_label","labels":4}"#).unwrap();
        assert_eq!(back, Head::MultiLabel { labels: 4 });
        assert_eq!(back.metric_name(), "accuracy");
    }
}
