//! Everything besides model versions lives in the bucket too: a server
//! restarted with an empty local directory on the same bucket still has
//! the uploaded datasets, the job records and the logged interactions.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::recommend::{interaction_rows, items_of, recommend_params};
use crate::s3::{aws_env, bucket, s3};
use crate::server::{Launch, Server};

fn on_bucket(endpoint: &str, bucket: &str) -> Launch {
    let mut env = aws_env(endpoint);
    env.push(("MYELIN_STORE__URL", format!("s3://{bucket}/models")));
    env.push(("MYELIN_JOBS__TRAINING_NICE", "0".into()));
    Launch {
        env,
        ..Launch::default()
    }
}

/// Keys in the bucket under `prefix` (moto's ListObjectsV2 answer, unsigned).
async fn keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let xml = reqwest::get(format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// A server on the bucket with a fresh, empty local directory.
fn fresh(endpoint: &str, bucket: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), on_bucket(endpoint, bucket));
    (dir, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_uploaded_to_s3_trains_after_a_restart_and_the_job_record_survives() {
    let Some(s3) = s3() else { return };
    let bucket = bucket(&s3.endpoint).await;
    let (_dir, mut a) = fresh(&s3.endpoint, &bucket);
    let csv = to_csv(&churn_rows(200, 3), &CHURN_COLUMNS);
    let response = a
        .client
        .post(a.url("/datasets"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let dataset = json_ok(response, StatusCode::CREATED).await;
    let id = dataset["id"].as_str().unwrap().to_string();
    let stored = keys(&s3.endpoint, &bucket, "models/_datasets/").await;
    assert!(
        stored.contains(&format!("models/_datasets/{id}.csv"))
            && stored.contains(&format!("models/_datasets/{id}.json")),
        "{stored:?}"
    );
    assert!(a.terminate());

    let (_dir, mut b) = fresh(&s3.endpoint, &bucket);
    assert_eq!(b.get(&format!("/datasets/{id}")).await["rows"], 200);
    let response = b
        .post(
            "/train",
            &json!({"model": "churn", "target": "churned", "dataset": id,
                "params": tiny_params(3)}),
        )
        .await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    let job_id = job_id(&job).to_string();
    let done = b.wait_for_job(&job_id).await;
    assert_eq!(done["status"], "succeeded", "{done:#}\n{}", b.log());
    assert!(b.terminate());

    let (_dir, c) = fresh(&s3.endpoint, &bucket);
    let record = c.get(&format!("/jobs/{job_id}")).await;
    assert_eq!(record["status"], "succeeded", "{record:#}");
    assert_eq!(record["version"], 1);
    assert_eq!(record["request"]["source"], format!("dataset:{id}"));
    let listed = c.get("/datasets").await;
    assert_eq!(listed["datasets"][0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_logged_on_s3_survive_a_restart() {
    let Some(s3) = s3() else { return };
    let bucket = bucket(&s3.endpoint).await;
    let (_dir, mut a) = fresh(&s3.endpoint, &bucket);
    let response = a
        .post(
            "/train",
            &json!({"model": "shop", "task": "recommendation",
                "params": recommend_params(), "data": interaction_rows(7)}),
        )
        .await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    assert_eq!(a.wait_for_job(job_id(&job)).await["status"], "succeeded");
    for (item, timestamp) in [("i30", 1_700_000_000), ("i31", 1_700_000_001)] {
        let response = a
            .post(
                "/interactions",
                &json!({"model": "shop", "interactions": [
                    {"user": "fresh", "item": item, "timestamp": timestamp}]}),
            )
            .await;
        json_ok(response, StatusCode::CREATED).await;
    }
    let before: Value = a.get("/recommend?model=shop&user=fresh&k=4").await;
    assert_eq!(before["strategy"], "history", "{before:#}");
    let segments = keys(&s3.endpoint, &bucket, "models/shop/interactions/").await;
    assert_eq!(segments.len(), 2, "one segment per request: {segments:?}");
    assert!(a.terminate());

    let (_dir, b) = fresh(&s3.endpoint, &bucket);
    let after: Value = b.get("/recommend?model=shop&user=fresh&k=4").await;
    assert_eq!(after["strategy"], "history", "{after:#}");
    assert_eq!(items_of(&after), items_of(&before));
}
