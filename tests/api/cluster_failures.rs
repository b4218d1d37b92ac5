//! The cluster when things fail: a replica killed or stopped mid-job, a
//! job whose replicas keep dying, the database restarted under load, and a
//! database schema newer than the binary. See `cluster.rs` for the set-up.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cluster::{medium_job, starts, submit, wait_until, Cluster};
use crate::helpers::*;
use crate::recommend::{interaction_rows, recommend_params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_job_runs_again_elsewhere_and_ends_once() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let short = [("MYELIN_JOBS__LEASE_SECS", "2")];
    let mut a = cluster.replica(&short);
    let mut b = cluster.replica(&short);
    let job = submit(&a, &medium_job("churn")).await;
    let id = job_id(&job).to_string();
    wait_until(&a, &id, |j| {
        j["status"] == "running" && j["epoch"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let (victim, survivor) = if starts(&a, &id) == 1 {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    victim.kill();
    let ended = wait_until(survivor, &id, is_terminal).await;
    assert_eq!(ended["status"], "succeeded", "{ended:#}");
    assert_eq!(starts(survivor, &id), 1, "the survivor ran the job once");
    let model = survivor.get("/models/churn").await;
    let versions = model["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "exactly one version: {model:#}");
    assert_eq!(ended["version"], versions[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_replicas_keep_dying_is_marked_interrupted_after_max_attempts() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let once = [
        ("MYELIN_JOBS__MAX_ATTEMPTS", "1"),
        ("MYELIN_JOBS__LEASE_SECS", "2"),
    ];
    let mut a = cluster.replica(&once);
    let job = submit(&a, &medium_job("churn")).await;
    let id = job_id(&job).to_string();
    wait_until(&a, &id, |j| j["status"] == "running").await;
    a.kill();
    let b = cluster.replica(&once);
    let ended = wait_until(&b, &id, is_terminal).await;
    assert_eq!(ended["status"], "interrupted", "{ended:#}");
    assert_eq!(ended["error"]["code"], "interrupted");
    assert!(detail_of(&ended).contains("jobs.max_attempts"), "{ended:#}");
    assert_eq!(starts(&b, &id), 0, "never run again");
    let model = b.client.get(b.url("/models/churn")).send().await.unwrap();
    assert_eq!(model.status(), StatusCode::NOT_FOUND, "no version");
}

fn detail_of(job: &Value) -> &str {
    job["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_loses_no_answered_write_and_replicas_reconnect() {
    let Some(mut cluster) = Cluster::exclusive().await else {
        return;
    };
    let Ok(restart) = std::env::var("MYELIN_TEST_DATABASE_RESTART") else {
        eprintln!("skipped: MYELIN_TEST_DATABASE_RESTART is not set");
        return;
    };
    let a = cluster.replica(&[]);
    let job = submit(
        &a,
        &json!({"model": "shop", "task": "recommendation", "params": recommend_params(),
                "data": interaction_rows(7)}),
    )
    .await;
    wait_until(&a, job_id(&job), is_terminal).await;

    let writer = {
        let client = a.client.clone();
        let url = a.url("/interactions");
        tokio::spawn(async move {
            let mut answered = 0u32;
            let mut refused = 0u32;
            for i in 0..400 {
                let body = json!({"model": "shop", "interactions": [{"user": "w", "item": format!("i{}", i % 40)}]});
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == StatusCode::CREATED => answered += 1,
                    Ok(r) => {
                        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
                        refused += 1;
                    }
                    Err(_) => refused += 1,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (answered, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::process::Command::new("sh")
        .args(["-c", &restart])
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "cannot restart Postgres");
    let (answered, _refused) = writer.await.unwrap();
    let pool = cluster.pool().await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM interactions WHERE model = 'shop' AND user_id = 'w'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        stored, answered as i64,
        "every answered write is stored, no more"
    );
    // The replica reconnected: jobs and interactions work again.
    let job = submit(
        &a,
        &train_request("churn", "churned", churn_rows(120, 1), tiny_params(2)),
    )
    .await;
    let job = wait_until(&a, job_id(&job), is_terminal).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let ready = a.get("/readyz").await;
    assert_eq!(ready["status"], "ok", "{ready:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_binary_is_refused_at_startup() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    drop(cluster.replica(&[]));
    let pool = cluster.pool().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_myelin"));
    command
        .arg("serve")
        .env("MYELIN_SERVER__PORT", "0")
        .env("MYELIN_GRPC__PORT", "0")
        .env("MYELIN_STORE__PATH", dir.path());
    for (key, value) in cluster.launch(&[]).env {
        command.env(key, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(stderr.contains("newer than this binary knows"), "{stderr}");
    assert!(
        !stderr.contains(":myelin@"),
        "the password is redacted: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_with_sigterm_hands_its_job_back_at_once() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    // A lease far longer than the test: only the hand-back can requeue the job.
    let long_lease = [("MYELIN_JOBS__LEASE_SECS", "600")];
    let mut a = cluster.replica(&long_lease);
    let job = submit(&a, &medium_job("churn")).await;
    let id = job_id(&job).to_string();
    // An epoch done: the job's thread has started (and logged so).
    wait_until(&a, &id, |j| j["epoch"].as_u64().unwrap_or(0) >= 1).await;
    assert_eq!(starts(&a, &id), 1);
    assert!(a.terminate(), "clean exit");
    let b = cluster.replica(&long_lease);
    let ended = wait_until(&b, &id, is_terminal).await;
    assert_eq!(ended["status"], "succeeded", "{ended:#}");
    assert_eq!(starts(&b, &id), 1);
    let pool = cluster.pool().await;
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "a hand-back does not count as an attempt");
}
