//! Compressed serving copies of a tabular model's network: `f16` weights, or
//! `int8` weights with one scale per output unit (the recommender's
//! [`QuantizedColumns`], fed with activations scaled per row into `[-1, 1]`),
//! and what compressing costs in accuracy on the validation rows.

use half::f16;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::evaluate::{argmax, class_probabilities};
use super::{TabularError, TabularModel};
use crate::data::{Table, Task};
use crate::nn::{metrics, Mlp};
use crate::recommend::quant::QuantizedColumns;

/// Most rows the compression report scores.
const REPORT_MAX_ROWS: usize = 5_000;
/// Most feature values it materializes (rows × features).
const REPORT_MAX_VALUES: usize = 8_000_000;

/// The number format of the weights a model is served with.
#[derive(
    Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The trained weights.
    #[default]
    F32,
    /// Half-precision weights, computed in `f32`.
    F16,
    /// `int8` weights with a scale per output unit; activations quantized per row.
    Int8,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        }
    }
}

/// What a compressed copy costs, measured at the end of training.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CompressionReport {
    /// Rows scored (those of the metrics).
    pub rows: usize,
    /// Bytes of the `f32` weights and biases.
    pub f32_bytes: usize,
    pub f16: PrecisionCost,
    pub int8: PrecisionCost,
}

/// One precision's size and accuracy cost.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PrecisionCost {
    /// Bytes of the weights, scales and biases.
    pub bytes: usize,
    /// Accuracy (classification) or R² (regression) of the `f32` model minus
    /// this copy's, on the scored rows: positive is a loss.
    pub accuracy_drop: f64,
    /// Rows whose label differs from the `f32` model's (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_labels: Option<usize>,
}

#[derive(Debug)]
enum Layer {
    F16 {
        /// `(inputs, outputs)` row-major.
        weight: Vec<f16>,
        outputs: usize,
        bias: Vec<f32>,
    },
    Int8 {
        columns: QuantizedColumns,
        bias: Vec<f32>,
    },
}

/// A network with compressed weights; computes what [`Mlp::predict`] does.
#[derive(Debug)]
pub struct CompressedNet {
    layers: Vec<Layer>,
    mlp: Mlp,
    precision: Precision,
}

impl CompressedNet {
    /// The `precision` copy of `mlp` (`f32` keeps the weights as they are).
    pub fn new(mlp: &Mlp, precision: Precision) -> CompressedNet {
        let layers = match precision {
            Precision::F32 => Vec::new(),
            Precision::F16 => mlp
                .layers()
                .iter()
                .map(|l| Layer::F16 {
                    weight: l.weight.iter().map(|&w| f16::from_f32(w)).collect(),
                    outputs: l.outputs(),
                    bias: l.bias.to_vec(),
                })
                .collect(),
            Precision::Int8 => mlp
                .layers()
                .iter()
                .map(|l| Layer::Int8 {
                    columns: QuantizedColumns::from_columns(l.weight.view()),
                    bias: l.bias.to_vec(),
                })
                .collect(),
        };
        CompressedNet {
            layers,
            mlp: mlp.clone(),
            precision,
        }
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes of the weights, scales and biases.
    pub fn bytes(&self) -> usize {
        match self.precision {
            Precision::F32 => self.mlp.parameter_count() * 4,
            _ => self
                .layers
                .iter()
                .map(|l| match l {
                    Layer::F16 { weight, bias, .. } => weight.len() * 2 + bias.len() * 4,
                    Layer::Int8 { columns, bias } => columns.bytes() + bias.len() * 4,
                })
                .sum(),
        }
    }

    /// Head outputs for a batch `x` `(n, inputs)`, as [`Mlp::predict`].
    pub fn predict(&self, x: ArrayView2<f32>) -> Array2<f32> {
        match self.precision {
            Precision::F32 => return self.mlp.predict(x),
            Precision::F16 => return self.predict_f16(x),
            Precision::Int8 => {}
        }
        let outputs = self.mlp.outputs();
        let mut out = Array2::zeros((x.nrows(), outputs));
        let widest = self
            .mlp
            .layers()
            .iter()
            .map(|l| l.outputs())
            .max()
            .unwrap_or(0);
        let (mut current, mut next) = (Vec::new(), Vec::with_capacity(widest));
        let mut scratch = (Vec::new(), Vec::new(), Vec::new());
        let last = self.layers.len().saturating_sub(1);
        for (row, mut target) in x.rows().into_iter().zip(out.rows_mut()) {
            current.clear();
            current.extend(row.iter().copied());
            for (index, layer) in self.layers.iter().enumerate() {
                forward(layer, &current, &mut next, &mut scratch);
                if index != last {
                    let activation = self.mlp.activation();
                    next.iter_mut().for_each(|v| *v = activation.apply(*v));
                }
                std::mem::swap(&mut current, &mut next);
            }
            target.iter_mut().zip(&current).for_each(|(t, v)| *t = *v);
        }
        self.mlp.head().apply_output(out.view_mut());
        out
    }
}

impl CompressedNet {
    /// [`CompressedNet::predict`] for `f16` weights: each layer's weights are
    /// widened to `f32` for the call (F16C when the CPU has it) and the batch
    /// goes through one matrix product per layer.
    fn predict_f16(&self, x: ArrayView2<f32>) -> Array2<f32> {
        use half::slice::HalfFloatSliceExt;
        let last = self.layers.len().saturating_sub(1);
        let activation = self.mlp.activation();
        let mut current: Option<Array2<f32>> = None;
        let mut wide = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            let Layer::F16 {
                weight,
                outputs,
                bias,
            } = layer
            else {
                unreachable!("an f16 copy holds f16 layers");
            };
            wide.clear();
            wide.resize(weight.len(), 0.0);
            weight.convert_to_f32_slice(&mut wide);
            let w = ArrayView2::from_shape((weight.len() / outputs, *outputs), &wide)
                .expect("an f16 layer is inputs × outputs");
            // The first layer reads the request's matrix in place.
            let mut next = match &current {
                Some(hidden) => hidden.dot(&w),
                None => x.dot(&w),
            };
            next += &ndarray::ArrayView1::from(bias.as_slice());
            if index != last {
                next.mapv_inplace(|v| activation.apply(v));
            }
            current = Some(next);
        }
        let mut out = current.unwrap_or_else(|| x.to_owned());
        self.mlp.head().apply_output(out.view_mut());
        out
    }
}

