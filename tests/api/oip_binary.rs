//! The Open Inference Protocol's binary tensor extension over HTTP: every
//! numeric datatype in JSON and in binary, and binary outputs, against
//! `/predict`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oip::{classes_of, column_tensors, expected, infer, output, ROWS};

/// Little-endian bytes of `values` in `datatype`.
fn raw(datatype: &str, values: &[f64]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| -> Vec<u8> {
            match datatype {
                "INT8" => (v as i8).to_le_bytes().to_vec(),
                "INT16" => (v as i16).to_le_bytes().to_vec(),
                "INT32" => (v as i32).to_le_bytes().to_vec(),
                "INT64" => (v as i64).to_le_bytes().to_vec(),
                "UINT8" => (v as u8).to_le_bytes().to_vec(),
                "UINT16" => (v as u16).to_le_bytes().to_vec(),
                "UINT32" => (v as u32).to_le_bytes().to_vec(),
                "UINT64" => (v as u64).to_le_bytes().to_vec(),
                "FP16" => half::f16::from_f64(v).to_le_bytes().to_vec(),
                "FP32" => (v as f32).to_le_bytes().to_vec(),
                "FP64" => v.to_le_bytes().to_vec(),
                other => panic!("no raw encoding for {other}"),
            }
        })
        .collect()
}

fn bytes_raw(items: &[&str]) -> Vec<u8> {
    items
        .iter()
        .flat_map(|s| {
            let mut out = (s.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(s.as_bytes());
            out
        })
        .collect()
}

/// A binary request body: JSON header, then the tensors' bytes in order.
fn binary_body(header: &Value, tensors: &[Vec<u8>]) -> (Vec<u8>, usize) {
    let mut body = serde_json::to_vec(header).unwrap();
    let length = body.len();
    for t in tensors {
        body.extend_from_slice(t);
    }
    (body, length)
}

pub(crate) async fn post_binary(
    app: &TestApp,
    path: &str,
    header: &Value,
    tensors: &[Vec<u8>],
) -> reqwest::Response {
    let (body, length) = binary_body(header, tensors);
    app.client
        .post(app.url(path))
        .header("Inference-Header-Content-Length", length.to_string())
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Splits a binary answer into its JSON header and the output bytes.
async fn binary_answer(response: reqwest::Response) -> (Value, Vec<u8>) {
    assert_eq!(response.status(), StatusCode::OK);
    let length: usize = response
        .headers()
        .get("inference-header-content-length")
        .expect("Inference-Header-Content-Length on a binary answer")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = response.bytes().await.unwrap();
    (
        serde_json::from_slice(&bytes[..length]).unwrap(),
        bytes[length..].to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_numeric_datatype_in_json_and_binary_gives_the_predict_answer() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 66).await;
    let tenure: Vec<f64> = ROWS.iter().map(|r| r.0 as f64).collect();
    // Values every datatype holds exactly (FP16 included).
    let monthly: Vec<f64> = ROWS.iter().map(|r| r.3).collect();
    let reference = infer(
        &app,
        "/v2/models/churn/infer",
        &json!({"inputs": column_tensors()}),
    )
    .await;
    let reference_probs = output(&reference, "probabilities")["data"].clone();
    for datatype in [
        "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32",
        "FP64",
    ] {
        let mut tensors = column_tensors();
        tensors[0]["datatype"] = json!(datatype);
        let answer = infer(
            &app,
            "/v2/models/churn/infer",
            &json!({"inputs": tensors.clone()}),
        )
        .await;
        assert_eq!(
            output(&answer, "probabilities")["data"],
            reference_probs,
            "JSON {datatype}"
        );

        // Binary: tenure in `datatype`, plan as length-prefixed BYTES, autopay
        // as BOOL bytes, monthly as FP64.
        let plans: Vec<&str> = ROWS.iter().map(|r| r.1).collect();
        let autopay: Vec<u8> = ROWS.iter().map(|r| u8::from(r.2)).collect();
        let parts = [
            raw(datatype, &tenure),
            bytes_raw(&plans),
            autopay,
            raw("FP64", &monthly),
        ];
        let mut header = json!({"inputs": tensors});
        for (i, part) in parts.iter().enumerate() {
            let input = &mut header["inputs"][i];
            input.as_object_mut().unwrap().remove("data");
            input["parameters"] = json!({"binary_data_size": part.len()});
        }
        let response = post_binary(&app, "/v2/models/churn/infer", &header, &parts).await;
        let answer: Value = json_ok(response, StatusCode::OK).await;
        assert_eq!(
            output(&answer, "probabilities")["data"],
            reference_probs,
            "binary {datatype}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_outputs_carry_the_predict_answer() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 67).await;
    let body = json!({"inputs": column_tensors(), "parameters": {"binary_data_output": true}});
    let response = post_binary(&app, "/v2/models/churn/infer", &body, &[]).await;
    let (header, data) = binary_answer(response).await;
    let label = output(&header, "label");
    let probabilities = output(&header, "probabilities");
    assert!(
        label.get("data").is_none() && probabilities.get("data").is_none(),
        "{header:#}"
    );
    let label_size = label["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
    let prob_size = probabilities["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(label_size + prob_size, data.len());
    // Outputs come in order: label, then probabilities.
    let mut labels = Vec::new();
    let mut rest = &data[..label_size];
    while !rest.is_empty() {
        let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        labels.push(String::from_utf8(rest[4..4 + n].to_vec()).unwrap());
        rest = &rest[4 + n..];
    }
    let probs: Vec<f32> = data[label_size..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let classes = classes_of(probabilities);
    let want = expected(&app, &classes).await;
    for (i, (label, p)) in want.iter().enumerate() {
        assert_eq!(&labels[i], label);
        for (j, pj) in p.iter().enumerate() {
            assert!((f64::from(probs[i * classes.len() + j]) - pj).abs() < 1e-6);
        }
    }

    // Per output: only `probabilities` binary, `label` stays JSON.
    let body = json!({"inputs": column_tensors(), "outputs": [
        {"name": "label", "parameters": {"binary_data": false}},
        {"name": "probabilities", "parameters": {"binary_data": true}}]});
    let response = app.post_json("/v2/models/churn/infer", &body).await;
    let (header, data) = binary_answer(response).await;
    assert_eq!(
        output(&header, "label")["data"].as_array().unwrap().len(),
        4
    );
    assert_eq!(data.len(), 4 * classes.len() * 4);
}
