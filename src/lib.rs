//! Myelin: train small neural networks over HTTP and serve predictions on raw
//! records from one binary.
//!
//! Layers, top to bottom (nothing below imports from above): [`api`] and
//! [`grpc`] (protocols), [`service`] (use cases), [`export`] (other runtimes'
//! formats), [`jobs`] (training queue), [`registry`] (model versions),
//! [`recommend`] and [`tabular`] (models), [`storage`] (every persisted
//! byte), [`data`] (datasets and the feature pipeline), [`nn`] (the CPU engine),
//! [`cooperative`] (yield points and the thread CPU clock for background work).

pub mod api;
pub mod cli;
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
