//! Every error answers `application/problem+json` with `status`, `code` and
//! a `detail` naming what is wrong.

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_malformed_json() {
    let app = spawn_app().await;
    for path in ["/predict", "/train", "/models/churn/predict"] {
        let response = app
            .post_raw(path, "application/json", r#"{"model": "churn", "#)
            .await;
        let problem = assert_problem(response, 400, Some("malformed_json")).await;
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("malformed_json"),
            "{problem:#}"
        );
        assert_eq!(problem["title"], "Bad Request");
    }
    let response = app
        .client
        .put(app.url("/models/churn/aliases/production"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{version: 1}")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, Some("malformed_json")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let response = app.post_raw("/predict", "text/plain", "{}").await;
    assert_problem(response, 415, Some("unsupported_media_type")).await;
    let response = app.post_raw("/train", "text/plain", "a,b\n1,2\n").await;
    let problem = assert_problem(response, 415, Some("unsupported_media_type")).await;
    assert!(detail(&problem).contains("text/plain"), "{problem:#}");
    let response = app.post_raw("/datasets", "application/json", "[]").await;
    assert_problem(response, 415, Some("unsupported_media_type")).await;
    let response = app
        .client
        .post(app.url("/predict"))
        .body(r#"{"model":"m","instances":[{}]}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, Some("unsupported_media_type")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|s| {
        s.limits.max_request_bytes = 1024;
        s.limits.max_train_body_bytes = 4096;
        s.limits.max_upload_bytes = 2048;
    })
    .await;
    let instances: Vec<_> = (0..100)
        .map(|i| churn_instance(i, "basic", true, 50.0))
        .collect();
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": instances}),
        )
        .await;
    assert_problem(response, 413, Some("body_too_large")).await;

    let big = train_request("churn", "churned", churn_rows(200, 61), tiny_params(2));
    let response = app.post_json("/train", &big).await;
    assert_problem(response, 413, Some("body_too_large")).await;

    let csv = to_csv(&churn_rows(200, 62), &CHURN_COLUMNS);
    let response = app.post_raw("/datasets", "text/csv", csv).await;
    let problem = assert_problem(response, 413, Some("body_too_large")).await;
    assert_eq!(problem["limit"], 2048);
    assert_eq!(app.get_ok("/datasets").await["datasets"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_is_404_and_a_wrong_method_is_405() {
    let app = spawn_app().await;
    let response = app.get("/no/such/route").await;
    assert_problem(response, 404, Some("route_not_found")).await;
    let response = app.post_json("/healthz", &json!({})).await;
    assert_problem(response, 405, Some("method_not_allowed")).await;
    let response = app.delete("/predict").await;
    assert_problem(response, 405, Some("method_not_allowed")).await;
    let response = app.delete("/datasets").await;
    assert_problem(response, 405, Some("method_not_allowed")).await;
    let response = app.get("/models/churn/versions/abc").await;
    assert_problem(response, 400, Some("invalid_path")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_model_or_version_is_404() {
    let app = spawn_app().await;
    let instance = churn_instance(1, "pro", true, 20.0);
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "ghost", "instances": [instance]}),
        )
        .await;
    let problem = assert_problem(response, 404, Some("model_not_found")).await;
    assert_eq!(problem["model"], "ghost");
    assert!(detail(&problem).contains("ghost"), "{problem:#}");
    let response = app.get("/models/ghost").await;
    assert_problem(response, 404, Some("model_not_found")).await;
    let response = app.get("/models/ghost/versions/1").await;
    assert_problem(response, 404, Some("model_not_found")).await;

    train_churn(&app, "churn", 63).await;
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "version": 7, "instances": [instance]}),
        )
        .await;
    let problem = assert_problem(response, 404, Some("version_not_found")).await;
    assert_eq!(problem["version"], 7);
    let response = app.get("/models/churn/versions/7").await;
    assert_problem(response, 404, Some("version_not_found")).await;
    let response = app.delete("/models/churn/versions/7").await;
    assert_problem(response, 404, Some("version_not_found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_model_name_is_422_invalid_name() {
    let app = spawn_app().await;
    for name in ["../escape", "Churn", "..", "a/b", ".hidden", ""] {
        let response = app
            .post_json(
                "/train",
                &train_request(name, "churned", churn_rows(30, 64), tiny_params(1)),
            )
            .await;
        let problem = assert_problem(response, 422, Some("invalid_name")).await;
        assert!(detail(&problem).contains(name), "{problem:#}");
    }
    let response = app.get("/models/Churn").await;
    assert_problem(response, 422, Some("invalid_name")).await;
    train_churn(&app, "churn", 68).await;
    let response = app
        .put_json("/models/churn/aliases/Production", &json!({"version": 1}))
        .await;
    assert_problem(response, 422, Some("invalid_name")).await;
    let response = app
        .put_json(
            "/models/churn/aliases/production",
            &json!({"version": 1, "extra": true}),
        )
        .await;
    assert_problem(response, 422, Some("invalid_body")).await;
    assert_eq!(app.get_ok("/models/churn").await["aliases"], json!({}));
    let response = app
        .post_json("/predict", &json!({"model": "UPPER", "instances": [{}]}))
        .await;
    assert_problem(response, 422, Some("invalid_name")).await;
    // No job was queued for an invalid name, and nothing escaped the store.
    assert_eq!(app.get_ok("/jobs").await["total"], 1);
    assert!(!app.store_path.parent().unwrap().join("escape").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_target_column_is_422_naming_the_column() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/train",
            &train_request("churn", "cancelled", churn_rows(30, 65), tiny_params(1)),
        )
        .await;
    let problem = assert_problem(response, 422, Some("unknown_column")).await;
    assert!(detail(&problem).contains("`cancelled`"), "{problem:#}");
    let response = app
        .post_json(
            "/train",
            &json!({"model": "churn", "target": "churned", "ignore": ["nope"], "data": churn_rows(30, 65)}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("unknown_column")).await;
    assert!(detail(&problem).contains("`nope`"), "{problem:#}");
    assert_eq!(app.get_ok("/jobs").await["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_422_naming_the_parameter() {
    let app = spawn_app().await;
    let cases = [
        (json!({"learning_rate": -1.0}), "learning_rate"),
        (json!({"epochs": 0}), "epochs"),
        (json!({"learning_rat": 0.1}), "learning_rat"),
        (json!({"hidden_layers": [0]}), "hidden_layers"),
        (json!({"dropout": 1.5}), "dropout"),
        (json!({"epochs": "many"}), "many"),
    ];
    for (params, name) in cases {
        let response = app
            .post_json(
                "/train",
                &train_request("churn", "churned", churn_rows(30, 66), params.clone()),
            )
            .await;
        let problem = assert_problem(response, 422, Some("invalid_parameter")).await;
        assert!(detail(&problem).contains(name), "{params}: {problem:#}");
    }
    let response = app
        .post_json(
            "/train",
            &json!({"model": "churn", "target": "churned", "task": "clustering", "data": churn_rows(30, 66)}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("invalid_body")).await;
    assert_eq!(problem["field"], "task");
    assert!(detail(&problem).contains("clustering"), "{problem:#}");
    assert_eq!(app.get_ok("/jobs").await["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_training_data_is_422() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/train",
            &json!({"model": "churn", "target": "churned", "data": []}),
        )
        .await;
    assert_problem(response, 422, Some("empty_data")).await;
    let response = app
        .post_json(
            "/train",
            &json!({"model": "churn", "target": "churned", "csv": "tenure,plan,churned\n"}),
        )
        .await;
    assert_problem(response, 422, Some("empty_data")).await;
    let response = app
        .post_raw(
            "/train?model=churn&target=churned",
            "application/x-ndjson",
            "",
        )
        .await;
    assert_problem(response, 422, Some("empty_data")).await;
    let response = app.post_raw("/datasets", "text/csv", "").await;
    assert_problem(response, 422, Some("empty_data")).await;
    let response = app.post_raw("/datasets", "text/csv", "a,b\n").await;
    assert_problem(response, 422, Some("empty_data")).await;
    assert_eq!(app.get_ok("/jobs").await["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_request_must_name_exactly_one_data_source() {
    let app = spawn_app().await;
    let response = app
        .post_json("/train", &json!({"model": "churn", "target": "churned"}))
        .await;
    assert_problem(response, 422, Some("invalid_data_source")).await;
    let response = app
        .post_json(
            "/train",
            &json!({"model": "churn", "target": "churned", "csv": "a,b\n1,2\n", "dataset": "x"}),
        )
        .await;
    assert_problem(response, 422, Some("invalid_data_source")).await;
    let response = app
        .post_json(
            "/train",
            &json!({"model": "churn", "target": "churned", "data": [], "colour": 1}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("invalid_body")).await;
    assert!(detail(&problem).contains("colour"), "{problem:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_class_target_is_422() {
    let app = spawn_app().await;
    let rows: Vec<_> = churn_rows(40, 67)
        .into_iter()
        .map(|mut r| {
            r["churned"] = json!("no");
            r
        })
        .collect();
    let response = app
        .post_json(
            "/train",
            &train_request("churn", "churned", rows, tiny_params(1)),
        )
        .await;
    let problem = assert_problem(response, 422, Some("single_class")).await;
    assert!(detail(&problem).contains("churned"), "{problem:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_job_is_404() {
    let app = spawn_app().await;
    let response = app.get("/jobs/no-such-job").await;
    let problem = assert_problem(response, 404, Some("job_not_found")).await;
    assert_eq!(problem["job"], "no-such-job");
    let response = app.delete("/jobs/no-such-job").await;
    assert_problem(response, 404, Some("job_not_found")).await;
    let response = app.get("/jobs/no-such-job/events").await;
    assert_problem(response, 404, Some("job_not_found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_dataset_is_404() {
    let app = spawn_app().await;
    let response = app.get("/datasets/nope").await;
    let problem = assert_problem(response, 404, Some("dataset_not_found")).await;
    assert_eq!(problem["dataset"], "nope");
    let response = app.delete("/datasets/nope").await;
    assert_problem(response, 404, Some("dataset_not_found")).await;
}

/// Sends `request` as is on a fresh connection and returns the whole answer.
async fn raw_exchange(app: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_line_hyper_cannot_parse_is_answered_with_a_problem() {
    let app = spawn_app().await;
    // What curl sends for the unencoded `params={"epochs":20}` (it globs the braces).
    let answer = raw_exchange(
        &app,
        "POST /train?model=churn&params=\"epochs\":20 HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect(&answer);
    assert!(head.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{answer}"
    );
    let problem: serde_json::Value = serde_json::from_str(body).expect(&answer);
    assert_eq!(problem["code"], "malformed_request", "{problem:#}");
    assert_eq!(problem["status"], 400, "{problem:#}");
    assert!(detail(&problem).contains("percent-encoded"), "{problem:#}");
    // The server keeps serving.
    assert_eq!(app.get("/healthz").await.status(), 200);
}
