//! Health, readiness, metrics, the served spec and docs, request ids.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_200_ok() {
    let app = spawn_app().await;
    assert_eq!(app.get_ok("/healthz").await, json!({"status": "ok"}));
    assert_eq!(app.get_ok("/readyz").await, json!({"status": "ok"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_predictions() {
    let app = spawn_app().await;
    train_churn(&app, "metered", 71).await;
    app.predict(&json!({"model": "metered", "instances": [
        churn_instance(5, "basic", false, 80.0),
        churn_instance(50, "pro", true, 30.0)
    ]}))
    .await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    assert!(text.contains("myelin_http_requests_total"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("myelin_http_requests_total")
                && l.contains("route=\"/predict\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("myelin_predictions_total")
                && l.contains("model=\"metered\"")
                && l.contains("version=\"1\"")),
        "{text}"
    );
    assert!(text.contains("myelin_job_queue_depth"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_docs_can_be_turned_off() {
    let app = spawn_app_with(|s| {
        s.http.metrics = false;
        s.http.docs = false;
    })
    .await;
    assert_problem(app.get("/metrics").await, 404, Some("route_not_found")).await;
    assert_problem(app.get("/openapi.json").await, 404, Some("route_not_found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_and_docs_answer_200() {
    let app = spawn_app().await;
    let served: Value = app.get_ok("/openapi.json").await;
    let expected: Value = serde_json::from_str(&myelin::api::openapi_json()).unwrap();
    assert_eq!(served, expected);
    for path in [
        "/train",
        "/predict",
        "/jobs/{id}/events",
        "/models/{name}/aliases/{alias}",
    ] {
        assert!(
            served["paths"].get(path).is_some(),
            "{path} is not documented"
        );
    }

    let response = app.get("/docs/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "{html}");
    let response = app.get("/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_generated_when_absent_and_propagated_when_sent() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    let generated = response
        .headers()
        .get("x-request-id")
        .expect("no x-request-id")
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "not a UUID: {generated}");
    let other = app.get("/healthz").await;
    assert_ne!(other.headers()["x-request-id"], generated.as_str());

    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");

    // Errors carry it too.
    let response = app
        .client
        .get(app.url("/models/ghost"))
        .header("x-request-id", "trace-error-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-error-7");
    assert_problem(response, 404, Some("model_not_found")).await;
}
