//! Hidden-layer activation functions: forward values and derivatives.

use serde::{Deserialize, Serialize};

/// Slope of `leaky_relu` for negative inputs.
pub const LEAKY_RELU_SLOPE: f32 = 0.01;

const GELU_SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044_715;

/// Nonlinearity applied elementwise after every hidden layer (never after the output layer).
///
/// `leaky_relu` uses slope [`LEAKY_RELU_SLOPE`] for negative inputs; `gelu` is the tanh
/// approximation `0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    LeakyRelu,
    Tanh,
    Sigmoid,
    Gelu,
    Identity,
}

impl Activation {
    /// Value of the activation at `z`.
    #[inline]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    z
                } else {
                    LEAKY_RELU_SLOPE * z
                }
            }
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => sigmoid(z),
            Activation::Gelu => {
                let u = GELU_SQRT_2_OVER_PI * (z + GELU_CUBIC * z * z * z);
                0.5 * z * (1.0 + u.tanh())
            }
            Activation::Identity => z,
        }
    }

    /// Derivative at pre-activation `z`, given `a = self.apply(z)` so that tanh and sigmoid
    /// need no transcendental call.
    #[inline]
    pub fn derivative(self, z: f32, a: f32) -> f32 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu => {
                if z > 0.0 {
                    1.0
                } else {
                    LEAKY_RELU_SLOPE
                }
            }
            Activation::Tanh => 1.0 - a * a,
            Activation::Sigmoid => a * (1.0 - a),
            Activation::Gelu => {
                let z2 = z * z;
                let t = (GELU_SQRT_2_OVER_PI * (z + GELU_CUBIC * z2 * z)).tanh();
                0.5 * (1.0 + t)
                    + 0.5 * z * (1.0 - t * t) * GELU_SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * z2)
            }
            Activation::Identity => 1.0,
        }
    }

    /// Whether weights feeding this activation should use He (rather than Xavier)
    /// initialisation under [`crate::nn::Init::Auto`].
    pub fn prefers_he_init(self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::LeakyRelu | Activation::Gelu
        )
    }

    /// Every activation, for exhaustive tests and documentation.
    pub const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Identity,
    ];
}

impl Activation {
    /// For each row of the row-major `pre` (row width `bias.len()`): `z += bias`, then
    /// `post = activation(z)`. `post` has the same length as `pre`.
    pub(crate) fn add_bias_and_apply(self, pre: &mut [f32], post: &mut [f32], bias: &[f32]) {
        #[inline(always)]
        fn rows(pre: &mut [f32], post: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32) {
            let width = bias.len().max(1);
            for (z_row, a_row) in pre
                .chunks_exact_mut(width)
                .zip(post.chunks_exact_mut(width))
            {
                for ((z, a), &b) in z_row.iter_mut().zip(a_row.iter_mut()).zip(bias) {
                    let value = *z + b;
                    *z = value;
                    *a = f(value);
                }
            }
        }
        match self {
            Activation::Relu => rows(pre, post, bias, |z| z.max(0.0)),
            Activation::LeakyRelu => rows(pre, post, bias, |z| {
                if z > 0.0 {
                    z
                } else {
                    LEAKY_RELU_SLOPE * z
                }
            }),
            Activation::Tanh => rows(pre, post, bias, f32::tanh),
            Activation::Sigmoid => rows(pre, post, bias, sigmoid),
            Activation::Gelu => rows(pre, post, bias, |z| Activation::Gelu.apply(z)),
            Activation::Identity => rows(pre, post, bias, |z| z),
        }
    }

    /// `delta *= mask · activation'(pre, post)` elementwise (without `mask` when `None`);
    /// all slices have equal length.
    pub(crate) fn scale_by_derivative(
        self,
        delta: &mut [f32],
        pre: &[f32],
        post: &[f32],
        mask: Option<&[f32]>,
    ) {
        #[inline(always)]
        fn scale(
            delta: &mut [f32],
            pre: &[f32],
            post: &[f32],
            mask: Option<&[f32]>,
            derivative: impl Fn(f32, f32) -> f32,
        ) {
            let values = delta.iter_mut().zip(pre).zip(post);
            match mask {
                Some(mask) => {
                    for (((d, &z), &a), &m) in values.zip(mask) {
                        *d *= m * derivative(z, a);
                    }
                }
                None => {
                    for ((d, &z), &a) in values {
                        *d *= derivative(z, a);
                    }
                }
            }
        }
        match self {
            Activation::Relu => scale(
                delta,
                pre,
                post,
                mask,
                |z, _| {
                    if z > 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                },
            ),
            Activation::LeakyRelu => scale(delta, pre, post, mask, |z, _| {
                if z > 0.0 {
                    1.0
                } else {
                    LEAKY_RELU_SLOPE
                }
            }),
            Activation::Tanh => scale(delta, pre, post, mask, |_, a| 1.0 - a * a),
            Activation::Sigmoid => scale(delta, pre, post, mask, |_, a| a * (1.0 - a)),
            Activation::Gelu => scale(delta, pre, post, mask, |z, a| {
                Activation::Gelu.derivative(z, a)
            }),
            Activation::Identity => {
                if let Some(mask) = mask {
                    for (d, &m) in delta.iter_mut().zip(mask) {
                        *d *= m;
                    }
                }
            }
        }
    }
}

/// Logistic function `1 / (1 + e^-z)`; saturates to exactly 0 or 1 without producing NaN.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_central_difference_away_from_kinks() {
        let eps = 1e-3_f64;
        for act in Activation::ALL {
            for &z in &[-2.5_f32, -0.7, -0.1, 0.3, 1.1, 3.0] {
                let plus = act.apply((z as f64 + eps) as f32) as f64;
                let minus = act.apply((z as f64 - eps) as f32) as f64;
                let numeric = (plus - minus) / (2.0 * eps);
                let analytic = act.derivative(z, act.apply(z)) as f64;
                assert!(
                    (numeric - analytic).abs() < 2e-3,
                    "{act:?} at {z}: numeric {numeric} analytic {analytic}"
                );
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(Activation::Relu.apply(-3.0), 0.0);
        assert_eq!(Activation::LeakyRelu.apply(-3.0), -0.03);
        assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
        assert!((Activation::Gelu.apply(1.0) - 0.841_192).abs() < 1e-5);
        assert_eq!(Activation::Identity.apply(-7.5), -7.5);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn serde_names_are_snake_case() {
        assert_eq!(
            serde_json::to_string(&Activation::LeakyRelu).unwrap(),
            "\"leaky_relu\""
        );
        let parsed: Activation = serde_json::from_str("\"gelu\"").unwrap();
        assert_eq!(parsed, Activation::Gelu);
    }
}
