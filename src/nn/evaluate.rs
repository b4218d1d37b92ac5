//! Streaming loss and validation-metric accumulation over batches of logits.

use ndarray::{ArrayView1, ArrayView2, Zip};

use super::loss::Head;

/// Accumulated loss and metric statistics over evaluated rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Evaluation {
    /// `Σ wᵢ·lossᵢ`.
    pub loss_sum: f64,
    pub rows: usize,
    correct: f64,
    judged: f64,
    squared_error: f64,
}

impl Evaluation {
    /// Adds one batch: its weighted loss sum, logits and targets.
    pub(crate) fn add_batch(
        &mut self,
        head: &Head,
        loss_sum: f64,
        logits: ArrayView2<f32>,
        targets: ArrayView2<f32>,
    ) {
        self.loss_sum += loss_sum;
        self.rows += logits.nrows();
        match head {
            Head::Binary | Head::MultiLabel { .. } => {
                Zip::from(&logits).and(&targets).for_each(|&z, &y| {
                    self.correct += f64::from(u8::from((z >= 0.0) == (y >= 0.5)));
                    self.judged += 1.0;
                });
            }
            Head::Multiclass { .. } => {
                Zip::from(logits.rows())
                    .and(targets.rows())
                    .for_each(|z, y| {
                        self.correct += f64::from(u8::from(argmax(z) == argmax(y)));
                        self.judged += 1.0;
                    });
            }
            Head::Regression { .. } => {
                Zip::from(&logits).and(&targets).for_each(|&z, &y| {
                    let r = f64::from(z) - f64::from(y);
                    self.squared_error += r * r;
                    self.judged += 1.0;
                });
            }
        }
    }

    /// Mean weighted loss `Σ wᵢ·lossᵢ / rows`.
    pub(crate) fn loss(&self) -> f64 {
        self.loss_sum / self.rows.max(1) as f64
    }

    /// Accuracy for classification heads, RMSE over all outputs for regression.
    pub(crate) fn metric(&self, head: &Head) -> f64 {
        let judged = self.judged.max(1.0);
        match head {
            Head::Regression { .. } => (self.squared_error / judged).sqrt(),
            _ => self.correct / judged,
        }
    }
}

/// Index of the first maximum.
pub(crate) fn argmax(row: ArrayView1<f32>) -> usize {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate() {
        if value > row[best] {
            best = index;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::loss::RegressionLoss;
    use ndarray::array;

    #[test]
    fn accuracy_and_rmse() {
        let mut binary = Evaluation::default();
        binary.add_batch(
            &Head::Binary,
            2.0,
            array![[1.0_f32], [-1.0], [0.5]].view(),
            array![[1.0_f32], [1.0], [0.0]].view(),
        );
        assert!((binary.metric(&Head::Binary) - 1.0 / 3.0).abs() < 1e-12);
        assert!((binary.loss() - 2.0 / 3.0).abs() < 1e-12);

        let head = Head::Multiclass { classes: 3 };
        let mut multiclass = Evaluation::default();
        multiclass.add_batch(
            &head,
            0.0,
            array![[0.1_f32, 2.0, 0.3], [3.0, 0.0, 0.0]].view(),
            array![[0.0_f32, 1.0, 0.0], [0.0, 0.0, 1.0]].view(),
        );
        assert_eq!(multiclass.metric(&head), 0.5);

        let head = Head::Regression {
            outputs: 1,
            loss: RegressionLoss::Mse,
        };
        let mut regression = Evaluation::default();
        regression.add_batch(
            &head,
            0.0,
            array![[1.0_f32], [3.0]].view(),
            array![[0.0_f32], [0.0]].view(),
        );
        assert!((regression.metric(&head) - 5.0_f64.sqrt()).abs() < 1e-12);
    }
}
