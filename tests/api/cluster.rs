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
use crate::recommend::{interaction_rows, items_of, recommend_params};
use crate::s3::{aws_env, bucket, s3};
use crate::server::{Launch, Server};

/// A fresh database on the test server, or `None` (with a message) when
/// there is no server and the tests may be skipped.
pub(crate) async fn database() -> Option<String> {
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
pub(crate) struct Cluster {
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
    pub(crate) async fn new() -> Option<Cluster> {
        Cluster::start(ServerUse::Shared(SERVER_RESTART.read().await)).await
    }

    /// A cluster during whose life no other test uses the Postgres server.
    pub(crate) async fn exclusive() -> Option<Cluster> {
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

    pub(crate) fn launch(&self, extra: &[(&'static str, &str)]) -> Launch {
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

    pub(crate) fn replica(&mut self, extra: &[(&'static str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), self.launch(extra));
        self.dirs.push(dir);
        server
    }

    pub(crate) async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database).await.unwrap()
    }
}

/// The value of a counter or gauge in Prometheus text (0 when absent).
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many times `server` started job `id`.
pub(crate) fn starts(server: &Server, id: &str) -> usize {
    server
        .log()
        .lines()
        .filter(|line| line.contains("\"job started\"") && line.contains(id))
        .count()
}

pub(crate) async fn submit(server: &Server, body: &Value) -> Value {
    json_ok(server.post("/train", body).await, StatusCode::ACCEPTED).await
}

pub(crate) async fn wait_until(server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    // Several server processes share the machine with other tests: be patient.
    let deadline = tokio::time::Instant::now() + 3 * JOB_DEADLINE;
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
pub(crate) fn medium_job(model: &str) -> Value {
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
