//! Options for fitting a [`FeaturePipeline`](super::FeaturePipeline), their limits and
//! their validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::audio::AudioOptions;
use crate::data::error::DataError;
use crate::data::image::ImageOptions;
use crate::data::schema::{ColumnKind, Schema};
use crate::data::text::TextOptions;

/// Largest accepted `max_one_hot`.
pub const MAX_ONE_HOT_LIMIT: usize = 1_000;
/// Largest accepted `hash_buckets`.
pub const MAX_HASH_BUCKETS: usize = 4_096;

/// Largest accepted `numeric_bins`.
pub const MAX_NUMERIC_BINS: usize = 256;

/// Options for fitting a [`FeaturePipeline`](super::FeaturePipeline).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineOptions {
    /// Most distinct values one-hot encoded; above it a column is hashed
    /// (default 64, at most [`MAX_ONE_HOT_LIMIT`]).
    pub max_one_hot: usize,
    /// Buckets for hashed categoricals (default 32, 1..=[`MAX_HASH_BUCKETS`]).
    pub hash_buckets: usize,
    /// Standardize numeric features (default true).
    pub standardize: bool,
    /// Quantile bins of the piecewise-linear encoding added for each numeric
    /// column (default 16; 0 turns it off). Each bin contributes one feature
    /// in [0, 1]: how far the value has advanced through the bin.
    pub numeric_bins: usize,
    /// Text columns: n-grams, vocabulary or hashing, TF-IDF (see [`TextOptions`]).
    pub text: TextOptions,
    /// Per-column text options that replace `text` for the named text columns.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub text_columns: BTreeMap<String, TextOptions>,
    /// Image columns: size, colour mode, pixel-array layout (see [`ImageOptions`]).
    pub image: ImageOptions,
    /// Audio columns: sample rate, duration, mel bands, framing, augmentation (see [`AudioOptions`]).
    pub audio: AudioOptions,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            max_one_hot: 64,
            hash_buckets: 32,
            standardize: true,
            numeric_bins: 16,
            text: TextOptions::default(),
            text_columns: BTreeMap::new(),
            image: ImageOptions::default(),
            audio: AudioOptions::default(),
        }
    }
}

impl PipelineOptions {
    /// Checks that every column named in `text_columns` is a text feature of `schema`.
    pub fn check_columns(&self, schema: &Schema) -> Result<(), DataError> {
        for name in self.text_columns.keys() {
            let is_text = schema
                .column(name)
                .is_some_and(|c| c.kind == ColumnKind::Text && c.is_feature());
            if !is_text {
                return Err(DataError::InvalidOptions {
                    reason: format!(
                        "pipeline.text_columns names `{name}`, which is not a text feature column"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks every option; `InvalidOptions` names the field and its value.
    pub fn validate(&self) -> Result<(), DataError> {
        self.text
            .validate()
            .and_then(|()| {
                self.text_columns.iter().try_for_each(|(name, options)| {
                    options.validate_at(&format!("pipeline.text_columns.{name}"))
                })
            })
            .and_then(|()| self.image.validate())
            .and_then(|()| self.audio.validate())
            .map_err(|reason| DataError::InvalidOptions { reason })?;
        if self.max_one_hot > MAX_ONE_HOT_LIMIT {
            return Err(DataError::InvalidOptions {
                reason: format!(
                    "max_one_hot is {}, the limit is {MAX_ONE_HOT_LIMIT}",
                    self.max_one_hot
                ),
            });
        }
        if self.numeric_bins > MAX_NUMERIC_BINS {
            return Err(DataError::InvalidOptions {
                reason: format!(
                    "numeric_bins is {}, the limit is {MAX_NUMERIC_BINS}",
                    self.numeric_bins
                ),
            });
        }
        if !(1..=MAX_HASH_BUCKETS).contains(&self.hash_buckets) {
            return Err(DataError::InvalidOptions {
                reason: format!(
                    "hash_buckets is {}, it must be between 1 and {MAX_HASH_BUCKETS}",
                    self.hash_buckets
                ),
            });
        }
        Ok(())
    }
}
