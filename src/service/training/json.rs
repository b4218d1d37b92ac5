//! `POST /train`'s JSON body as clients write it, and as the OpenAPI document
//! describes it: the data as three optional fields. [`super::TrainRequest`] is
//! read through it and keeps the data as one [`super::DataSource`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::request::TaskKind;
use crate::data::{ColumnKind, PipelineOptions};
use crate::recommend::InteractionColumns;
use crate::tabular::{ClassWeight, InitFrom, SearchOptions, Validation};

/// A training request. Give the data as exactly one of `data`, `csv` or `dataset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "model": "churn",
    "target": "churned",
    "params": {"hidden_layers": [64, 32], "epochs": 20},
    "data": [
        {"tenure": 3, "plan": "basic", "monthly": 29.5, "churned": "yes"},
        {"tenure": 40, "plan": "pro", "monthly": 79.0, "churned": "no"}
    ]
}))]
pub struct TrainRequest {
    /// Model name, `[a-z0-9][a-z0-9._-]{0,63}`; each successful job adds a version.
    pub model: String,
    /// Column to predict; required for classification and regression.
    #[serde(default)]
    pub target: Option<String>,
    /// `classification`, `regression` or `recommendation`; classification or regression
    /// is inferred from the target when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub task: Option<TaskKind>,
    /// Column kind overrides: column → numeric | boolean | categorical | text | image | audio | identifier.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub columns: BTreeMap<String, ColumnKind>,
    /// Columns never used as features.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Training parameters of the task; every key is optional (see the README).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Option<Value>,
    /// `none`, `balanced`, or a weight per label.
    #[serde(default)]
    pub class_weight: Option<ClassWeight>,
    /// How the model is validated: `{"kind": "auto"}` (default: a holdout of
    /// `params.validation_fraction`, or 5-fold cross-validation below 2,000 labelled
    /// rows), `{"kind": "holdout"}`, or `{"kind": "kfold", "folds": 5, "stratified": true}`
    /// (folds 2..=20; stratified applies to classification). With k-fold the metrics are
    /// fold means with `cross_validation` per fold, mean and std, and the served model
    /// is refit on all rows for the epoch count the folds chose.
    #[serde(default)]
    pub validation: Validation,
    /// Feature pipeline options: `max_one_hot` (64), `hash_buckets` (32), `standardize` (true), `numeric_bins` (16),
    /// `text` (`ngram_range` [1, 2], `char_ngrams` null, `min_df` 2, `max_features` 20000, `hashing` null, `sublinear_tf` true),
    /// `text_columns` (per-column text options),
    /// `image` (`width` 28, `height` 28, `mode` grayscale|rgb, `pixels` {width, height, channels} for pixel arrays, `pixel_max` 255),
    /// `audio` (`sample_rate` 16000, `duration_secs` 1.0, `n_mels` 40, `window_ms` 25, `hop_ms` 10, `deltas` false,
    /// `augment` null or {`copies` 1, `max_shift_ms` 100, `snr_db` 20, `gain_db` 6}).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub pipeline: PipelineOptions,
    /// Warm start (classification and regression): `{"model": "churn", "version": 3}`
    /// continues training from that version's weights with its fitted feature
    /// pipeline and target classes kept as they are (`version` optional: the
    /// `production` alias, else the latest). The data must fit the pipeline (every
    /// input column, of the same kind; only known target classes) and the network's
    /// shape is the stored one; refused with 422 naming what does not fit, 404 when
    /// the model or version does not exist.
    #[serde(default)]
    pub init_from: Option<InitFrom>,
    /// Budgeted search (classification and regression): `{"max_trials": 16,
    /// "max_seconds": 120}` runs successive halving over hidden width and depth,
    /// dropout, learning rate, weight decay and `pipeline.numeric_bins` (see the
    /// README), scoring each trial on one holdout, then trains the best as the
    /// version; the leaderboard is in `metrics.search`.
    #[serde(default)]
    pub search: Option<SearchOptions>,
    /// Recommendation: interaction column names `{user, item, value, timestamp}`
    /// (defaults `user_id`, `item_id`, `value`, `timestamp`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub interaction_columns: Option<InteractionColumns>,
    /// Recommendation: also train on the interactions logged with `POST /interactions`.
    #[serde(default)]
    pub include_logged_interactions: bool,
    /// Recommendation: item attributes — filters, `include_attributes`, cold-start items
    /// (ids without interactions, scored from items with similar attributes), and side
    /// information of the item-item model (items sharing values; `attribute_weight`).
    #[serde(default)]
    pub item_attributes: Option<AttributeTable>,
    /// Recommendation: user attributes — users without history get the popular items of
    /// their segments (users sharing an attribute value), and known users' values are
    /// inputs of the item-item model (`user_attribute_weight`).
    #[serde(default)]
    pub user_attributes: Option<AttributeTable>,
    /// Inline rows: JSON objects of raw values.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<Vec<Map<String, Value>>>,
    /// Inline CSV text with a header row.
    #[serde(default)]
    pub csv: Option<String>,
    /// Id of a dataset uploaded with `POST /datasets`.
    #[serde(default)]
    pub dataset: Option<String>,
}

/// A table of item or user attributes: give the rows as exactly one of `data`, `csv` or
/// `dataset`. Every column other than the id is a categorical attribute unless `columns`
/// lists them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "item_id", "separator": "|", "data": [{"item_id": "i7", "genre": "Action|Comedy", "brand": "acme"}]}))]
pub struct AttributeTable {
    /// Id column; default: the interaction column of the same kind (`item_id`, `user_id`).
    #[serde(default)]
    pub id: Option<String>,
    /// Attribute columns; default: every other column.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Splits cells into several values (e.g. `|`); default none.
    #[serde(default)]
    pub separator: Option<String>,
    /// Inline rows.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<Vec<Map<String, Value>>>,
    /// Inline CSV text with a header row.
    #[serde(default)]
    pub csv: Option<String>,
    /// Id of a dataset uploaded with `POST /datasets`.
    #[serde(default)]
    pub dataset: Option<String>,
}
