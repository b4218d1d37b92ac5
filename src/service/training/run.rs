//! Running a queued job: rebuild it from its record, read its input, train,
//! and publish a new version. What submit checked is not checked again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::error::{recommend_code, SubmitTrainError};
use super::request::{AttributeSource, JobSpec, Plan, ValidJob};
use crate::config::Settings;
use crate::data::{self, DataError, ReadLimits, Table};
use crate::jobs::{
    JobControl, JobError, JobInput, JobRecord, JobStage, JobStore, RunFailure, RunOutcome, Runner,
};
use crate::nn::{Control, TrainError};
use crate::recommend::{self, Attributes, Interactions, RecommendError, RecommenderParams};
use crate::registry::{weights_bytes, ModelCard, Registry, RegistryError};
use crate::service::recommend::InteractionLogs;
use crate::service::ErrorCode;
use crate::tabular::{self, TabularError, TrainSpec};

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

/// The runner the job system calls on the job's own thread.
pub fn runner(
    registry: Arc<Registry>,
    jobs: JobStore,
    settings: Settings,
    interactions: Arc<InteractionLogs>,
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
        ErrorCode::StoreUnavailable.as_str()
    } else {
        e.code()
    }
}

fn failed(code: impl Into<&'static str>, message: impl Into<String>) -> RunFailure {
    RunFailure::Failed(JobError {
        code: code.into().to_string(),
        message: message.into(),
    })
}

fn cancelled(control: &JobControl) -> bool {
    control.cancel.load(Ordering::SeqCst)
}

fn run_job(
    registry: &Registry,
    jobs: &JobStore,
    settings: &Settings,
    interactions: &InteractionLogs,
    record: &JobRecord,
    control: &JobControl,
) -> Result<RunOutcome, RunFailure> {
    let spec: JobSpec = serde_json::from_value(record.request.clone()).map_err(|e| {
        failed(
            ErrorCode::InvalidJob,
            format!("unreadable job request: {e}"),
        )
    })?;
    let (table, bytes) = read_input(jobs, &record.input, &settings.read_limits())
        .map_err(|e| failed(input_code(jobs, &e), e.to_string()))?;
    let recommendation = spec.is_recommendation();
    let job = ValidJob::from_spec(spec).map_err(|e| {
        let code = match recommendation {
            true => ErrorCode::InvalidParameter,
            false => ErrorCode::InvalidJob,
        };
        failed(code, e.to_string())
    })?;
    let fingerprint = data::fingerprint(&bytes, table.rows(), table.columns.len());
    let run = Run {
        registry,
        jobs,
        settings,
        record,
        control,
        table: &table,
        fingerprint,
    };
    match &job.plan {
        Plan::Tabular(train_spec) => run.tabular(&job.spec, train_spec),
        Plan::Recommendation(params) => run.recommendation(interactions, &job.spec, params),
    }
}

/// One run of a job whose input was read.
struct Run<'a> {
    registry: &'a Registry,
    jobs: &'a JobStore,
    settings: &'a Settings,
    record: &'a JobRecord,
    control: &'a JobControl,
    table: &'a Table,
    fingerprint: data::Fingerprint,
}

