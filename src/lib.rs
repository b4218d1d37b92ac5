//! Myelin: train small neural networks over HTTP and serve predictions on raw
//! records from one binary.
//!
//! Layers, top to bottom. A module imports only from its own layer or below
//! (tests may reach higher).
//! - entry points: [`cli`] (the commands), [`startup`] (bind, serve, shut down)
//!   with [`telemetry`] (logging, the Prometheus recorder), [`fuzz`] (the fuzz
//!   targets' entry points);
//! - protocols: [`api`] (HTTP) and [`grpc`] (the Open Inference Protocol);
//! - [`service`]: use cases, the shared application state;
//! - [`config`]: typed settings, holding the option types of the layers below;
//! - [`export`] (other runtimes' formats), [`jobs`] (training queue), [`registry`]
//!   (model versions);
//! - models: [`tabular`] and [`recommend`] (tabular's compressed models reuse
//!   recommend's `int8` weight columns);
//! - [`storage`]: every persisted byte, and [`codec`]: the one encoding of
//!   stored weights (safetensors), shared by the models and the registry;
//! - [`data`]: datasets and the feature pipeline;
//! - [`nn`]: the CPU engine;
//! - process-wide helpers: [`cooperative`] (yield points for background work,
//!   thread CPU time) and [`memory`] (returning freed heap to the system).

pub mod api;
pub mod cli;
pub mod codec;
pub mod config;
pub mod cooperative;
pub mod data;
pub mod export;
pub mod fuzz;
pub mod grpc;
pub mod jobs;
pub mod memory;
pub mod nn;
pub mod recommend;
pub mod registry;
pub mod service;
pub mod startup;
pub mod storage;
pub mod tabular;
pub mod telemetry;

pub use startup::Application;

/// The application router for `settings` (opens the store and starts the
/// training workers; must run inside a tokio runtime).
pub fn app(settings: config::Settings) -> anyhow::Result<axum::Router> {
    let state = service::AppState::start(settings, telemetry::metrics_handle())?;
    Ok(api::router(state))
}
