//! HTTP API integration tests: each test starts the application on a free
//! port with its own temporary model store.

mod audio;
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
mod restart;
mod slow_clients;
mod training;
