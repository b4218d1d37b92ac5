//! Preallocated training buffers and the batched forward and backward passes over them,
//! and the gradient buffers those passes fill (zeroed, plus the L2 term).
//!
//! Every buffer is sized once for `capacity` rows; a batch of `rows <= capacity` uses the
//! leading rows, so steady-state training performs no allocation of its own.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, Zip};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use super::dense::Dense;
use super::mlp::Mlp;
use super::set::TrainSet;
use super::sparse::{first_layer_product, first_layer_weight_gradient, CsrMatrix};

/// Per-layer buffers, each `(capacity, width)`.
#[derive(Clone, Debug)]
struct LayerBuffers {
    /// Pre-activation `z`; for the output layer, the logits.
    pre: Array2<f32>,
    /// `activation(z)` for hidden layers; empty for the output layer.
    post: Array2<f32>,
    /// Inverted-dropout multipliers (`0` or `1/(1−p)`); empty without dropout.
    mask: Array2<f32>,
    /// `post · mask`, the next layer's input under dropout; empty without dropout.
    dropped: Array2<f32>,
    /// `∂objective/∂z`.
    delta: Array2<f32>,
}

impl LayerBuffers {
    fn output(&self, rows: usize, dropout: bool) -> ArrayView2<'_, f32> {
        let source = if dropout { &self.dropped } else { &self.post };
        source.slice(s![..rows, ..])
    }
}

/// Inverted-dropout constants: a unit is kept when a uniform `u32` is below `keep_below`,
/// and kept units are scaled by `keep_scale`.
#[derive(Clone, Copy, Debug)]
struct DropoutConfig {
    keep_below: u64,
    keep_scale: f32,
}

/// Training buffers for one network shape and batch capacity.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    capacity: usize,
    /// Dense inputs of the loaded rows, `(capacity, inputs − sparse_inputs)`.
    x: Array2<f32>,
    /// Sparse inputs of the loaded rows (the last `sparse_inputs` features).
    sparse: CsrMatrix,
    sparse_inputs: usize,
    y: Array2<f32>,
    weights: Array1<f32>,
    layers: Vec<LayerBuffers>,
    dropout: Option<DropoutConfig>,
}

