//! The multilayer perceptron: architecture, initialisation and inference.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::dense::Dense;
use super::loss::Head;
use super::sparse::{first_layer_product, CsrMatrix};

/// ChaCha stream used for weight initialisation; other streams seed the training RNGs.
pub(crate) const INIT_STREAM: u64 = 0;

/// Weight initialisation. Weights are drawn uniformly; biases start at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// `he` for `relu`/`leaky_relu`/`gelu` networks, `xavier` otherwise.
    Auto,
    /// `U(−√(6/fan_in), √(6/fan_in))`.
    He,
    /// `U(−√(6/(fan_in+fan_out)), √(6/(fan_in+fan_out)))`.
    Xavier,
}

/// Everything needed to rebuild an [`Mlp`] from its tensors; stored in `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Input feature count.
    pub inputs: usize,
    /// Hidden layer widths, input side first.
    pub hidden: Vec<usize>,
    /// Output layer width; must equal `head.outputs()`.
    pub outputs: usize,
    /// Activation after every hidden layer.
    pub activation: Activation,
    /// Output head; determines the output width and the loss.
    pub head: Head,
}

impl Architecture {
    /// Layer widths from input to output: `[inputs, hidden.., outputs]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths = Vec::with_capacity(self.hidden.len() + 2);
        widths.push(self.inputs);
        widths.extend_from_slice(&self.hidden);
        widths.push(self.outputs);
        widths
    }

    /// Weights plus biases of all layers, saturating at `usize::MAX`.
    pub fn parameter_count(&self) -> usize {
        self.widths().windows(2).fold(0_usize, |total, pair| {
            let layer = pair[0].saturating_add(1).saturating_mul(pair[1]);
            total.saturating_add(layer)
        })
    }
}

/// A multilayer perceptron: dense layers, a hidden activation and an output head.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub(crate) layers: Vec<Dense>,
    pub(crate) activation: Activation,
    pub(crate) head: Head,
}

/// Reusable buffers for [`Mlp::predict_into`]; grows to the largest batch seen, then
/// serves further calls without allocating.
#[derive(Clone, Debug, Default)]
pub struct InferenceScratch {
    ping: Vec<f32>,
    pong: Vec<f32>,
}

impl Mlp {
    /// Randomly initialised network with layer widths `arch.widths()`, seeded by `seed`
    /// (the same seed always yields the same weights).
    ///
    /// Allocates `arch.parameter_count()` floats: check untrusted architectures with
    /// [`crate::nn::Caps::check_architecture`] first.
    pub fn new(arch: &Architecture, init: Init, seed: u64) -> Mlp {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(INIT_STREAM);
        let he = match init {
            Init::He => true,
            Init::Xavier => false,
            Init::Auto => arch.activation.prefers_he_init(),
        };
        let widths = arch.widths();
        let layers = widths
            .windows(2)
            .map(|pair| {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let denominator = if he { fan_in } else { fan_in + fan_out };
                let limit = (6.0 / denominator.max(1) as f64).sqrt() as f32;
                let mut layer = Dense::zeros(fan_in, fan_out);
                layer
                    .weight
                    .mapv_inplace(|_| rng.random_range(-limit..=limit));
                layer
            })
            .collect();
        Mlp {
            layers,
            activation: arch.activation,
            head: arch.head,
        }
    }

    /// Builds a network from existing layers; caller guarantees consecutive widths chain.
    pub(crate) fn from_layers(layers: Vec<Dense>, activation: Activation, head: Head) -> Mlp {
        Mlp {
            layers,
            activation,
            head,
        }
    }

    /// The architecture this network was built with.
    pub fn architecture(&self) -> Architecture {
        Architecture {
            inputs: self.inputs(),
            hidden: self.layers[..self.layers.len().saturating_sub(1)]
                .iter()
                .map(Dense::outputs)
                .collect(),
            outputs: self.outputs(),
            activation: self.activation,
            head: self.head,
        }
    }

