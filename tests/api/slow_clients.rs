//! Slow and stalled clients are cut off by the header and request timeouts
//! and never hold training workers or block other requests.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Upper bound for waiting on the server; the timeouts under test are far
/// shorter, so reaching it means the connection was never closed.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(GIVE_UP, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept a stalled connection open");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_disconnected_while_others_are_served() {
    let app = spawn_app_with(|s| {
        s.server.header_timeout_secs = 1;
        s.server.request_timeout_secs = 2;
    })
    .await;
    train_churn(&app, "churn", 1).await;

    // Many connections that never finish their headers.
    let mut stalled = Vec::new();
    for _ in 0..64 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty")
            .await
            .unwrap();
        stalled.push(stream);
    }
    // One that sends its headers and then only part of its body.
    let mut slow_body = TcpStream::connect(app.addr).await.unwrap();
    slow_body
        .write_all(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"model\": \"churn\",",
        )
        .await
        .unwrap();

    // Meanwhile other clients are served and a training job runs to the end.
    let instance = churn_instance(3, "basic", false, 30.0);
    app.predict(&serde_json::json!({"model": "churn", "instances": [instance]}))
        .await;
    let job = app
        .submit(&train_request(
            "other",
            "churned",
            churn_rows(120, 2),
            tiny_params(2),
        ))
        .await;
    let done = app.wait_for_job(job_id(&job)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");

    // The slow body is answered 408, the stalled headers are dropped.
    let answer = read_until_closed(&mut slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    for stream in &mut stalled {
        let answer = read_until_closed(stream).await;
        assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    }
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}
