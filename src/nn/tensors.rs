//! Named-tensor export and import of an [`Mlp`]'s parameters (PyTorch `nn.Linear` layout).

use ndarray::{Array1, Array2, ShapeBuilder};

use super::dense::Dense;
use super::mlp::{Architecture, Mlp};

/// A named row-major `f32` tensor; `data.len()` equals the product of `shape`.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// `layers.{i}.weight` or `layers.{i}.bias`.
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Why a set of tensors cannot be loaded into a network.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum NnError {
    #[error("architecture: {0}")]
    Architecture(String),
    #[error("tensor `{name}` is missing")]
    MissingTensor { name: String },
    #[error("tensor `{name}` is not part of the architecture")]
    UnexpectedTensor { name: String },
    #[error("tensor `{name}` appears more than once")]
    DuplicateTensor { name: String },
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor `{name}` holds {actual} values, its shape needs {expected}")]
    TensorData {
        name: String,
        expected: usize,
        actual: usize,
    },
    #[error("tensor `{name}` has non-finite value {value} at flat index {index}")]
    NonFinite {
        name: String,
        index: usize,
        value: f32,
    },
}

fn weight_name(layer: usize) -> String {
    format!("layers.{layer}.weight")
}

fn bias_name(layer: usize) -> String {
    format!("layers.{layer}.bias")
}

impl Mlp {
    /// Parameters as tensors: `layers.{i}.weight` with shape `[out, in]` and
    /// `layers.{i}.bias` with shape `[out]`, row-major, layer `i` counted from the input side.
    pub fn tensors(&self) -> Vec<NamedTensor> {
        let mut tensors = Vec::with_capacity(2 * self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            tensors.push(NamedTensor {
                name: weight_name(index),
                shape: vec![layer.outputs(), layer.inputs()],
                data: layer.weight.t().iter().copied().collect(),
            });
            tensors.push(NamedTensor {
                name: bias_name(index),
                shape: vec![layer.outputs()],
                data: layer.bias.to_vec(),
            });
        }
        tensors
    }

    /// Rebuilds a network from [`Mlp::tensors`] output.
    ///
    /// # Errors
    /// [`NnError::Architecture`] if `arch.outputs != arch.head.outputs()`; otherwise the first
    /// missing, duplicate or unexpected tensor, wrong shape, wrong data length, or
    /// non-finite value.
    pub fn from_tensors(arch: &Architecture, tensors: &[NamedTensor]) -> Result<Mlp, NnError> {
        if arch.outputs != arch.head.outputs() {
            return Err(NnError::Architecture(format!(
                "outputs = {} but head {:?} has {} outputs",
                arch.outputs,
                arch.head,
                arch.head.outputs()
            )));
        }
        let widths = arch.widths();
        let layer_count = widths.len() - 1;
        let mut seen = vec![false; 2 * layer_count];
        for tensor in tensors {
            let slot = (0..layer_count)
                .flat_map(|i| [(2 * i, weight_name(i)), (2 * i + 1, bias_name(i))])
                .find(|(_, name)| *name == tensor.name)
                .map(|(slot, _)| slot);
            match slot {
                None => {
                    return Err(NnError::UnexpectedTensor {
                        name: tensor.name.clone(),
                    })
                }
                Some(slot) if seen[slot] => {
                    return Err(NnError::DuplicateTensor {
                        name: tensor.name.clone(),
                    })
                }
                Some(slot) => seen[slot] = true,
            }
        }
        let find =
            |name: &str, expected: &[usize]| -> Result<&NamedTensor, NnError> {
                let tensor = tensors.iter().find(|t| t.name == name).ok_or_else(|| {
                    NnError::MissingTensor {
                        name: name.to_owned(),
                    }
                })?;
                check_tensor(tensor, expected)?;
                Ok(tensor)
            };
        let mut layers = Vec::with_capacity(layer_count);
        for (index, pair) in widths.windows(2).enumerate() {
            let (inputs, outputs) = (pair[0], pair[1]);
            let weight = find(&weight_name(index), &[outputs, inputs])?;
            let bias = find(&bias_name(index), &[outputs])?;
            let weight = Array2::from_shape_vec((inputs, outputs).f(), weight.data.clone())
                .map_err(|e| NnError::Architecture(e.to_string()))?
                .as_standard_layout()
                .into_owned();
            layers.push(Dense {
                weight,
                bias: Array1::from_vec(bias.data.clone()),
            });
        }
        Ok(Mlp::from_layers(layers, arch.activation, arch.head))
    }
}

