//! The Open Inference Protocol over HTTP: health, metadata, inference with
//! JSON and binary tensors in every datatype, agreement with `/predict`,
//! and errors naming the tensor and element.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oip_binary::post_binary;

/// Churn instances as rows of (tenure, plan, autopay, monthly).
pub(crate) const ROWS: [(u64, &str, bool, f64); 4] = [
    (3, "basic", false, 42.5),
    (60, "pro", true, 99.0),
    (15, "standard", true, 20.25),
    (40, "basic", false, 70.0),
];

pub(crate) fn instances() -> Vec<Value> {
    ROWS.iter()
        .map(|(t, p, a, m)| churn_instance(*t, p, *a, *m))
        .collect()
}

/// JSON tensors of [`ROWS`], one per column.
pub(crate) fn column_tensors() -> Value {
    json!([
        {"name": "tenure", "shape": [4], "datatype": "FP64", "data": ROWS.iter().map(|r| r.0 as f64).collect::<Vec<_>>()},
        {"name": "plan", "shape": [4, 1], "datatype": "BYTES", "data": ROWS.iter().map(|r| r.1).collect::<Vec<_>>()},
        {"name": "autopay", "shape": [4], "datatype": "BOOL", "data": ROWS.iter().map(|r| r.2).collect::<Vec<_>>()},
        {"name": "monthly", "shape": [4], "datatype": "FP64", "data": ROWS.iter().map(|r| r.3).collect::<Vec<_>>()},
    ])
}

/// (label, probabilities in `classes` order) per row from `/predict`.
pub(crate) async fn expected(app: &TestApp, classes: &[String]) -> Vec<(String, Vec<f64>)> {
    let answer = app
        .predict(&json!({"model": "churn", "instances": instances()}))
        .await;
    answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let probabilities = classes
                .iter()
                .map(|c| p["probabilities"][c].as_f64().unwrap())
                .collect();
            (p["label"].as_str().unwrap().to_string(), probabilities)
        })
        .collect()
}

pub(crate) fn classes_of(output: &Value) -> Vec<String> {
    let text = output["parameters"]["classes"]
        .as_str()
        .expect("classes parameter");
    serde_json::from_str(text).expect("classes is a JSON array")
}

pub(crate) fn output<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output `{name}` in {answer:#}"))
}

/// Asserts JSON outputs equal `/predict` on [`ROWS`].
async fn assert_matches_predict(app: &TestApp, answer: &Value) {
    let probabilities = output(answer, "probabilities");
    let classes = classes_of(probabilities);
    assert_eq!(probabilities["shape"], json!([4, classes.len()]));
    assert_eq!(probabilities["datatype"], "FP32");
    let labels = output(answer, "label");
    assert_eq!(labels["datatype"], "BYTES");
    let want = expected(app, &classes).await;
    for (i, (label, probs)) in want.iter().enumerate() {
        assert_eq!(labels["data"][i], *label.as_str(), "{answer:#}");
        for (j, p) in probs.iter().enumerate() {
            let got = probabilities["data"][i * classes.len() + j]
                .as_f64()
                .unwrap();
            assert!((got - p).abs() < 1e-6, "row {i} class {j}: {got} vs {p}");
        }
    }
}

pub(crate) async fn infer(app: &TestApp, path: &str, body: &Value) -> Value {
    json_ok(app.post_json(path, body).await, StatusCode::OK).await
}

