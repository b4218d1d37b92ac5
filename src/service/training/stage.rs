//! Staging a job's data at submit: read it, check it against the job, and
//! store it as a job file (or point at the uploaded dataset) so that any
//! replica, after any restart, can run the job.

use std::io::BufReader;

use super::error::{in_attributes, invalid, recommend_error, SubmitTrainError};
use super::request::{AttributeInput, AttributeSource, DataSource, JobSpec};
use crate::data::{self, ReadLimits, Table};
use crate::jobs::{JobInput, JobStore};
use crate::recommend::Attributes;
use crate::service::{AppState, ErrorCode};

/// Reads a request's data, runs `check` on it (on the first sample rows of a
/// dataset), and then stores it as a job file (`_jobs/<id>-<suffix>.<format>`)
/// or points at the uploaded dataset. Returns the input and its source label;
/// nothing is written when the check fails.
pub(super) fn stage_input(
    state: &AppState,
    jobs: &JobStore,
    id: &str,
    data: DataSource,
    suffix: &str,
    limits: &ReadLimits,
    check: &dyn Fn(&Table) -> Result<(), SubmitTrainError>,
) -> Result<(JobInput, String), SubmitTrainError> {
    if let DataSource::Dataset(dataset_id) = data {
        let meta = state
            .datasets
            .get(&dataset_id)
            .map_err(SubmitTrainError::Store)?
            .ok_or_else(|| SubmitTrainError::DatasetNotFound(dataset_id.clone()))?;
        let sample = state.datasets.sample(&meta, limits)?;
        check(&sample)?;
        let input = JobInput {
            path: state.datasets.relative_path(&meta),
            format: meta.format.clone(),
            owned: false,
            extra: Vec::new(),
            shared: Vec::new(),
        };
        return Ok((input, format!("dataset:{dataset_id}")));
    }
    let (table, bytes, format, source) = match data {
        DataSource::Rows(rows) => {
            let table = data::table_from_records(&rows, limits)?;
            let mut bytes = Vec::new();
            for row in &rows {
                serde_json::to_writer(&mut bytes, row)
                    .map_err(|e| invalid(ErrorCode::InvalidBody, e.to_string()))?;
                bytes.push(b'\n');
            }
            (table, bytes, "ndjson", "rows")
        }
        DataSource::Csv(bytes) => (data::read_csv(&bytes[..], limits)?, bytes, "csv", "csv"),
        DataSource::Body(bytes) => (
            data::read_ndjson(BufReader::new(&bytes[..]), limits)?,
            bytes,
            "ndjson",
            "body",
        ),
        DataSource::Dataset(_) => unreachable!("handled above"),
    };
    if table.rows() == 0 {
        return Err(invalid(ErrorCode::EmptyDataset, "the dataset has no rows"));
    }
    check(&table)?;
    let relative = JobStore::input_key(id, suffix, format);
    jobs.put_input(&relative, bytes)
        .map_err(SubmitTrainError::Store)?;
    let input = JobInput {
        path: relative,
        format: format.to_string(),
        owned: true,
        extra: Vec::new(),
        shared: Vec::new(),
    };
    Ok((input, source.to_string()))
}

/// Checks and stages the attribute tables of a recommendation request into
/// `spec.item_attributes` / `spec.user_attributes`; owned files are added to
/// `input.extra`, uploaded datasets to `input.shared`.
pub(super) fn stage_attributes(
    state: &AppState,
    jobs: &JobStore,
    id: &str,
    spec: &mut JobSpec,
    attributes: Vec<AttributeInput>,
    limits: &ReadLimits,
    input: &mut JobInput,
) -> Result<(), SubmitTrainError> {
    for AttributeInput {
        field,
        data,
        columns,
    } in attributes
    {
        let check = |table: &Table| {
            Attributes::from_table(table, &columns)
                .map(|_| ())
                .map_err(recommend_error)
        };
        let (staged, source) = stage_input(state, jobs, id, data, field, limits, &check)
            .map_err(|e| in_attributes(field, e))?;
        if staged.owned {
            input.extra.push(staged.path.clone());
        } else {
            input.shared.push(staged.path.clone());
        }
        let source = AttributeSource {
            columns,
            source,
            input: staged,
        };
        if field == "item_attributes" {
            spec.item_attributes = Some(source);
        } else {
            spec.user_attributes = Some(source);
        }
    }
    Ok(())
}

/// Deletes the files a refused job had staged.
pub(super) fn discard(jobs: &JobStore, input: &JobInput) {
    let owned = input.owned.then_some(&input.path);
    jobs.remove_inputs(owned.into_iter().chain(&input.extra));
}
