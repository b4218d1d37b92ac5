//! The fitted feature pipeline: per input column an encoder fitted on training
//! rows, turning raw cells or JSON record fields into a dense `f32` row.
//!
//! Encoders, in schema column order:
//! - numeric: median imputation, then standardization with the mean and
//!   population std of the imputed training values (std 0 -> 1); a
//!   `name__missing` indicator feature exists only when the column had missing
//!   values in the training rows (later missing values are still imputed);
//! - boolean: 1/0, missing imputed with the training fraction of `true`, plus
//!   a `name__missing` indicator under the same rule as numeric;
//! - categorical with at most `max_one_hot` distinct training values: one-hot
//!   over the vocabulary (frequency descending, then byte order), then a
//!   `name=__missing__` and a `name=__unknown__` slot; unseen values at
//!   transform time go to `__unknown__`;
//! - categorical above the cap: unsigned feature hashing, a 1 in bucket
//!   FNV-1a(key) mod `hash_buckets` (`name#hashK`), all zeros when missing;
//! - text: TF-IDF over words, word bigrams and optional character n-grams with a
//!   fitted vocabulary or feature hashing (see `text`), L2-normalized, no entries when
//!   missing. Text features are sparse: they come after every dense feature, in
//!   column order (`review:great`, `review#tfidf7` when hashed), and
//!   [`FeaturePipeline::transform_split`] returns them as a CSR block;
//! - image: decoded, converted and resized pixels in [0, 1], standardized per
//!   pixel with training statistics (see `image`), `name#pK`; all zeros (the
//!   training mean) when missing;
//! - audio: base64 WAV decoded, resampled, padded or trimmed, log-mel frames
//!   standardized per band with training statistics (see `audio`), `name#tTmB`; all
//!   zeros when missing;
//! - text fitted by earlier versions (`bag_of_words`): FNV-1a hashed bag of
//!   lowercase alphanumeric words (`name#wordK`), L2-normalized, kept for loading
//!   stored models.
//!
//! Category keys follow the canonical forms in `canon` (trimmed; `3`, `3.0`
//! and `"3"` are one category).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::canon::FnvBuild;
use super::error::DataError;
use super::schema::ColumnKind;

mod encoder;
mod fit;
mod layout;
mod options;
mod transform;

use encoder::Encoder;
pub use fit::{check_audio, check_images};
pub use layout::{ColumnLayout, EncodingView};
pub use options::{PipelineOptions, MAX_HASH_BUCKETS, MAX_ONE_HOT_LIMIT};
pub use transform::Field;

