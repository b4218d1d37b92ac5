//! A model store written by myelin 0.1.0 (before the storage seam) opens
//! unchanged and serves exactly what 0.1.0 served.

use std::path::Path;

use serde_json::json;

use crate::helpers::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_store_written_by_0_1_0_opens_unchanged_and_serves_the_same_answers() {
    let store = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0");
    copy_dir(&fixture, store.path());
    let app = spawn_app_on(store.path(), |_| {}).await;

    let churn = app.get_ok("/models/churn").await;
    assert_eq!(churn["versions"], json!([1, 2]));
    assert_eq!(churn["aliases"], json!({"production": 1}));
    let predicted = app
        .predict(&json!({"model": "churn", "instances": [{"age": 30, "plan": "pro"}]}))
        .await;
    assert_eq!(predicted["version"], 1);
    assert_eq!(predicted["predictions"][0]["label"], "yes");
    let p = &predicted["predictions"][0]["probabilities"];
    assert!((p["yes"].as_f64().unwrap() - 0.5637283).abs() < 1e-6, "{p}");

    let recommended = app.get_ok("/recommend?model=shop&user=u1&k=5").await;
    assert_eq!(recommended["version"], 1);
    assert_eq!(recommended["strategy"], "personalized");
    assert_eq!(recommended["items"][0]["item"], "i8");

    // It stays writable in the old layout: a new version lands beside the old ones.
    app.put_json("/models/churn/aliases/production", &json!({"version": 2}))
        .await;
    assert_eq!(
        app.predict(&json!({"model": "churn", "instances": [{"age": 30, "plan": "pro"}]}))
            .await["version"],
        2
    );
    assert!(store.path().join("churn/2/model.json").is_file());
    assert!(store.path().join("churn/aliases.json").is_file());
    app.stop().await;
}

const DATASET: &str = "01a25190-207a-76f3-82af-5c5c40fb3b7e";
const JOB: &str = "01a25190-2ec5-7479-ad34-b588ef29fe92";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_job_records_and_interaction_logs_of_an_old_store_open_in_place() {
    let store = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0");
    copy_dir(&fixture, store.path());
    let app = spawn_app_on(store.path(), |_| {}).await;

    let datasets = app.get_ok("/datasets").await;
    assert_eq!(datasets["datasets"][0]["id"], DATASET);
    assert_eq!(app.get_ok(&format!("/datasets/{DATASET}")).await["rows"], 8);
    let job = app.get_ok(&format!("/jobs/{JOB}")).await;
    assert_eq!(
        (job["status"].clone(), job["version"].clone()),
        (json!("succeeded"), json!(1))
    );
    let recommended = app.get_ok("/recommend?model=shop&user=u9&k=5").await;
    assert_eq!(recommended["strategy"], "history");
    let items: Vec<&str> = recommended["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["i9", "i7"]);

    // The old dataset trains a new version; a logged event lands in the same file.
    let job = app
        .train(
            &json!({"model": "tiny", "target": "churned", "dataset": DATASET,
            "params": {"epochs": 2, "hidden_layers": [4], "seed": 1}}),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["version"], 2);
    let logged = app
        .post_json(
            "/interactions",
            &json!({"model": "shop", "interactions": [{"user": "u9", "item": "i9"}]}),
        )
        .await;
    assert_eq!(logged.status(), 201);
    let log = std::fs::read_to_string(store.path().join("shop/interactions.ndjson")).unwrap();
    assert_eq!(log.lines().count(), 3);
    assert!(store
        .path()
        .join(format!("_jobs/{}.json", job_id(&job)))
        .is_file());
    app.stop().await;
}
