//! The real `myelin` binary as a child process: killed with SIGKILL at
//! random moments, stopped with SIGTERM, run with a file-size limit that
//! makes writes fail, and checked for keys in its logs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::server::{Launch, Server};

/// Directory entries of `dir` whose names start with `.tmp-`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the crash test expects to survive every kill.
struct Expected {
    dataset_id: String,
    dataset_sha: String,
}

/// Every listed version loads and predicts, nothing temporary is listed or
/// left, aliases point at listed versions, the dataset is intact and no job
/// is still `running`.
async fn check_store(server: &Server, store: &Path, expected: &Expected) -> usize {
    let models = server.get("/models").await;
    let mut versions_seen = 0;
    for model in models["models"].as_array().expect("models list") {
        let name = model["name"].as_str().expect("model name");
        let detail = server.get(&format!("/models/{name}")).await;
        let versions: Vec<u64> = detail["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| v.as_u64().expect("version number"))
            .collect();
        assert!(!versions.is_empty(), "{detail:#}");
        for version in &versions {
            let instance = churn_instance(5, "basic", true, 40.0);
            let response = server
                .post(
                    &format!("/models/{name}/predict"),
                    &json!({"version": version, "instances": [instance]}),
                )
                .await;
            json_ok(response, StatusCode::OK).await;
            versions_seen += 1;
        }
        if let Some(aliases) = detail["aliases"].as_object() {
            for (alias, version) in aliases {
                assert!(
                    versions.contains(&version.as_u64().unwrap_or(0)),
                    "alias {alias} of {name} points at a missing version: {detail:#}"
                );
            }
        }
        let on_disk = temporaries(&store.join(name));
        assert!(
            on_disk.is_empty(),
            "temporary entries were left: {on_disk:?}"
        );
    }
    let dataset = server
        .get(&format!("/datasets/{}", expected.dataset_id))
        .await;
    assert_eq!(
        dataset["sha256"],
        expected.dataset_sha.as_str(),
        "{dataset:#}"
    );

    let jobs = server.get("/jobs?limit=500").await;
    for job in jobs["jobs"].as_array().expect("jobs list") {
        assert_ne!(
            job["status"], "running",
            "a job is still running after a restart: {job:#}"
        );
        if job["status"] == "succeeded" {
            let version = job["version"]
                .as_u64()
                .expect("a succeeded job names its version");
            let model = job["model"].as_str().unwrap_or_default();
            let detail = server.get(&format!("/models/{model}")).await;
            let listed = detail["versions"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(|v| v.as_u64() == Some(version)));
            assert!(
                listed,
                "succeeded job's version {version} is not listed: {job:#}"
            );
        }
    }
    versions_seen
}

/// Kills the server with SIGKILL at pseudo-random moments while jobs train
/// and write versions, restarting it on the same store each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run with `cargo test --test api -- --ignored`"]
async fn sigkill_at_random_moments_never_loses_or_corrupts_the_store() {
    const ROUNDS: u64 = 24;
    let store = tempfile::tempdir().unwrap();
    let launch = || Launch {
        env: vec![("MYELIN_JOBS__WORKERS", "2".into())],
        ..Launch::default()
    };
    let server = Server::start(store.path(), launch());
    let csv = to_csv(&churn_rows(300, 5), &CHURN_COLUMNS);
    let response = server
        .client
        .post(server.url("/datasets"))
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let dataset = json_ok(response, StatusCode::CREATED).await;
    let expected = Expected {
        dataset_id: dataset["id"].as_str().unwrap().to_string(),
        dataset_sha: dataset["sha256"].as_str().unwrap().to_string(),
    };
    drop(server);

    let mut rng = Lcg::new(2024);
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let mut server = Server::start(store.path(), launch());
        check_store(&server, store.path(), &expected).await;
        let mut accepted = Vec::new();
        // Two jobs per round: one from inline rows, one from the dataset;
        // wide layers make the weights file large enough to be caught mid-write.
        let params = json!({"hidden_layers": [256, 128], "epochs": 1 + rng.below(6),
                            "batch_size": 32, "early_stopping_patience": null});
        for (i, source) in [
            json!({"data": churn_rows(200, round)}),
            json!({"dataset": expected.dataset_id}),
        ]
        .into_iter()
        .enumerate()
        {
            let mut body = json!({"model": format!("m{}", (round + i as u64) % 3),
                                  "target": "churned", "params": params});
            body.as_object_mut()
                .unwrap()
                .extend(source.as_object().unwrap().clone());
            let response = server.post("/train", &body).await;
            match response.status() {
                StatusCode::ACCEPTED => {
                    let job: Value = response.json().await.unwrap();
                    accepted.push(job_id(&job).to_string());
                }
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("unexpected answer to POST /train: {other}"),
            }
        }
        // Promote the latest version of a model now and then.
        let models = server.get("/models").await;
        if let Some(model) = models["models"].as_array().and_then(|m| m.first()) {
            let name = model["name"].as_str().unwrap();
            let detail = server.get(&format!("/models/{name}")).await;
            if let Some(latest) = detail["latest_version"].as_u64() {
                let response = server
                    .client
                    .put(server.url(&format!("/models/{name}/aliases/production")))
                    .json(&json!({"version": latest}))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
            }
        }
        if round % 3 == 0 {
            // Kill right after the last epoch, while the version is written.
            if let Some(id) = accepted.first() {
                let deadline = tokio::time::Instant::now() + JOB_DEADLINE;
                loop {
                    let job = server.get(&format!("/jobs/{id}")).await;
                    if is_terminal(&job)
                        || (job["epochs"].as_u64().is_some() && job["epoch"] == job["epochs"])
                        || tokio::time::Instant::now() > deadline
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rng.below(900))).await;
        }
        let jobs = server.get("/jobs?status=running").await;
        interrupted += jobs["total"].as_u64().unwrap_or(0);
        server.kill();
    }

    let server = Server::start(store.path(), launch());
    let versions = check_store(&server, store.path(), &expected).await;
    assert!(versions > 0, "no version was ever written");
    assert!(interrupted > 0, "no kill hit a running job");
    let jobs = server.get("/jobs?status=interrupted").await;
    assert!(jobs["total"].as_u64().unwrap_or(0) > 0, "{jobs:#}");
}

