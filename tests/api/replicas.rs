//! Several server processes on one S3 bucket (a real S3-compatible server
//! on loopback): a replica follows versions and alias moves written by
//! another, a training process killed at random moments never leaves a
//! listed partial version, and an unreachable store stops training but not
//! serving.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::s3::{aws_env, bucket, s3, Proxy};
use crate::server::{Launch, Server};

const DEADLINE: Duration = Duration::from_secs(60);

fn on_bucket(endpoint: &str, bucket: &str) -> Launch {
    let mut env = aws_env(endpoint);
    env.push(("MYELIN_STORE__URL", format!("s3://{bucket}/models")));
    env.push(("MYELIN_STORE__POLL_INTERVAL_SECS", "1".into()));
    Launch {
        env,
        ..Launch::default()
    }
}

fn churn_job(seed: u64) -> Value {
    train_request("churn", "churned", churn_rows(240, seed), tiny_params(4))
}

async fn predict(server: &Server, version: Option<u32>) -> (StatusCode, Value) {
    let instance = churn_instance(5, "basic", true, 40.0);
    let mut body = json!({"model": "churn", "instances": [instance]});
    if let Some(v) = version {
        body["version"] = v.into();
    }
    let response = server.post("/predict", &body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `/predict` on `server` until it answers with `version`.
async fn wait_for_version(server: &Server, version: u32) -> Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (status, body) = predict(server, None).await;
        if status == StatusCode::OK && body["version"] == version {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "version {version} not served: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn train(server: &Server, seed: u64) -> Value {
    let response = server.post("/train", &churn_job(seed)).await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    server.wait_for_job(job_id(&job)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_what_another_trained_without_a_gap_and_alias_moves_reach_both() {
    let Some(s3) = s3() else { return };
    let bucket = bucket(&s3.endpoint).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(dir_a.path(), on_bucket(&s3.endpoint, &bucket));
    let b = Server::start(dir_b.path(), on_bucket(&s3.endpoint, &bucket));

    let job = train(&a, 1).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let on_b = wait_for_version(&b, 1).await;
    let (_, on_a) = predict(&a, None).await;
    assert_eq!(on_a["predictions"], on_b["predictions"]);

    // /predict on B in a loop while A trains version 2 and B switches.
    let response = a.post("/train", &churn_job(2)).await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    let mut answered = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (status, body) = predict(&b, None).await;
        answered.push(status);
        if body["version"] == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never served version 2"
        );
    }
    assert_eq!(a.wait_for_job(job_id(&job)).await["status"], "succeeded");
    assert!(
        answered.iter().all(|s| *s == StatusCode::OK),
        "non-200 answers during the swap: {answered:?}"
    );

    // An alias moved on B is honoured by A.
    let response = b
        .client
        .put(b.url("/models/churn/aliases/production"))
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    wait_for_version(&a, 1).await;
    let models = a.get("/models/churn").await;
    assert_eq!(models["versions"], json!([1, 2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_process_killed_at_random_moments_never_leaves_a_listed_partial_version() {
    let Some(s3) = s3() else { return };
    let bucket = bucket(&s3.endpoint).await;
    let mut rng = Lcg::new(7);
    let mut killed_after = Vec::new();
    for round in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Server::start(dir.path(), on_bucket(&s3.endpoint, &bucket));
        let response = a.post("/train", &churn_job(10 + round)).await;
        json_ok(response, StatusCode::ACCEPTED).await;
        let wait = Duration::from_millis(rng.below(600));
        tokio::time::sleep(wait).await;
        a.kill();
        killed_after.push(wait);
    }
    let dir = tempfile::tempdir().unwrap();
    let b = Server::start(dir.path(), on_bucket(&s3.endpoint, &bucket));
    let listed: Vec<u32> = match b.client.get(b.url("/models/churn")).send().await.unwrap() {
        r if r.status() == StatusCode::OK => r.json::<Value>().await.unwrap()["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect(),
        _ => Vec::new(),
    };
    for &v in &listed {
        let (status, body) = predict(&b, Some(v)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "listed version {v} does not serve: {body}"
        );
    }
    let job = train(&b, 20).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let next = job["version"].as_u64().unwrap() as u32;
    assert!(
        listed.iter().all(|&v| v < next),
        "version {next} after {listed:?} (killed after {killed_after:?})"
    );
    let (status, body) = predict(&b, Some(next)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_store_is_unreachable_serving_continues_training_fails_and_both_resume() {
    let Some(s3) = s3() else { return };
    let bucket = bucket(&s3.endpoint).await;
    let mut proxy = Proxy::start(&s3.endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), on_bucket(&proxy.endpoint(), &bucket));
    assert_eq!(train(&a, 1).await["status"], "succeeded");
    wait_for_version(&a, 1).await;

    // A job accepted just before the store goes away fails cleanly, whether
    // it was reading its input or publishing its version then.
    let response = a
        .post(
            "/train",
            &train_request("churn", "churned", churn_rows(240, 2), tiny_params(2000)),
        )
        .await;
    let running = json_ok(response, StatusCode::ACCEPTED).await;
    proxy.cut().await;
    for _ in 0..20 {
        let (status, body) = predict(&a, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let job = a.wait_for_job(job_id(&running)).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["error"]["code"], "store_unavailable", "{job:#}");
    // A job that cannot be stored is not accepted.
    let refused = a.post("/train", &churn_job(2)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "store_unavailable", "{problem}");
    let ready = a.get("/readyz").await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    let (status, _) = predict(&a, None).await;
    assert_eq!(status, StatusCode::OK);

    proxy.restore().await;
    let job = train(&a, 3).await;
    assert_eq!(job["status"], "succeeded", "{job:#}\n{}", a.log());
    assert_eq!(job["version"], 2, "the failed job published nothing");
    wait_for_version(&a, 2).await;
    assert_eq!(a.get("/readyz").await["status"], "ok");
}