impl Workspace {
    /// Buffers for `model` and batches of at most `capacity` rows, with inverted dropout of
    /// rate `dropout` (in `[0, 1)`) on hidden activations during training passes. The last
    /// `sparse_inputs` features arrive as a sparse block and are never densified.
    pub(crate) fn new(
        model: &Mlp,
        capacity: usize,
        dropout: f32,
        sparse_inputs: usize,
    ) -> Workspace {
        let dropout = (dropout > 0.0).then(|| DropoutConfig {
            keep_below: ((1.0 - dropout as f64) * 4_294_967_296.0) as u64,
            keep_scale: 1.0 / (1.0 - dropout),
        });
        let last = model.layers.len().saturating_sub(1);
        let layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let full = (capacity, layer.outputs());
                let hidden = if index < last { full } else { (0, 0) };
                let dropped = if dropout.is_some() { hidden } else { (0, 0) };
                LayerBuffers {
                    pre: Array2::zeros(full),
                    post: Array2::zeros(hidden),
                    mask: Array2::zeros(dropped),
                    dropped: Array2::zeros(dropped),
                    delta: Array2::zeros(full),
                }
            })
            .collect();
        Workspace {
            capacity,
            x: Array2::zeros((capacity, model.inputs() - sparse_inputs)),
            sparse: CsrMatrix::new(sparse_inputs),
            sparse_inputs,
            y: Array2::zeros((capacity, model.outputs())),
            weights: Array1::zeros(capacity),
            layers,
            dropout,
        }
    }

    /// Maximum rows per batch.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Features that arrive as a sparse block.
    pub(crate) fn sparse_inputs(&self) -> usize {
        self.sparse_inputs
    }

    /// Copies rows `indices` (at most `capacity`) of `set` into the batch buffers; rows
    /// without sample weights get weight 1. Returns the row count.
    pub(crate) fn load_rows(&mut self, set: &TrainSet, indices: &[usize]) -> usize {
        let rows = indices.len().min(self.capacity);
        let indices = &indices[..rows];
        gather_rows(set.x, indices, &mut self.x);
        match set.sparse {
            Some(sparse) => self.sparse.gather(sparse, indices),
            None => self.sparse.clear(),
        }
        gather_rows(set.y, indices, &mut self.y);
        match set.weights {
            Some(weights) => {
                for (dst, &i) in self.weights.iter_mut().zip(indices) {
                    *dst = weights[i];
                }
            }
            None => self.weights.slice_mut(s![..rows]).fill(1.0),
        }
        rows
    }

    /// Forward pass over the first `rows` loaded rows. With `dropout_rng`, draws a fresh
    /// dropout mask (if dropout is configured); without it, dropout is off.
    pub(crate) fn forward(
        &mut self,
        model: &Mlp,
        rows: usize,
        dropout_rng: Option<&mut ChaCha8Rng>,
    ) {
        let activation = model.activation;
        let dropout = self.dropout.filter(|_| dropout_rng.is_some());
        let mut rng = dropout_rng;
        let last = model.layers.len() - 1;
        for (index, layer) in model.layers.iter().enumerate() {
            let (before, from_here) = self.layers.split_at_mut(index);
            let buffers = &mut from_here[0];
            match before.last() {
                None if self.sparse_inputs > 0 => first_layer_product(
                    self.x.slice(s![..rows, ..]),
                    &self.sparse,
                    &layer.weight,
                    buffers.pre.slice_mut(s![..rows, ..]),
                ),
                None => general_mat_mul(
                    1.0,
                    &self.x.slice(s![..rows, ..]),
                    &layer.weight,
                    0.0,
                    &mut buffers.pre.slice_mut(s![..rows, ..]),
                ),
                Some(previous) => general_mat_mul(
                    1.0,
                    &previous.output(rows, dropout.is_some()),
                    &layer.weight,
                    0.0,
                    &mut buffers.pre.slice_mut(s![..rows, ..]),
                ),
            }
            let bias = contiguous(&layer.bias);
            let pre = leading_rows_mut(&mut buffers.pre, rows);
            if index == last {
                for row in pre.chunks_exact_mut(bias.len().max(1)) {
                    for (z, &b) in row.iter_mut().zip(bias) {
                        *z += b;
                    }
                }
                continue;
            }
            let post = leading_rows_mut(&mut buffers.post, rows);
            activation.add_bias_and_apply(pre, post, bias);
            if let (Some(config), Some(rng)) = (dropout, rng.as_deref_mut()) {
                let mask = leading_rows_mut(&mut buffers.mask, rows);
                let dropped = leading_rows_mut(&mut buffers.dropped, rows);
                for ((m, d), &a) in mask.iter_mut().zip(dropped.iter_mut()).zip(&*post) {
                    *m = if u64::from(rng.next_u32()) < config.keep_below {
                        config.keep_scale
                    } else {
                        0.0
                    };
                    *d = a * *m;
                }
            }
        }
    }

    /// Logits of the first `rows` rows after [`Workspace::forward`].
    pub(crate) fn logits(&self, rows: usize) -> ArrayView2<'_, f32> {
        self.layers[self.layers.len() - 1].pre.slice(s![..rows, ..])
    }

    /// Targets of the first `rows` loaded rows.
    pub(crate) fn targets(&self, rows: usize) -> ArrayView2<'_, f32> {
        self.y.slice(s![..rows, ..])
    }

    /// `Σ wᵢ·lossᵢ` over the first `rows` rows after a forward pass; no gradient.
    pub(crate) fn loss_sum(&self, model: &Mlp, rows: usize) -> f64 {
        model.head.batch_loss(
            self.logits(rows),
            self.targets(rows),
            self.weights.slice(s![..rows]),
            None,
        )
    }

    /// After a forward pass with the same dropout setting, writes into `grads` the gradient
    /// of the batch objective `Σ wᵢ·lossᵢ / rows` and returns `Σ wᵢ·lossᵢ`.
    pub(crate) fn backward(
        &mut self,
        model: &Mlp,
        rows: usize,
        dropout_used: bool,
        grads: &mut [Dense],
    ) -> f64 {
        let dropout = dropout_used && self.dropout.is_some();
        let activation = model.activation;
        let last = self.layers.len() - 1;
        let loss_sum = {
            let output = &mut self.layers[last];
            model.head.batch_loss(
                output.pre.slice(s![..rows, ..]),
                self.y.slice(s![..rows, ..]),
                self.weights.slice(s![..rows]),
                Some((output.delta.slice_mut(s![..rows, ..]), rows)),
            )
        };
        for index in (0..=last).rev() {
            let (before, from_here) = self.layers.split_at_mut(index);
            let delta = from_here[0].delta.slice(s![..rows, ..]);
            let grad = &mut grads[index];
            match before.last() {
                None if self.sparse_inputs > 0 => first_layer_weight_gradient(
                    self.x.slice(s![..rows, ..]),
                    &self.sparse,
                    delta,
                    &mut grad.weight,
                ),
                None => general_mat_mul(
                    1.0,
                    &self.x.slice(s![..rows, ..]).t(),
                    &delta,
                    0.0,
                    &mut grad.weight,
                ),
                Some(previous) => general_mat_mul(
                    1.0,
                    &previous.output(rows, dropout).t(),
                    &delta,
                    0.0,
                    &mut grad.weight,
                ),
            }
            column_sums_into(delta, &mut grad.bias);
            let Some(previous) = before.last_mut() else {
                continue;
            };
            general_mat_mul(
                1.0,
                &delta,
                &model.layers[index].weight.t(),
                0.0,
                &mut previous.delta.slice_mut(s![..rows, ..]),
            );
            let width = previous.pre.ncols();
            let mask = dropout.then(|| &contiguous2(&previous.mask)[..rows * width]);
            activation.scale_by_derivative(
                leading_rows_mut(&mut previous.delta, rows),
                &contiguous2(&previous.pre)[..rows * width],
                &contiguous2(&previous.post)[..rows * width],
                mask,
            );
        }
        loss_sum
    }
}

