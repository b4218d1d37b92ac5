//! Submitting training jobs and running them: the request is checked before
//! it is queued, its data is written to the store so a restart can run it,
//! and the runner trains and writes a new version.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::data::{self, ColumnKind, DataError, PipelineOptions, ReadLimits, Table, Task};
use crate::jobs::{
    JobControl, JobError, JobInput, JobRecord, JobStage, JobStatus, JobStore, RunFailure,
    RunOutcome, Runner,
};
use crate::nn::{Control, TrainError, TrainParams};
use crate::recommend::{
    self, AttributeColumns, Attributes, InteractionColumns, Interactions, RecommendError,
    RecommenderParams,
};
use crate::registry::{
    check_name, weights_bytes, ModelCard, ModelSpec, Registry, RegistryError, FORMAT_VERSION,
};
use crate::tabular::{self, ClassWeight, TabularError, TrainSpec, Validation};

use super::AppState;

/// What to train, without the data. Stored in the job record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Model name; each successful job adds a version.
    pub model: String,
    /// Column to predict (tabular tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `classification`, `regression` or `recommendation`; inferred from the target when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub task: Option<TaskKind>,
    /// Column kind overrides: column → numeric | boolean | categorical | text | image | audio | identifier.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub columns: BTreeMap<String, ColumnKind>,
    /// Columns never used as features.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Training parameters of the task (see the README); every key is optional.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub params: Value,
    /// `none`, `balanced`, or a weight per label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weight: Option<ClassWeight>,
    /// `{"kind": "auto"}` (default), `{"kind": "holdout"}` or
    /// `{"kind": "kfold", "folds": 5, "stratified": true}`.
    #[serde(default, skip_serializing_if = "is_auto")]
    pub validation: Validation,
    /// Feature pipeline options: `max_one_hot`, `hash_buckets`, `standardize`, `numeric_bins`, `text`, `text_columns`, `image`, `audio`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub pipeline: PipelineOptions,
    /// Recommendation: the interaction column names (`user`, `item`, `value`,
    /// `timestamp`; defaults `user_id`, `item_id`, `value`, `timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub interaction_columns: Option<InteractionColumns>,
    /// Recommendation: also train on the interactions logged with `POST /interactions`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_logged_interactions: bool,
    /// Recommendation: item attributes (filters, cold-start items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_attributes: Option<AttributeSource>,
    /// Recommendation: user attributes (segment popularity for users without history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_attributes: Option<AttributeSource>,
    /// Where the data came from: `rows`, `csv`, `body` or `dataset:<id>`.
    #[serde(default)]
    pub source: String,
}

/// What a training job learns.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Classification,
    Regression,
    Recommendation,
}

fn is_auto(validation: &Validation) -> bool {
    *validation == Validation::Auto
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// A `params` parsing error: the dotted field path and the message.
#[derive(Debug)]
pub struct ParamsError {
    pub field: String,
    pub message: String,
}

fn parse_params<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, ParamsError> {
    let value = if params.is_null() {
        empty_object()
    } else {
        params.clone()
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let field = if inner == "." || inner.is_empty() {
            "params".to_string()
        } else {
            format!("params.{inner}")
        };
        ParamsError {
            message: format!("`{field}`: {}", e.inner()),
            field,
        }
    })
}

impl JobSpec {
    /// Whether this is a recommendation job.
    pub fn is_recommendation(&self) -> bool {
        self.task == Some(TaskKind::Recommendation)
    }

    /// Checks that `params` parse for the task, naming the offending field.
    ///
    /// # Errors
    /// The field path and message of the first parse error.
    pub fn check_params(&self) -> Result<(), ParamsError> {
        if self.is_recommendation() {
            parse_params::<RecommenderParams>(&self.params).map(|_| ())
        } else {
            parse_params::<TrainParams>(&self.params).map(|_| ())
        }
    }

    fn recommender_params(&self) -> Result<RecommenderParams, SubmitTrainError> {
        parse_params(&self.params).map_err(|e| invalid("invalid_parameter", e.message))
    }

    fn columns_of_interactions(&self) -> InteractionColumns {
        self.interaction_columns.clone().unwrap_or_default()
    }

