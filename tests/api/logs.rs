//! What the real binary logs with the default settings: one access line per request,
//! job lines naming the model and version, and no terminal colours in a pipe.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::server::capture_output;

/// A `myelin serve` child with the default (pretty, `info`) logging, its output piped.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes `ESC [ ... letter` sequences.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn start(store: &std::path::Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_myelin"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MYELIN_") || key == "RUST_LOG" || key == "NO_COLOR" {
            command.env_remove(key);
        }
    }
    let mut child = command
        .env("MYELIN_SERVER__HOST", "127.0.0.1")
        .env("MYELIN_SERVER__PORT", "0")
        .env("MYELIN_GRPC__PORT", "0")
        .env("MYELIN_STORE__PATH", store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the myelin binary");
    let (log, rx) = capture_output(&mut child, |line| {
        let plain = strip_ansi(line);
        let address = plain.split("address=").nth(1)?;
        Some(address.split_whitespace().next().unwrap_or("").to_string())
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the server did not start: {}", log.lock().unwrap()));
    Server {
        child,
        base: format!("http://{address}"),
        log,
    }
}

impl Server {
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until a log line contains every one of `parts`, and returns it.
    async fn line_with(&self, parts: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + JOB_DEADLINE;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no line with {parts:?} in:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test]
async fn the_default_log_has_an_access_line_per_request_and_no_colours_in_a_pipe() {
    let store = tempfile::tempdir().unwrap();
    let server = start(store.path());
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let response = client
        .post(format!("{}/predict", server.base))
        .json(&json!({"model": "nope", "instances": [{}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let line = server
        .line_with(&["request_id=", &id, "route=/predict"])
        .await;
    for part in ["INFO", "method=POST", "status=404", "latency_ms="] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    let log = server.log();
    assert!(
        !log.contains("route=/healthz"),
        "probes are logged at debug:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe:\n{log}");
}

#[tokio::test]
async fn job_lines_name_the_model_and_the_version() {
    let store = tempfile::tempdir().unwrap();
    let server = start(store.path());
    let response = reqwest::Client::new()
        .post(format!("{}/train", server.base))
        .json(&json!({
            "model": "churn", "target": "churned", "params": {"epochs": 2},
            "data": churn_rows(60, 1),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let line = server.line_with(&["job ended"]).await;
    for part in ["model=churn", "version=1", "status=\"succeeded\""] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    server.line_with(&["job started", "model=churn"]).await;
}
