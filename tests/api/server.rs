//! A `myelin serve` child process: the real binary on a free loopback port,
//! with its output captured, for the tests that kill, limit or restart it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A `myelin serve` child process on a free loopback port.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// Everything the process logged so far.
    log: Arc<Mutex<String>>,
}

/// How to start the server.
#[derive(Default)]
pub struct Launch {
    /// Extra `MYELIN_*` variables.
    pub env: Vec<(&'static str, String)>,
    /// RLIMIT_FSIZE in bytes: writing past it fails with EFBIG, as a full disk would.
    pub max_file_bytes: Option<u64>,
    /// Run as this user and group id (the test runs as root).
    pub user: Option<u32>,
}

/// Collects `child`'s stdout and stderr, line by line, into one log, and sends
/// what `address_of` finds in a line (the address the server says it listens on).
pub fn capture_output<T: Send + 'static>(
    child: &mut Child,
    address_of: fn(&str) -> Option<T>,
) -> (Arc<Mutex<String>>, mpsc::Receiver<T>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel::<T>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let (log, tx) = (log.clone(), tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = address_of(&line) {
                    let _ = tx.send(address);
                }
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    (log, rx)
}

impl Server {
    pub fn start(store: &Path, launch: Launch) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_myelin"));
        command
            .arg("serve")
            .env("MYELIN_SERVER__HOST", "127.0.0.1")
            .env("MYELIN_SERVER__PORT", "0")
            .env("MYELIN_GRPC__PORT", "0")
            .env("MYELIN_SERVER__SHUTDOWN_GRACE_SECS", "10")
            .env("MYELIN_STORE__PATH", store)
            .env("MYELIN_STORE__RETAIN_VERSIONS", "0")
            .env("MYELIN_LOG__FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        if let Some(limit) = launch.max_file_bytes {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if let Some(id) = launch.user {
            command.uid(id).gid(id);
        }
        let mut child = command.spawn().expect("cannot start the myelin binary");
        let (log, rx) = capture_output(&mut child, |line| {
            let event = serde_json::from_str::<Value>(line).ok()?;
            if event["fields"]["message"] != "serving" {
                return None;
            }
            event["fields"]["address"]
                .as_str()?
                .parse::<SocketAddr>()
                .ok()
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not start; log:\n{}",
                    log.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
        };
        Server {
            child,
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("cannot build the HTTP client"),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("GET failed");
        json_ok(response, StatusCode::OK).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST failed")
    }

    /// The version that answers a one-row `/predict` on model `churn`.
    pub async fn churn_prediction_version(&self) -> Value {
        let instance = churn_instance(5, "basic", true, 40.0);
        let response = self
            .post(
                "/predict",
                &json!({"model": "churn", "instances": [instance]}),
            )
            .await;
        json_ok(response, StatusCode::OK).await["version"].clone()
    }

    pub async fn wait_for_job(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + JOB_DEADLINE;
        loop {
            let job = self.get(&format!("/jobs/{id}")).await;
            if is_terminal(&job) {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} did not end: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        // SAFETY: sends a signal to our own child, which has not been reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = self.child.wait().expect("cannot wait for the server");
        status.success()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
