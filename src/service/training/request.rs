//! A training request, from the API's reading of it to the job's checked form.
//!
//! [`TrainRequest`] is what the API reads: the JSON body, or the query string of
//! a raw CSV / NDJSON body with the body as its data. [`TrainRequest::validate`]
//! runs every check that needs no data, in the order answers have always come,
//! and parses the parameters once into the job's [`Plan`]. Its [`ValidJob`] is
//! what the job record stores (the [`JobSpec`], as `request`) and what the runner
//! runs: [`ValidJob::from_spec`] rebuilds it from the record, parsing again but
//! checking nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{invalid, SubmitTrainError};
use super::json;
use crate::config::Settings;
use crate::data::{ColumnKind, PipelineOptions, Task};
use crate::jobs::JobInput;
use crate::nn::TrainParams;
use crate::recommend::{AttributeColumns, InteractionColumns, RecommenderParams};
use crate::registry::check_name;
use crate::service::ErrorCode;
use crate::tabular::{self, ClassWeight, InitFrom, SearchOptions, TrainSpec, Validation};

/// A training request: what to train, and the data to train on.
#[derive(Debug, Deserialize)]
#[serde(from = "json::TrainRequest")]
pub struct TrainRequest {
    /// Everything but the data, as the job record stores it; the data's `source`
    /// and the attribute tables are filled in when they are staged.
    pub spec: JobSpec,
    /// The data; `None` when the request gave none, or several, of `data`, `csv`
    /// and `dataset`.
    pub data: Option<DataSource>,
    /// Recommendation: the item attribute table.
    pub item_attributes: Option<AttributeTable>,
    /// Recommendation: the user attribute table.
    pub user_attributes: Option<AttributeTable>,
}

/// Where the rows of a request (or of one of its attribute tables) are.
#[derive(Debug)]
pub enum DataSource {
    /// `data`: inline JSON objects, stored as NDJSON (source `rows`).
    Rows(Vec<Map<String, Value>>),
    /// `csv`, or a `text/csv` body (source `csv`).
    Csv(Vec<u8>),
    /// An `application/x-ndjson` body (source `body`).
    Body(Vec<u8>),
    /// `dataset`: the id of an uploaded dataset (source `dataset:<id>`).
    Dataset(String),
}

impl DataSource {
    /// The one source given as `data`, `csv` or `dataset`; `None` unless exactly one is.
    fn one_of(
        data: Option<Vec<Map<String, Value>>>,
        csv: Option<String>,
        dataset: Option<String>,
    ) -> Option<DataSource> {
        match (data, csv, dataset) {
            (Some(rows), None, None) => Some(DataSource::Rows(rows)),
            (None, Some(csv), None) => Some(DataSource::Csv(csv.into_bytes())),
            (None, None, Some(id)) => Some(DataSource::Dataset(id)),
            _ => None,
        }
    }
}

/// A request's table of item or user attributes.
#[derive(Debug)]
pub struct AttributeTable {
    /// Id column; default: the interaction column of the same kind.
    pub id: Option<String>,
    /// Attribute columns; empty reads every other column.
    pub columns: Vec<String>,
    /// Splits cells into several values.
    pub separator: Option<String>,
    /// The rows; `None` unless exactly one of `data`, `csv` and `dataset` was given.
    pub data: Option<DataSource>,
}

impl From<json::TrainRequest> for TrainRequest {
    fn from(r: json::TrainRequest) -> TrainRequest {
        TrainRequest {
            spec: JobSpec {
                model: r.model,
                target: r.target,
                task: r.task,
                columns: r.columns,
                ignore: r.ignore,
                params: r.params.unwrap_or_else(empty_object),
                class_weight: r.class_weight,
                validation: r.validation,
                pipeline: r.pipeline,
                init_from: r.init_from,
                search: r.search,
                interaction_columns: r.interaction_columns,
                include_logged_interactions: r.include_logged_interactions,
                item_attributes: None,
                user_attributes: None,
                source: String::new(),
            },
            data: DataSource::one_of(r.data, r.csv, r.dataset),
            item_attributes: r.item_attributes.map(AttributeTable::from),
            user_attributes: r.user_attributes.map(AttributeTable::from),
        }
    }
}

