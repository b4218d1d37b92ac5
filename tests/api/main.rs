//! HTTP API integration tests: each test starts the application on a free
//! port with its own temporary model store.

mod datasets;
mod errors;
mod helpers;
mod inputs;
mod jobs;
mod openapi;
mod operations;
mod predict;
mod recommend;
mod registry;
mod restart;
mod training;
