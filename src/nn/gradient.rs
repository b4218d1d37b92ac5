//! Gradients of one head output with respect to the network inputs: what
//! integrated-gradients attributions are built from.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::loss::Head;
use super::mlp::Mlp;

impl Mlp {
    /// For every row of `x` `(n, inputs)`: head output `output` (as in [`Mlp::predict`]:
    /// a probability for classification heads, the raw value for regression) and its
    /// gradient with respect to the row, shape `(n, inputs)`.
    ///
    /// # Panics
    /// If `x.ncols() != self.inputs()` or `output >= self.outputs()`.
    pub fn output_gradients(
        &self,
        x: ArrayView2<f32>,
        output: usize,
    ) -> (Array1<f32>, Array2<f32>) {
        assert_eq!(x.ncols(), self.inputs(), "input width");
        assert!(output < self.outputs(), "output index");
        // Forward pass keeping every layer's pre-activations and activations.
        let mut pre = Vec::with_capacity(self.layers.len());
        let mut post: Vec<Array2<f32>> = Vec::with_capacity(self.layers.len());
        let last = self.layers.len() - 1;
        for (index, layer) in self.layers.iter().enumerate() {
            let input = if index == 0 {
                x
            } else {
                post[index - 1].view()
            };
            let mut z = Array2::zeros((x.nrows(), layer.outputs()));
            layer.forward_into(input, z.view_mut());
            let a = if index == last {
                let mut out = z.clone();
                self.head.apply_output(out.view_mut());
                out
            } else {
                z.mapv(|v| self.activation.apply(v))
            };
            pre.push(z);
            post.push(a);
        }
        let probabilities = &post[last];
        let values = probabilities.column(output).to_owned();
        // d output / d logits.
        let mut grad = Array2::<f32>::zeros(probabilities.dim());
        for (mut g, p) in grad.rows_mut().into_iter().zip(probabilities.rows()) {
            match self.head {
                Head::Binary | Head::MultiLabel { .. } => {
                    g[output] = p[output] * (1.0 - p[output]);
                }
                Head::Multiclass { .. } => {
                    for (j, slot) in g.iter_mut().enumerate() {
                        let delta = if j == output { 1.0 } else { 0.0 };
                        *slot = p[output] * (delta - p[j]);
                    }
                }
                Head::Regression { .. } => g[output] = 1.0,
            }
        }
        // Back through the layers: grad holds d output / d z of the current layer.
        for index in (0..self.layers.len()).rev() {
            let through = grad.dot(&self.layers[index].weight.t());
            if index == 0 {
                return (values, through);
            }
            let z = &pre[index - 1];
            let a = &post[index - 1];
            let mut next = through;
            ndarray::Zip::from(&mut next)
                .and(z)
                .and(a)
                .for_each(|g, &z, &a| *g *= self.activation.derivative(z, a));
            grad = next;
        }
        (values, Array2::zeros((x.nrows(), 0)))
    }

    /// Integrated gradients of head output `output` for the row `x` relative to
    /// `baseline` (both of length `inputs`), with a `steps`-point midpoint rule along the
    /// straight path: `(attributions, f(x), f(baseline))`. `Σ attributions` approaches
    /// `f(x) − f(baseline)` as `steps` grows.
    ///
    /// # Panics
    /// As [`Mlp::output_gradients`], or if the lengths differ or `steps == 0`.
    pub fn integrated_gradients(
        &self,
        x: &[f32],
        baseline: &[f32],
        output: usize,
        steps: usize,
    ) -> (Vec<f32>, f32, f32) {
        assert_eq!(x.len(), baseline.len(), "row lengths");
        assert!(steps > 0, "steps");
        let width = x.len();
        // Ends first, then the midpoints, in chunks bounding memory.
        let ends =
            Array2::from_shape_fn((2, width), |(r, c)| if r == 0 { x[c] } else { baseline[c] });
        let (end_values, _) = self.output_gradients(ends.view(), output);
        let mut sum = vec![0.0_f64; width];
        let chunk = (1 << 20) / width.max(1);
        let chunk = chunk.clamp(1, 256);
        let mut start = 0;
        while start < steps {
            let count = chunk.min(steps - start);
            let points = Array2::from_shape_fn((count, width), |(r, c)| {
                let alpha = ((start + r) as f32 + 0.5) / steps as f32;
                baseline[c] + alpha * (x[c] - baseline[c])
            });
            let (_, grads) = self.output_gradients(points.view(), output);
            for (c, column) in grads.axis_iter(Axis(1)).enumerate() {
                sum[c] += column.iter().map(|&g| f64::from(g)).sum::<f64>();
            }
            start += count;
        }
        let attributions = sum
            .iter()
            .enumerate()
            .map(|(c, s)| (s / steps as f64) as f32 * (x[c] - baseline[c]))
            .collect();
        (attributions, end_values[0], end_values[1])
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use crate::nn::activation::Activation;
    use crate::nn::loss::{Head, RegressionLoss};
    use crate::nn::mlp::{Architecture, Init, Mlp};

    fn net(head: Head, activation: Activation) -> Mlp {
        Mlp::new(
            &Architecture {
                inputs: 4,
                hidden: vec![8, 5],
                outputs: head.outputs(),
                activation,
                head,
            },
            Init::Auto,
            7,
        )
    }

    #[test]
    fn gradients_match_finite_differences() {
        let heads = [
            Head::Binary,
            Head::Multiclass { classes: 3 },
            Head::Regression {
                outputs: 1,
                loss: RegressionLoss::Mse,
            },
        ];
        for head in heads {
            for activation in [Activation::Tanh, Activation::Gelu, Activation::Sigmoid] {
                let mlp = net(head, activation);
                let x = array![[0.3_f32, -1.2, 0.7, 2.0]];
                let output = head.outputs() - 1;
                let (value, grad) = mlp.output_gradients(x.view(), output);
                assert!((value[0] - mlp.predict(x.view())[[0, output]]).abs() < 1e-6);
                for c in 0..4 {
                    let h = 1e-2_f32;
                    let (mut up, mut down) = (x.clone(), x.clone());
                    up[[0, c]] += h;
                    down[[0, c]] -= h;
                    let numeric = (mlp.predict(up.view())[[0, output]]
                        - mlp.predict(down.view())[[0, output]])
                        / (2.0 * h);
                    assert!(
                        (numeric - grad[[0, c]]).abs() < 2e-3,
                        "{head:?} {activation:?} input {c}: {numeric} vs {}",
                        grad[[0, c]]
                    );
                }
            }
        }
    }

    #[test]
    fn integrated_gradients_are_complete() {
        for activation in [Activation::Relu, Activation::Tanh] {
            let mlp = net(Head::Multiclass { classes: 3 }, activation);
            let x = [1.5_f32, -0.5, 0.2, -2.0];
            let baseline = [0.0_f32; 4];
            let (attributions, fx, fb) = mlp.integrated_gradients(&x, &baseline, 2, 512);
            let total: f32 = attributions.iter().sum();
            assert!(
                (total - (fx - fb)).abs() <= 0.01 * (fx - fb).abs() + 1e-5,
                "{activation:?}: {total} vs {}",
                fx - fb
            );
        }
    }
}
