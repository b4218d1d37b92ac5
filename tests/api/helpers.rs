//! Spawning the application on a free port with its own model store, a
//! client bound to it, and small synthetic datasets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use myelin::config::Settings;
use myelin::service::AppState;
use myelin::Application;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a job may take before a test gives up on it.
pub const JOB_DEADLINE: Duration = Duration::from_secs(60);

/// A running application.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The gRPC address (`grpc.enabled` is on in tests).
    pub grpc_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    /// The model store directory.
    pub store_path: PathBuf,
    /// Owns the store when the test did not provide one.
    pub store: Option<TempDir>,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        myelin::telemetry::init_logging(&Settings::defaults().log);
    }
}

/// Settings for tests: loopback, a free port, the given store.
pub fn test_settings(store: &Path) -> Settings {
    let mut settings = Settings::defaults();
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.grpc.port = 0;
    settings.server.shutdown_grace_secs = 10;
    settings.store.path = store.to_path_buf();
    // Another process's writes show within a second.
    settings.store.poll_interval_secs = myelin::config::PollInterval::Secs(1);
    settings
}

/// The application with default settings on a fresh store.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The application on a fresh store, with `tweak` applied to the settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let store = tempfile::tempdir().expect("cannot create a temporary store");
    let mut app = spawn_app_on(store.path(), tweak).await;
    app.store = Some(store);
    app
}

/// The application on an existing store (for restart tests); the caller keeps
/// the directory alive.
pub async fn spawn_app_on(store: &Path, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_logging();
    let mut settings = test_settings(store);
    tweak(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("the application failed to build");
    let addr = application.local_addr().expect("no local address");
    let grpc_addr = application.grpc_addr();
    let state = application.state();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("cannot build the HTTP client");
    TestApp {
        addr,
        grpc_addr,
        client,
        store_path: store.to_path_buf(),
        store: None,
        state,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Running jobs stop at their next batch, so no training thread
        // outlives the test runtime.
        self.state.jobs.shutdown();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the application gracefully and waits until it has stopped.
    pub async fn stop(self) {
        self.stop_within(Duration::from_secs(30)).await;
    }

    /// Stops the application gracefully; fails if it takes longer than `limit`.
    pub async fn stop_within(mut self, limit: Duration) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(limit, server)
                .await
                .unwrap_or_else(|_| panic!("the application did not stop within {limit:?}"))
                .expect("the server task panicked")
                .expect("the server failed");
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET failed")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE failed")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST failed")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("PUT failed")
    }

    /// POST with a raw body and content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST failed")
    }

    /// GET a JSON document, asserting 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let response = self.get(path).await;
        json_ok(response, StatusCode::OK).await
    }

    /// POST /train; asserts 202 and returns the queued job.
    pub async fn submit(&self, body: &Value) -> Value {
        let response = self.post_json("/train", body).await;
        json_ok(response, StatusCode::ACCEPTED).await
    }

    /// Submits a training request and waits until it ends; asserts success.
    pub async fn train(&self, body: &Value) -> Value {
        let job = self.submit(body).await;
        let done = self.wait_for_job(job_id(&job)).await;
        assert_eq!(done["status"], "succeeded", "training failed: {done:#}");
        done
    }

    /// Polls GET /jobs/{id} until the job reaches a terminal status.
    pub async fn wait_for_job(&self, id: &str) -> Value {
        self.wait_for_job_until(id, is_terminal).await
    }

    /// Polls GET /jobs/{id} until `done` holds for the record.
    pub async fn wait_for_job_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + JOB_DEADLINE;
        loop {
            let job = self.get_ok(&format!("/jobs/{id}")).await;
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not reach the expected state within {JOB_DEADLINE:?}: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until a job is running and has finished at least one epoch.
    pub async fn wait_until_training(&self, id: &str) -> Value {
        self.wait_for_job_until(id, |job| {
            assert!(
                !is_terminal(job),
                "job ended before it was observed: {job:#}"
            );
            job["status"] == "running" && job["epoch"].as_u64().unwrap_or(0) >= 1
        })
        .await
    }

    /// POST /predict; asserts 200.
    pub async fn predict(&self, body: &Value) -> Value {
        let response = self.post_json("/predict", body).await;
        json_ok(response, StatusCode::OK).await
    }
}

/// Whether a job record has a terminal status.
pub fn is_terminal(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled" | "interrupted")
    )
}

/// The `id` of a job record.
pub fn job_id(job: &Value) -> &str {
    job["id"].as_str().expect("job without an id")
}

/// Asserts the status and parses the JSON body.
pub async fn json_ok(response: Response, expected: StatusCode) -> Value {
    let status = response.status();
    let text = response.text().await.expect("unreadable body");
    assert_eq!(status, expected, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// The answer's `Content-Type`, or "" without one.
pub fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Asserts a problem+json answer with the status (and code, if given) and
/// returns the document.
pub async fn assert_problem(response: Response, status: u16, code: Option<&str>) -> Value {
    let actual = response.status().as_u16();
    let content_type = content_type(&response);
    let text = response.text().await.expect("unreadable body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type is {content_type:?}, not problem+json; body: {text}"
    );
    let problem: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("problem is not JSON ({e}): {text}"));
    assert_eq!(problem["status"], status, "{problem:#}");
    assert!(
        problem["code"].is_string(),
        "problem without code: {problem:#}"
    );
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "problem without detail: {problem:#}"
    );
    if let Some(code) = code {
        assert_eq!(problem["code"], code, "{problem:#}");
    }
    problem
}

