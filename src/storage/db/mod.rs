//! The coordination database (Postgres, through `sqlx`): when `database.url`
//! is set, job records and the job queue, dataset metadata and logged
//! interactions live here, shared by every replica, while model versions,
//! job inputs and dataset files stay in the object store.
//!
//! The schema is created and upgraded on startup from the migrations in
//! `migrations/`, embedded in the binary; a database whose schema is newer
//! than the binary knows is refused. Queries run on the store's runtime
//! ([`Database::block`] bridges synchronous callers, as [`Store::block`]
//! does); a lost connection is replaced by the pool on the next query, so a
//! restarted database is reconnected to without a restart of the service.
//!
//! [`Store::block`]: super::Store::block

mod datasets;
mod interactions;
mod jobs;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use datasets::DatasetRemoval;
pub use interactions::InteractionRow;
pub use jobs::{Admission, ClaimedJob, JobRow, NewJob};

use super::StoreError;

/// Embedded schema migrations.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Channel notified when a job is queued.
pub const JOBS_CHANNEL: &str = "myelin_jobs";

/// Connection settings.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a connection (and, at startup, for the server).
    pub connect_timeout: Duration,
}

/// A pool of connections to the coordination database.
#[derive(Clone)]
pub struct Database {
    pool: PgPool,
    /// The URL without its password, for logs and errors.
    display: Arc<str>,
    healthy: Arc<AtomicBool>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.display)
            .finish()
    }
}

/// The URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparsable database url>".into(),
    }
}

impl Database {
    /// Connects (waiting up to `connect_timeout` for the server to answer)
    /// and brings the schema up to date. Runs on any thread.
    pub fn connect(url: &str, options: &DatabaseOptions) -> Result<Database, StoreError> {
        let display: Arc<str> = redact(url).into();
        let unavailable = |reason: String| StoreError::Unavailable {
            op: "connect",
            key: display.to_string(),
            reason,
        };
        let connect: PgConnectOptions =
            url.parse()
                .map_err(|e: sqlx::Error| StoreError::InvalidKey {
                    key: display.to_string(),
                    reason: e.to_string(),
                })?;
        let connect = connect.application_name("myelin");
        let options = options.clone();
        let pool = super::run(async move {
            let deadline = tokio::time::Instant::now() + options.connect_timeout;
            let pool = loop {
                let attempt = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(2))
                    .acquire_timeout(options.connect_timeout)
                    .connect_with(connect.clone())
                    .await;
                match attempt {
                    Ok(pool) => break pool,
                    Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.to_string()),
                    Err(e) => {
                        tracing::warn!(error = %e, "database not reachable yet; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            };
            MIGRATOR.run(&pool).await.map_err(|e| match e {
                sqlx::migrate::MigrateError::VersionMissing(version) => format!(
                    "the database schema is at migration {version}, newer than this binary knows \
                     (up to {}); run a newer release of Myelin",
                    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
                ),
                other => format!("cannot migrate the schema: {other}"),
            })?;
            Ok::<_, String>(pool)
        })
        .map_err(|e| unavailable(e.to_string()))?
        .map_err(unavailable)?;
        Ok(Database {
            pool,
            display,
            healthy: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The URL without its password.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Whether the last query reached the database.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Runs `op` on the store's runtime and waits for it (for synchronous
    /// callers). Works on any thread, inside a runtime or not.
    pub fn block<F, Fut, T>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Database) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        super::run(op(self.clone()))?
    }

    /// Runs `op` on the store's runtime from async code (the pool's
    /// connections belong to that runtime, which lives as long as the
    /// process, whichever runtime the caller is on).
    pub async fn call<F, Fut, T>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Database) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = super::runtime()?.spawn(op(self.clone()));
        task.await.map_err(|e| StoreError::Unavailable {
            op: "run",
            key: "database".into(),
            reason: e.to_string(),
        })?
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let result = sqlx::query("SELECT 1").execute(&self.pool).await;
        self.record("ping", result).map(|_| ())
    }

    /// Counts the query and maps its error.
    fn record<T>(&self, op: &'static str, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        metrics::counter!("myelin_database_queries_total", "op" => op).increment(1);
        match result {
            Ok(v) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => {
                self.healthy.store(false, Ordering::Relaxed);
                metrics::counter!("myelin_database_errors_total", "op" => op).increment(1);
                Err(StoreError::Unavailable {
                    op,
                    key: "database".into(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Wakes `wake` whenever a job is queued on any replica, until the
    /// process ends; reconnects after a lost connection.
    pub fn listen_for_jobs(&self, wake: Arc<tokio::sync::Notify>) {
        let pool = self.pool.clone();
        let task = async move {
            loop {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if listener.listen(JOBS_CHANNEL).await.is_ok() {
                            while listener.recv().await.is_ok() {
                                wake.notify_one();
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot listen for queued jobs"),
                }
                // Jobs queued while the listener was down are found by the
                // workers' periodic poll.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        if let Ok(runtime) = super::runtime() {
            runtime.spawn(task);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            super::redact("postgres://myelin:secret@db:5432/myelin"),
            "postgres://myelin:***@db:5432/myelin"
        );
        assert_eq!(super::redact("postgres://db/x"), "postgres://db/x");
        assert!(!super::redact("not a url :secret@").contains("secret"));
    }
}
