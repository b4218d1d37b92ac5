//! One optimisation step at a time: the state `fit` drives, also usable directly.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::dense::Dense;
use super::evaluate::Evaluation;
use super::mlp::{Architecture, Mlp};
use super::optim::{Optimizer, OptimizerConfig};
use super::params::{Caps, ParamError, TrainParams};
use super::set::{check_set, TrainError, TrainSet};
use super::workspace::{add_l2_gradient, zero_gradients, Workspace};

/// ChaCha stream seeding the dropout masks.
const DROPOUT_STREAM: u64 = 3;

/// A network with its optimizer state and preallocated training buffers.
///
/// Uses from `params`: `init`, `seed` (initial weights and dropout masks), optimizer
/// settings, `l2`, `dropout`, `clip_grad_norm` and `batch_size` (buffer capacity). The
/// learning rate is passed per step so callers own the schedule.
#[derive(Clone, Debug)]
pub struct Trainer {
    model: Mlp,
    workspace: Workspace,
    grads: Vec<Dense>,
    optimizer: Optimizer,
    dropout_rng: ChaCha8Rng,
    dropout: bool,
    l2: f32,
    clip_grad_norm: Option<f32>,
}

impl Trainer {
    /// Fresh network `Mlp::new(arch, params.init, params.seed)` ready for training in
    /// batches of up to `params.batch_size` rows. `arch` is authoritative over
    /// `params.hidden_layers` and `params.activation`.
    ///
    /// # Errors
    /// [`ParamError`] if `params` or `arch` violate `caps`.
    pub fn new(
        arch: &Architecture,
        params: &TrainParams,
        caps: &Caps,
    ) -> Result<Trainer, ParamError> {
        params.check(caps)?;
        caps.check_architecture(arch)?;
        caps.check_batch_memory(arch, params.batch_size)?;
        let model = Mlp::new(arch, params.init, params.seed);
        Ok(Trainer::from_model(model, params, params.batch_size, 0))
    }

    /// Wraps an existing model with buffers for `capacity` rows whose last `sparse_inputs`
    /// features arrive as a sparse block; `params` must be checked.
    pub(crate) fn from_model(
        model: Mlp,
        params: &TrainParams,
        capacity: usize,
        sparse_inputs: usize,
    ) -> Trainer {
        let workspace = Workspace::new(&model, capacity, params.dropout, sparse_inputs);
        let grads = zero_gradients(&model);
        let optimizer = Optimizer::new(OptimizerConfig::from_params(params), &model.layers);
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(params.seed);
        dropout_rng.set_stream(DROPOUT_STREAM);
        Trainer {
            model,
            workspace,
            grads,
            optimizer,
            dropout_rng,
            dropout: params.dropout > 0.0,
            l2: params.l2,
            clip_grad_norm: params.clip_grad_norm,
        }
    }

    /// The network in its current state.
    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// Consumes the trainer, returning the network.
    pub fn into_model(self) -> Mlp {
        self.model
    }

    /// Maximum rows per step.
    pub fn batch_capacity(&self) -> usize {
        self.workspace.capacity()
    }

    /// One optimizer step on all rows of `batch` at `learning_rate`; returns the batch's
    /// mean weighted loss `Σ wᵢ·lossᵢ / rows` before the update (L2 penalty excluded).
    ///
    /// # Errors
    /// [`TrainError::Shape`] if the batch is empty, larger than
    /// [`Trainer::batch_capacity`], or its shapes or values do not fit the model;
    /// [`TrainError::NonFinite`] (epoch 0) if the loss is not finite.
    pub fn train_batch(&mut self, batch: TrainSet, learning_rate: f32) -> Result<f64, TrainError> {
        check_set("batch", &batch, &self.model.architecture())?;
        let rows = batch.x.nrows();
        if batch.sparse.map_or(0, |s| s.cols()) != self.workspace.sparse_inputs() {
            return Err(TrainError::Shape(format!(
                "batch: {} sparse columns, the trainer was built for {}",
                batch.sparse.map_or(0, |s| s.cols()),
                self.workspace.sparse_inputs()
            )));
        }
        if rows > self.batch_capacity() {
            return Err(TrainError::Shape(format!(
                "batch: {rows} rows exceed batch capacity {}",
                self.batch_capacity()
            )));
        }
        let indices: Vec<usize> = (0..rows).collect();
        let loss = self.step(&batch, &indices, learning_rate) / rows as f64;
        if loss.is_finite() {
            Ok(loss)
        } else {
            Err(TrainError::NonFinite { epoch: 0 })
        }
    }

    /// One optimizer step on rows `indices` (at most the capacity) of `set`; returns
    /// `Σ wᵢ·lossᵢ` of those rows before the update.
    pub(crate) fn step(&mut self, set: &TrainSet, indices: &[usize], learning_rate: f32) -> f64 {
        let rows = self.workspace.load_rows(set, indices);
        let rng = self.dropout.then_some(&mut self.dropout_rng);
        self.workspace.forward(&self.model, rows, rng);
        let loss_sum = self
            .workspace
            .backward(&self.model, rows, self.dropout, &mut self.grads);
        if self.l2 > 0.0 {
            add_l2_gradient(&mut self.grads, &self.model.layers, self.l2);
        }
        if let Some(max_norm) = self.clip_grad_norm {
            clip_global_norm(&mut self.grads, max_norm);
        }
        self.optimizer
            .step(&mut self.model.layers, &self.grads, learning_rate);
        loss_sum
    }

    /// Loss and metric of the current model on rows `indices` of `set`, dropout off.
    pub(crate) fn evaluate(&mut self, set: &TrainSet, indices: &[usize]) -> Evaluation {
        let mut evaluation = Evaluation::default();
        for chunk in indices.chunks(self.workspace.capacity().max(1)) {
            crate::cooperative::yield_point();
            let rows = self.workspace.load_rows(set, chunk);
            self.workspace.forward(&self.model, rows, None);
            let loss_sum = self.workspace.loss_sum(&self.model, rows);
            evaluation.add_batch(
                &self.model.head,
                loss_sum,
                self.workspace.logits(rows),
                self.workspace.targets(rows),
            );
        }
        evaluation
    }

    /// Mutable access for restoring saved weights.
    pub(crate) fn layers_mut(&mut self) -> &mut [Dense] {
        &mut self.model.layers
    }
}

/// Rescales all gradients so their global L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub(crate) fn clip_global_norm(grads: &mut [Dense], max_norm: f32) -> f64 {
    let squares: f64 = grads
        .iter()
        .flat_map(|g| g.weight.iter().chain(g.bias.iter()))
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    let norm = squares.sqrt();
    if norm > f64::from(max_norm) {
        let scale = (f64::from(max_norm) / norm) as f32;
        for grad in grads.iter_mut() {
            grad.weight.mapv_inplace(|v| v * scale);
            grad.bias.mapv_inplace(|v| v * scale);
        }
    }
    norm
}