/// Shuffled rows are scattered over memory; fetching a few rows ahead hides the latency.
const PREFETCH_ROWS_AHEAD: usize = 8;
const CACHE_LINE_FLOATS: usize = 16;

/// Hints the CPU to start loading `row` into cache.
#[inline(always)]
fn prefetch_row(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(CACHE_LINE_FLOATS) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint that
        // never faults; the pointer comes from a live slice.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Copies rows `indices` of `source` into the leading rows of `target`.
fn gather_rows(source: ArrayView2<f32>, indices: &[usize], target: &mut Array2<f32>) {
    let width = target.ncols();
    let target = leading_rows_mut(target, indices.len());
    match source.as_slice() {
        Some(values) if width > 0 => {
            for (position, (dst, &i)) in target.chunks_exact_mut(width).zip(indices).enumerate() {
                if let Some(&ahead) = indices.get(position + PREFETCH_ROWS_AHEAD) {
                    prefetch_row(&values[ahead * width..(ahead + 1) * width]);
                }
                dst.copy_from_slice(&values[i * width..(i + 1) * width]);
            }
        }
        _ => {
            for (dst, &i) in target.chunks_exact_mut(width.max(1)).zip(indices) {
                for (d, &v) in dst.iter_mut().zip(source.row(i)) {
                    *d = v;
                }
            }
        }
    }
}

/// The first `rows` rows of a workspace buffer as one row-major slice.
fn leading_rows_mut(buffer: &mut Array2<f32>, rows: usize) -> &mut [f32] {
    let len = rows * buffer.ncols();
    &mut buffer
        .as_slice_mut()
        .expect("workspace buffers are allocated in standard layout")[..len]
}

fn contiguous2(buffer: &Array2<f32>) -> &[f32] {
    buffer
        .as_slice()
        .expect("workspace buffers are allocated in standard layout")
}

fn contiguous(vector: &Array1<f32>) -> &[f32] {
    vector
        .as_slice()
        .expect("layer vectors are allocated in standard layout")
}

fn column_sums_into(matrix: ArrayView2<f32>, sums: &mut Array1<f32>) {
    sums.fill(0.0);
    let width = sums.len().max(1);
    let sums = sums
        .as_slice_mut()
        .expect("gradient vectors are allocated in standard layout");
    match matrix.as_slice() {
        Some(values) => {
            for row in values.chunks_exact(width) {
                for (sum, &value) in sums.iter_mut().zip(row) {
                    *sum += value;
                }
            }
        }
        None => {
            for row in matrix.rows() {
                for (sum, &value) in sums.iter_mut().zip(row) {
                    *sum += value;
                }
            }
        }
    }
}

/// Zero-filled gradient holders shaped like `model`'s layers.
pub(crate) fn zero_gradients(model: &Mlp) -> Vec<Dense> {
    model
        .layers
        .iter()
        .map(|l| Dense::zeros(l.inputs(), l.outputs()))
        .collect()
}

/// `grad_W += l2·W` for every layer's weights (biases are not penalised).
pub(crate) fn add_l2_gradient(grads: &mut [Dense], layers: &[Dense], l2: f32) {
    for (grad, layer) in grads.iter_mut().zip(layers) {
        Zip::from(&mut grad.weight)
            .and(&layer.weight)
            .for_each(|g, &w| *g += l2 * w);
    }
}

#[cfg(test)]
#[path = "workspace_tests.rs"]
mod tests;
