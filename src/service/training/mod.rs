//! Training jobs, from request to version, with each check made once.
//!
//! 1. [`TrainRequest::validate`] (`request.rs`) checks what needs no data and
//!    parses the parameters into the job's checked form, a [`ValidJob`]. A warm
//!    start's version is resolved and loaded (`warm.rs`), and the job fitted to it.
//! 2. [`submit`] stages the data (`stage.rs`): reads it, checks it against the
//!    job (`tabular::precheck`, or the interaction and attribute columns of a
//!    recommender) and stores it so that a restart, or another replica, can run
//!    the job; then it queues a record holding the job's [`JobSpec`].
//! 3. The runner (`run.rs`) rebuilds the job from the record without checking it
//!    again (only the rows of an uploaded dataset that submit did not sample are
//!    checked), trains, and publishes a new version.

mod error;
mod json;
mod request;
mod run;
mod stage;
#[cfg(test)]
mod tests;
mod warm;

pub use error::SubmitTrainError;
pub use request::{
    AttributeInput, AttributeSource, AttributeTable, DataSource, JobSpec, Plan, Submission,
    TaskKind, TrainRequest, ValidJob,
};
pub use run::{read_input, runner};

use std::cell::Cell;

use serde_json::Value;

use super::AppState;
use crate::data::{self, Table};
use crate::jobs::{JobRecord, JobStatus};
use crate::recommend::Interactions;
use crate::tabular;
use error::recommend_error;
use stage::{discard, stage_attributes, stage_input};

/// Checks a training request and queues it. Returns the queued job.
///
/// # Errors
/// The request or its data breaks a rule ([`TrainRequest::validate`], then the
/// checks of the data), a dataset does not exist, the store cannot take the
/// input, or the queue refuses the job.
pub fn submit(state: &AppState, request: TrainRequest) -> Result<JobRecord, SubmitTrainError> {
    let Submission {
        job,
        data,
        attributes,
    } = request.validate(&state.settings)?;
    let ValidJob { mut spec, mut plan } = job;
    if let (Plan::Tabular(train_spec), Some(init)) = (&mut plan, &spec.init_from) {
        // The version is pinned at submit: the runner continues from the same one.
        spec.init_from = Some(warm::attach(&state.registry, init, train_spec)?);
    }
    let caps = &state.settings.training;
    let limits = state.settings.read_limits();
    let id = uuid::Uuid::now_v7().to_string();
    let jobs = state.jobs.store().clone();
    // Labelled and all rows seen by the check (of the sample, for an uploaded dataset).
    let labelled = Cell::new((0usize, 0usize));
    let check = |table: &Table| -> Result<(), SubmitTrainError> {
        match &plan {
            Plan::Tabular(train_spec) => {
                tabular::precheck(table, train_spec, caps)?;
                labelled.set((
                    data::rows_with_target(table, &train_spec.target).len(),
                    table.rows(),
                ));
            }
            Plan::Recommendation(_) => {
                Interactions::from_table(table, &spec.columns_of_interactions())
                    .map_err(recommend_error)?;
            }
        }
        Ok(())
    };
    let (mut input, source) = stage_input(state, &jobs, &id, data, "input", &limits, &check)?;
    spec.source = source;
    // A dataset's sample stands for all its rows.
    let (sampled_labelled, sampled) = labelled.get();
    let labelled = match spec
        .source
        .strip_prefix("dataset:")
        .and_then(|id| state.datasets.get(id).ok().flatten())
    {
        Some(meta) if sampled > 0 => sampled_labelled * meta.rows / sampled,
        _ => sampled_labelled,
    };
    let staged = stage_attributes(
        state, &jobs, &id, &mut spec, attributes, &limits, &mut input,
    );
    if let Err(e) = staged {
        discard(&jobs, &input);
        return Err(e);
    }
    let record = JobRecord {
        id: id.clone(),
        model: spec.model.clone(),
        status: JobStatus::Queued,
        progress: 0.0,
        epoch: 0,
        epochs: match &plan {
            Plan::Recommendation(params) => params.epochs,
            Plan::Tabular(train_spec) => tabular::planned_epochs(train_spec, labelled),
        },
        history: Vec::new(),
        eta_secs: None,
        metrics: None,
        stages: Vec::new(),
        version: None,
        error: None,
        created_at: chrono::Utc::now(),
        started_at: None,
        finished_at: None,
        request: serde_json::to_value(&spec).unwrap_or(Value::Null),
        input: input.clone(),
    };
    state.jobs.submit(record).map_err(|e| {
        discard(&jobs, &input);
        SubmitTrainError::Submit(e)
    })
}