/// A write that fails (here: the file-size limit, as with a full disk) fails
/// the job with a clear error and leaves the store as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_version_write_fails_the_job_and_leaves_the_store_as_it_was() {
    let store = tempfile::tempdir().unwrap();
    let mut server = Server::start(store.path(), Launch::default());
    let small = train_request("churn", "churned", churn_rows(240, 1), tiny_params(2));
    let response = server.post("/train", &small).await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    assert_eq!(
        server.wait_for_job(job_id(&job)).await["status"],
        "succeeded"
    );
    let response = server
        .client
        .put(server.url("/models/churn/aliases/production"))
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let before = server.get("/models/churn").await;
    assert!(server.terminate(), "the server did not exit cleanly");

    // Files over 128 KiB cannot be written: job records and inputs fit,
    // the weights of a wide model do not.
    let server = Server::start(
        store.path(),
        Launch {
            max_file_bytes: Some(128 * 1024),
            ..Launch::default()
        },
    );
    let wide = train_request(
        "churn",
        "churned",
        churn_rows(240, 2),
        json!({"hidden_layers": [512, 256], "epochs": 1, "early_stopping_patience": null}),
    );
    let response = server.post("/train", &wide).await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    let failed = server.wait_for_job(job_id(&job)).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["error"]["code"], "store_write_failed", "{failed:#}");
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("could not write the model version"),
        "{message}"
    );
    assert!(message.contains("weights.safetensors"), "{message}");

    // An input too large to store is refused up front, and nothing is kept.
    let big = train_request("churn", "churned", churn_rows(3000, 3), tiny_params(1));
    let response = server.post("/train", &big).await;
    let problem = assert_problem(response, 507, Some("store_write_failed")).await;
    assert!(
        detail(&problem).contains("could not store the job input"),
        "{problem:#}"
    );

    // The store is as it was: same versions and alias, it predicts, and no
    // temporary or orphaned input files remain.
    let after = server.get("/models/churn").await;
    assert_eq!(after["versions"], before["versions"]);
    assert_eq!(after["aliases"], before["aliases"]);
    assert_eq!(server.churn_prediction_version().await, 1);
    assert!(temporaries(&store.path().join("churn")).is_empty());
    assert!(temporaries(&store.path().join("_jobs")).is_empty());
    let inputs = std::fs::read_dir(store.path().join("_jobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-input"))
        .count();
    assert_eq!(inputs, 2, "one input per accepted job");
}

