//! A tabular model as one ONNX graph: an input per raw column, the fitted
//! pipeline in ONNX-ML operators (Imputer, Scaler, LabelEncoder) and standard
//! ones (OneHot, Clip, Concat), the network as Gemm and activations, and the
//! head's outputs: `label` and `probabilities`, or `value`.
//!
//! Inputs, each of shape `[N, 1]`: numeric and boolean columns as `float`
//! (boolean 1/0; NaN is missing), categorical columns as `string` (the
//! category's canonical key; an empty string or a missing token is missing).
//! Text, image, audio and hashed categorical columns have no standard ONNX
//! equivalent and are refused.

use prost::Message;

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::data::{EncodingView, TargetEncoder, MISSING_TOKENS};
use crate::nn::{Activation, Head, LEAKY_RELU_SLOPE};
use crate::tabular::TabularModel;

/// Version of the default operator set the export uses.
pub const ONNX_OPSET: i64 = 17;
/// Version of the `ai.onnx.ml` operator set the export uses.
pub const ONNX_ML_OPSET: i64 = 3;
const IR_VERSION: i64 = 8;
const ML: &str = "ai.onnx.ml";

/// Why a model cannot be exported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OnnxError {
    #[error("column `{column}` is {kind}, which has no standard ONNX encoding; models with text, image, audio or hashed categorical columns cannot be exported")]
    UnsupportedColumn { column: String, kind: &'static str },
    #[error("the model's {0} head cannot be exported")]
    UnsupportedHead(&'static str),
}

/// The ONNX model (serialized `ModelProto`) computing what `/predict` answers.
pub fn to_onnx(model: &TabularModel, name: &str, version: u32) -> Result<Vec<u8>, OnnxError> {
    let mut g = Graph::default();
    let mut inputs = Vec::new();
    let mut parts = Vec::new();
    for column in model.pipeline.layout() {
        let input = column.name.to_string();
        match column.encoding {
            EncodingView::Numeric {
                median,
                mean,
                std,
                missing_indicator,
                bin_edges,
            } => {
                inputs.push(value_info(&input, DataType::Float, &[None, Some(1)]));
                let filled = g.node(
                    "Imputer",
                    ML,
                    &[&input],
                    vec![
                        floats("imputed_value_floats", &[median as f32]),
                        float("replaced_value_float", f32::NAN),
                    ],
                );
                parts.push(g.node(
                    "Scaler",
                    ML,
                    &[&filled],
                    vec![
                        floats("offset", &[mean as f32]),
                        floats("scale", &[(1.0 / std) as f32]),
                    ],
                ));
                if missing_indicator {
                    parts.push(missing(&mut g, &input));
                }
                if bin_edges.len() >= 2 {
                    let lows: Vec<f32> = bin_edges.windows(2).map(|e| e[0] as f32).collect();
                    let widths: Vec<f32> =
                        bin_edges.windows(2).map(|e| (e[1] - e[0]) as f32).collect();
                    let n = lows.len() as i64;
                    let lows = g.float_const(&[n], lows);
                    let widths = g.float_const(&[n], widths);
                    let shifted = g.node("Sub", "", &[&filled, &lows], vec![]);
                    let scaled = g.node("Div", "", &[&shifted, &widths], vec![]);
                    let zero = g.float_const(&[], vec![0.0]);
                    let one = g.float_const(&[], vec![1.0]);
                    parts.push(g.node("Clip", "", &[&scaled, &zero, &one], vec![]));
                }
            }
            EncodingView::Boolean {
                fill,
                missing_indicator,
            } => {
                inputs.push(value_info(&input, DataType::Float, &[None, Some(1)]));
                parts.push(g.node(
                    "Imputer",
                    ML,
                    &[&input],
                    vec![
                        floats("imputed_value_floats", &[fill as f32]),
                        float("replaced_value_float", f32::NAN),
                    ],
                ));
                if missing_indicator {
                    parts.push(missing(&mut g, &input));
                }
            }
            EncodingView::OneHot { vocabulary } => {
                inputs.push(value_info(&input, DataType::String, &[None, Some(1)]));
                let v = vocabulary.len() as i64;
                let mut keys: Vec<&str> = vocabulary.iter().map(String::as_str).collect();
                let mut values: Vec<i64> = (0..v).collect();
                let spellings: Vec<String> = MISSING_TOKENS
                    .iter()
                    .flat_map(|t| {
                        let mut capital = t.to_string();
                        if let Some(first) = capital.get_mut(..1) {
                            first.make_ascii_uppercase();
                        }
                        [t.to_string(), t.to_ascii_uppercase(), capital]
                    })
                    .chain(["NaN".to_string()])
                    .collect();
                for token in &spellings {
                    if !keys.contains(&token.as_str()) {
                        keys.push(token);
                        values.push(v);
                    }
                }
                let shape = g.int_const(&[1], vec![-1]);
                let flat = g.node("Reshape", "", &[&input, &shape], vec![]);
                let index = g.node(
                    "LabelEncoder",
                    ML,
                    &[&flat],
                    vec![
                        strings("keys_strings", &keys),
                        ints("values_int64s", &values),
                        int("default_int64", v + 1),
                    ],
                );
                let depth = g.int_const(&[1], vec![v + 2]);
                let on_off = g.float_const(&[2], vec![0.0, 1.0]);
                parts.push(g.node(
                    "OneHot",
                    "",
                    &[&index, &depth, &on_off],
                    vec![int("axis", -1)],
                ));
            }
            EncodingView::Hashed { .. } => {
                return Err(unsupported(column.name, "a hashed categorical column"))
            }
            EncodingView::Text => return Err(unsupported(column.name, "a text column")),
            EncodingView::Image { .. } => return Err(unsupported(column.name, "an image column")),
            EncodingView::Audio => return Err(unsupported(column.name, "an audio column")),
        }
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let mut hidden = g.node("Concat", "", &refs, vec![int("axis", 1)]);

    let mlp = &model.mlp;
    let last = mlp.layers().len() - 1;
    for (index, layer) in mlp.layers().iter().enumerate() {
        let (rows, cols) = layer.weight.dim();
        let weight = g.float_const(
            &[rows as i64, cols as i64],
            layer.weight.iter().copied().collect(),
        );
        let bias = g.float_const(&[cols as i64], layer.bias.to_vec());
        let z = g.node("Gemm", "", &[&hidden, &weight, &bias], vec![]);
        hidden = if index == last {
            z
        } else {
            activation(&mut g, mlp.activation(), &z)
        };
    }

    let mut outputs = Vec::new();
    match (mlp.head(), &model.encoder) {
        (Head::Regression { .. }, TargetEncoder::Regression { mean, std, .. }) => {
            let scale = g.float_const(&[], vec![*std as f32]);
            let shift = g.float_const(&[], vec![*mean as f32]);
            let scaled = g.node("Mul", "", &[&hidden, &scale], vec![]);
            g.node_named("Add", "", &[&scaled, &shift], vec![], "value");
            outputs.push(value_info("value", DataType::Float, &[None, Some(1)]));
        }
        (head @ (Head::Binary | Head::Multiclass { .. }), TargetEncoder::Classes { .. }) => {
            let labels = model.encoder.labels();
            let k = labels.len() as i64;
            if matches!(head, Head::Binary) {
                let p = g.node("Sigmoid", "", &[&hidden], vec![]);
                let one = g.float_const(&[], vec![1.0]);
                let q = g.node("Sub", "", &[&one, &p], vec![]);
                g.node_named(
                    "Concat",
                    "",
                    &[&q, &p],
                    vec![int("axis", 1)],
                    "probabilities",
                );
            } else {
                g.node_named(
                    "Softmax",
                    "",
                    &[&hidden],
                    vec![int("axis", 1)],
                    "probabilities",
                );
            }
            let best = g.node(
                "ArgMax",
                "",
                &["probabilities"],
                vec![int("axis", 1), int("keepdims", 0)],
            );
            let keys: Vec<i64> = (0..k).collect();
            let values: Vec<&str> = labels.iter().map(String::as_str).collect();
            g.node_named(
                "LabelEncoder",
                ML,
                &[&best],
                vec![
                    ints("keys_int64s", &keys),
                    strings("values_strings", &values),
                    string("default_string", ""),
                ],
                "label",
            );
            outputs.push(value_info("label", DataType::String, &[None]));
            outputs.push(value_info(
                "probabilities",
                DataType::Float,
                &[None, Some(k)],
            ));
        }
        (Head::MultiLabel { .. }, _) => return Err(OnnxError::UnsupportedHead("multi-label")),
        _ => return Err(OnnxError::UnsupportedHead("mismatched")),
    }

    let graph = GraphProto {
        node: g.nodes,
        name: Some(format!("{name}_v{version}")),
        initializer: g.initializers,
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(ONNX_OPSET),
            },
            OperatorSetIdProto {
                domain: Some(ML.into()),
                version: Some(ONNX_ML_OPSET),
            },
        ],
        producer_name: Some("myelin".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        model_version: Some(i64::from(version)),
        doc_string: Some(format!(
            "Model `{name}` version {version}, exported by Myelin."
        )),
        graph: Some(graph),
        metadata_props: vec![StringStringEntryProto {
            key: Some("target".into()),
            value: Some(model.target.clone()),
        }],
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

fn unsupported(column: &str, kind: &'static str) -> OnnxError {
    OnnxError::UnsupportedColumn {
        column: column.to_string(),
        kind,
    }
}

/// `1.0` where `input` is NaN, else `0.0`.
fn missing(g: &mut Graph, input: &str) -> String {
    let nan = g.node("IsNaN", "", &[input], vec![]);
    g.node("Cast", "", &[&nan], vec![int("to", DataType::Float as i64)])
}

fn activation(g: &mut Graph, activation: Activation, z: &str) -> String {
    match activation {
        Activation::Relu => g.node("Relu", "", &[z], vec![]),
        Activation::LeakyRelu => g.node(
            "LeakyRelu",
            "",
            &[z],
            vec![float("alpha", LEAKY_RELU_SLOPE)],
        ),
        Activation::Tanh => g.node("Tanh", "", &[z], vec![]),
        Activation::Sigmoid => g.node("Sigmoid", "", &[z], vec![]),
        Activation::Identity => g.node("Identity", "", &[z], vec![]),
        Activation::Gelu => {
            // 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), as the engine computes it.
            let square = g.node("Mul", "", &[z, z], vec![]);
            let cube = g.node("Mul", "", &[&square, z], vec![]);
            let cubic = g.float_const(&[], vec![0.044_715]);
            let term = g.node("Mul", "", &[&cube, &cubic], vec![]);
            let inner = g.node("Add", "", &[z, &term], vec![]);
            let factor = g.float_const(&[], vec![0.797_884_6]);
            let scaled = g.node("Mul", "", &[&inner, &factor], vec![]);
            let t = g.node("Tanh", "", &[&scaled], vec![]);
            let one = g.float_const(&[], vec![1.0]);
            let plus = g.node("Add", "", &[&t, &one], vec![]);
            let half = g.float_const(&[], vec![0.5]);
            let half_z = g.node("Mul", "", &[z, &half], vec![]);
            g.node("Mul", "", &[&half_z, &plus], vec![])
        }
    }
}

/// Nodes and initializers under construction, with unique value names.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    next: usize,
}

impl Graph {
    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{}_{}", hint.to_ascii_lowercase(), self.next)
    }

    fn node(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        let output = self.fresh(op);
        self.node_named(op, domain, inputs, attrs, &output);
        output
    }

    fn node_named(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        output: &str,
    ) {
        let name = self.fresh(&format!("{op}_node"));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(name),
            op_type: Some(op.to_string()),
            domain: Some(domain.to_string()),
            attribute: attrs,
            ..Default::default()
        });
    }

    fn float_const(&mut self, dims: &[i64], data: Vec<f32>) -> String {
        let name = self.fresh("const");
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            float_data: data,
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }

    fn int_const(&mut self, dims: &[i64], data: Vec<i64>) -> String {
        let name = self.fresh("const");
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Int64 as i32),
            int64_data: data,
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attribute(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        f: Some(value),
        ..attribute(name, AttributeType::Float)
    }
}

fn floats(name: &str, values: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: values.to_vec(),
        ..attribute(name, AttributeType::Floats)
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: Some(value),
        ..attribute(name, AttributeType::Int)
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: values.to_vec(),
        ..attribute(name, AttributeType::Ints)
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        s: Some(value.as_bytes().to_vec()),
        ..attribute(name, AttributeType::String)
    }
}

fn strings(name: &str, values: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attribute(name, AttributeType::Strings)
    }
}
