//! Several real server processes on one Postgres database and one S3
//! bucket: the job queue, datasets and interaction logs are the cluster's.
//! Postgres is the one `scripts/services/postgres.sh` started
//! (`MYELIN_TEST_DATABASE_URL`); each test makes a database of its own.
//! Without it the tests are skipped with a message, unless `CI` is set,
//! where they fail.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::process::{Launch, Server};
use crate::recommend::{interaction_rows, items_of, recommend_params};
use crate::s3::{aws_env, bucket, s3};

/// A fresh database on the test server, or `None` (with a message) when
/// there is no server and the tests may be skipped.
async fn database() -> Option<String> {
    let Ok(url) = std::env::var("MYELIN_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no Postgres: run scripts/services/postgres.sh (sourced by scripts/test.sh)"
        );
        eprintln!(
            "skipped: no Postgres (source scripts/services/postgres.sh to run the cluster tests)"
        );
        return None;
    };
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("cannot reach the test Postgres");
    let name = format!("myelin_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("cannot create a test database");
    admin.close().await;
    let (base, _) = url.rsplit_once('/').expect("database URL without a path");
    Some(format!("{base}/{name}"))
}

/// Held for reading by every cluster test, for writing by the one that
/// restarts the shared Postgres server.
static SERVER_RESTART: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// One database and one bucket; replicas started on them.
struct Cluster {
    _server: ServerUse,
    database: String,
    endpoint: String,
    bucket: String,
    dirs: Vec<tempfile::TempDir>,
}