impl From<json::AttributeTable> for AttributeTable {
    fn from(t: json::AttributeTable) -> AttributeTable {
        AttributeTable {
            id: t.id,
            columns: t.columns,
            separator: t.separator,
            data: DataSource::one_of(t.data, t.csv, t.dataset),
        }
    }
}

/// The request's schema is that of the JSON body it is read from.
impl utoipa::PartialSchema for TrainRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <json::TrainRequest as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for TrainRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <json::TrainRequest as utoipa::ToSchema>::schemas(schemas);
    }
}

/// What a training job learns.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Classification,
    Regression,
    Recommendation,
}

/// What a job trains, without its data: the request's fields as given, and where
/// the data came from. Stored in the job record (`request`, shown by
/// `GET /jobs/{id}`); records written by earlier releases read the same.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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
    pub task: Option<TaskKind>,
    /// Column kind overrides.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnKind>,
    /// Columns never used as features.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Training parameters of the task as the request gave them.
    #[serde(default = "empty_object")]
    pub params: Value,
    /// `none`, `balanced`, or a weight per label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weight: Option<ClassWeight>,
    /// Holdout, k-fold or `auto`.
    #[serde(default, skip_serializing_if = "is_auto")]
    pub validation: Validation,
    /// Feature pipeline options.
    #[serde(default)]
    pub pipeline: PipelineOptions,
    /// Warm start: the model and version training continues from (the version
    /// as resolved at submit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<InitFrom>,
    /// Budgeted search before the final fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchOptions>,
    /// Recommendation: the interaction column names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// Where a job's attribute table is and how to read it. Stored in the job record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeSource {
    /// `{id, columns, separator}`.
    pub columns: AttributeColumns,
    /// `rows`, `csv` or `dataset:<id>`.
    pub source: String,
    /// The stored table.
    pub input: JobInput,
}

