//! The ONNX export's structure: inputs per raw column, outputs per head,
//! refusal of columns without an ONNX encoding.

use std::sync::atomic::AtomicBool;

use prost::Message;
use serde_json::{json, Map, Value};

use super::proto::{type_proto, ModelProto};
use super::{to_onnx, OnnxError};
use crate::data::{table_from_records, ColumnKind, ReadLimits};
use crate::nn::{Control, TrainParams};
use crate::tabular::{train, TabularModel, TrainSpec};

fn model(rows: Vec<Value>, target: &str, overrides: &[(&str, ColumnKind)]) -> TabularModel {
    let rows: Vec<Map<String, Value>> = rows
        .into_iter()
        .map(|r| match r {
            Value::Object(map) => map,
            _ => unreachable!(),
        })
        .collect();
    let limits = ReadLimits {
        max_rows: 10_000,
        max_columns: 64,
        max_field_bytes: 4096,
    };
    let table = table_from_records(&rows, &limits).unwrap();
    let spec = TrainSpec {
        target: target.into(),
        overrides: overrides
            .iter()
            .map(|(name, kind)| (name.to_string(), *kind))
            .collect(),
        params: TrainParams {
            epochs: 2,
            hidden_layers: vec![4],
            ..Default::default()
        },
        ..Default::default()
    };
    let cancel = AtomicBool::new(false);
    train(&table, &spec, &Default::default(), Control::none(&cancel))
        .unwrap()
        .model
}

fn rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let plan = ["basic", "pro", "team"][i % 3];
            let age = if i % 7 == 0 {
                Value::Null
            } else {
                json!((i % 50) as f64)
            };
            json!({"age": age,
                   "plan": plan, "autopay": i % 2 == 0,
                   "note": format!("customer {i}"), "churned": if i % 5 < 2 { "yes" } else { "no" },
                   "price": (i % 13) as f64 * 1.5})
        })
        .collect()
}

#[test]
fn inputs_are_the_raw_columns_and_outputs_label_and_probabilities() {
    let mut data = rows(120);
    for r in &mut data {
        r.as_object_mut().unwrap().remove("note");
        r.as_object_mut().unwrap().remove("price");
    }
    let m = model(data, "churned", &[]);
    let bytes = to_onnx(&m, "churn", 3).unwrap();
    let proto = ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = proto.graph.unwrap();
    let inputs: Vec<(String, i32)> = graph
        .input
        .iter()
        .map(|i| {
            let Some(type_proto::Value::TensorType(t)) = i.r#type.as_ref().unwrap().value.as_ref()
            else {
                unreachable!()
            };
            (i.name.clone().unwrap(), t.elem_type.unwrap())
        })
        .collect();
    let string = super::proto::tensor_proto::DataType::String as i32;
    let float = super::proto::tensor_proto::DataType::Float as i32;
    assert_eq!(
        inputs,
        [
            ("age".to_string(), float),
            ("autopay".to_string(), float),
            ("plan".to_string(), string)
        ]
    );
    let outputs: Vec<String> = graph
        .output
        .iter()
        .map(|o| o.name.clone().unwrap())
        .collect();
    assert_eq!(outputs, ["label", "probabilities"]);
    assert_eq!(proto.model_version, Some(3));
    let ops: Vec<&str> = graph
        .node
        .iter()
        .map(|n| n.op_type.as_deref().unwrap())
        .collect();
    for op in [
        "Imputer",
        "Scaler",
        "LabelEncoder",
        "OneHot",
        "Gemm",
        "Concat",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
}

#[test]
fn regression_outputs_a_value_and_text_columns_are_refused_by_name() {
    let mut data = rows(120);
    for r in &mut data {
        r.as_object_mut().unwrap().remove("note");
        r.as_object_mut().unwrap().remove("churned");
    }
    let m = model(data, "price", &[]);
    let proto = ModelProto::decode(to_onnx(&m, "price", 1).unwrap().as_slice()).unwrap();
    let outputs: Vec<String> = proto
        .graph
        .unwrap()
        .output
        .iter()
        .map(|o| o.name.clone().unwrap())
        .collect();
    assert_eq!(outputs, ["value"]);

    let m = model(rows(120), "churned", &[("note", ColumnKind::Text)]);
    let err = to_onnx(&m, "churn", 1).unwrap_err();
    assert_eq!(
        err,
        OnnxError::UnsupportedColumn {
            column: "note".into(),
            kind: "a text column"
        }
    );
    assert!(err.to_string().contains("`note`"));
}
