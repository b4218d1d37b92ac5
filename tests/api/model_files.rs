//! A prediction reproduced from `weights.safetensors` and `model.json` alone,
//! following the README's "Reproducing a prediction" steps with plain `f64`
//! arithmetic (no code of the crate), as numpy would.

use std::path::Path;

use safetensors::SafeTensors;
use serde_json::{json, Value};

use crate::helpers::*;

/// The README's feature encoding of one record, column by column.
fn encode(pipeline: &Value, record: &Value) -> Vec<f64> {
    let mut features = Vec::new();
    for column in pipeline["columns"].as_array().unwrap() {
        let encoder = &column["encoder"];
        let raw = &record[column["name"].as_str().unwrap()];
        match encoder["encoding"].as_str().unwrap() {
            "numeric" => {
                let f = |k: &str| encoder[k].as_f64().unwrap();
                let x = raw.as_f64().unwrap_or(f("median"));
                features.push((x - f("mean")) / f("std"));
                if encoder["missing_indicator"] == true {
                    features.push(if raw.is_null() { 1.0 } else { 0.0 });
                }
                let edges: Vec<f64> = encoder["bin_edges"]
                    .as_array()
                    .map(|e| e.iter().map(|v| v.as_f64().unwrap()).collect())
                    .unwrap_or_default();
                for pair in edges.windows(2) {
                    features.push(((x - pair[0]) / (pair[1] - pair[0])).clamp(0.0, 1.0));
                }
            }
            "one_hot" => {
                let vocabulary = encoder["vocabulary"].as_array().unwrap();
                let mut slots = vec![0.0; vocabulary.len() + 2];
                let slot = match raw.as_str() {
                    None => vocabulary.len(),
                    Some(v) => vocabulary
                        .iter()
                        .position(|w| w == v)
                        .unwrap_or(vocabulary.len() + 1),
                };
                slots[slot] = 1.0;
                features.extend(slots);
            }
            other => panic!("encoding {other} is not used by this test"),
        }
    }
    features
}

/// `layers.{i}.weight` (`[out, in]`) and `layers.{i}.bias` as f64.
fn layer(tensors: &SafeTensors, i: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let floats = |name: String| -> (Vec<usize>, Vec<f64>) {
        let view = tensors.tensor(&name).unwrap();
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        (view.shape().to_vec(), data)
    };
    let (shape, weight) = floats(format!("layers.{i}.weight"));
    let rows = weight.chunks(shape[1]).map(<[f64]>::to_vec).collect();
    (rows, floats(format!("layers.{i}.bias")).1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prediction_is_reproduced_from_the_stored_files_as_the_readme_describes() {
    let app = spawn_app().await;
    let csv =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/churn.csv"))
            .unwrap();
    let job = app
        .train(&json!({"model": "churn", "target": "churned", "csv": csv,
            "params": {"hidden_layers": [16, 8], "epochs": 5}}))
        .await;
    assert_eq!(job["status"], "succeeded");
    let dir = app.store_path.join("churn/1");
    let card: Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("weights.safetensors")).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(card["architecture"]["activation"], "relu");
    assert_eq!(card["architecture"]["head"]["kind"], "binary");
    let labels = card["target_encoder"]["labels"].as_array().unwrap().clone();

    let instances = [
        json!({"tenure": 3, "plan": "basic", "monthly": 31.0, "support_calls": 4}),
        json!({"tenure": 40, "plan": "enterprise", "monthly": null, "support_calls": 0}),
    ];
    let served = app
        .predict(&json!({"model": "churn", "instances": instances}))
        .await;
    let layers = card["architecture"]["hidden"].as_array().unwrap().len() + 1;
    for (instance, prediction) in instances
        .iter()
        .zip(served["predictions"].as_array().unwrap())
    {
        let mut h = encode(&card["pipeline"], instance);
        assert_eq!(
            h.len() as u64,
            card["architecture"]["inputs"].as_u64().unwrap()
        );
        for i in 0..layers {
            let (weight, bias) = layer(&tensors, i);
            h = weight
                .iter()
                .zip(&bias)
                .map(|(row, b)| row.iter().zip(&h).map(|(w, x)| w * x).sum::<f64>() + b)
                .collect();
            if i + 1 < layers {
                h.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        let positive = 1.0 / (1.0 + (-h[0]).exp());
        let served_positive = prediction["probabilities"][labels[1].as_str().unwrap()]
            .as_f64()
            .unwrap();
        assert!(
            (positive - served_positive).abs() < 1e-4,
            "{positive} vs {prediction}"
        );
        let label = if positive >= 0.5 {
            &labels[1]
        } else {
            &labels[0]
        };
        assert_eq!(&prediction["label"], label, "{prediction}");
    }
}