impl Run<'_> {
    fn tabular(&self, spec: &JobSpec, train_spec: &TrainSpec) -> Result<RunOutcome, RunFailure> {
        let caps = &self.settings.training;
        let mut warm_spec;
        let train_spec = match &spec.init_from {
            Some(init) => {
                warm_spec = train_spec.clone();
                super::warm::attach(self.registry, init, &mut warm_spec).map_err(|e| {
                    let code = match &e {
                        SubmitTrainError::InitFrom(RegistryError::ModelNotFound(_)) => {
                            ErrorCode::ModelNotFound.as_str()
                        }
                        SubmitTrainError::InitFrom(RegistryError::VersionNotFound { .. }) => {
                            ErrorCode::VersionNotFound.as_str()
                        }
                        SubmitTrainError::InitFrom(RegistryError::Unavailable(_)) => {
                            ErrorCode::StoreUnavailable.as_str()
                        }
                        SubmitTrainError::Tabular(t) => t.code(),
                        _ => ErrorCode::InvalidJob.as_str(),
                    };
                    failed(code, e.to_string())
                })?;
                &warm_spec
            }
            None => train_spec,
        };
        let tabular_failure = |e: TabularError| match e {
            TabularError::Train(TrainError::Cancelled) => RunFailure::Cancelled,
            other => failed(other.code(), other.to_string()),
        };
        // Submit checked the whole of staged data, but only a sample of an
        // uploaded dataset: the rest of the dataset is checked here.
        let schema = if self.record.input.owned {
            data::infer_schema(self.table, &train_spec.overrides, &train_spec.ignore)
                .map_err(|e| tabular_failure(e.into()))?
        } else {
            tabular::check_table(self.table, train_spec, caps).map_err(tabular_failure)?
        };
        let mut on_epoch = |r: &crate::nn::EpochReport| self.control.epoch(r);
        let trained = tabular::train_checked(
            self.table,
            schema,
            train_spec,
            caps,
            Control {
                on_epoch: &mut on_epoch,
                cancel: &self.control.cancel,
            },
        )
        .map_err(tabular_failure)?;
        if cancelled(self.control) {
            return Err(RunFailure::Cancelled);
        }
        let card = ModelCard::tabular(
            &spec.model,
            &trained,
            self.fingerprint.clone(),
            Some(self.record.id.clone()),
        );
        let weights = weights_bytes(&trained.model.mlp)
            .map_err(|e| failed(ErrorCode::StoreWriteFailed, e.to_string()))?;
        check_fence(self.control)?;
        let version = self.registry.save(&card, &weights).map_err(save_failure)?;
        let metrics = serde_json::to_value(&trained.metrics).unwrap_or(Value::Null);
        Ok(RunOutcome {
            version,
            metrics,
            stages: Vec::new(),
        })
    }

    fn recommendation(
        &self,
        logs: &InteractionLogs,
        spec: &JobSpec,
        params: &RecommenderParams,
    ) -> Result<RunOutcome, RunFailure> {
        let caps = &self.settings.recommend;
        let mut interactions =
            Interactions::from_table(self.table, &spec.columns_of_interactions())
                .map_err(|e| failed(recommend_code(&e), e.to_string()))?;
        if spec.include_logged_interactions {
            let logged = logs
                .read_all(&spec.model)
                .map_err(|e| failed(ErrorCode::StoreReadFailed, e.to_string()))?;
            crate::service::recommend::append_logged(&mut interactions, &logged);
        }
        let items = self.attributes(&spec.item_attributes, "item_attributes")?;
        let users = self.attributes(&spec.user_attributes, "user_attributes")?;
        let mut on_epoch = |r: &crate::nn::EpochReport| self.control.epoch(r);
        let report = recommend::fit_with_attributes(
            &interactions,
            items.as_ref(),
            users.as_ref(),
            params,
            caps,
            Control {
                on_epoch: &mut on_epoch,
                cancel: &self.control.cancel,
            },
        )
        .map_err(|e| match e {
            RecommendError::Cancelled => RunFailure::Cancelled,
            other => failed(recommend_code(&other), other.to_string()),
        })?;
        if cancelled(self.control) {
            return Err(RunFailure::Cancelled);
        }
        let model = report
            .model
            .with_attributes(items, users, caps.max_items)
            .map_err(|e| failed(recommend_code(&e), e.to_string()))?;
        let card = ModelCard::recommender(
            &spec.model,
            &model,
            params,
            report.metrics.as_ref(),
            &report.history,
            self.fingerprint.clone(),
            Some(self.record.id.clone()),
        );
        let files = model
            .artifact_files()
            .map_err(|e| failed(ErrorCode::StoreWriteFailed, e.to_string()))?;
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        check_fence(self.control)?;
        let version = self
            .registry
            .save_files(&card, &files)
            .map_err(save_failure)?;
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
            metrics: card.metrics,
            stages,
        })
    }

    /// Reads a recommendation job's attribute table, when it has one.
    fn attributes(
        &self,
        source: &Option<AttributeSource>,
        field: &str,
    ) -> Result<Option<Attributes>, RunFailure> {
        let Some(source) = source else {
            return Ok(None);
        };
        let (table, _) = read_input(self.jobs, &source.input, &self.settings.read_limits())
            .map_err(|e| failed(input_code(self.jobs, &e), format!("`{field}`: {e}")))?;
        Attributes::from_table(&table, &source.columns)
            .map(Some)
            .map_err(|e| failed(recommend_code(&e), format!("`{field}`: {e}")))
    }
}

/// A job whose version could not be stored: `store_unavailable` when the
/// store could not be reached after the registry's retries.
fn save_failure(e: RegistryError) -> RunFailure {
    let code = match e {
        RegistryError::Unavailable(_) => ErrorCode::StoreUnavailable,
        _ => ErrorCode::StoreWriteFailed,
    };
    failed(code, format!("could not write the model version: {e}"))
}
