//! HTTP API integration tests: each test starts the application on a free
//! port with its own temporary model store.

mod audio;
mod auth;
mod bad_input;
mod cli;
mod dashboard_data;
mod datasets;
mod errors;
mod fuzz_corpus;
mod grpc;
mod helpers;
mod inputs;
mod jobs;
mod limits;
mod logs;
mod model_files;
mod oip;
mod oip_binary;
mod openapi;
mod operations;
mod predict;
mod process;
mod readme;
mod recommend;
mod recommend_attributes;
mod recommend_scale;
mod registry;
mod replicas;
mod restart;
mod s3;
mod slow_clients;
mod store_compat;
mod training;
mod ui;
