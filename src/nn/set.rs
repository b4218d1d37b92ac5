//! Training data as `fit` and [`Trainer`](super::Trainer) take it, the errors training
//! reports, and the checks a set must pass before it is trained on.

use ndarray::{ArrayView1, ArrayView2};

use super::loss::Head;
use super::mlp::Architecture;
use super::params::ParamError;
use super::sparse::CsrMatrix;

/// Training data. `x` is `(n, inputs)`; `y` is `(n, outputs)`: `binary` one column of
/// values in `[0, 1]`, `multiclass` nonnegative one-hot or soft rows, `multi_label` values
/// in `[0, 1]`, `regression` values. Optional `weights` (length `n`, finite, `>= 0`) scale
/// each row's loss; class weights are applied by the caller through them.
///
/// With `sparse`, a row's features are `[x row | sparse row]`: `x` is `(n, d)`, `sparse`
/// is `(n, v)` and the network has `d + v` inputs (see [`CsrMatrix`]).
#[derive(Clone, Copy, Debug)]
pub struct TrainSet<'a> {
    /// Dense features, `(n, inputs)`, or `(n, inputs − sparse.cols())` with `sparse`.
    pub x: ArrayView2<'a, f32>,
    /// Sparse trailing features, `(n, v)`; `None` when every feature is in `x`.
    pub sparse: Option<&'a CsrMatrix>,
    /// Targets, `(n, outputs)`.
    pub y: ArrayView2<'a, f32>,
    /// Per-row loss weights, length `n`; `None` weighs every row 1.
    pub weights: Option<ArrayView1<'a, f32>>,
}

impl<'a> TrainSet<'a> {
    /// Unweighted set.
    pub fn new(x: ArrayView2<'a, f32>, y: ArrayView2<'a, f32>) -> Self {
        TrainSet {
            x,
            sparse: None,
            y,
            weights: None,
        }
    }

    /// Feature count: dense columns plus sparse columns.
    pub fn inputs(&self) -> usize {
        self.x.ncols() + self.sparse.map_or(0, CsrMatrix::cols)
    }

    /// Row count.
    pub fn rows(&self) -> usize {
        self.x.nrows()
    }

    /// The same data borrowed for a shorter lifetime.
    pub fn view(&self) -> TrainSet<'_> {
        TrainSet {
            x: self.x.view(),
            sparse: self.sparse,
            y: self.y.view(),
            weights: self.weights.as_ref().map(|w| w.view()),
        }
    }
}

/// Why `fit` failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A parameter, the architecture or the batch size violates its range or the caps.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The cancel flag was set.
    #[error("training cancelled")]
    Cancelled,
    /// The loss or the weights diverged during the given 1-based epoch (0 outside `fit`).
    #[error("loss or weights became non-finite in epoch {epoch}; lower the learning rate or enable clip_grad_norm")]
    NonFinite { epoch: usize },
    /// Data does not fit the model or head: row or column mismatch, no rows, non-finite
    /// features, targets outside the head's range, or invalid weights; the message names
    /// the set, position and value.
    #[error("invalid training data: {0}")]
    Shape(String),
}

/// Position and value of the first element failing `ok`, scanning contiguous data in
/// branch-free blocks first.
fn first_violation(values: ArrayView2<f32>, ok: fn(f32) -> bool) -> Option<((usize, usize), f32)> {
    if let Some(slice) = values.as_slice() {
        let all_ok = slice
            .chunks(1024)
            .all(|block| block.iter().fold(true, |acc, &v| acc & ok(v)));
        if all_ok {
            return None;
        }
    }
    values
        .indexed_iter()
        .find(|(_, v)| !ok(**v))
        .map(|(position, &v)| (position, v))
}

/// Checks that `set` (called `label` in messages) is non-empty, fits `arch`, has finite
/// features, targets in the head's range, and finite nonnegative weights.
pub(crate) fn check_set(
    label: &str,
    set: &TrainSet,
    arch: &Architecture,
) -> Result<(), TrainError> {
    let shape = |message: String| Err(TrainError::Shape(format!("{label}: {message}")));
    let rows = set.x.nrows();
    if rows == 0 {
        return shape("no rows".to_owned());
    }
    if set.y.nrows() != rows {
        return shape(format!("x has {rows} rows but y has {}", set.y.nrows()));
    }
    if set.inputs() != arch.inputs {
        return shape(format!(
            "x has {} columns, the model expects {}",
            set.inputs(),
            arch.inputs
        ));
    }
    if let Some(sparse) = set.sparse {
        if sparse.rows() != rows {
            return shape(format!(
                "x has {rows} rows but the sparse block has {}",
                sparse.rows()
            ));
        }
        if let Some((r, c, v)) = sparse.first_violation(f32::is_finite) {
            return shape(format!("sparse x[{r}, {c}] = {v} is not finite"));
        }
    }
    if set.y.ncols() != arch.head.outputs() {
        return shape(format!(
            "y has {} columns, the {:?} head expects {}",
            set.y.ncols(),
            arch.head,
            arch.head.outputs()
        ));
    }
    if let Some(((r, c), v)) = first_violation(set.x, f32::is_finite) {
        return shape(format!("x[{r}, {c}] = {v} is not finite"));
    }
    let target_ok: fn(f32) -> bool = match arch.head {
        Head::Binary | Head::MultiLabel { .. } => |v| (0.0..=1.0).contains(&v),
        Head::Multiclass { .. } => |v| v.is_finite() && v >= 0.0,
        Head::Regression { .. } => f32::is_finite,
    };
    if let Some(((r, c), v)) = first_violation(set.y, target_ok) {
        let expected = match arch.head {
            Head::Binary | Head::MultiLabel { .. } => "in [0, 1]",
            Head::Multiclass { .. } => "finite and >= 0",
            Head::Regression { .. } => "finite",
        };
        return shape(format!("y[{r}, {c}] = {v} must be {expected}"));
    }
    if let Some(weights) = set.weights {
        if weights.len() != rows {
            return shape(format!("{} weights for {rows} rows", weights.len()));
        }
        if let Some((i, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return shape(format!("weights[{i}] = {w} must be finite and >= 0"));
        }
    }
    Ok(())
}
