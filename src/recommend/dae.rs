//! The multinomial denoising autoencoder (Mult-DAE, Liang et al. 2018) with a sparse
//! first layer, and its training loop.
//!
//! Forward for one user with history `x` (sparse, `|h|` entries):
//! `x̂ = x / ‖x‖₂`, `a = tanh(Σ_j x̂_j · E[j, :] + c)` (a sum of `|h|` encoder rows, never a
//! dense multi-hot product), `logits = a · D + d` (one `hidden × n_items` GEMV).
//! Training applies inverted dropout to the input entries before normalising and
//! minimises the multinomial negative log-likelihood `−Σ_j x_j · log softmax(logits)_j`
//! with Adam; the decoder products of a mini-batch are GEMMs.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayViewMut1, Axis, Zip};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::data::Dataset;
use super::kernels::add_rows;

/// ChaCha streams: weights, shuffling, dropout.
const INIT_STREAM: u64 = 10;
const SHUFFLE_STREAM: u64 = 11;
const DROPOUT_STREAM: u64 = 12;

/// The autoencoder's parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dae {
    /// `(n_items, hidden)`: row `j` is item `j`'s input embedding.
    pub encoder: Array2<f32>,
    /// `(hidden)`.
    pub encoder_bias: Array1<f32>,
    /// `(hidden, n_items)`: column `j` is item `j`'s output embedding.
    pub decoder: Array2<f32>,
    /// `(n_items)`.
    pub decoder_bias: Array1<f32>,
}

impl Dae {
    pub fn new(n_items: usize, hidden: usize, seed: u64) -> Dae {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(INIT_STREAM);
        let limit = (6.0 / (n_items + hidden) as f64).sqrt() as f32;
        let mut uniform = |shape: (usize, usize)| {
            Array2::from_shape_simple_fn(shape, || rng.random_range(-limit..=limit))
        };
        let encoder = uniform((n_items, hidden));
        let decoder = uniform((hidden, n_items));
        Dae {
            encoder,
            encoder_bias: Array1::zeros(hidden),
            decoder,
            decoder_bias: Array1::zeros(n_items),
        }
    }

    pub fn n_items(&self) -> usize {
        self.encoder.nrows()
    }

    pub fn hidden(&self) -> usize {
        self.encoder.ncols()
    }

    /// Hidden activations for a sparse history: `tanh(Σ x̂_j E[j,:] + c)`.
    pub fn encode_into(&self, history: &[(u32, f32)], hidden: &mut [f32]) {
        hidden.copy_from_slice(self.encoder_bias.as_slice().expect("contiguous"));
        let norm = history.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            let rows = self.encoder.as_slice().expect("standard layout");
            let picks = history.iter().map(|&(item, w)| (item as usize, w * inv));
            add_rows(rows, self.hidden(), picks, hidden);
        }
        for h in hidden.iter_mut() {
            *h = h.tanh();
        }
    }

    /// Item output embeddings as rows `(n_items, hidden)` (the decoder's columns).
    pub fn item_embeddings(&self) -> Array2<f32> {
        self.decoder.t().as_standard_layout().into_owned()
    }

    fn all_finite(&self) -> bool {
        self.encoder.iter().all(|v| v.is_finite())
            && self.decoder.iter().all(|v| v.is_finite())
            && self.encoder_bias.iter().all(|v| v.is_finite())
            && self.decoder_bias.iter().all(|v| v.is_finite())
    }
}

/// Adam moments for one tensor.
#[derive(Clone, Debug)]
struct Moments<D: ndarray::Dimension> {
    m: ndarray::Array<f32, D>,
    v: ndarray::Array<f32, D>,
}

impl<D: ndarray::Dimension> Moments<D> {
    fn like(a: &ndarray::Array<f32, D>) -> Self {
        Moments {
            m: ndarray::Array::zeros(a.raw_dim()),
            v: ndarray::Array::zeros(a.raw_dim()),
        }
    }
}