fn is_auto(validation: &Validation) -> bool {
    *validation == Validation::Auto
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl JobSpec {
    /// Whether this is a recommendation job.
    pub fn is_recommendation(&self) -> bool {
        self.task == Some(TaskKind::Recommendation)
    }

    /// The interaction column names, defaults filled in.
    pub fn columns_of_interactions(&self) -> InteractionColumns {
        self.interaction_columns.clone().unwrap_or_default()
    }
}

/// What a job trains, parsed from its spec.
#[derive(Clone, Debug)]
// One value per job: the size difference is moot.
#[allow(clippy::large_enum_variant)]
pub enum Plan {
    /// A tabular model.
    Tabular(TrainSpec),
    /// A recommender with these parameters.
    Recommendation(RecommenderParams),
}

impl Plan {
    /// Parses `spec.params` for the spec's task; nothing is checked against limits.
    fn of(spec: &JobSpec) -> Result<Plan, SubmitTrainError> {
        if spec.is_recommendation() {
            return Ok(Plan::Recommendation(parse_params(&spec.params)?));
        }
        let target = spec.target.clone().ok_or(SubmitTrainError::MissingTarget)?;
        Ok(Plan::Tabular(TrainSpec {
            target,
            task: match spec.task {
                Some(TaskKind::Classification) => Some(Task::Classification),
                Some(TaskKind::Regression) => Some(Task::Regression),
                _ => None,
            },
            overrides: spec.columns.clone(),
            ignore: spec.ignore.clone(),
            params: parse_params::<TrainParams>(&spec.params)?,
            pipeline: spec.pipeline.clone(),
            class_weight: spec.class_weight.clone(),
            validation: spec.validation.clone(),
            explicit: tabular::explicit_keys(&spec.params),
            init: None,
            search: spec.search.clone(),
        }))
    }
}

/// A training job checked at submit: the spec its record stores and what it trains.
#[derive(Clone, Debug)]
pub struct ValidJob {
    pub spec: JobSpec,
    pub plan: Plan,
}

impl ValidJob {
    /// The job of a stored spec, which submit checked (or an earlier release's
    /// submit did): its parameters are parsed, nothing is checked again.
    ///
    /// # Errors
    /// The spec lacks what its task needs (a `target`, readable `params`).
    pub fn from_spec(spec: JobSpec) -> Result<ValidJob, SubmitTrainError> {
        Ok(ValidJob {
            plan: Plan::of(&spec)?,
            spec,
        })
    }
}

/// A request's attribute table, checked and ready to stage.
#[derive(Debug)]
pub struct AttributeInput {
    /// `item_attributes` or `user_attributes`.
    pub field: &'static str,
    pub data: DataSource,
    /// The columns to read, the id defaulted.
    pub columns: AttributeColumns,
}

/// A checked request: the job and the data still to be read, checked and stored.
#[derive(Debug)]
pub struct Submission {
    pub job: ValidJob,
    pub data: DataSource,
    pub attributes: Vec<AttributeInput>,
}

impl TrainRequest {
    /// Checks everything about the request that needs no data, and parses its
    /// parameters. The data is checked against the job when it is staged.
    ///
    /// # Errors
    /// The first rule the request breaks, in this order: task-specific fields on
    /// the wrong task, a missing `target`, attribute tables or data without exactly
    /// one source, unreadable `params`, `validation` out of range, `init_from` or
    /// `search` on a recommender, `search` out of range or with `init_from`, an
    /// invalid model name, attribute tables on a tabular job, recommender parameters over the
    /// limits of `settings.recommend`.
    pub fn validate(self, settings: &Settings) -> Result<Submission, SubmitTrainError> {
        let TrainRequest {
            spec,
            data,
            item_attributes,
            user_attributes,
        } = self;
        let recommendation = spec.is_recommendation();
        if !recommendation {
            if spec.interaction_columns.is_some() {
                return Err(SubmitTrainError::OnlyForRecommendation {
                    field: "interaction_columns",
                });
            }
            if spec.include_logged_interactions {
                return Err(SubmitTrainError::OnlyForRecommendation {
                    field: "include_logged_interactions",
                });
            }
            if spec.target.is_none() {
                return Err(SubmitTrainError::MissingTarget);
            }
        }
        let defaults = spec.columns_of_interactions();
        let mut attributes = Vec::new();
        for (field, table, default_id) in [
            ("item_attributes", item_attributes, defaults.item),
            ("user_attributes", user_attributes, defaults.user),
        ] {
            let Some(table) = table else {
                continue;
            };
            let data = table
                .data
                .ok_or(SubmitTrainError::NoAttributeSource { field })?;
            let columns = AttributeColumns {
                id: table.id.unwrap_or(default_id),
                columns: table.columns,
                separator: table.separator,
            };
            attributes.push(AttributeInput {
                field,
                data,
                columns,
            });
        }
        let data = data.ok_or(SubmitTrainError::NoDataSource)?;
        let plan = Plan::of(&spec)?;
        spec.validation
            .check()
            .map_err(SubmitTrainError::Parameter)?;
        if recommendation {
            if spec.init_from.is_some() {
                return Err(SubmitTrainError::OnlyForTabular { field: "init_from" });
            }
            if spec.search.is_some() {
                return Err(SubmitTrainError::OnlyForTabular { field: "search" });
            }
        }
        if let Some(search) = &spec.search {
            search.check().map_err(SubmitTrainError::Parameter)?;
            if spec.init_from.is_some() {
                return Err(SubmitTrainError::Parameter(crate::nn::invalid_param(
                    "search",
                    search.max_trials,
                    "a search trains from scratch; it does not combine with `init_from`",
                )));
            }
        }
        check_name("model name", &spec.model)
            .map_err(|e| invalid(ErrorCode::InvalidName, e.to_string()))?;
        if !attributes.is_empty() && !recommendation {
            return Err(invalid(
                ErrorCode::InvalidBody,
                "`item_attributes` and `user_attributes` apply only to `\"task\": \"recommendation\"`",
            ));
        }
        if let Plan::Recommendation(params) = &plan {
            params
                .check(&settings.recommend)
                .map_err(|e| invalid(ErrorCode::InvalidParameter, e.to_string()))?;
        }
        Ok(Submission {
            job: ValidJob { spec, plan },
            data,
            attributes,
        })
    }
}

/// Reads `params` as `T`, naming the offending field (`params.<path>`) on error.
fn parse_params<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, SubmitTrainError> {
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
        SubmitTrainError::InvalidParams {
            field,
            reason: e.inner().to_string(),
        }
    })
}
