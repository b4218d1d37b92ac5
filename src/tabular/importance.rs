//! Global permutation importance: how much the model's validation loss grows
//! when one raw column's values are shuffled across rows.

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::evaluate::class_probabilities;
use super::{TabularError, TabularModel};
use crate::data::{Table, Task};
use crate::nn::metrics;

/// Most rows scored.
pub const IMPORTANCE_MAX_ROWS: usize = 1_000;
/// Most feature values materialized at once (rows × features); wide text
/// pipelines score fewer rows.
const IMPORTANCE_MAX_VALUES: usize = 4_000_000;

/// Permutation importance of every input column, stored in the model card.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PermutationImportance {
    /// The loss whose growth is measured: `log_loss` (classification) or `rmse`
    /// (regression, target units).
    pub metric: String,
    /// Rows scored: the first validation rows (or training rows, without any).
    pub rows: usize,
    /// The loss on the rows as they are.
    pub reference: f64,
    /// One entry per input column, most important first: loss with the column
    /// shuffled minus `reference` (≈ 0 for a column the model does not use).
    pub columns: Vec<ColumnImportance>,
}

/// One column's importance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ColumnImportance {
    pub column: String,
    pub importance: f64,
}

/// Permutation importance of `model` on (at most [`IMPORTANCE_MAX_ROWS`] of) `rows`
/// of `table`, one shuffle per column drawn from `seed`.
pub fn permutation_importance(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
    seed: u64,
) -> Result<PermutationImportance, TabularError> {
    let width = model.pipeline.width().max(1);
    let limit = (IMPORTANCE_MAX_VALUES / width).clamp(50, IMPORTANCE_MAX_ROWS);
    let rows = &rows[..rows.len().min(limit)];
    let x = model.pipeline.transform(table, rows)?;
    let loss = |x: &Array2<f32>| -> Result<f64, TabularError> {
        let out = model.mlp.predict(x.view());
        Ok(match model.encoder.task() {
            Task::Classification => {
                let truth = model.encoder.label_indices(table, rows)?;
                let probs = class_probabilities(&out, model.encoder.classes());
                metrics::log_loss(&truth, probs.view())
            }
            Task::Regression => {
                let (truth, pred) = super::evaluate::regression_values(model, table, rows, &out)?;
                metrics::rmse(&truth, &pred)
            }
        })
    };
    let reference = loss(&x)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut columns = Vec::new();
    for column in model.pipeline.layout() {
        crate::cooperative::yield_point();
        order.shuffle(&mut rng);
        let mut shuffled = x.clone();
        for (target, &source) in order.iter().enumerate() {
            for f in column.features.clone() {
                shuffled[[target, f]] = x[[source, f]];
            }
        }
        columns.push(ColumnImportance {
            column: column.name.to_string(),
            importance: loss(&shuffled)? - reference,
        });
    }
    columns.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    Ok(PermutationImportance {
        metric: match model.encoder.task() {
            Task::Classification => "log_loss".into(),
            Task::Regression => "rmse".into(),
        },
        rows: rows.len(),
        reference,
        columns,
    })
}
