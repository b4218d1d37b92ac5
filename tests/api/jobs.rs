//! Jobs: events, cancellation, the bounded queue, listing.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Parameters whose updates overflow at once.
fn diverging_params() -> Value {
    json!({"hidden_layers": [4], "epochs": 5, "learning_rate": 1e30,
           "optimizer": "sgd", "early_stopping_patience": null})
}

const TERMINAL: [&str; 4] = ["succeeded", "failed", "cancelled", "interrupted"];

/// Reads server-sent events until a terminal status event or the end of the
/// stream; returns (event name, data) pairs.
async fn read_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("event stream broke");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                let Some(name) = name else { continue }; // keep-alive comment
                let value: Value = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                let terminal = TERMINAL.contains(&name.as_str());
                events.push((name, value));
                if terminal {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(JOB_DEADLINE, read)
        .await
        .expect("the event stream did not end in time");
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_yield_one_epoch_event_per_epoch_and_end_with_succeeded() {
    let app = spawn_app().await;
    // Keep the only worker busy so the observed job waits in the queue
    // until the stream is open.
    let blocker = submit_long(&app, "blocker").await;
    app.wait_until_training(job_id(&blocker)).await;
    let job = app
        .submit(&train_request(
            "churn",
            "churned",
            churn_rows(200, 21),
            tiny_params(5),
        ))
        .await;
    let id = job_id(&job).to_string();
    assert_eq!(job["status"], "queued");

    let response = app.get(&format!("/jobs/{id}/events")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let cancel = app.delete(&format!("/jobs/{}", job_id(&blocker))).await;
    assert_eq!(cancel.status(), StatusCode::OK);

    let events = read_events(response).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "queued",
            "running",
            "epoch",
            "epoch",
            "epoch",
            "epoch",
            "epoch",
            "succeeded"
        ],
        "{events:#?}"
    );
    let epochs: Vec<u64> = events
        .iter()
        .filter(|(n, _)| n == "epoch")
        .map(|(_, d)| d["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4, 5]);
    for (_, data) in events.iter().filter(|(n, _)| n == "epoch") {
        assert!(data["train_loss"].is_number(), "{data}");
        assert!(data["progress"].as_f64().unwrap() > 0.0, "{data}");
    }
    let (_, last) = events.last().unwrap();
    assert_eq!(last["id"], id.as_str());
    assert_eq!(last["version"], 1);

    // The stream of an ended job is its final state alone.
    let response = app.get(&format!("/jobs/{id}/events")).await;
    let events = read_events(response).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_app_ends_the_event_streams_of_running_and_queued_jobs() {
    let app = spawn_app().await;
    let running = submit_long(&app, "long").await;
    app.wait_until_training(job_id(&running)).await;
    let queued = app
        .submit(&train_request(
            "later",
            "churned",
            churn_rows(100, 24),
            tiny_params(2),
        ))
        .await;
    let running_stream = app.get(&format!("/jobs/{}/events", job_id(&running))).await;
    let queued_stream = app.get(&format!("/jobs/{}/events", job_id(&queued))).await;
    assert_eq!(queued_stream.status(), StatusCode::OK);

    app.stop_within(Duration::from_secs(10)).await;

    let events = read_events(running_stream).await;
    assert_eq!(events.first().unwrap().0, "running", "{events:#?}");
    assert_eq!(events.last().unwrap().0, "interrupted", "{events:#?}");
    let events = read_events(queued_stream).await;
    assert_eq!(events.first().unwrap().0, "queued", "{events:#?}");
    assert!(
        events.iter().all(|(name, _)| name == "queued"),
        "a queued job stays queued across a stop: {events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_ends_it_cancelled_without_writing_a_version() {
    let app = spawn_app().await;
    let job = submit_long(&app, "long").await;
    let id = job_id(&job).to_string();
    app.wait_until_training(&id).await;

    let response = app.delete(&format!("/jobs/{id}")).await;
    let answer = json_ok(response, StatusCode::OK).await;
    assert_eq!(answer["id"], id.as_str());

    let done = app.wait_for_job(&id).await;
    assert_eq!(done["status"], "cancelled", "{done:#}");
    assert!(done.get("version").is_none(), "{done:#}");
    assert!(done["epoch"].as_u64().unwrap() < 10000);

    let response = app.get("/models/long").await;
    assert_problem(response, 404, Some("model_not_found")).await;
    let models = app.get_ok("/models").await;
    assert_eq!(models["models"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_queued_job_cancels_it_at_once() {
    let app = spawn_app().await;
    let blocker = submit_long(&app, "blocker").await;
    app.wait_until_training(job_id(&blocker)).await;
    let queued = app
        .submit(&train_request(
            "waiting",
            "churned",
            churn_rows(100, 22),
            tiny_params(3),
        ))
        .await;
    let id = job_id(&queued);
    assert_eq!(queued["status"], "queued");

    let response = app.delete(&format!("/jobs/{id}")).await;
    let cancelled = json_ok(response, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["finished_at"].is_string(), "{cancelled:#}");
    assert!(cancelled.get("started_at").is_none(), "{cancelled:#}");
    let job = app.get_ok(&format!("/jobs/{id}")).await;
    assert_eq!(job["status"], "cancelled");

    // The blocker keeps running; the queue is empty.
    let blocker_now = app.get_ok(&format!("/jobs/{}", job_id(&blocker))).await;
    assert_eq!(blocker_now["status"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_finished_job_is_409() {
    let app = spawn_app().await;
    let done = train_churn(&app, "churn", 23).await;
    let response = app.delete(&format!("/jobs/{}", job_id(&done))).await;
    assert_problem(response, 409, Some("job_finished")).await;
    let job = app.get_ok(&format!("/jobs/{}", job_id(&done))).await;
    assert_eq!(job["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.jobs.workers = 1;
        s.jobs.queue_capacity = 1;
        s.jobs.retry_after_secs = 7;
    })
    .await;
    let mut accepted = Vec::new();
    let refused = loop {
        let response = app
            .post_json(
                "/train",
                &train_request("long", "churned", churn_rows(400, 99), long_params()),
            )
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response;
        }
        let job = json_ok(response, StatusCode::ACCEPTED).await;
        accepted.push(job_id(&job).to_string());
        assert!(
            accepted.len() <= 2,
            "one running and one queued job fill the queue"
        );
    };
    let retry_after = refused.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(retry_after, "7");
    let problem = assert_problem(refused, 429, Some("queue_full")).await;
    assert_eq!(problem["limit"], 1);

    // Cancelling the queued job frees the slot.
    let queued = accepted.last().unwrap();
    let response = app.delete(&format!("/jobs/{queued}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let freed = app
        .post_json(
            "/train",
            &train_request("next", "churned", churn_rows(100, 1), tiny_params(2)),
        )
        .await;
    assert_eq!(freed.status(), StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_jobs_filters_by_status_and_model_and_pages() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (model, seed) in [("alpha", 31), ("beta", 32), ("alpha", 33)] {
        ids.push(job_id(&train_churn(&app, model, seed).await).to_string());
    }
    let failed = app
        .submit(&train_request(
            "alpha",
            "y",
            regression_rows(100, 34),
            diverging_params(),
        ))
        .await;
    let failed = app.wait_for_job(job_id(&failed)).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");

    let all = app.get_ok("/jobs").await;
    assert_eq!(all["total"], 4);
    assert_eq!(all["offset"], 0);
    assert_eq!(all["limit"], 50);

    let alpha = app.get_ok("/jobs?model=alpha").await;
    assert_eq!(alpha["total"], 3);
    assert!(alpha["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["model"] == "alpha"));

    let succeeded = app.get_ok("/jobs?status=succeeded").await;
    assert_eq!(succeeded["total"], 3);
    assert!(succeeded["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["status"] == "succeeded"));

    let failures = app.get_ok("/jobs?status=failed").await;
    assert_eq!(failures["total"], 1);
    assert_eq!(failures["jobs"][0]["id"], failed["id"]);

    let both = app.get_ok("/jobs?status=succeeded&model=beta").await;
    assert_eq!(both["total"], 1);
    assert_eq!(both["jobs"][0]["id"], ids[1].as_str());

    // Newest first, paged.
    let page1 = app.get_ok("/jobs?limit=2").await;
    assert_eq!(page1["total"], 4);
    assert_eq!(page1["limit"], 2);
    let page1_ids: Vec<&str> = page1["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(page1_ids, [job_id(&failed), ids[2].as_str()]);
    let page2 = app.get_ok("/jobs?limit=2&offset=2").await;
    assert_eq!(page2["offset"], 2);
    let page2_ids: Vec<&str> = page2["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(page2_ids, [ids[1].as_str(), ids[0].as_str()]);
    let beyond = app.get_ok("/jobs?limit=2&offset=10").await;
    assert_eq!(beyond["jobs"], json!([]));
    assert_eq!(beyond["total"], 4);

    let response = app.get("/jobs?status=bogus").await;
    assert_problem(response, 400, Some("invalid_query")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_diverges_fails_with_a_reason() {
    let app = spawn_app().await;
    let job = app
        .submit(&train_request(
            "diverge",
            "y",
            regression_rows(100, 35),
            diverging_params(),
        ))
        .await;
    let done = app.wait_for_job(job_id(&job)).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["error"]["code"], "training_diverged", "{done:#}");
    assert!(done.get("version").is_none());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let response = app.get("/models/diverge").await;
    assert_problem(response, 404, Some("model_not_found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_beyond_the_retention_are_pruned_with_their_input() {
    let app = spawn_app_with(|s| s.jobs.retain_finished = 2).await;
    let first = train_churn(&app, "churn", 36).await;
    let first_id = job_id(&first).to_string();
    let input = app
        .store_path
        .join(first["input"]["path"].as_str().unwrap());
    assert!(input.is_file(), "{first:#}");
    train_churn(&app, "churn", 37).await;
    train_churn(&app, "churn", 38).await;

    // Pruning follows the end of the job that made the records too many.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.get_ok("/jobs").await["total"] != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "finished jobs were not pruned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = app.get(&format!("/jobs/{first_id}")).await;
    assert_problem(response, 404, Some("job_not_found")).await;
    assert!(!input.exists(), "the pruned job's input is still on disk");
    assert!(!app
        .store_path
        .join("_jobs")
        .join(format!("{first_id}.json"))
        .exists());
    // Pruning jobs never touches the versions they produced.
    assert_eq!(
        app.get_ok("/models/churn").await["versions"],
        json!([1, 2, 3])
    );
}

/// While requests arrive, a training thread steps off the CPU about once per
/// millisecond of work (a short sleep: a voluntary context switch), so
/// request threads never wait long behind it. A computing thread otherwise
/// blocks only to save progress, about once a second.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_pauses_briefly_and_often_while_requests_arrive() {
    // Normal priority, so the thread keeps running on a busy test machine.
    let app = spawn_app_with(|s| s.jobs.training_nice = 0).await;
    let job = submit_long(&app, "pausing").await;
    app.wait_until_training(job_id(&job)).await;
    let id = job_id(&job);
    let thread = training_thread(id);
    let switches = || voluntary_switches_of_thread(&thread).expect("training thread");

    let start = switches();
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        app.get("/healthz").await;
    }
    let paused = switches() - start;
    assert!(
        paused >= 40,
        "the training thread stepped off the CPU {paused} times in 1 s of requests"
    );
    app.delete(&format!("/jobs/{id}")).await;
    app.wait_for_job(id).await;
}

/// The `/proc/self/task/<tid>/<file>` text of this process's thread whose
/// name starts with `prefix`.
fn thread_file(prefix: &str, file: &str) -> Option<String> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            return std::fs::read_to_string(task.path().join(file)).ok();
        }
    }
    None
}

/// A `/proc` stat field (1-based, as in proc(5)) of this process's thread
/// whose name starts with `prefix`.
fn stat_field_of_thread(prefix: &str, field: usize) -> Option<i64> {
    let stat = thread_file(prefix, "stat")?;
    // Fields after the parenthesised name start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(field - 3)?.parse().ok()
}

/// `voluntary_ctxt_switches` of this process's thread whose name starts with `prefix`.
fn voluntary_switches_of_thread(prefix: &str) -> Option<u64> {
    let status = thread_file(prefix, "status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The name of the thread that trains job `id` (15 bytes: the id's tail).
fn training_thread(id: &str) -> String {
    format!("train-{}", &id[id.len() - 8..])
}

/// The niceness (field 19) of a thread.
fn nice_of_thread(prefix: &str) -> Option<i64> {
    stat_field_of_thread(prefix, 19)
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_threads_run_at_the_configured_lower_priority() {
    let app = spawn_app_with(|s| s.jobs.training_nice = 7).await;
    let job = submit_long(&app, "niced").await;
    app.wait_until_training(job_id(&job)).await;
    let id = job_id(&job);
    let thread = training_thread(id);
    assert_eq!(nice_of_thread(&thread), Some(7));
    app.delete(&format!("/jobs/{}", job_id(&job))).await;
    app.wait_for_job(job_id(&job)).await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_niceness_19_training_threads_join_the_idle_scheduling_class() {
    const SCHED_IDLE: i64 = 5;
    let app = spawn_app_with(|s| s.jobs.training_nice = 19).await;
    let job = submit_long(&app, "idle-class").await;
    app.wait_until_training(job_id(&job)).await;
    let id = job_id(&job);
    let thread = training_thread(id);
    // Field 41 is the scheduling policy.
    assert_eq!(stat_field_of_thread(&thread, 41), Some(SCHED_IDLE));
    assert_eq!(nice_of_thread(&thread), Some(19));
    app.delete(&format!("/jobs/{}", job_id(&job))).await;
    app.wait_for_job(job_id(&job)).await;
}
