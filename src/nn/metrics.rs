//! Evaluation metrics over predicted labels, probabilities and values, reported in `f64`.
//!
//! Paired slices are compared up to the shorter length. Empty inputs yield `0.0` (or `0.5`
//! for AUC) rather than NaN.

use ndarray::ArrayView2;

/// Probabilities are clipped to `[LOG_LOSS_CLIP, 1 − LOG_LOSS_CLIP]` in [`log_loss`].
pub const LOG_LOSS_CLIP: f64 = 1e-15;

/// Fraction of positions where `y_pred` equals `y_true`.
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> f64 {
    let n = y_true.len().min(y_pred.len());
    if n == 0 {
        return 0.0;
    }
    let correct = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    correct as f64 / n as f64
}

/// Mean per-class recall over the classes present in `y_true`.
pub fn balanced_accuracy(y_true: &[usize], y_pred: &[usize]) -> f64 {
    let classes = y_true.iter().max().map_or(0, |&m| m + 1);
    let mut support = vec![0_u64; classes];
    let mut correct = vec![0_u64; classes];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        support[t] += 1;
        correct[t] += u64::from(t == p);
    }
    let recalls: Vec<f64> = support
        .iter()
        .zip(&correct)
        .filter(|(&s, _)| s > 0)
        .map(|(&s, &c)| c as f64 / s as f64)
        .collect();
    if recalls.is_empty() {
        0.0
    } else {
        recalls.iter().sum::<f64>() / recalls.len() as f64
    }
}

/// Unweighted mean F1 over the classes in `0..classes` that occur in `y_true` or `y_pred`;
/// labels `>= classes` are ignored.
pub fn macro_f1(y_true: &[usize], y_pred: &[usize], classes: usize) -> f64 {
    let matrix = confusion_matrix(y_true, y_pred, classes);
    let scores: Vec<f64> = (0..classes)
        .filter_map(|class| {
            let tp = matrix[class][class] as f64;
            let actual: u64 = matrix[class].iter().sum();
            let predicted: u64 = matrix.iter().map(|row| row[class]).sum();
            let denominator = (actual + predicted) as f64;
            (denominator > 0.0).then(|| 2.0 * tp / denominator)
        })
        .collect();
    if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    }
}

/// `classes × classes` counts: row = true label, column = predicted label. Pairs with a
/// label `>= classes` are skipped.
pub fn confusion_matrix(y_true: &[usize], y_pred: &[usize], classes: usize) -> Vec<Vec<u64>> {
    let mut matrix = vec![vec![0_u64; classes]; classes];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        if t < classes && p < classes {
            matrix[t][p] += 1;
        }
    }
    matrix
}

/// Mean negative log-likelihood of the true labels. `probs` is `(n, k)` with `k >= 2`
/// class probabilities per row, or `(n, 1)` holding P(label 1) of a binary problem.
/// Probabilities are clipped by [`LOG_LOSS_CLIP`]; a NaN probability or a label outside
/// the columns counts as probability 0.
pub fn log_loss(y_true: &[usize], probs: ArrayView2<f32>) -> f64 {
    let n = y_true.len().min(probs.nrows());
    if n == 0 {
        return 0.0;
    }
    let binary = probs.ncols() == 1;
    let total: f64 = y_true
        .iter()
        .zip(probs.rows())
        .map(|(&label, row)| {
            let p = if binary {
                let positive = f64::from(row[0]);
                match label {
                    0 => 1.0 - positive,
                    1 => positive,
                    _ => 0.0,
                }
            } else {
                row.get(label).map_or(0.0, |&p| f64::from(p))
            };
            let p = if p.is_nan() { 0.0 } else { p };
            -p.clamp(LOG_LOSS_CLIP, 1.0 - LOG_LOSS_CLIP).ln()
        })
        .sum();
    total / n as f64
}

