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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regressor_answers_fp32_values_in_binary_and_over_grpc() {
    use myelin::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
    use myelin::grpc::proto::model_infer_request::InferInputTensor;
    use myelin::grpc::proto::ModelInferRequest;

    let app = spawn_app().await;
    let rows = numeric_regression_rows(200, 5);
    app.train(&train_request("reg", "y", rows, tiny_params(4)))
        .await;
    let points = [[1.5, 2.0], [7.25, 0.5], [3.0, 4.75]];
    let predicted = app
        .predict(&json!({"model": "reg", "instances": points.iter().map(|p| json!({"x1": p[0], "x2": p[1]})).collect::<Vec<_>>()}))
        .await;
    // `/predict`'s values rounded to f32.
    let want: Vec<f32> = (0..points.len())
        .map(|i| predicted["predictions"][i]["value"].as_f64().unwrap() as f32)
        .collect();
    let column = |j: usize| raw("FP64", &points.iter().map(|p| p[j]).collect::<Vec<_>>());

    let header = json!({
        "inputs": [
            {"name": "x1", "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": 24}},
            {"name": "x2", "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": 24}}],
        "parameters": {"binary_data_output": true}});
    let response = post_binary(
        &app,
        "/v2/models/reg/infer",
        &header,
        &[column(0), column(1)],
    )
    .await;
    let (document, bytes) = binary_answer(response).await;
    let value = &document["outputs"][0];
    assert_eq!(value["name"], "value");
    assert_eq!(value["datatype"], "FP32");
    assert_eq!(value["shape"], json!([3]));
    assert_eq!(value["parameters"]["binary_data_size"], 12);
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, want);

    let addr = app.grpc_addr.expect("gRPC is enabled in tests");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = GrpcInferenceServiceClient::new(channel);
    let tensor = |name: &str| InferInputTensor {
        name: name.into(),
        datatype: "FP64".into(),
        shape: vec![3],
        ..Default::default()
    };
    let answer = grpc
        .model_infer(ModelInferRequest {
            model_name: "reg".into(),
            inputs: vec![tensor("x1"), tensor("x2")],
            raw_input_contents: vec![column(0), column(1)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.outputs[0].name, "value");
    assert_eq!(answer.outputs[0].datatype, "FP32");
    assert_eq!(answer.outputs[0].shape, vec![3]);
    let got: Vec<f32> = answer.raw_output_contents[0]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, want);
}