#[derive(Clone, Copy)]
struct AdamStep {
    step_size: f32,
    inv_sqrt_c2: f32,
    decay: f32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

fn adam<D: ndarray::Dimension>(
    param: &mut ndarray::Array<f32, D>,
    grad: &ndarray::Array<f32, D>,
    state: &mut Moments<D>,
    step: AdamStep,
) {
    Zip::from(param)
        .and(grad)
        .and(&mut state.m)
        .and(&mut state.v)
        .for_each(|p, &g, m, v| {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *p = *p * step.decay - step.step_size * *m / (v.sqrt() * step.inv_sqrt_c2 + EPSILON);
        });
}

/// Hyperparameters of the training loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DaeConfig {
    pub hidden: usize,
    pub input_dropout: f32,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub weight_decay: f32,
    pub seed: u64,
}

/// Trains a [`Dae`] one epoch at a time, reusing its buffers.
pub(crate) struct DaeTrainer {
    pub model: Dae,
    config: DaeConfig,
    enc_state: Moments<ndarray::Ix2>,
    enc_bias_state: Moments<ndarray::Ix1>,
    dec_state: Moments<ndarray::Ix2>,
    dec_bias_state: Moments<ndarray::Ix1>,
    grad_enc: Array2<f32>,
    grad_enc_bias: Array1<f32>,
    grad_dec: Array2<f32>,
    grad_dec_bias: Array1<f32>,
    steps: u64,
    shuffle_rng: ChaCha8Rng,
    dropout_rng: ChaCha8Rng,
    order: Vec<u32>,
}

impl DaeTrainer {
    pub fn new(n_items: usize, config: DaeConfig) -> DaeTrainer {
        DaeTrainer::with_model(Dae::new(n_items, config.hidden, config.seed), config)
    }

    /// A trainer continuing from `model` (fresh optimiser state).
    pub fn with_model(model: Dae, config: DaeConfig) -> DaeTrainer {
        let n_items = model.n_items();
        let mut shuffle_rng = ChaCha8Rng::seed_from_u64(config.seed);
        shuffle_rng.set_stream(SHUFFLE_STREAM);
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(config.seed);
        dropout_rng.set_stream(DROPOUT_STREAM);
        DaeTrainer {
            enc_state: Moments::like(&model.encoder),
            enc_bias_state: Moments::like(&model.encoder_bias),
            dec_state: Moments::like(&model.decoder),
            dec_bias_state: Moments::like(&model.decoder_bias),
            grad_enc: Array2::zeros(model.encoder.raw_dim()),
            grad_enc_bias: Array1::zeros(config.hidden),
            grad_dec: Array2::zeros(model.decoder.raw_dim()),
            grad_dec_bias: Array1::zeros(n_items),
            model,
            config,
            steps: 0,
            shuffle_rng,
            dropout_rng,
            order: Vec::new(),
        }
    }

    /// One pass over every user with a non-empty history, in a seeded shuffled order.
    /// Returns the mean loss per user, or `None` if `cancel()` became true.
    pub fn epoch(&mut self, data: &Dataset, cancel: &dyn Fn() -> bool) -> Option<f64> {
        self.order.clear();
        self.order
            .extend((0..data.n_users() as u32).filter(|&u| !data.range(u as usize).is_empty()));
        let mut order = std::mem::take(&mut self.order);
        order.shuffle(&mut self.shuffle_rng);
        let mut total = 0.0;
        for batch in order.chunks(self.config.batch_size) {
            if cancel() {
                self.order = order;
                return None;
            }
            total += self.step(data, batch);
        }
        let users = order.len().max(1);
        self.order = order;
        Some(total / users as f64)
    }

    pub fn is_finite(&self) -> bool {
        self.model.all_finite()
    }