/// Area under the ROC curve via the rank-sum (Mann–Whitney) statistic, tied scores sharing
/// their average rank. Returns `0.5` when either class is absent.
pub fn roc_auc(y_true: &[bool], scores: &[f32]) -> f64 {
    let n = y_true.len().min(scores.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = y_true[..n].iter().filter(|&&y| y).count();
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        return 0.5;
    }
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && scores[order[end]].total_cmp(&scores[order[start]]).is_eq() {
            end += 1;
        }
        let average_rank = (start + end + 1) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| y_true[i]).count();
        positive_rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let p = positives as f64;
    (positive_rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

/// Root mean squared error.
pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    mean(y.iter().zip(p).map(|(a, b)| (a - b) * (a - b))).sqrt()
}

/// Mean absolute error.
pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    mean(y.iter().zip(p).map(|(a, b)| (a - b).abs()))
}

/// Coefficient of determination `1 − SS_res/SS_tot`. With constant `y` it is `1.0` for a
/// perfect prediction and `0.0` otherwise.
pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    let n = y.len().min(p.len());
    if n == 0 {
        return 0.0;
    }
    let y = &y[..n];
    let y_mean = y.iter().sum::<f64>() / n as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - y_mean) * (v - y_mean)).sum();
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 {
        if ss_res == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        1.0 - ss_res / ss_tot
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0_usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn classification_metrics_by_hand() {
        let y_true = [0, 0, 1, 1, 2, 2];
        let y_pred = [0, 1, 1, 1, 0, 2];
        assert!(close(accuracy(&y_true, &y_pred), 4.0 / 6.0));
        assert_eq!(
            confusion_matrix(&y_true, &y_pred, 3),
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
        assert!(close(
            balanced_accuracy(&y_true, &y_pred),
            (0.5 + 1.0 + 0.5) / 3.0
        ));
        let f1_0 = 2.0 * 1.0 / (2.0 + 2.0);
        let f1_1 = 2.0 * 2.0 / (2.0 + 3.0);
        let f1_2 = 2.0 * 1.0 / (2.0 + 1.0);
        assert!(close(
            macro_f1(&y_true, &y_pred, 3),
            (f1_0 + f1_1 + f1_2) / 3.0
        ));
        assert!(close(macro_f1(&[0, 0], &[0, 0], 4), 1.0));
        assert_eq!(accuracy(&[], &[]), 0.0);
    }

    #[test]
    fn log_loss_by_hand_with_clipping_and_binary_column() {
        let probs = array![[0.7_f32, 0.2, 0.1], [0.1, 0.1, 0.8]];
        let expected = -(0.7_f32 as f64).ln() / 2.0 - (0.8_f32 as f64).ln() / 2.0;
        assert!(close(log_loss(&[0, 2], probs.view()), expected));
        let certain_wrong = array![[0.0_f32, 1.0]];
        assert!(close(
            log_loss(&[0], certain_wrong.view()),
            -(1e-15_f64).ln()
        ));
        let binary = array![[0.9_f32], [0.2]];
        let expected = -((0.9_f32 as f64).ln() + (1.0 - 0.2_f32 as f64).ln()) / 2.0;
        assert!(close(log_loss(&[1, 0], binary.view()), expected));
    }

    #[test]
    fn roc_auc_averages_ties() {
        assert!(close(
            roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]),
            0.75
        ));
        assert!(close(
            roc_auc(&[false, true, false, true], &[0.5, 0.5, 0.2, 0.9]),
            0.875
        ));
        assert!(close(roc_auc(&[true, false], &[0.3, 0.3]), 0.5));
        assert!(close(roc_auc(&[true, true], &[0.1, 0.9]), 0.5));
        assert!(close(roc_auc(&[false, true], &[0.9, 0.1]), 0.0));
    }

    #[test]
    fn regression_metrics_by_hand() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let p = [1.5, 2.0, 2.0, 4.0];
        assert!(close(rmse(&y, &p), (1.25_f64 / 4.0).sqrt()));
        assert!(close(mae(&y, &p), 1.5 / 4.0));
        assert!(close(r2(&y, &p), 1.0 - 1.25 / 5.0));
        assert_eq!(r2(&[2.0, 2.0], &[2.0, 2.0]), 1.0);
        assert_eq!(r2(&[2.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(rmse(&[], &[]), 0.0);
    }
}
