//! Building and running the application: bind, serve, shut down gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Settings;
use crate::service::AppState;

/// A bound, ready-to-run application.
pub struct Application {
    listener: TcpListener,
    /// The gRPC listener, when `grpc.enabled`.
    grpc_listener: Option<TcpListener>,
    state: Arc<AppState>,
}

impl Application {
    /// Opens the store, starts the workers and binds the HTTP port and, when
    /// enabled, the gRPC port (0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let state = AppState::start(settings, crate::telemetry::metrics_handle())?;
        let host = &state.settings.server.host;
        let listener = bind(host, state.settings.server.port).await?;
        let grpc_listener = match state.settings.grpc.enabled {
            true => Some(bind(host, state.settings.grpc.port).await?),
            false => None,
        };
        Ok(Application {
            listener,
            grpc_listener,
            state,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound gRPC address, when gRPC is enabled.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The shared state (tests use it to inspect the app).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets
    /// in-flight requests finish and stops running jobs: each is recorded
    /// interrupted or, in a cluster, handed back to the queue for another
    /// replica. Waits up to `server.shutdown_grace_secs` for them.
    pub async fn run_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let state = self.state.clone();
        let app = crate::api::router(self.state.clone());
        let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
        let jobs = state.jobs.clone();
        let header_timeout = Duration::from_secs(state.settings.server.header_timeout_secs);
        tracing::info!(address = %self.listener.local_addr()?, store = %state.registry.store().url(), "serving");
        let trimmer = tokio::spawn(crate::memory::trim_periodically());
        let upkeep = tokio::spawn(crate::telemetry::metrics_upkeep(state.metrics.clone()));
        let (stop_grpc, grpc_stopped) = tokio::sync::watch::channel(false);
        let grpc = self.grpc_listener.map(|listener| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(address = %address, "serving the inference protocol over gRPC");
            }
            let router = crate::grpc::router(state.clone());
            let mut stopped = grpc_stopped;
            tokio::spawn(serve(listener, router, header_timeout, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        });
        serve(self.listener, app, header_timeout, async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests and stopping training");
            let _ = stop_grpc.send(true);
            jobs.shutdown();
        })
        .await;
        if let Some(grpc) = grpc {
            let _ = grpc.await;
        }
        trimmer.abort();
        upkeep.abort();
        state.jobs.shutdown();
        state.jobs.drained(grace).await;
        Ok(())
    }

    /// Serves until SIGTERM or ctrl-c.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let address = format!("{host}:{port}");
    TcpListener::bind(&address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))
}

/// Accepts connections until `shutdown` resolves, then stops accepting and
/// waits for open connections to finish their in-flight requests.
///
/// Unlike `axum::serve`, a client must send its request headers within
/// `header_timeout` (slow-header attacks); bodies are bounded by the
/// request and upload timeouts of the router.
async fn serve<F>(listener: TcpListener, app: axum::Router, header_timeout: Duration, shutdown: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(crate::api::wire::ProblemOnParseError::new(stream)),
                service,
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// `myelin serve`: loads settings, starts logging, serves until stopped.
pub fn serve_blocking(config: Option<&Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    crate::telemetry::init_logging(&settings.log);
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Large prediction batches, explanations, model loads, job submission
        // and store work use this pool; training jobs run on threads of their
        // own (`jobs`). The bound still grows with `jobs.workers`.
        .max_blocking_threads(settings.jobs.workers + 8)
        .build()?;
    runtime.block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    })
}

/// glibc gives every thread that allocates its own arena (up to 8 per core),
/// which keeps freed memory of short-lived blocking threads resident. Two
/// arenas keep the resident set small at no measurable cost here.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