/// The `detail` member of a problem.
pub fn detail(problem: &Value) -> &str {
    problem["detail"].as_str().unwrap_or("")
}

/// Small, fast training parameters: one fit on a 10% holdout (an explicit
/// `validation_fraction` keeps small tables from being cross-validated).
pub fn tiny_params(epochs: usize) -> Value {
    json!({
        "hidden_layers": [8],
        "epochs": epochs,
        "batch_size": 32,
        "learning_rate": 0.01,
        "early_stopping_patience": null,
        "validation_fraction": 0.1
    })
}

/// Parameters for a job that runs until it is cancelled: many epochs of
/// many small batches.
pub fn long_params() -> Value {
    json!({
        "hidden_layers": [64, 64],
        "epochs": 10000,
        "batch_size": 4,
        "early_stopping_patience": null
    })
}

/// A deterministic pseudo-random generator (64-bit LCG).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        (self.next_f64() * n as f64) as u64
    }
}

/// The churn rule: short tenure, the basic plan and no autopay each count;
/// two or more churn.
pub fn churns(tenure: u64, plan: &str, autopay: bool) -> bool {
    let score = u8::from(tenure < 20) + u8::from(plan == "basic") + u8::from(!autopay);
    score >= 2
}

/// A churn-like table: numeric `tenure` and `monthly`, categorical `plan`,
/// boolean `autopay`, target `churned` (yes/no) following [`churns`].
pub fn churn_rows(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Lcg::new(seed);
    let plans = ["basic", "standard", "pro"];
    (0..n)
        .map(|_| {
            let tenure = 1 + rng.below(72);
            let plan = plans[rng.below(3) as usize];
            let autopay = rng.next_f64() < 0.5;
            let monthly = (20.0 + rng.next_f64() * 100.0 * 100.0).round() / 100.0;
            let churned = if churns(tenure, plan, autopay) {
                "yes"
            } else {
                "no"
            };
            json!({
                "tenure": tenure,
                "plan": plan,
                "monthly": monthly,
                "autopay": autopay,
                "churned": churned,
            })
        })
        .collect()
}

/// One churn instance without the target.
pub fn churn_instance(tenure: u64, plan: &str, autopay: bool, monthly: f64) -> Value {
    json!({"tenure": tenure, "plan": plan, "autopay": autopay, "monthly": monthly})
}

/// A regression table: `y = 3·x1 − 2·x2 + offset(region)` plus a little noise.
pub fn regression_rows(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Lcg::new(seed);
    let regions = [("north", 5.0), ("south", -5.0), ("east", 0.0)];
    (0..n)
        .map(|_| {
            let x1 = rng.next_f64() * 10.0;
            let x2 = rng.next_f64() * 5.0;
            let (region, offset) = regions[rng.below(3) as usize];
            let noise = rng.next_f64() - 0.5;
            let y = 3.0 * x1 - 2.0 * x2 + offset + noise;
            json!({"x1": x1, "x2": x2, "region": region, "y": y})
        })
        .collect()
}

/// [`regression_rows`] without the categorical `region`: a table whose
/// features are all numeric (`x1`, `x2`; target `y`).
pub fn numeric_regression_rows(n: usize, seed: u64) -> Vec<Value> {
    regression_rows(n, seed)
        .into_iter()
        .map(|r| json!({"x1": r["x1"], "x2": r["x2"], "y": r["y"]}))
        .collect()
}

/// The labels of [`pixel_shape_rows`], in the order the rows cycle through.
pub const PIXEL_SHAPES: [&str; 3] = ["vertical", "horizontal", "diagonal"];

/// `n` rows of a 4×4 pixel array (`pixels`, row-major) drawing a vertical,
/// horizontal or diagonal bar (`shape`) over a faint varying background.
pub fn pixel_shape_rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let shape = i % 3;
            let pixels: Vec<u32> = (0..16)
                .map(|p| {
                    let (x, y) = (p % 4, p / 4);
                    let on = [x == 1 + i % 2, y == 1 + i % 2, x == y][shape];
                    if on {
                        9
                    } else {
                        (i * p) as u32 % 3
                    }
                })
                .collect();
            json!({"pixels": pixels, "shape": PIXEL_SHAPES[shape]})
        })
        .collect()
}

/// CSV text (header first) of `rows` with the given column order.
pub fn to_csv(rows: &[Value], columns: &[&str]) -> String {
    let mut out = columns.join(",");
    out.push('\n');
    for row in rows {
        let fields: Vec<String> = columns
            .iter()
            .map(|c| match &row[*c] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// NDJSON text of `rows`.
pub fn to_ndjson(rows: &[Value]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

/// The churn columns in CSV order.
pub const CHURN_COLUMNS: [&str; 5] = ["tenure", "plan", "monthly", "autopay", "churned"];

/// A training request with inline rows.
pub fn train_request(model: &str, target: &str, rows: Vec<Value>, params: Value) -> Value {
    json!({"model": model, "target": target, "params": params, "data": rows})
}

/// Trains `model` on a small churn table and returns the finished job.
pub async fn train_churn(app: &TestApp, model: &str, seed: u64) -> Value {
    app.train(&train_request(
        model,
        "churned",
        churn_rows(240, seed),
        tiny_params(4),
    ))
    .await
}

/// Submits a long job (runs until cancelled) and returns its record.
pub async fn submit_long(app: &TestApp, model: &str) -> Value {
    app.submit(&train_request(
        model,
        "churned",
        churn_rows(400, 99),
        long_params(),
    ))
    .await
}

/// Every file under `root` with a digest of its content.
pub fn store_snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(relative, hex::encode(Sha256::digest(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}