/// A write refused with "permission denied" (the model's directory is read-only
/// to the server) fails the job with a clear error; the store stays as it was
/// and keeps serving predictions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_denied_write_fails_the_job_and_leaves_the_store_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let store = tempfile::tempdir().unwrap();
    // Root ignores file modes, so as root the server runs as `nobody`.
    let user = (unsafe { libc::geteuid() } == 0).then_some(65_534u32);
    let chown_all = |dir: &Path| {
        if let Some(id) = user {
            let status = Command::new("chown")
                .args(["-R", &format!("{id}:{id}")])
                .arg(dir)
                .status()
                .expect("chown");
            assert!(status.success());
        }
    };
    chown_all(store.path());
    let launch = || Launch {
        user,
        ..Launch::default()
    };
    let mut server = Server::start(store.path(), launch());
    let small = train_request("churn", "churned", churn_rows(240, 1), tiny_params(2));
    let job = json_ok(server.post("/train", &small).await, StatusCode::ACCEPTED).await;
    assert_eq!(
        server.wait_for_job(job_id(&job)).await["status"],
        "succeeded"
    );
    let before = server.get("/models/churn").await;
    assert!(server.terminate(), "the server did not exit cleanly");

    let model_dir = store.path().join("churn");
    let files_before = store_snapshot(&model_dir);
    std::fs::set_permissions(&model_dir, std::fs::Permissions::from_mode(0o555)).unwrap();

    let server = Server::start(store.path(), launch());
    let next = train_request("churn", "churned", churn_rows(240, 2), tiny_params(2));
    let job = json_ok(server.post("/train", &next).await, StatusCode::ACCEPTED).await;
    let failed = server.wait_for_job(job_id(&job)).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["error"]["code"], "store_write_failed", "{failed:#}");
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("could not write the model version")
            && message.to_lowercase().contains("permission denied"),
        "{message}"
    );
    let after = server.get("/models/churn").await;
    assert_eq!(after["versions"], before["versions"]);
    assert_eq!(server.churn_prediction_version().await, 1);
    std::fs::set_permissions(&model_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        store_snapshot(&model_dir),
        files_before,
        "the model's files changed"
    );
}

/// SIGTERM lets an in-flight upload finish, records the running job as
/// interrupted and exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_interrupts_the_running_job() {
    let store = tempfile::tempdir().unwrap();
    let mut server = Server::start(store.path(), Launch::default());
    let response = server
        .post(
            "/train",
            &train_request("long", "churned", churn_rows(400, 9), long_params()),
        )
        .await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    let id = job_id(&job).to_string();
    let deadline = tokio::time::Instant::now() + JOB_DEADLINE;
    loop {
        let job = server.get(&format!("/jobs/{id}")).await;
        if job["status"] == "running" && job["epoch"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{job:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // An upload whose body is still arriving when SIGTERM comes.
    let csv = to_csv(&churn_rows(300, 4), &CHURN_COLUMNS);
    let (head, tail) = csv.split_at(csv.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let upload = server
        .client
        .post(server.url("/datasets"))
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body(body)
        .send();
    let upload = tokio::spawn(upload);
    tx.send(Ok(head.as_bytes().to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pid = server.child.id() as libc::pid_t;
    // SAFETY: signals our own, not yet reaped, child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.send(Ok(tail.as_bytes().to_vec())).await.unwrap();
    drop(tx);
    let response = upload
        .await
        .unwrap()
        .expect("the in-flight upload was dropped");
    let dataset = json_ok(response, StatusCode::CREATED).await;
    assert_eq!(dataset["rows"], 300);
    assert!(
        server.terminate(),
        "the server did not exit cleanly after SIGTERM"
    );

    let record: Value = serde_json::from_slice(
        &std::fs::read(store.path().join("_jobs").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["status"], "interrupted", "{record:#}");

    let server = Server::start(store.path(), Launch::default());
    let job = server.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["status"], "interrupted");
    server
        .get(&format!("/datasets/{}", dataset["id"].as_str().unwrap()))
        .await;
}

/// Keys never reach the log, not even at trace level, whether valid,
/// unknown or in a malformed header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_appear_in_the_log() {
    const KEY: &str = "configured-secret-key-4f1b7c";
    const WRONG: &str = "presented-wrong-key-9a8e2d";
    let store = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        store.path(),
        Launch {
            env: vec![
                ("MYELIN_AUTH__KEYS", format!("admin+read+inference:{KEY}")),
                ("MYELIN_LOG__LEVEL", "trace".into()),
            ],
            ..Launch::default()
        },
    );
    for auth in [
        format!("Bearer {KEY}"),
        format!("Bearer {WRONG}"),
        format!("Basic {WRONG}"),
    ] {
        for path in ["/models", "/jobs", "/no/such/route"] {
            let _ = server
                .client
                .get(server.url(path))
                .header(reqwest::header::AUTHORIZATION, &auth)
                .send()
                .await
                .unwrap();
        }
    }
    let response = server
        .client
        .post(server.url("/train"))
        .bearer_auth(KEY)
        .json(&json!({"model": "bad"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(server.terminate(), "the server did not exit cleanly");
    // The pipes close with the process; give the reader threads a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    assert!(log.contains("\"message\":\"serving\""), "{log}");
    assert!(
        log.lines().count() > 10,
        "the trace log is suspiciously short:\n{log}"
    );
    for secret in [KEY, WRONG] {
        assert!(!log.contains(secret), "a key appeared in the log:\n{log}");
        // Nor a recognisable part of it.
        assert!(
            !log.contains(&secret[..12]),
            "part of a key appeared in the log:\n{log}"
        );
    }
}
