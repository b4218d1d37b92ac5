//! One fully connected layer's parameters and its forward product.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Zip};

/// Rows up to this count use a row-by-row axpy product instead of a packed GEMM; packing
/// the weight matrix dominates for one or two rows.
const SMALL_BATCH_ROWS: usize = 4;

/// Fully connected layer `z = x·W + b`.
///
/// `weight` has shape `(inputs, outputs)`; `bias` has shape `(outputs)`. The same struct
/// holds gradients and optimizer moments, which share the parameters' shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Shape `(inputs, outputs)`.
    pub weight: Array2<f32>,
    /// Shape `(outputs)`.
    pub bias: Array1<f32>,
}

impl Dense {
    /// All-zero layer of the given size.
    pub fn zeros(inputs: usize, outputs: usize) -> Dense {
        Dense {
            weight: Array2::zeros((inputs, outputs)),
            bias: Array1::zeros(outputs),
        }
    }

    /// Number of input features.
    pub fn inputs(&self) -> usize {
        self.weight.nrows()
    }

    /// Number of output units.
    pub fn outputs(&self) -> usize {
        self.weight.ncols()
    }

    /// Number of scalar parameters (weights plus biases).
    pub fn parameter_count(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    /// Writes `x·W + b` into `out` (shape `(x.nrows(), outputs)`), overwriting it.
    ///
    /// # Panics
    /// If `x.ncols() != self.inputs()` or `out` has the wrong shape.
    pub fn forward_into(&self, x: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        if x.nrows() <= SMALL_BATCH_ROWS {
            assert_eq!(x.ncols(), self.inputs(), "layer input width");
            assert_eq!(out.dim(), (x.nrows(), self.outputs()), "layer output shape");
            for (x_row, mut out_row) in x.rows().into_iter().zip(out.rows_mut()) {
                out_row.assign(&self.bias);
                for (&xi, w_row) in x_row.iter().zip(self.weight.rows()) {
                    if xi != 0.0 {
                        out_row.scaled_add(xi, &w_row);
                    }
                }
            }
        } else {
            general_mat_mul(1.0, &x, &self.weight, 0.0, &mut out);
            Zip::from(out.rows_mut()).for_each(|mut row| row += &self.bias);
        }
    }
}
