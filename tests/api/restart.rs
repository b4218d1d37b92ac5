//! The store outlives the process: restarts, interrupted jobs, and versions
//! written by other processes while the service runs.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::helpers::*;

fn record_path(store: &Path, id: &str) -> std::path::PathBuf {
    store.join("_jobs").join(format!("{id}.json"))
}

fn read_record(store: &Path, id: &str) -> Value {
    let bytes = std::fs::read(record_path(store, id)).expect("no job record on disk");
    serde_json::from_slice(&bytes).expect("job record is not JSON")
}

/// Polls predict (no version) until `version` answers; returns how long it took.
async fn wait_for_serving_version(app: &TestApp, model: &str, version: u64) -> Duration {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(5);
    loop {
        let answer = app
            .predict(
                &json!({"model": model, "instances": [churn_instance(10, "basic", true, 50.0)]}),
            )
            .await;
        if answer["version"] == version {
            return start.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "version {version} of {model} is not served after 5 s: {answer:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_on_the_same_store_keeps_versions_aliases_and_job_history() {
    let store = tempfile::tempdir().unwrap();
    let first = spawn_app_on(store.path(), |_| {}).await;
    let job1 = train_churn(&first, "churn", 81).await;
    let job2 = train_churn(&first, "churn", 82).await;
    first
        .put_json("/models/churn/aliases/production", &json!({"version": 1}))
        .await
        .error_for_status()
        .unwrap();
    let instance = churn_instance(8, "basic", false, 99.0);
    let before = first
        .predict(&json!({"model": "churn", "instances": [instance]}))
        .await;
    assert_eq!(before["version"], 1);
    first.stop().await;

    let second = spawn_app_on(store.path(), |_| {}).await;
    let model = second.get_ok("/models/churn").await;
    assert_eq!(model["versions"], json!([1, 2]));
    assert_eq!(model["aliases"], json!({"production": 1}));
    assert_eq!(model["serving_version"], 1);
    let after = second
        .predict(&json!({"model": "churn", "instances": [instance]}))
        .await;
    assert_eq!(after, before, "the reloaded version predicts the same");

    let jobs = second.get_ok("/jobs").await;
    assert_eq!(jobs["total"], 2);
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [job_id(&job2), job_id(&job1)]);
    let reloaded = second.get_ok(&format!("/jobs/{}", job_id(&job1))).await;
    assert_eq!(reloaded["status"], "succeeded");
    assert_eq!(reloaded["version"], 1);
    assert_eq!(reloaded["metrics"], job1["metrics"]);
    assert_eq!(reloaded["history"], job1["history"]);

    // New versions continue the numbering.
    let job3 = train_churn(&second, "churn", 83).await;
    assert_eq!(job3["version"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_record_left_running_on_disk_is_interrupted_after_restart() {
    let store = tempfile::tempdir().unwrap();
    let first = spawn_app_on(store.path(), |_| {}).await;
    let done = train_churn(&first, "churn", 84).await;
    first.stop().await;

    // A record as a crashed process would leave it: running, mid-training.
    let mut record = read_record(store.path(), job_id(&done));
    let id = uuid::Uuid::now_v7().to_string();
    let object = record.as_object_mut().unwrap();
    object.insert("id".into(), json!(id));
    object.insert("status".into(), json!("running"));
    object.insert("epoch".into(), json!(1));
    object.insert("progress".into(), json!(0.25));
    for key in ["version", "metrics", "finished_at", "eta_secs"] {
        object.remove(key);
    }
    std::fs::write(
        record_path(store.path(), &id),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();

    let second = spawn_app_on(store.path(), |_| {}).await;
    let job = second.get_ok(&format!("/jobs/{id}")).await;
    assert_eq!(job["status"], "interrupted", "{job:#}");
    assert_eq!(job["error"]["code"], "interrupted", "{job:#}");
    assert!(job["finished_at"].is_string(), "{job:#}");
    assert!(job.get("version").is_none(), "{job:#}");
    assert_eq!(read_record(store.path(), &id)["status"], "interrupted");
    let response = second.delete(&format!("/jobs/{id}")).await;
    assert_problem(response, 409, Some("job_finished")).await;
    assert_eq!(second.get_ok("/models/churn").await["versions"], json!([1]));
    let interrupted = second.get_ok("/jobs?status=interrupted").await;
    assert_eq!(interrupted["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_app_mid_training_records_the_job_as_interrupted_and_keeps_queued_jobs() {
    let store = tempfile::tempdir().unwrap();
    let first = spawn_app_on(store.path(), |_| {}).await;
    let running = submit_long(&first, "long").await;
    let running_id = job_id(&running).to_string();
    first.wait_until_training(&running_id).await;
    let queued = first
        .submit(&train_request(
            "later",
            "churned",
            churn_rows(200, 85),
            tiny_params(3),
        ))
        .await;
    let queued_id = job_id(&queued).to_string();
    assert_eq!(queued["status"], "queued");
    first.stop().await;

    let on_disk = read_record(store.path(), &running_id);
    assert_eq!(on_disk["status"], "interrupted", "{on_disk:#}");
    assert_eq!(on_disk["error"]["code"], "interrupted", "{on_disk:#}");
    assert_eq!(read_record(store.path(), &queued_id)["status"], "queued");

    let second = spawn_app_on(store.path(), |_| {}).await;
    let job = second.get_ok(&format!("/jobs/{running_id}")).await;
    assert_eq!(job["status"], "interrupted", "{job:#}");
    assert!(job.get("version").is_none());
    let response = second.get("/models/long").await;
    assert_problem(response, 404, Some("model_not_found")).await;

    // The queued job runs on the next start.
    let later = second.wait_for_job(&queued_id).await;
    assert_eq!(later["status"], "succeeded", "{later:#}");
    assert_eq!(later["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_saved_through_the_library_while_serving_is_picked_up_without_restart() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 86).await;
    wait_for_serving_version(&app, "churn", 1).await;

    let store = app.store_path.clone();
    let version = tokio::task::spawn_blocking(move || {
        let registry = myelin::registry::Registry::open(&store, 0, 1).unwrap();
        let dir = store.join("churn").join("1");
        let card = myelin::registry::read_card(&dir).unwrap();
        let weights = std::fs::read(dir.join(myelin::registry::WEIGHTS_FILE)).unwrap();
        registry.save(&card, &weights).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(version, 2);

    let took = wait_for_serving_version(&app, "churn", 2).await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(app.get_ok("/models/churn").await["versions"], json!([1, 2]));
    let card = app.get_ok("/models/churn/versions/2").await;
    assert_eq!(card["version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_trained_by_the_cli_while_serving_is_picked_up_without_restart() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 87).await;
    wait_for_serving_version(&app, "churn", 1).await;

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("churn.csv");
    std::fs::write(&data, to_csv(&churn_rows(200, 88), &CHURN_COLUMNS)).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_myelin"))
        .arg("train")
        .arg("--data")
        .arg(&data)
        .args(["--target", "churned", "--name", "churn", "--quiet"])
        .arg("--models")
        .arg(&app.store_path)
        .args(["--param", "epochs=3", "--param", "hidden_layers=[8]"])
        .output()
        .await
        .expect("cannot run the myelin binary");
    assert!(
        output.status.success(),
        "myelin train failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("version 2"), "{stdout}");

    let took = wait_for_serving_version(&app, "churn", 2).await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let card = app.get_ok("/models/churn/versions/2").await;
    assert_eq!(card["params"]["epochs"], 3);
    assert!(card.get("job_id").is_none(), "{card:#}");
}