    fn train_spec(&self) -> Result<TrainSpec, SubmitTrainError> {
        let target = self.target.clone().ok_or_else(|| {
            invalid(
                "missing_field",
                "`target` is required for classification and regression",
            )
        })?;
        let params: TrainParams =
            parse_params(&self.params).map_err(|e| invalid("invalid_parameter", e.message))?;
        Ok(TrainSpec {
            target,
            task: match self.task {
                Some(TaskKind::Classification) => Some(Task::Classification),
                Some(TaskKind::Regression) => Some(Task::Regression),
                _ => None,
            },
            overrides: self.columns.clone(),
            ignore: self.ignore.clone(),
            params,
            pipeline: self.pipeline.clone(),
            class_weight: self.class_weight.clone(),
            validation: self.validation.clone(),
            explicit: tabular::explicit_keys(&self.params),
        })
    }
}

/// The data of a training request.
pub enum TrainData {
    /// Inline JSON objects.
    Rows(Vec<Map<String, Value>>),
    /// CSV text (inline field or request body).
    Csv(Vec<u8>),
    /// NDJSON request body.
    Ndjson(Vec<u8>),
    /// An uploaded dataset id.
    Dataset(String),
}

/// Which columns of an attribute table to read, as given in a request; `id` defaults to
/// the interaction column of the same kind.
#[derive(Clone, Debug, Default)]
pub struct AttributeColumnsIn {
    pub id: Option<String>,
    pub columns: Vec<String>,
    pub separator: Option<String>,
}

/// Recommendation: item and user attribute tables given with a training request.
#[derive(Default)]
pub struct AttributeInputs {
    pub items: Option<(TrainData, AttributeColumnsIn)>,
    pub users: Option<(TrainData, AttributeColumnsIn)>,
}

/// Where a job's attribute table is and how to read it. Stored in the job record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeSource {
    /// `{id, columns, separator}`.
    #[schema(value_type = Object)]
    pub columns: AttributeColumns,
    /// `rows`, `csv` or `dataset:<id>`.
    pub source: String,
    /// The stored table.
    #[schema(value_type = Object)]
    pub input: JobInput,
}

/// Why a training request was refused before queuing.
#[derive(Debug, thiserror::Error)]
pub enum SubmitTrainError {
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("dataset `{0}` does not exist")]
    DatasetNotFound(String),
    /// The job input could not be written to or read from the store.
    #[error("could not store the job input: {0}")]
    Store(crate::storage::StoreError),
    #[error(transparent)]
    Submit(#[from] crate::jobs::SubmitError),
    /// The data breaks a rule or a limit.
    #[error(transparent)]
    Data(DataError),
}

fn invalid(code: &'static str, message: impl Into<String>) -> SubmitTrainError {
    SubmitTrainError::Invalid {
        code,
        message: message.into(),
    }
}

impl From<TabularError> for SubmitTrainError {
    fn from(e: TabularError) -> Self {
        match e {
            TabularError::Data(d) => SubmitTrainError::Data(d),
            other => invalid(other.code(), other.to_string()),
        }
    }
}

impl From<DataError> for SubmitTrainError {
    fn from(e: DataError) -> Self {
        SubmitTrainError::Data(e)
    }
}

