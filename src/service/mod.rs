//! Use cases the routes call: submit and run training jobs, resolve and load
//! a model version, predict, explain, export, recommend and log interactions,
//! manage datasets, check API keys; the Open Inference Protocol on top of
//! prediction. Owns the shared [`AppState`] and the [`ErrorCode`]s of refusals.

pub mod auth;
pub mod datasets;
mod error_code;
pub mod explain;
pub mod export;
pub mod interactions;
pub mod oip;
pub mod predict;
pub mod recommend;
pub mod training;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::jobs::{JobStore, JobSystem};
use crate::registry::Registry;

pub use datasets::DatasetStore;
pub use error_code::ErrorCode;

/// Shared state of the running service.
pub struct AppState {
    pub settings: Settings,
    pub registry: Arc<Registry>,
    pub jobs: Arc<JobSystem>,
    pub datasets: Arc<DatasetStore>,
    /// Logged interactions of recommenders.
    pub interactions: Arc<recommend::InteractionLogs>,
    pub metrics: PrometheusHandle,
    /// The API keys; empty when authentication is off.
    pub keys: auth::Keyring,
    /// The coordination database of a cluster, when configured.
    pub database: Option<crate::storage::db::Database>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the model store at {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("cannot use the database at {url}: {reason}")]
    Database { url: String, reason: String },
    #[error(transparent)]
    Keys(#[from] auth::KeyError),
}

impl AppState {
    /// Opens the store, loads job records and starts the workers. Must run
    /// inside a tokio runtime.
    pub fn start(
        settings: Settings,
        metrics: PrometheusHandle,
    ) -> Result<Arc<AppState>, StartError> {
        let keys = auth::Keyring::from_settings(&settings.auth)?;
        if keys.is_empty() {
            tracing::warn!(
                "no API keys configured: every endpoint is open to anyone who can reach it; \
                 set MYELIN_AUTH__KEYS or auth.keys_file for any deployment"
            );
        } else {
            tracing::info!(keys = keys.len(), "API keys loaded");
        }
        crate::data::set_audio_limits(&settings.audio);
        let location = settings.store.location().map_err(|e| StartError::Store {
            path: settings.store.url.clone(),
            reason: e.to_string(),
        })?;
        let store_err = |reason: String| StartError::Store {
            path: location.to_string(),
            reason,
        };
        let store = crate::storage::Store::open(&location, &settings.store.cache_dir())
            .map_err(|e| store_err(e.to_string()))?;
        let registry = Arc::new(
            Registry::with_store(
                store,
                settings.store.retain_versions,
                settings.store.cache_capacity,
            )
            .map_err(|e| store_err(e.to_string()))?,
        );
        if let Some(interval) = settings.store.poll_interval(&location) {
            registry.follow(interval);
        }
        let store = registry.store().clone();
        let database = match settings.database.url() {
            Some(url) => {
                let options = crate::storage::db::DatabaseOptions {
                    max_connections: settings.database.max_connections,
                    connect_timeout: std::time::Duration::from_secs(
                        settings.database.connect_timeout_secs,
                    ),
                };
                let db = crate::storage::db::Database::connect(url, &options).map_err(|e| {
                    StartError::Database {
                        url: crate::storage::db::redact(url),
                        reason: e.to_string(),
                    }
                })?;
                tracing::info!(database = %db.display(), "jobs, datasets and interactions are shared through the database");
                Some(db)
            }
            None => None,
        };
        let datasets = Arc::new(
            DatasetStore::open(store.clone(), database.clone())
                .map_err(|e| store_err(e.to_string()))?,
        );
        let job_store = JobStore::new(store.clone());
        let interactions = Arc::new(recommend::InteractionLogs::new(
            store.clone(),
            database.clone(),
            settings.interactions.max_events_per_model,
        ));
        let runner = training::runner(
            registry.clone(),
            job_store.clone(),
            settings.clone(),
            interactions.clone(),
        );
        let jobs = JobSystem::start(
            job_store,
            crate::jobs::JobOptions {
                workers: settings.jobs.workers,
                capacity: settings.jobs.queue_capacity,
                retain_finished: settings.jobs.retain_finished,
                max_active_per_model: settings.jobs.max_active_per_model,
                training_nice: settings.jobs.training_nice,
                cluster: database.clone().map(|db| crate::jobs::ClusterOptions {
                    db,
                    lease: std::time::Duration::from_secs(settings.jobs.lease_secs),
                    max_attempts: settings.jobs.max_attempts,
                }),
            },
            runner,
        )
        .map_err(|e| store_err(e.to_string()))?;
        Ok(Arc::new(AppState {
            settings,
            registry,
            jobs,
            datasets,
            interactions,
            metrics,
            keys,
            database,
        }))
    }
}