/// The fitted feature pipeline. Serializes to JSON (for model.json); fitted on
/// training rows only.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "PipelineRepr")]
pub struct FeaturePipeline {
    columns: Vec<FittedColumn>,
    #[serde(skip)]
    width: usize,
    /// Features before the sparse (text) block.
    #[serde(skip)]
    dense_width: usize,
    #[serde(skip)]
    by_name: HashMap<String, usize, FnvBuild>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineRepr {
    columns: Vec<FittedColumn>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct FittedColumn {
    name: String,
    kind: ColumnKind,
    encoder: Encoder,
    /// First feature: in the dense block, or in the sparse block for sparse encoders.
    #[serde(skip)]
    offset: usize,
}

impl FittedColumn {
    /// The column's features within a dense row (empty for sparse encoders).
    fn dense_span(&self) -> std::ops::Range<usize> {
        if self.encoder.is_sparse() {
            0..0
        } else {
            self.offset..self.offset + self.encoder.width()
        }
    }
}

impl TryFrom<PipelineRepr> for FeaturePipeline {
    type Error = String;

    fn try_from(repr: PipelineRepr) -> Result<Self, String> {
        for column in &repr.columns {
            let name = &column.name;
            match &column.encoder {
                Encoder::Numeric {
                    median, mean, std, ..
                } => {
                    if !(median.is_finite() && mean.is_finite() && std.is_finite() && *std > 0.0) {
                        return Err(format!(
                            "column `{name}`: numeric statistics must be finite with std > 0"
                        ));
                    }
                }
                Encoder::Boolean { fill, .. } => {
                    if !(0.0..=1.0).contains(fill) {
                        return Err(format!(
                            "column `{name}`: boolean fill must be within 0..=1"
                        ));
                    }
                }
                Encoder::Hashed { buckets } | Encoder::BagOfWords { buckets } => {
                    if !(1..=MAX_HASH_BUCKETS).contains(buckets) {
                        return Err(format!(
                            "column `{name}`: buckets must be within 1..={MAX_HASH_BUCKETS}"
                        ));
                    }
                }
                Encoder::Image(image) => image
                    .check()
                    .map_err(|reason| format!("column `{name}`: {reason}"))?,
                Encoder::Audio(audio) => audio
                    .check()
                    .map_err(|reason| format!("column `{name}`: {reason}"))?,
                Encoder::OneHot { .. } | Encoder::Tfidf(_) => {}
            }
        }
        FeaturePipeline::assemble(repr.columns)
    }
}

impl FeaturePipeline {
    /// Computes offsets, lookup tables and the name index; rejects duplicate
    /// column names or vocabulary entries.
    fn assemble(mut columns: Vec<FittedColumn>) -> Result<FeaturePipeline, String> {
        let mut by_name = HashMap::with_capacity_and_hasher(columns.len(), FnvBuild::default());
        let (mut dense_width, mut sparse_width) = (0, 0);
        for (i, column) in columns.iter_mut().enumerate() {
            if by_name.insert(column.name.clone(), i).is_some() {
                return Err(format!("column `{}` appears twice", column.name));
            }
            if let Encoder::OneHot { vocabulary, lookup } = &mut column.encoder {
                *lookup = HashMap::with_capacity_and_hasher(vocabulary.len(), FnvBuild::default());
                for (slot, value) in vocabulary.iter().enumerate() {
                    if lookup.insert(value.clone(), slot).is_some() {
                        return Err(format!(
                            "column `{}`: category `{value}` appears twice",
                            column.name
                        ));
                    }
                }
            }
            if let Encoder::Tfidf(tfidf) = &mut column.encoder {
                tfidf
                    .assemble()
                    .map_err(|reason| format!("column `{}`: {reason}", column.name))?;
            }
            let width = if column.encoder.is_sparse() {
                &mut sparse_width
            } else {
                &mut dense_width
            };
            column.offset = *width;
            *width += column.encoder.width();
        }
        if u32::try_from(sparse_width).is_err() {
            return Err(format!("{sparse_width} text features are too many"));
        }
        Ok(FeaturePipeline {
            columns,
            width: dense_width + sparse_width,
            dense_width,
            by_name,
        })
    }

    /// Output width (number of `f32` features).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Feature names, `len() == width()`: `age`, `age__missing`,
    /// `workclass=Private`, `workclass=__missing__`, `workclass=__unknown__`,
    /// `native_country#hash3`, `review#word7`.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.width);
        let dense = self.columns.iter().filter(|c| !c.encoder.is_sparse());
        let sparse = self.columns.iter().filter(|c| c.encoder.is_sparse());
        for column in dense.chain(sparse) {
            let name = &column.name;
            match &column.encoder {
                Encoder::Numeric {
                    missing_indicator,
                    bin_edges,
                    ..
                } => {
                    names.push(name.clone());
                    if *missing_indicator {
                        names.push(format!("{name}__missing"));
                    }
                    names.extend((1..bin_edges.len()).map(|k| format!("{name}#bin{k}")));
                }
                Encoder::Boolean {
                    missing_indicator, ..
                } => {
                    names.push(name.clone());
                    if *missing_indicator {
                        names.push(format!("{name}__missing"));
                    }
                }
                Encoder::OneHot { vocabulary, .. } => {
                    names.extend(vocabulary.iter().map(|v| format!("{name}={v}")));
                    names.push(format!("{name}=__missing__"));
                    names.push(format!("{name}=__unknown__"));
                }
                Encoder::Hashed { buckets } => {
                    names.extend((0..*buckets).map(|k| format!("{name}#hash{k}")));
                }
                Encoder::BagOfWords { buckets } => {
                    names.extend((0..*buckets).map(|k| format!("{name}#word{k}")));
                }
                Encoder::Tfidf(tfidf) => tfidf.feature_names(name, &mut names),
                Encoder::Image(image) => image.feature_names(name, &mut names),
                Encoder::Audio(audio) => audio.feature_names(name, &mut names),
            }
        }
        names
    }

    /// Features in the dense block: the first `dense_width()` of `width()`; the rest
    /// are the sparse (text) block.
    pub fn dense_width(&self) -> usize {
        self.dense_width
    }

    /// The input fields the pipeline reads, in order: (name, kind).
    pub fn inputs(&self) -> Vec<(String, ColumnKind)> {
        self.columns
            .iter()
            .map(|c| (c.name.clone(), c.kind))
            .collect()
    }

    /// As [`FeaturePipeline::inputs`], borrowed.
    pub fn input_columns(&self) -> Vec<(&str, ColumnKind)> {
        self.columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect()
    }

    /// Record fields the pipeline does not read, in record order.
    pub fn unknown_fields<'a>(&self, record: &'a Map<String, Value>) -> Vec<&'a str> {
        record
            .keys()
            .map(String::as_str)
            .filter(|k| !self.by_name.contains_key(*k))
            .collect()
    }
}

/// Rejects row indices at or past `n`, the length of the shortest column read.
fn check_rows(n: usize, rows: &[usize]) -> Result<(), DataError> {
    match rows.iter().find(|&&r| r >= n) {
        Some(&row) => Err(DataError::RowOutOfRange { row, rows: n }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