/// `out = x·W + b` for one row.
fn forward(
    layer: &Layer,
    x: &[f32],
    out: &mut Vec<f32>,
    scratch: &mut (Vec<f32>, Vec<u8>, Vec<f32>),
) {
    out.clear();
    match layer {
        Layer::F16 { .. } => unreachable!("f16 layers run in predict_f16"),
        Layer::Int8 { columns, bias } => {
            // Activations scaled into [-1, 1] by the row's largest magnitude.
            let peak = x.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
            out.extend_from_slice(bias);
            if peak > 0.0 && peak.is_finite() {
                let (scaled, codes, products) = scratch;
                scaled.clear();
                scaled.extend(x.iter().map(|v| v / peak));
                products.clear();
                products.resize(bias.len(), 0.0);
                columns.add_products(scaled, codes, products);
                out.iter_mut()
                    .zip(products.iter())
                    .for_each(|(o, p)| *o += peak * p);
            }
        }
    }
}

impl TabularModel {
    /// The network to serve at `precision`: `Ok(None)` for the `f32` weights,
    /// the compressed copy (built on first use), or `Err(reason)` when the copy
    /// is refused — its accuracy drop exceeds `max_drop`, or was never measured
    /// (logged once as a warning). The first call decides for the model's lifetime.
    pub fn serving_copy(
        &self,
        precision: Precision,
        max_drop: f64,
    ) -> Result<Option<&CompressedNet>, &str> {
        let slot = match precision {
            Precision::F32 => return Ok(None),
            Precision::F16 => 0,
            Precision::Int8 => 1,
        };
        let decision = self.copies[slot].get_or_init(|| {
            let cost = self.compression.as_ref().map(|report| {
                if slot == 0 {
                    &report.f16
                } else {
                    &report.int8
                }
            });
            let refusal = match cost {
                None => Some(format!(
                    "{} serving needs the accuracy measured at training; this version has none",
                    precision.as_str()
                )),
                Some(cost) if cost.accuracy_drop > max_drop => Some(format!(
                    "{} loses {:.4} accuracy on the validation rows, over `serving.max_accuracy_drop` = {max_drop}",
                    precision.as_str(),
                    cost.accuracy_drop
                )),
                Some(_) => None,
            };
            match refusal {
                Some(reason) => {
                    tracing::warn!(target = %self.target, %reason, "compressed serving refused; serving f32");
                    Err(reason)
                }
                None => Ok(CompressedNet::new(&self.mlp, precision)),
            }
        });
        match decision {
            Ok(net) => Ok(Some(net)),
            Err(reason) => Err(reason),
        }
    }

    /// Accuracy (R² for regression) lost by the `f16` and `int8` copies on `rows`
    /// of `table`, and their sizes.
    pub fn compression_report(
        &self,
        table: &Table,
        rows: &[usize],
    ) -> Result<CompressionReport, TabularError> {
        let limit = (REPORT_MAX_VALUES / self.pipeline.width().max(1)).clamp(50, REPORT_MAX_ROWS);
        let rows = &rows[..rows.len().min(limit)];
        let x = self.pipeline.transform(table, rows)?;
        let reference = CompressedNet::new(&self.mlp, Precision::F32);
        let (score, labels) = self.score(&reference, x.view(), table, rows)?;
        let cost = |precision| -> Result<PrecisionCost, TabularError> {
            let net = CompressedNet::new(&self.mlp, precision);
            let (s, l) = self.score(&net, x.view(), table, rows)?;
            Ok(PrecisionCost {
                bytes: net.bytes(),
                accuracy_drop: score - s,
                changed_labels: labels
                    .as_ref()
                    .zip(l.as_ref())
                    .map(|(a, b)| a.iter().zip(b).filter(|(a, b)| a != b).count()),
            })
        };
        Ok(CompressionReport {
            rows: rows.len(),
            f32_bytes: reference.bytes(),
            f16: cost(Precision::F16)?,
            int8: cost(Precision::Int8)?,
        })
    }

    /// Accuracy and labels (classification) or R² (regression) of `net` on the rows.
    fn score(
        &self,
        net: &CompressedNet,
        x: ArrayView2<f32>,
        table: &Table,
        rows: &[usize],
    ) -> Result<(f64, Option<Vec<usize>>), TabularError> {
        let out = net.predict(x);
        Ok(match self.encoder.task() {
            Task::Classification => {
                let truth = self.encoder.label_indices(table, rows)?;
                let probs = class_probabilities(&out, self.encoder.classes());
                let predicted: Vec<usize> = probs
                    .rows()
                    .into_iter()
                    .map(|r| argmax(&r.to_vec()))
                    .collect();
                (metrics::accuracy(&truth, &predicted), Some(predicted))
            }
            Task::Regression => {
                let (truth, pred) = super::evaluate::regression_values(self, table, rows, &out)?;
                (metrics::r2(&truth, &pred), None)
            }
        })
    }
}
