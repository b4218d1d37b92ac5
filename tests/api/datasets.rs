//! Uploaded datasets: upload, list, inspect, train from, delete.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn upload_churn(app: &TestApp, rows: usize) -> Value {
    let csv = to_csv(&churn_rows(rows, 11), &CHURN_COLUMNS);
    let response = app.post_raw("/datasets", "text/csv", csv).await;
    json_ok(response, StatusCode::CREATED).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_a_csv_dataset_answers_201_with_id_rows_and_schema() {
    let app = spawn_app().await;
    let csv = to_csv(&churn_rows(250, 11), &CHURN_COLUMNS);
    let size = csv.len() as u64;
    let response = app.post_raw("/datasets", "text/csv", csv).await;
    let meta = json_ok(response, StatusCode::CREATED).await;

    assert!(
        meta["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{meta:#}"
    );
    assert_eq!(meta["format"], "csv");
    assert_eq!(meta["rows"], 250);
    assert_eq!(meta["bytes"], size);
    assert_eq!(meta["columns"], json!(CHURN_COLUMNS));
    let sha = meta["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64, "{meta:#}");
    let kind_of = |name: &str| {
        meta["schema"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no schema for {name}: {meta:#}"))["kind"]
            .clone()
    };
    assert_eq!(kind_of("tenure"), "numeric");
    assert_eq!(kind_of("monthly"), "numeric");
    assert_eq!(kind_of("plan"), "categorical");
    assert_eq!(kind_of("autopay"), "boolean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ndjson_dataset_can_be_uploaded() {
    let app = spawn_app().await;
    let body = to_ndjson(&regression_rows(120, 12));
    let response = app
        .post_raw("/datasets", "application/x-ndjson", body)
        .await;
    let meta = json_ok(response, StatusCode::CREATED).await;
    assert_eq!(meta["format"], "ndjson");
    assert_eq!(meta["rows"], 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_are_listed_fetched_and_deleted_then_answer_404() {
    let app = spawn_app().await;
    let first = upload_churn(&app, 50).await;
    let second = upload_churn(&app, 60).await;
    let id = first["id"].as_str().unwrap();

    let list = app.get_ok("/datasets").await;
    let ids: Vec<&str> = list["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id, second["id"].as_str().unwrap()]);

    let fetched = app.get_ok(&format!("/datasets/{id}")).await;
    assert_eq!(fetched, first);

    let response = app.delete(&format!("/datasets/{id}")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.get(&format!("/datasets/{id}")).await;
    let problem = assert_problem(response, 404, Some("dataset_not_found")).await;
    assert_eq!(problem["dataset"], id);
    let response = app.delete(&format!("/datasets/{id}")).await;
    assert_problem(response, 404, Some("dataset_not_found")).await;

    let list = app.get_ok("/datasets").await;
    assert_eq!(list["datasets"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_from_an_uploaded_dataset_succeeds() {
    let app = spawn_app().await;
    let meta = upload_churn(&app, 240).await;
    let id = meta["id"].as_str().unwrap();

    let job = app
        .submit(&json!({"model": "churn-ds", "target": "churned", "params": tiny_params(3), "dataset": id}))
        .await;
    let done = app.wait_for_job(job_id(&job)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["version"], 1);
    assert_eq!(done["request"]["source"], format!("dataset:{id}"));

    let card = app.get_ok("/models/churn-ds/versions/1").await;
    assert_eq!(card["fingerprint"]["sha256"], meta["sha256"]);
    assert_eq!(card["fingerprint"]["rows"], 240);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_from_an_unknown_dataset_is_404() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/train",
            &json!({"model": "m", "target": "churned", "dataset": "no-such-dataset"}),
        )
        .await;
    let problem = assert_problem(response, 404, Some("dataset_not_found")).await;
    assert_eq!(problem["dataset"], "no-such-dataset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_csv_upload_is_422_naming_the_line_and_is_not_kept() {
    let app = spawn_app().await;
    let response = app
        .post_raw("/datasets", "text/csv", "a,b\n1,2\n3\n4,5\n")
        .await;
    let problem = assert_problem(response, 422, Some("csv_invalid")).await;
    assert!(detail(&problem).contains("line 3"), "{problem:#}");
    let list = app.get_ok("/datasets").await;
    assert_eq!(list["datasets"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_a_waiting_job_reads_cannot_be_deleted_until_the_job_ends() {
    let app = spawn_app().await;
    let blocker = submit_long(&app, "blocker").await;
    let meta = upload_churn(&app, 240).await;
    let id = meta["id"].as_str().unwrap();
    let queued = app
        .submit(&json!({"model": "churn-ds", "target": "churned", "params": tiny_params(3), "dataset": id}))
        .await;
    assert_eq!(queued["status"], "queued");

    let response = app.delete(&format!("/datasets/{id}")).await;
    let problem = assert_problem(response, 409, Some("dataset_in_use")).await;
    assert_eq!(problem["dataset"], id);

    app.delete(&format!("/jobs/{}", job_id(&queued))).await;
    app.delete(&format!("/jobs/{}", job_id(&blocker))).await;
    app.wait_for_job(job_id(&queued)).await;
    let response = app.delete(&format!("/datasets/{id}")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}