    /// Input feature count.
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, Dense::inputs)
    }

    /// Output width (columns of [`Mlp::predict`]).
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, Dense::outputs)
    }

    /// The output head.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The hidden-layer activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Weights plus biases.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(Dense::parameter_count).sum()
    }

    /// The layers, input side first.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Head outputs for a batch `x` of shape `(n, inputs)`: `binary` → `(n, 1)` P(positive);
    /// `multiclass` → `(n, k)` softmax; `multi_label` → `(n, k)` sigmoids; `regression` →
    /// `(n, outputs)` raw values. Dropout is never applied.
    ///
    /// # Panics
    /// If `x.ncols() != self.inputs()`; validate request widths first.
    pub fn predict(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((x.nrows(), self.outputs()));
        self.predict_into(x, &mut InferenceScratch::default(), out.view_mut());
        out
    }

    /// Raw output-layer values (logits) for a batch `x` of shape `(n, inputs)`.
    ///
    /// # Panics
    /// If `x.ncols() != self.inputs()`.
    pub fn logits(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((x.nrows(), self.outputs()));
        self.logits_into(x, &mut InferenceScratch::default(), out.view_mut());
        out
    }

    /// Same values as [`Mlp::predict`], written into `out` of shape `(n, outputs)`, reusing
    /// `scratch` so that steady-state serving does not allocate.
    ///
    /// # Panics
    /// If `x.ncols() != self.inputs()` or `out.dim() != (x.nrows(), self.outputs())`.
    pub fn predict_into(
        &self,
        x: ArrayView2<f32>,
        scratch: &mut InferenceScratch,
        mut out: ArrayViewMut2<f32>,
    ) {
        self.logits_into(x, scratch, out.view_mut());
        self.head.apply_output(out);
    }

    /// Same values as [`Mlp::logits`], written into `out` of shape `(n, outputs)`.
    ///
    /// # Panics
    /// As [`Mlp::predict_into`].
    pub fn logits_into(
        &self,
        x: ArrayView2<f32>,
        scratch: &mut InferenceScratch,
        out: ArrayViewMut2<f32>,
    ) {
        self.logits_split_into(x, None, scratch, out);
    }

    /// [`Mlp::predict`] for rows split into a dense part `x` `(n, d)` and a sparse part
    /// `(n, inputs − d)` (see [`CsrMatrix`]); never densifies the sparse part.
    ///
    /// # Panics
    /// If the widths do not add up to `self.inputs()` or the row counts differ.
    pub fn predict_split(&self, x: ArrayView2<f32>, sparse: Option<&CsrMatrix>) -> Array2<f32> {
        let mut out = Array2::zeros((x.nrows(), self.outputs()));
        self.logits_split_into(x, sparse, &mut InferenceScratch::default(), out.view_mut());
        self.head.apply_output(out.view_mut());
        out
    }

    /// [`Mlp::predict_into`] for rows split as in [`Mlp::predict_split`].
    ///
    /// # Panics
    /// As [`Mlp::predict_split`], or if `out.dim() != (x.nrows(), self.outputs())`.
    pub fn predict_split_into(
        &self,
        x: ArrayView2<f32>,
        sparse: Option<&CsrMatrix>,
        scratch: &mut InferenceScratch,
        mut out: ArrayViewMut2<f32>,
    ) {
        self.logits_split_into(x, sparse, scratch, out.view_mut());
        self.head.apply_output(out);
    }

    fn logits_split_into(
        &self,
        x: ArrayView2<f32>,
        sparse: Option<&CsrMatrix>,
        scratch: &mut InferenceScratch,
        out: ArrayViewMut2<f32>,
    ) {
        let sparse_cols = sparse.map_or(0, CsrMatrix::cols);
        assert_eq!(x.ncols() + sparse_cols, self.inputs(), "input width");
        if let Some(sparse) = sparse {
            assert_eq!(sparse.rows(), x.nrows(), "sparse rows");
        }
        assert_eq!(out.dim(), (x.nrows(), self.outputs()), "output shape");
        let rows = x.nrows();
        let Some((last, hidden)) = self.layers.split_last() else {
            return;
        };
        let first = |layer: &Dense, out: ArrayViewMut2<f32>| match sparse {
            Some(sparse) => {
                let mut out = out;
                first_layer_product(x, sparse, &layer.weight, out.view_mut());
                for mut row in out.rows_mut() {
                    row += &layer.bias;
                }
            }
            None => layer.forward_into(x, out),
        };
        let InferenceScratch { ping, pong } = scratch;
        let mut input_in_ping = false;
        for (index, layer) in hidden.iter().enumerate() {
            let (source, target) = if input_in_ping {
                (&*ping, &mut *pong)
            } else {
                (&*pong, &mut *ping)
            };
            let width = layer.outputs();
            target.resize(rows * width, 0.0);
            let mut activations = ArrayViewMut2::from_shape((rows, width), &mut target[..])
                .expect("buffer sized to rows * width");
            if index == 0 {
                first(layer, activations.view_mut());
            } else {
                let input = ArrayView2::from_shape((rows, layer.inputs()), &source[..])
                    .expect("buffer sized to rows * width");
                layer.forward_into(input, activations.view_mut());
            }
            let activation = self.activation;
            activations.mapv_inplace(|z| activation.apply(z));
            input_in_ping = !input_in_ping;
        }
        if hidden.is_empty() {
            first(last, out);
        } else {
            let source = if input_in_ping { &*ping } else { &*pong };
            let input = ArrayView2::from_shape((rows, last.inputs()), &source[..])
                .expect("buffer sized to rows * width");
            last.forward_into(input, out);
        }
    }
}