/// Checks a training request and queues it. Returns the queued job.
pub fn submit(
    state: &AppState,
    mut spec: JobSpec,
    data: TrainData,
    attributes: AttributeInputs,
) -> Result<JobRecord, SubmitTrainError> {
    check_name("model name", &spec.model).map_err(|e| invalid("invalid_name", e.to_string()))?;
    let caps = &state.settings.training;
    let limits = state.settings.read_limits();
    let id = uuid::Uuid::now_v7().to_string();
    let jobs = state.jobs.store().clone();
    let recommendation = spec.is_recommendation();
    let has_attributes = attributes.items.is_some() || attributes.users.is_some();
    if has_attributes && !recommendation {
        return Err(invalid(
            "invalid_body",
            "`item_attributes` and `user_attributes` apply only to `\"task\": \"recommendation\"`",
        ));
    }
    let train_spec = if recommendation {
        None
    } else {
        Some(spec.train_spec()?)
    };
    let rparams = if recommendation {
        let params = spec.recommender_params()?;
        params
            .check(&state.settings.recommend)
            .map_err(|e| invalid("invalid_parameter", e.to_string()))?;
        Some(params)
    } else {
        None
    };
    // Labelled and all rows seen by the check (of the sample, for an uploaded dataset).
    let labelled = std::cell::Cell::new((0usize, 0usize));
    let precheck = |table: &Table| -> Result<(), SubmitTrainError> {
        match &train_spec {
            Some(ts) => {
                tabular::precheck(table, ts, caps)?;
                labelled.set((
                    data::rows_with_target(table, &ts.target).len(),
                    table.rows(),
                ));
            }
            None => {
                Interactions::from_table(table, &spec.columns_of_interactions())
                    .map_err(recommend_error)?;
            }
        }
        Ok(())
    };
    let (mut input, source) = stage_input(state, &jobs, &id, data, "input", &limits, &precheck)?;
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
        epochs: match (&rparams, &train_spec) {
            (Some(p), _) => p.epochs,
            (None, Some(ts)) => tabular::planned_epochs(ts, labelled),
            (None, None) => 0,
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

/// Deletes the files a refused job had staged.
fn discard(jobs: &JobStore, input: &JobInput) {
    let owned = input.owned.then_some(&input.path);
    jobs.remove_inputs(owned.into_iter().chain(&input.extra));
}

/// Parses a request's data, runs `check` on it (on the first sample rows of a dataset),
/// and then stores it as a job file (`_jobs/<id>-<suffix>.<format>`) or points at the
/// uploaded dataset. Returns the input and its source label; nothing is written when
/// the check fails.
fn stage_input(
    state: &AppState,
    jobs: &JobStore,
    id: &str,
    data: TrainData,
    suffix: &str,
    limits: &ReadLimits,
    check: &dyn Fn(&Table) -> Result<(), SubmitTrainError>,
) -> Result<(JobInput, String), SubmitTrainError> {
    if let TrainData::Dataset(dataset_id) = data {
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
        TrainData::Rows(rows) => {
            let table = data::table_from_records(&rows, limits)?;
            let mut bytes = Vec::new();
            for row in &rows {
                serde_json::to_writer(&mut bytes, row)
                    .map_err(|e| invalid("invalid_body", e.to_string()))?;
                bytes.push(b'\n');
            }
            (table, bytes, "ndjson", "rows")
        }
        TrainData::Csv(bytes) => (data::read_csv(&bytes[..], limits)?, bytes, "csv", "csv"),
        TrainData::Ndjson(bytes) => (
            data::read_ndjson(BufReader::new(&bytes[..]), limits)?,
            bytes,
            "ndjson",
            "body",
        ),
        TrainData::Dataset(_) => unreachable!("handled above"),
    };
    if table.rows() == 0 {
        return Err(invalid("empty_dataset", "the dataset has no rows"));
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
/// `input.extra`.
fn stage_attributes(
    state: &AppState,
    jobs: &JobStore,
    id: &str,
    spec: &mut JobSpec,
    attributes: AttributeInputs,
    limits: &ReadLimits,
    input: &mut JobInput,
) -> Result<(), SubmitTrainError> {
    let defaults = spec.columns_of_interactions();
    for (field, given, default_id) in [
        ("item_attributes", attributes.items, defaults.item),
        ("user_attributes", attributes.users, defaults.user),
    ] {
        let Some((data, columns)) = given else {
            continue;
        };
        let columns = AttributeColumns {
            id: columns.id.unwrap_or(default_id),
            columns: columns.columns,
            separator: columns.separator,
        };
        let check = |table: &Table| {
            Attributes::from_table(table, &columns)
                .map(|_| ())
                .map_err(recommend_error)
        };
        let (staged, source) = stage_input(state, jobs, id, data, field, limits, &check)
            .map_err(|e| prefixed(field, e))?;
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

/// Names the request field an invalid-data refusal is about.
fn prefixed(field: &str, e: SubmitTrainError) -> SubmitTrainError {
    match e {
        SubmitTrainError::Invalid { code, message } => SubmitTrainError::Invalid {
            code,
            message: format!("`{field}`: {message}"),
        },
        other => other,
    }
}

/// Reads a job input file.
pub fn read_input(
    jobs: &JobStore,
    input: &JobInput,
    limits: &ReadLimits,
) -> Result<(Table, bytes::Bytes), DataError> {
    let bytes = jobs.read_input(&input.path).map_err(|e| DataError::Io {
        reason: e.to_string(),
    })?;
    let table = data::read_table(&bytes, input.format.parse()?, limits)?;
    Ok((table, bytes))
}

/// The runner the job system calls on a blocking thread.
pub fn runner(
    registry: Arc<Registry>,
    jobs: JobStore,
    settings: Settings,
    interactions: Arc<super::recommend::InteractionLogs>,
) -> Runner {
    Arc::new(move |record: &JobRecord, control: &JobControl| {
        if let Some(outcome) = earlier_attempt(&registry, record, control) {
            return Ok(outcome);
        }
        run_job(&registry, &jobs, &settings, &interactions, record, control)
    })
}

/// A version an earlier run of this job published before its replica died
/// (it wrote the version but not the job's end): adopted, so a job never
/// produces two versions.
fn earlier_attempt(
    registry: &Registry,
    record: &JobRecord,
    control: &JobControl,
) -> Option<RunOutcome> {
    if control.attempt <= 1 {
        return None;
    }
    let versions = registry.versions(&record.model).ok()?;
    // Versions are numbered in publication order: the earlier run's is among
    // the newest.
    versions.iter().rev().take(32).find_map(|&version| {
        let card = registry.card(&record.model, version).ok()?;
        (card.job_id.as_deref() == Some(record.id.as_str())).then(|| {
            tracing::info!(job_id = %record.id, version, "adopting the version an earlier run published");
            RunOutcome {
                version,
                metrics: card.metrics.clone(),
                stages: Vec::new(),
            }
        })
    })
}

/// Refuses to publish when this replica no longer owns the job (cluster).
fn check_fence(control: &JobControl) -> Result<(), RunFailure> {
    if control.may_publish() {
        Ok(())
    } else {
        Err(RunFailure::Cancelled)
    }
}

/// The failure code of a job whose input could not be read:
/// `store_unavailable` when the store could not be reached, else the data
/// error's.
fn input_code(jobs: &JobStore, e: &DataError) -> &'static str {
    if matches!(e, DataError::Io { .. }) && !jobs.store().is_healthy() {
        "store_unavailable"
    } else {
        e.code()
    }
}

fn failed(code: &str, message: impl Into<String>) -> RunFailure {
    RunFailure::Failed(JobError {
        code: code.to_string(),
        message: message.into(),
    })
}

fn run_job(
    registry: &Registry,
    jobs: &JobStore,
    settings: &Settings,
    interactions: &super::recommend::InteractionLogs,
    record: &JobRecord,
    control: &JobControl,
) -> Result<RunOutcome, RunFailure> {
    let spec: JobSpec = serde_json::from_value(record.request.clone())
        .map_err(|e| failed("invalid_job", format!("unreadable job request: {e}")))?;
    let (table, bytes) = read_input(jobs, &record.input, &settings.read_limits())
        .map_err(|e| failed(input_code(jobs, &e), e.to_string()))?;
    if spec.is_recommendation() {
        return run_recommendation(
            registry,
            jobs,
            settings,
            interactions,
            &spec,
            &table,
            &bytes,
            record,
            control,
        );
    }
    let train_spec = spec
        .train_spec()
        .map_err(|e| failed("invalid_job", e.to_string()))?;
    let mut on_epoch = |r: &crate::nn::EpochReport| control.epoch(r);
    let trained = tabular::train(
        &table,
        &train_spec,
        &settings.training,
        Control {
            on_epoch: &mut on_epoch,
            cancel: &control.cancel,
        },
    )
    .map_err(|e| match e {
        TabularError::Train(TrainError::Cancelled) => RunFailure::Cancelled,
        other => failed(other.code(), other.to_string()),
    })?;
    if control.cancel.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RunFailure::Cancelled);
    }
    let fingerprint = data::fingerprint(&bytes, table.rows(), table.columns.len());
    let card = super::card_for(
        &spec.model,
        &trained,
        &train_spec,
        fingerprint,
        Some(record.id.clone()),
    );
    let weights = weights_bytes(&trained.model.mlp)
        .map_err(|e| failed("store_write_failed", e.to_string()))?;
    check_fence(control)?;
    let version = registry.save(&card, &weights).map_err(save_failure)?;
    let metrics = serde_json::to_value(&trained.metrics).unwrap_or(Value::Null);
    Ok(RunOutcome {
        version,
        metrics,
        stages: Vec::new(),
    })
}

/// Maps an engine error to a submit refusal with a stable code.
fn recommend_error(e: RecommendError) -> SubmitTrainError {
    invalid(recommend_code(&e), e.to_string())
}

fn recommend_code(e: &RecommendError) -> &'static str {
    match e {
        RecommendError::Params(_) => "invalid_parameter",
        RecommendError::MissingColumn { .. } => "unknown_column",
        RecommendError::BadCell { .. } => "invalid_value",
        RecommendError::Data(_) => "invalid_data",
        RecommendError::Request(_) => "invalid_request",
        RecommendError::Cancelled => "cancelled",
        RecommendError::NonFinite { .. } => "training_diverged",
        RecommendError::Artifact(_) => "store_write_failed",
    }
}

#[allow(clippy::too_many_arguments)]
fn run_recommendation(
    registry: &Registry,
    jobs: &JobStore,
    settings: &Settings,
    logs: &super::recommend::InteractionLogs,
    spec: &JobSpec,
    table: &Table,
    bytes: &[u8],
    record: &JobRecord,
    control: &JobControl,
) -> Result<RunOutcome, RunFailure> {
    let limits = &settings.read_limits();
    let caps = &settings.recommend;
    let params = spec
        .recommender_params()
        .map_err(|e| failed("invalid_parameter", e.to_string()))?;
    let mut interactions = Interactions::from_table(table, &spec.columns_of_interactions())
        .map_err(|e| failed(recommend_code(&e), e.to_string()))?;
    if spec.include_logged_interactions {
        let logged = logs
            .read_all(&spec.model)
            .map_err(|e| failed("store_read_failed", e.to_string()))?;
        super::recommend::append_logged(&mut interactions, &logged);
    }
    let read_attributes = |source: &Option<AttributeSource>, field: &str| {
        let Some(source) = source else {
            return Ok(None);
        };
        let (table, _) = read_input(jobs, &source.input, limits)
            .map_err(|e| failed(input_code(jobs, &e), format!("`{field}`: {e}")))?;
        Attributes::from_table(&table, &source.columns)
            .map(Some)
            .map_err(|e| failed(recommend_code(&e), format!("`{field}`: {e}")))
    };
    let items = read_attributes(&spec.item_attributes, "item_attributes")?;
    let users = read_attributes(&spec.user_attributes, "user_attributes")?;
    let mut on_epoch = |r: &crate::nn::EpochReport| control.epoch(r);
    let report = recommend::fit_with_attributes(
        &interactions,
        items.as_ref(),
        users.as_ref(),
        &params,
        caps,
        Control {
            on_epoch: &mut on_epoch,
            cancel: &control.cancel,
        },
    )
    .map_err(|e| match e {
        RecommendError::Cancelled => RunFailure::Cancelled,
        other => failed(recommend_code(&other), other.to_string()),
    })?;
    if control.cancel.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RunFailure::Cancelled);
    }
    let model = report
        .model
        .with_attributes(items, users, caps.max_items)
        .map_err(|e| failed(recommend_code(&e), e.to_string()))?;
    let metrics = serde_json::to_value(&report.metrics).unwrap_or(Value::Null);
    let model = &model;
    let card = ModelCard {
        format: FORMAT_VERSION,
        name: spec.model.clone(),
        version: 0,
        created_at: chrono::Utc::now(),
        task: "recommendation".into(),
        spec: ModelSpec::Recommender(Box::new(model.spec().clone())),
        architecture: None,
        params: serde_json::to_value(&params).unwrap_or(Value::Null),
        metrics: metrics.clone(),
        history: report.history.clone(),
        best_epoch: model.spec().epochs_trained,
        schema: None,
        fingerprint: data::fingerprint(bytes, table.rows(), table.columns.len()),
        timing: None,
        job_id: Some(record.id.clone()),
    };
    let files = model
        .artifact_files()
        .map_err(|e| failed("store_write_failed", e.to_string()))?;
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    check_fence(control)?;
    let version = registry.save_files(&card, &files).map_err(save_failure)?;
    let stages = report
        .stages
        .iter()
        .map(|s| JobStage {
            stage: s.stage.clone(),
            wall_secs: s.wall_secs,
            cpu_secs: s.cpu_secs,
        })
        .collect();
    Ok(RunOutcome {
        version,
        metrics,
        stages,
    })
}

/// A job whose version could not be stored: `store_unavailable` when the
/// store could not be reached after the registry's retries.
fn save_failure(e: RegistryError) -> RunFailure {
    let code = match e {
        RegistryError::Unavailable(_) => "store_unavailable",
        _ => "store_write_failed",
    };
    failed(code, format!("could not write the model version: {e}"))
}