/// How a test uses the Postgres server.
#[allow(dead_code)]
enum ServerUse {
    Shared(tokio::sync::RwLockReadGuard<'static, ()>),
    Exclusive(tokio::sync::RwLockWriteGuard<'static, ()>),
}

impl Cluster {
    async fn new() -> Option<Cluster> {
        Cluster::start(ServerUse::Shared(SERVER_RESTART.read().await)).await
    }

    /// A cluster during whose life no other test uses the Postgres server.
    async fn exclusive() -> Option<Cluster> {
        Cluster::start(ServerUse::Exclusive(SERVER_RESTART.write().await)).await
    }

    async fn start(server: ServerUse) -> Option<Cluster> {
        let s3 = s3()?;
        let database = database().await?;
        let bucket = bucket(&s3.endpoint).await;
        Some(Cluster {
            _server: server,
            database,
            endpoint: s3.endpoint.clone(),
            bucket,
            dirs: Vec::new(),
        })
    }

    fn launch(&self, extra: &[(&'static str, &str)]) -> Launch {
        let mut env = aws_env(&self.endpoint);
        env.push(("MYELIN_STORE__URL", format!("s3://{}/models", self.bucket)));
        env.push(("MYELIN_DATABASE__URL", self.database.clone()));
        env.push(("MYELIN_STORE__POLL_INTERVAL_SECS", "1".into()));
        env.push(("MYELIN_JOBS__TRAINING_NICE", "0".into()));
        // Long enough that a loaded machine never loses a lease by accident;
        // the tests that kill replicas shorten it.
        env.push(("MYELIN_JOBS__LEASE_SECS", "10".into()));
        env.push(("MYELIN_JOBS__MAX_ACTIVE_PER_MODEL", "0".into()));
        env.push(("MYELIN_JOBS__QUEUE_CAPACITY", "64".into()));
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key, value.to_string()));
        }
        Launch {
            env,
            ..Launch::default()
        }
    }

    fn replica(&mut self, extra: &[(&'static str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), self.launch(extra));
        self.dirs.push(dir);
        server
    }

    async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database).await.unwrap()
    }
}

/// The value of a counter or gauge in Prometheus text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many times `server` started job `id`.
fn starts(server: &Server, id: &str) -> usize {
    server
        .log()
        .lines()
        .filter(|line| line.contains("\"job started\"") && line.contains(id))
        .count()
}

async fn submit(server: &Server, body: &Value) -> Value {
    json_ok(server.post("/train", body).await, StatusCode::ACCEPTED).await
}

async fn wait_until(server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + JOB_DEADLINE;
    loop {
        let response = server
            .client
            .get(server.url(&format!("/jobs/{id}")))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::OK {
            let log = server.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            panic!(
                "GET /jobs/{id}: {}: {}\nserver log (newest first):\n{}",
                response.status(),
                response.text().await.unwrap_or_default(),
                tail.join("\n")
            );
        }
        let job: Value = response.json().await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} did not get there: {job:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A job that trains for a few seconds and then ends by itself.
fn medium_job(model: &str) -> Value {
    train_request(
        model,
        "churned",
        churn_rows(400, 5),
        json!({"hidden_layers": [64, 64], "epochs": 150, "batch_size": 4,
               "early_stopping_patience": null, "validation_fraction": 0.1}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_jobs_posted_to_three_replicas_each_run_once_with_unique_versions() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let replicas: Vec<Server> = (0..3).map(|_| cluster.replica(&[])).collect();
    let mut ids = Vec::new();
    for i in 0..20 {
        let body = train_request("churn", "churned", churn_rows(120, i), tiny_params(2));
        let job = submit(&replicas[i as usize % 3], &body).await;
        ids.push(job_id(&job).to_string());
    }
    let mut versions = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        // Read each job from a replica other than the one it was posted to.
        let job = wait_until(&replicas[(i + 1) % 3], id, is_terminal).await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
        let version = job["version"].as_u64().unwrap();
        assert!(versions.insert(version), "version {version} produced twice");
        let runs: usize = replicas.iter().map(|r| starts(r, id)).sum();
        assert_eq!(runs, 1, "job {id} started {runs} times");
        let card = replicas[i % 3]
            .get(&format!("/models/churn/versions/{version}"))
            .await;
        assert_eq!(card["job_id"], id.as_str(), "{card:#}");
    }
    assert_eq!(versions, (1..=20).collect::<BTreeSet<u64>>());
    // Each replica counts the jobs it claimed; together, every job once.
    let mut claimed = 0.0;
    for replica in &replicas {
        let text = replica
            .client
            .get(replica.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        claimed += metric(&text, "myelin_jobs_claimed_total");
        // Cluster-wide: every replica counts the same 20 succeeded jobs.
        assert_eq!(metric(&text, "myelin_jobs{status=\"succeeded\"}"), 20.0);
    }
    assert_eq!(claimed, 20.0);
    // Work was shared, and every replica lists every job.
    let busy = replicas
        .iter()
        .filter(|r| ids.iter().any(|id| starts(r, id) > 0))
        .count();
    assert!(busy >= 2, "only {busy} replica ran jobs");
    for replica in &replicas {
        let listed = replica.get("/jobs?limit=100").await;
        assert_eq!(listed["total"], 20, "{listed:#}");
        let version = replica
            .post(
                "/predict",
                &json!({"model": "churn", "version": 20, "instances": [churn_instance(5, "basic", true, 40.0)]}),
            )
            .await;
        json_ok(version, StatusCode::OK).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_cancels_and_event_streams_work_across_replicas() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let limits = [
        ("MYELIN_JOBS__MAX_ACTIVE_PER_MODEL", "1"),
        ("MYELIN_JOBS__WORKERS", "1"),
    ];
    let a = cluster.replica(&limits);
    let b = cluster.replica(&limits);
    let long = train_request("busy", "churned", churn_rows(400, 99), long_params());
    let first = submit(&a, &long).await;
    let refused = b.post("/train", &medium_job("busy")).await;
    let problem = assert_problem(refused, 429, Some("model_busy")).await;
    assert_eq!(
        problem["setting"], "jobs.max_active_per_model",
        "{problem:#}"
    );
    // Cancelled from the other replica, the job stops where it runs; the
    // other replica's event stream relays its epochs and its end.
    wait_until(&a, job_id(&first), |j| {
        j["status"] == "running" && j["epoch"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let other = if starts(&a, job_id(&first)) == 1 {
        &b
    } else {
        &a
    };
    let mut events = other
        .client
        .get(other.url(&format!("/jobs/{}/events", job_id(&first))))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let mut seen = String::new();
    while !seen.contains("event: epoch") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), events.chunk())
            .await
            .expect("no epoch event relayed")
            .unwrap()
            .expect("stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let cancelled = b
        .client
        .delete(b.url(&format!("/jobs/{}", job_id(&first))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancelled.status(),
        StatusCode::OK,
        "{}",
        cancelled.text().await.unwrap()
    );
    while !seen.contains("event: cancelled") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), events.chunk())
            .await
            .expect("the end was not relayed")
            .unwrap();
        let Some(chunk) = chunk else { break };
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: cancelled"), "{seen}");
    let ended = wait_until(&b, job_id(&first), is_terminal).await;
    assert_eq!(ended["status"], "cancelled", "{ended:#}");
    assert!(ended["version"].is_null());
    // The model may train again, from either replica.
    submit(&b, &medium_job("busy")).await;
}

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
async fn interactions_and_datasets_are_shared_by_every_replica() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let a = cluster.replica(&[]);
    let b = cluster.replica(&[]);

    // Interactions posted to A change /recommend on B at once.
    let job = submit(
        &a,
        &json!({"model": "shop", "task": "recommendation", "params": recommend_params(),
                "data": interaction_rows(7)}),
    )
    .await;
    let job = wait_until(&b, job_id(&job), is_terminal).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let ask = json!({"model": "shop", "user": "u3", "k": 5});
    let before = json_ok(b.post("/recommend", &ask).await, StatusCode::OK).await;
    let top = items_of(&before)[0].clone();
    let logged = a
        .post(
            "/interactions",
            &json!({"model": "shop", "interactions": [{"user": "u3", "item": top}]}),
        )
        .await;
    json_ok(logged, StatusCode::CREATED).await;
    let after = json_ok(b.post("/recommend", &ask).await, StatusCode::OK).await;
    assert!(!items_of(&after).contains(&top), "{after:#}");
    let fresh = a
        .post(
            "/interactions",
            &json!({"model": "shop", "interactions": [{"user": "new", "item": "i30"}]}),
        )
        .await;
    json_ok(fresh, StatusCode::CREATED).await;
    let history = b.get("/recommend?model=shop&user=new&k=4").await;
    assert_eq!(history["strategy"], "history", "{history:#}");

    // Retraining on B with the log includes what A logged.
    let retrain = submit(
        &b,
        &json!({"model": "shop", "task": "recommendation", "params": recommend_params(),
                "data": interaction_rows(7), "include_logged_interactions": true}),
    )
    .await;
    let retrained = wait_until(&a, job_id(&retrain), is_terminal).await;
    assert_eq!(retrained["status"], "succeeded", "{retrained:#}");
    // A sees the new version at its next poll of the store.
    let ask = json!({"model": "shop", "version": 2, "user": "new", "k": 4});
    let mut answer = a.post("/recommend", &ask).await;
    for _ in 0..50 {
        if answer.status() != StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = a.post("/recommend", &ask).await;
    }
    let personal = json_ok(answer, StatusCode::OK).await;
    assert_eq!(personal["strategy"], "personalized", "{personal:#}");

    // A dataset uploaded to B trains on A; deleting it while a job reads it
    // is refused on either replica.
    let csv = to_csv(&churn_rows(400, 5), &CHURN_COLUMNS);
    let uploaded = b
        .client
        .post(b.url("/datasets"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let dataset = json_ok(uploaded, StatusCode::CREATED).await;
    let id = dataset["id"].as_str().unwrap().to_string();
    assert_eq!(
        a.get(&format!("/datasets/{id}")).await["sha256"],
        dataset["sha256"]
    );
    let listed = a.get("/datasets").await;
    assert_eq!(
        listed["datasets"].as_array().unwrap().len(),
        1,
        "{listed:#}"
    );
    let mut body = medium_job("from-dataset");
    body.as_object_mut().unwrap().remove("data");
    body["dataset"] = json!(id);
    let job = submit(&a, &body).await;
    for replica in [&a, &b] {
        let refused = replica
            .client
            .delete(replica.url(&format!("/datasets/{id}")))
            .send()
            .await
            .unwrap();
        assert_problem(refused, 409, Some("dataset_in_use")).await;
    }
    let job = wait_until(&b, job_id(&job), is_terminal).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let deleted = b
        .client
        .delete(b.url(&format!("/datasets/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = a
        .client
        .get(a.url(&format!("/datasets/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_interaction_log_keeps_the_newest_events_per_model() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let a = cluster.replica(&[("MYELIN_INTERACTIONS__MAX_EVENTS_PER_MODEL", "8")]);
    let job = submit(
        &a,
        &json!({"model": "shop", "task": "recommendation", "params": recommend_params(),
                "data": interaction_rows(7)}),
    )
    .await;
    wait_until(&a, job_id(&job), is_terminal).await;
    // Trimmed every 64 appends of a replica: after 70, at most 8 + 6 remain.
    for i in 0..70 {
        let body = json!({"model": "shop", "interactions": [{"user": "x", "item": format!("i{}", i % 60)}]});
        json_ok(a.post("/interactions", &body).await, StatusCode::CREATED).await;
    }
    let pool = cluster.pool().await;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM interactions WHERE model = 'shop' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        ids.len() <= 14 && ids.len() >= 8,
        "{} events kept",
        ids.len()
    );
    let newest: i64 = sqlx::query_scalar("SELECT max(id) FROM interactions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ids.last(), Some(&newest), "the newest are kept");
}