pub(crate) async fn assert_oip_error(
    response: reqwest::Response,
    status: u16,
    needles: &[&str],
) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("error body is JSON");
    let error = body["error"].as_str().expect("`error` member");
    for needle in needles {
        assert!(error.contains(needle), "`{needle}` not in {error}");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_metadata_liveness_and_readiness_answer() {
    let app = spawn_app().await;
    let meta = app.get_ok("/v2").await;
    assert_eq!(meta["name"], "myelin");
    assert_eq!(meta["extensions"], json!(["binary_tensor_data"]));
    assert_eq!(app.get_ok("/v2/health/live").await["live"], true);
    assert_eq!(app.get_ok("/v2/health/ready").await["ready"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_metadata_lists_raw_columns_outputs_and_versions() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 61).await;
    train_churn(&app, "churn", 62).await;
    let meta = app.get_ok("/v2/models/churn").await;
    assert_eq!(meta["name"], "churn");
    assert_eq!(meta["platform"], "myelin");
    assert_eq!(meta["versions"], json!(["1", "2"]));
    let inputs: Vec<(String, String, Value)> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["datatype"].as_str().unwrap().to_string(),
                t["shape"].clone(),
            )
        })
        .collect();
    for (name, datatype) in [
        ("tenure", "FP64"),
        ("plan", "BYTES"),
        ("autopay", "BOOL"),
        ("monthly", "FP64"),
    ] {
        assert!(
            inputs.contains(&(name.into(), datatype.into(), json!([-1]))),
            "{name} {datatype} missing in {meta:#}"
        );
    }
    // Mixed kinds: no `input` matrix.
    assert_eq!(inputs.len(), 4, "{meta:#}");
    assert_eq!(
        meta["outputs"][0],
        json!({"name": "label", "datatype": "BYTES", "shape": [-1]})
    );
    assert_eq!(meta["outputs"][1]["shape"], json!([-1, 2]));
    assert_eq!(classes_of(&meta["outputs"][1]), vec!["no", "yes"]);

    let v1 = app.get_ok("/v2/models/churn/versions/1").await;
    assert_eq!(v1["name"], "churn");
    assert_eq!(app.get_ok("/v2/models/churn/ready").await["ready"], true);
    assert_eq!(
        app.get_ok("/v2/models/churn/versions/2/ready").await["ready"],
        true
    );

    assert_oip_error(app.get("/v2/models/nope").await, 404, &["`nope`"]).await;
    assert_oip_error(
        app.get("/v2/models/churn/versions/9").await,
        404,
        &["version 9"],
    )
    .await;
    assert_oip_error(
        app.get("/v2/models/churn/versions/9/ready").await,
        404,
        &["version 9"],
    )
    .await;
    assert_oip_error(
        app.get("/v2/models/churn/versions/production").await,
        404,
        &["production"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_infer_equals_predict_and_honours_version_and_alias() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 63).await;
    let body = json!({"id": "req-1", "inputs": column_tensors()});
    let answer = infer(&app, "/v2/models/churn/infer", &body).await;
    assert_eq!(answer["model_name"], "churn");
    assert_eq!(answer["model_version"], "1");
    assert_eq!(answer["id"], "req-1");
    assert_matches_predict(&app, &answer).await;

    train_churn(&app, "churn", 64).await;
    let pinned = infer(&app, "/v2/models/churn/versions/1/infer", &body).await;
    assert_eq!(pinned["model_version"], "1");
    let latest = infer(&app, "/v2/models/churn/infer", &body).await;
    assert_eq!(latest["model_version"], "2");
    let response = app
        .put_json("/models/churn/aliases/production", &json!({"version": 1}))
        .await;
    assert!(response.status().is_success());
    let production = infer(&app, "/v2/models/churn/infer", &body).await;
    assert_eq!(production["model_version"], "1");
    let by_alias = infer(&app, "/v2/models/churn/versions/production/infer", &body).await;
    assert_eq!(by_alias["model_version"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_outputs_are_the_only_ones_returned() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 65).await;
    let body = json!({"inputs": column_tensors(), "outputs": [{"name": "label"}]});
    let answer = infer(&app, "/v2/models/churn/infer", &body).await;
    assert_eq!(answer["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(answer["outputs"][0]["name"], "label");
    let body = json!({"inputs": column_tensors(), "outputs": [{"name": "score"}]});
    assert_oip_error(
        app.post_json("/v2/models/churn/infer", &body).await,
        400,
        &["`score`", "label"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_numeric_regressor_takes_the_input_matrix_and_answers_fp32_values() {
    let app = spawn_app().await;
    let rows = numeric_regression_rows(200, 5);
    app.train(&train_request("reg", "y", rows, tiny_params(4)))
        .await;
    let meta = app.get_ok("/v2/models/reg").await;
    assert!(
        meta["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "input" && t["shape"] == json!([-1, 2])),
        "{meta:#}"
    );
    assert_eq!(
        meta["outputs"],
        json!([{"name": "value", "datatype": "FP32", "shape": [-1]}])
    );
    let points = [[1.5, 2.0], [7.25, 0.5], [3.0, 4.75]];
    let predicted = app
        .predict(&json!({"model": "reg", "instances": points.iter().map(|p| json!({"x1": p[0], "x2": p[1]})).collect::<Vec<_>>()}))
        .await;
    let body =
        json!({"inputs": [{"name": "input", "shape": [3, 2], "datatype": "FP64", "data": points}]});
    let answer = infer(&app, "/v2/models/reg/infer", &body).await;
    let values = output(&answer, "value");
    assert_eq!(values["datatype"], "FP32");
    assert_eq!(values["shape"], json!([3]));
    for i in 0..3 {
        // `/predict`'s value rounded to f32.
        let want = predicted["predictions"][i]["value"].as_f64().unwrap() as f32;
        let got = values["data"][i].as_f64().unwrap() as f32;
        assert_eq!(got, want, "{got} vs {want}");
    }
    let wrong = json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]});
    assert_oip_error(
        app.post_json("/v2/models/reg/infer", &wrong).await,
        400,
        &["`input`", "[N, 2]"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tensors_answer_400_naming_the_tensor_and_element() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 68).await;
    let path = "/v2/models/churn/infer";
    let with = |index: usize, tensor: Value| {
        let mut tensors = column_tensors();
        tensors[index] = tensor;
        json!({"inputs": tensors})
    };
    // Shape and data disagree.
    let body = with(
        0,
        json!({"name": "tenure", "shape": [5], "datatype": "FP64", "data": [1, 2, 3, 4]}),
    );
    assert_oip_error(app.post_json(path, &body).await, 400, &["`tenure`", "[5]"]).await;
    // Rows disagree between tensors.
    let body = with(
        3,
        json!({"name": "monthly", "shape": [2], "datatype": "FP64", "data": [1, 2]}),
    );
    assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["`monthly`", "2 rows"],
    )
    .await;
    // A column tensor of two columns.
    let body = with(
        0,
        json!({"name": "tenure", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}),
    );
    assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["`tenure`", "[N] or [N, 1]"],
    )
    .await;
    // Unknown and missing tensors.
    let body = with(
        0,
        json!({"name": "age", "shape": [4], "datatype": "FP64", "data": [1, 2, 3, 4]}),
    );
    assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["unknown input tensor `age`"],
    )
    .await;
    let mut tensors = column_tensors();
    tensors.as_array_mut().unwrap().remove(1);
    let body = json!({"inputs": tensors});
    assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["missing input tensor `plan`"],
    )
    .await;
    // An element of the wrong JSON type, out of range, or unknown datatype.
    let body = with(
        0,
        json!({"name": "tenure", "shape": [4], "datatype": "FP64", "data": [1, 2, "x", 4]}),
    );
    assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["`tenure` element 2", "FP64"],
    )
    .await;
    let body = with(
        0,
        json!({"name": "tenure", "shape": [4], "datatype": "INT8", "data": [1, 2, 300, 4]}),
    );
    assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["`tenure` element 2", "INT8"],
    )
    .await;
    let body = with(
        0,
        json!({"name": "tenure", "shape": [4], "datatype": "FP128", "data": [1, 2, 3, 4]}),
    );
    assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["`tenure`", "FP128"],
    )
    .await;
    // A value the model cannot read: text in a numeric column.
    let body = with(
        0,
        json!({"name": "tenure", "shape": [4], "datatype": "BYTES", "data": ["1", "2", "3", "long"]}),
    );
    let error = assert_oip_error(
        app.post_json(path, &body).await,
        400,
        &["`tenure` element 3", "long"],
    )
    .await;
    assert_eq!(error["code"], "invalid_instance");
    // Binary sizes that do not add up.
    let header = json!({"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 16}}]});
    let response = post_binary(&app, path, &header, &[vec![0; 8]]).await;
    assert_oip_error(response, 400, &["`tenure`", "16"]).await;
    let response = post_binary(
        &app,
        path,
        &json!({"inputs": column_tensors()}),
        &[vec![0; 3]],
    )
    .await;
    assert_oip_error(response, 400, &["3 bytes"]).await;
    // Malformed JSON and an unknown model.
    let response = app
        .post_raw(path, "application/json", "{\"inputs\": [")
        .await;
    assert_oip_error(response, 400, &["not valid"]).await;
    let body = json!({"inputs": column_tensors()});
    assert_oip_error(
        app.post_json("/v2/models/nope/infer", &body).await,
        404,
        &["`nope`"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommender_answers_400_wrong_model_kind() {
    let app = spawn_app().await;
    app.train(&json!({
        "model": "recs",
        "task": "recommendation",
        "params": crate::recommend::recommend_params(),
        "data": crate::recommend::interaction_rows(7),
    }))
    .await;
    let body =
        json!({"inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES", "data": ["u1"]}]});
    let error = assert_oip_error(
        app.post_json("/v2/models/recs/infer", &body).await,
        400,
        &["recommender"],
    )
    .await;
    assert_eq!(error["code"], "wrong_model_kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_routes_need_an_inference_key_and_health_is_open() {
    const KEY: &str = "inference-key-0123456789";
    const READ: &str = "read-only-key-0123456789";
    let app = spawn_app_with(|s| {
        s.auth.keys = vec![
            format!("inference:{KEY}"),
            format!("read:{READ}"),
            "admin:admin-key-0123456789abc".into(),
        ];
    })
    .await;
    assert_eq!(app.get("/v2/health/ready").await.status(), StatusCode::OK);
    assert_eq!(app.get("/v2").await.status(), StatusCode::OK);
    let body = json!({"inputs": column_tensors()});
    let response = app.post_json("/v2/models/churn/infer", &body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .get(app.url("/v2/models/churn"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .client
        .get(app.url("/v2/models/churn"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