fn check_tensor(tensor: &NamedTensor, expected: &[usize]) -> Result<(), NnError> {
    if tensor.shape != expected {
        return Err(NnError::TensorShape {
            name: tensor.name.clone(),
            expected: expected.to_vec(),
            actual: tensor.shape.clone(),
        });
    }
    let len: usize = expected.iter().product();
    if tensor.data.len() != len {
        return Err(NnError::TensorData {
            name: tensor.name.clone(),
            expected: len,
            actual: tensor.data.len(),
        });
    }
    if let Some((index, &value)) = tensor.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(NnError::NonFinite {
            name: tensor.name.clone(),
            index,
            value,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::activation::Activation;
    use crate::nn::loss::{Head, RegressionLoss};
    use crate::nn::mlp::{InferenceScratch, Init};
    use ndarray::Array2;

    fn arch() -> Architecture {
        Architecture {
            inputs: 3,
            hidden: vec![5, 4],
            outputs: 2,
            activation: Activation::Tanh,
            head: Head::Multiclass { classes: 2 },
        }
    }

    fn sample_x(rows: usize, cols: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(r, c)| {
            ((r * 7 + c * 3) % 11) as f32 / 5.0 - 1.0
        })
    }

    #[test]
    fn layout_is_pytorch_linear() {
        let mlp = Mlp::new(&arch(), Init::Auto, 1);
        let tensors = mlp.tensors();
        let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "layers.0.weight",
                "layers.0.bias",
                "layers.1.weight",
                "layers.1.bias",
                "layers.2.weight",
                "layers.2.bias"
            ]
        );
        assert_eq!(tensors[0].shape, [5, 3]);
        assert_eq!(tensors[0].data[1], mlp.layers()[0].weight[[1, 0]]);
        assert_eq!(tensors[0].data[3], mlp.layers()[0].weight[[0, 1]]);
    }

    #[test]
    fn round_trip_gives_identical_predictions() {
        let mlp = Mlp::new(&arch(), Init::Auto, 7);
        let restored = Mlp::from_tensors(&mlp.architecture(), &mlp.tensors()).unwrap();
        assert_eq!(restored, mlp);
        let x = sample_x(9, 3);
        assert_eq!(restored.predict(x.view()), mlp.predict(x.view()));
    }

    #[test]
    fn predict_into_equals_predict_and_reuses_scratch() {
        let mlp = Mlp::new(&arch(), Init::Auto, 3);
        let mut scratch = InferenceScratch::default();
        for rows in [1, 2, 17, 64, 3] {
            let x = sample_x(rows, 3);
            let mut out = Array2::zeros((rows, 2));
            mlp.predict_into(x.view(), &mut scratch, out.view_mut());
            assert_eq!(out, mlp.predict(x.view()));
            for row in out.rows() {
                assert!((row.sum() - 1.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn single_row_fast_path_matches_batched_product() {
        let mlp = Mlp::new(&arch(), Init::Auto, 5);
        let x = sample_x(32, 3);
        let batched = mlp.logits(x.view());
        for (index, row) in x.rows().into_iter().enumerate() {
            let single = mlp.logits(row.insert_axis(ndarray::Axis(0)));
            for (a, b) in single.iter().zip(batched.row(index)) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn rejects_missing_misshapen_non_finite_and_extra_tensors() {
        let mlp = Mlp::new(&arch(), Init::Auto, 7);
        let arch = mlp.architecture();
        let good = mlp.tensors();

        let missing: Vec<_> = good
            .iter()
            .filter(|t| t.name != "layers.1.bias")
            .cloned()
            .collect();
        assert_eq!(
            Mlp::from_tensors(&arch, &missing),
            Err(NnError::MissingTensor {
                name: "layers.1.bias".into()
            })
        );

        let mut transposed = good.clone();
        transposed[2].shape = vec![5, 4];
        assert!(matches!(
            Mlp::from_tensors(&arch, &transposed),
            Err(NnError::TensorShape { ref name, .. }) if name == "layers.1.weight"
        ));

        let mut short = good.clone();
        short[1].data.pop();
        assert!(matches!(
            Mlp::from_tensors(&arch, &short),
            Err(NnError::TensorData {
                expected: 5,
                actual: 4,
                ..
            })
        ));

        let mut nan = good.clone();
        nan[4].data[3] = f32::NAN;
        assert!(matches!(
            Mlp::from_tensors(&arch, &nan),
            Err(NnError::NonFinite { index: 3, ref name, .. }) if name == "layers.2.weight"
        ));

        let mut extra = good.clone();
        extra.push(NamedTensor {
            name: "layers.3.weight".into(),
            shape: vec![1],
            data: vec![0.0],
        });
        assert!(matches!(
            Mlp::from_tensors(&arch, &extra),
            Err(NnError::UnexpectedTensor { .. })
        ));

        let mut duplicate = good.clone();
        duplicate.push(good[0].clone());
        assert!(matches!(
            Mlp::from_tensors(&arch, &duplicate),
            Err(NnError::DuplicateTensor { .. })
        ));

        let wrong_arch = Architecture {
            hidden: vec![5, 6],
            ..arch.clone()
        };
        assert!(Mlp::from_tensors(&wrong_arch, &good).is_err());

        let inconsistent = Architecture {
            head: Head::Regression {
                outputs: 3,
                loss: RegressionLoss::Mse,
            },
            ..arch
        };
        assert!(matches!(
            Mlp::from_tensors(&inconsistent, &good),
            Err(NnError::Architecture(_))
        ));
    }
}
