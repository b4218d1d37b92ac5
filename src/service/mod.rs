//! Use cases the routes call: submit a training job, resolve and load a
//! model version, predict, manage datasets. Owns the shared [`AppState`].

pub mod auth;
pub mod datasets;
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
use crate::data::Fingerprint;
use crate::jobs::{JobStore, JobSystem};
use crate::registry::{ModelCard, ModelSpec, Registry, FORMAT_VERSION};
use crate::tabular::{TrainSpec, TrainedModel};

pub use datasets::DatasetStore;

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
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the model store at {path}: {reason}")]
    Store { path: String, reason: String },
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
        let datasets =
            Arc::new(DatasetStore::open(store.clone()).map_err(|e| store_err(e.to_string()))?);
        let job_store = JobStore::new(store.clone());
        let runner = training::runner(registry.clone(), job_store.clone(), settings.clone());
        let jobs = JobSystem::start(
            job_store,
            crate::jobs::JobOptions {
                workers: settings.jobs.workers,
                capacity: settings.jobs.queue_capacity,
                retain_finished: settings.jobs.retain_finished,
                max_active_per_model: settings.jobs.max_active_per_model,
                training_nice: settings.jobs.training_nice,
            },
            runner,
        )
        .map_err(|e| store_err(e.to_string()))?;
        let interactions = Arc::new(recommend::InteractionLogs::new(
            store,
            settings.interactions.max_events_per_model,
        ));
        Ok(Arc::new(AppState {
            settings,
            registry,
            jobs,
            datasets,
            interactions,
            metrics,
            keys,
        }))
    }
}

/// The model card of a freshly trained tabular model. Its `params` are those the
/// network was trained with (the request's, completed by sizing from the data).
pub fn card_for(
    name: &str,
    trained: &TrainedModel,
    _spec: &TrainSpec,
    fingerprint: Fingerprint,
    job_id: Option<String>,
) -> ModelCard {
    ModelCard {
        format: FORMAT_VERSION,
        name: name.to_string(),
        version: 0,
        created_at: chrono::Utc::now(),
        task: match trained.model.encoder.task() {
            crate::data::Task::Classification => "classification".into(),
            crate::data::Task::Regression => "regression".into(),
        },
        spec: ModelSpec::Tabular(trained.model.spec()),
        architecture: Some(trained.model.mlp.architecture()),
        params: serde_json::to_value(&trained.params).unwrap_or_default(),
        metrics: serde_json::to_value(&trained.metrics).unwrap_or_default(),
        history: trained.history.clone(),
        best_epoch: trained.best_epoch,
        schema: Some(trained.schema.clone()),
        fingerprint,
        timing: Some(trained.timing.clone()),
        job_id,
    }
}
