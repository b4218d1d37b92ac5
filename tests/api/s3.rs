//! A real S3-compatible server on loopback for the store tests: the one
//! `scripts/services/s3.sh` started (`MYELIN_TEST_S3_ENDPOINT`), else a
//! `moto_server` this process starts (`MYELIN_TEST_S3_SERVER`, or the venv
//! the script installs under target/). Without either the tests are
//! skipped with a message, unless `CI` is set, where they fail.
//! Also a TCP proxy in front of it that can be cut, to take the store away
//! from a server while it runs.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Where the S3 server listens.
pub struct S3 {
    pub endpoint: String,
    _child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn start() -> Option<S3> {
    if let Ok(endpoint) = std::env::var("MYELIN_TEST_S3_ENDPOINT") {
        return Some(S3 {
            endpoint,
            _child: None,
        });
    }
    let binary = std::env::var("MYELIN_TEST_S3_SERVER").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/s3-venv/bin/moto_server"
        )
        .into()
    });
    if !std::path::Path::new(&binary).is_file() {
        return None;
    }
    let port = free_port();
    let mut command = Command::new(&binary);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only an async-signal-safe call between fork and exec; the
    // server dies with this test process.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = command.spawn().ok()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(S3 {
                endpoint,
                _child: Some(child),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The shared S3 server, or `None` (after printing why) when there is none
/// and the tests may be skipped.
pub fn s3() -> Option<&'static S3> {
    static SERVER: OnceLock<Option<S3>> = OnceLock::new();
    let server = SERVER.get_or_init(start).as_ref();
    if server.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no S3 server: run scripts/services/s3.sh (sourced by scripts/test.sh)"
        );
        eprintln!("skipped: no S3 server (source scripts/services/s3.sh to run the S3 tests)");
    }
    server
}

/// A fresh bucket on `endpoint` (moto accepts an unsigned create).
pub async fn bucket(endpoint: &str) -> String {
    let name = format!("myelin-{}", uuid::Uuid::now_v7().simple());
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .expect("cannot reach the S3 server");
    assert!(response.status().is_success(), "{response:?}");
    name
}

/// The AWS variables that point a server process at `endpoint`.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
    ]
}

/// A loopback TCP proxy to `target` that can be cut (new connections are
/// closed at once and open ones dropped) and restored. It keeps its port
/// while cut, so no other process can take it meanwhile.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .parse()
            .expect("S3 endpoint is not host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue;
                }
                let flag = flag.clone();
                connections.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = async {
                            while flag.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        } => {}
                    }
                });
            }
        });
        Proxy { addr, up, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The store goes away: connections are closed, open ones dropped.
    pub async fn cut(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// The store comes back.
    pub async fn restore(&mut self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
