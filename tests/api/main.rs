//! HTTP API integration tests: each test starts the application on a free
//! port with its own temporary model store.

mod auth;
mod bad_input;
mod datasets;
mod errors;
mod fuzz_corpus;
mod helpers;
mod inputs;
mod jobs;
mod openapi;
mod operations;
mod predict;
mod process;
mod recommend;
mod recommend_attributes;
mod registry;
mod replicas;
mod restart;
mod s3;
mod slow_clients;
mod store_compat;
mod training;