    /// One Adam step on the users in `batch`; returns the summed loss.
    fn step(&mut self, data: &Dataset, batch: &[u32]) -> f64 {
        let rows = batch.len();
        let hidden = self.config.hidden;
        let n_items = self.model.n_items();
        let keep = 1.0 - self.config.input_dropout;
        // Dropped, L2-normalised sparse inputs.
        let mut inputs: Vec<Vec<(u32, f32)>> = Vec::with_capacity(rows);
        for &user in batch {
            let range = data.range(user as usize);
            let mut kept: Vec<(u32, f32)> = Vec::with_capacity(range.len());
            for j in range {
                if self.config.input_dropout == 0.0 || self.dropout_rng.random::<f32>() < keep {
                    kept.push((data.items[j], data.values[j]));
                }
            }
            let norm = kept.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
            if norm > 0.0 {
                kept.iter_mut().for_each(|e| e.1 /= norm);
            }
            inputs.push(kept);
        }
        // Encoder: sparse row sums, tanh.
        let mut act = Array2::<f32>::zeros((rows, hidden));
        for (mut row, input) in act.rows_mut().into_iter().zip(&inputs) {
            row.assign(&self.model.encoder_bias);
            for &(item, w) in input {
                row.scaled_add(w, &self.model.encoder.row(item as usize));
            }
            row.mapv_inplace(f32::tanh);
        }
        // Decoder GEMM.
        let mut logits = Array2::<f32>::zeros((rows, n_items));
        for mut row in logits.rows_mut() {
            row.assign(&self.model.decoder_bias);
        }
        general_mat_mul(1.0, &act, &self.model.decoder, 1.0, &mut logits);
        // Multinomial NLL and its gradient (p·Σy − y)/rows, in place.
        let inv_rows = 1.0 / rows as f32;
        let mut loss = 0.0f64;
        for (mut row, &user) in logits.rows_mut().into_iter().zip(batch) {
            let range = data.range(user as usize);
            let targets = &data.values[range.clone()];
            let target_items = &data.items[range];
            let total: f32 = targets.iter().sum();
            let lse = log_sum_exp(row.view_mut());
            for (&item, &y) in target_items.iter().zip(targets) {
                loss -= f64::from(y) * f64::from(row[item as usize] - lse);
            }
            row.mapv_inplace(|z| (z - lse).exp() * total * inv_rows);
            for (&item, &y) in target_items.iter().zip(targets) {
                row[item as usize] -= y * inv_rows;
            }
        }
        let grad = logits;
        // Decoder gradients.
        general_mat_mul(1.0, &act.t(), &grad, 0.0, &mut self.grad_dec);
        self.grad_dec_bias.assign(&grad.sum_axis(Axis(0)));
        // Back to the hidden layer: (g · Dᵀ) ⊙ (1 − a²).
        let mut grad_hidden = Array2::<f32>::zeros((rows, hidden));
        general_mat_mul(1.0, &grad, &self.model.decoder.t(), 0.0, &mut grad_hidden);
        Zip::from(&mut grad_hidden)
            .and(&act)
            .for_each(|g, &a| *g *= 1.0 - a * a);
        self.grad_enc_bias.assign(&grad_hidden.sum_axis(Axis(0)));
        // Encoder gradient: scatter into the rows of the input items.
        self.grad_enc.fill(0.0);
        for (g_row, input) in grad_hidden.rows().into_iter().zip(&inputs) {
            for &(item, w) in input {
                self.grad_enc.row_mut(item as usize).scaled_add(w, &g_row);
            }
        }
        // Adam (decoupled weight decay on weights, not biases).
        self.steps += 1;
        let exponent = i32::try_from(self.steps).unwrap_or(i32::MAX);
        let lr = self.config.learning_rate;
        let weights = AdamStep {
            step_size: lr / (1.0 - BETA1.powi(exponent)),
            inv_sqrt_c2: 1.0 / (1.0 - BETA2.powi(exponent)).sqrt(),
            decay: 1.0 - lr * self.config.weight_decay,
        };
        let biases = AdamStep {
            decay: 1.0,
            ..weights
        };
        adam(
            &mut self.model.encoder,
            &self.grad_enc,
            &mut self.enc_state,
            weights,
        );
        adam(
            &mut self.model.decoder,
            &self.grad_dec,
            &mut self.dec_state,
            weights,
        );
        adam(
            &mut self.model.encoder_bias,
            &self.grad_enc_bias,
            &mut self.enc_bias_state,
            biases,
        );
        adam(
            &mut self.model.decoder_bias,
            &self.grad_dec_bias,
            &mut self.dec_bias_state,
            biases,
        );
        loss
    }
}

fn log_sum_exp(row: ArrayViewMut1<f32>) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&z| (z - max).exp()).sum();
    max + sum.ln()
}
