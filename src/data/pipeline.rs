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

use std::borrow::Cow;
use std::collections::BTreeMap;

use ndarray::{s, Array2};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::audio::{AudioEncoder, AudioOptions};
use super::image::{ImageEncoder, ImageInput, ImageOptions};
use super::text::{TextOptions, TfidfEncoder};
use crate::nn::CsrMatrix;

use super::canon::{add_words, in_range, l2_normalize, parse_bool, parse_number, FnvBuild, Raw};
use super::error::{snippet, DataError, RecordError};
use super::schema::{ColumnKind, Schema};
use super::table::Table;

mod layout;
pub use layout::{ColumnLayout, EncodingView};

/// Largest accepted `max_one_hot`.
pub const MAX_ONE_HOT_LIMIT: usize = 1_000;
/// Largest accepted `hash_buckets`.
pub const MAX_HASH_BUCKETS: usize = 4_096;

/// Largest accepted `numeric_bins`.
pub const MAX_NUMERIC_BINS: usize = 256;

/// Options for fitting a [`FeaturePipeline`].
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

const EXPECT_NUMBER: &str = "a number";
const EXPECT_BOOL: &str = "a boolean (true/false, yes/no, 1/0)";
const EXPECT_CATEGORY: &str = "a string, number or boolean";
const EXPECT_TEXT: &str = "a string";
const EXPECT_IMAGE: &str = "a base64 PNG or JPEG image, or a pixel array in the declared layout";
pub(super) const EXPECT_AUDIO: &str = "a base64 WAV file";

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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "encoding", rename_all = "snake_case", deny_unknown_fields)]
enum Encoder {
    Numeric {
        median: f64,
        mean: f64,
        std: f64,
        missing_indicator: bool,
        /// Ascending quantile edges of the piecewise-linear encoding (empty: none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bin_edges: Vec<f64>,
    },
    Boolean {
        fill: f64,
        missing_indicator: bool,
    },
    OneHot {
        vocabulary: Vec<String>,
        #[serde(skip)]
        lookup: HashMap<String, usize, FnvBuild>,
    },
    Hashed {
        buckets: usize,
    },
    BagOfWords {
        buckets: usize,
    },
    Tfidf(TfidfEncoder),
    Image(ImageEncoder),
    Audio(AudioEncoder),
}

/// Why a value could not be encoded.
enum Reject {
    /// The value does not fit the encoder's kind.
    Kind,
    /// An image that cannot be decoded, with the reason.
    Image(String),
    /// An audio clip that cannot be decoded, with the reason.
    Audio(String),
}

impl Encoder {
    fn width(&self) -> usize {
        match self {
            Encoder::Numeric {
                missing_indicator,
                bin_edges,
                ..
            } => 1 + usize::from(*missing_indicator) + bin_edges.len().saturating_sub(1),
            Encoder::Boolean {
                missing_indicator, ..
            } => 1 + usize::from(*missing_indicator),
            Encoder::OneHot { vocabulary, .. } => vocabulary.len() + 2,
            Encoder::Hashed { buckets } | Encoder::BagOfWords { buckets } => *buckets,
            Encoder::Tfidf(tfidf) => tfidf.width(),
            Encoder::Image(image) => image.width(),
            Encoder::Audio(audio) => audio.width(),
        }
    }

    /// Whether the features go to the sparse block.
    fn is_sparse(&self) -> bool {
        matches!(self, Encoder::Tfidf(_))
    }

    fn expected(&self) -> &'static str {
        match self {
            Encoder::Numeric { .. } => EXPECT_NUMBER,
            Encoder::Boolean { .. } => EXPECT_BOOL,
            Encoder::OneHot { .. } | Encoder::Hashed { .. } => EXPECT_CATEGORY,
            Encoder::BagOfWords { .. } | Encoder::Tfidf(_) => EXPECT_TEXT,
            Encoder::Image(_) => EXPECT_IMAGE,
            Encoder::Audio(_) => EXPECT_AUDIO,
        }
    }

    /// Writes the features of `raw` into `out` (zeroed, `len == width`) for dense
    /// encoders, or appends `(offset + position, value)` entries to `sparse` for sparse
    /// ones. `Reject::Kind` when `raw` does not fit the encoder's kind.
    fn encode(
        &self,
        raw: Raw<'_>,
        out: &mut [f32],
        sparse: &mut SparseRow,
        offset: usize,
    ) -> Result<(), Reject> {
        let kind = |_| Reject::Kind;
        match self {
            Encoder::Numeric {
                median,
                mean,
                std,
                missing_indicator,
                bin_edges,
            } => {
                let value = match raw {
                    Raw::Missing => None,
                    Raw::Number(v) if in_range(v) => Some(v),
                    Raw::Text(s) => Some(parse_number(s).ok_or(()).map_err(kind)?),
                    Raw::Number(_) | Raw::Bool(_) => return Err(Reject::Kind),
                };
                let x = value.unwrap_or(*median);
                out[0] = to_f32((x - mean) / std);
                let mut next = 1;
                if *missing_indicator {
                    out[1] = if value.is_none() { 1.0 } else { 0.0 };
                    next = 2;
                }
                for (slot, edge) in out[next..].iter_mut().zip(bin_edges.windows(2)) {
                    *slot = to_f32(((x - edge[0]) / (edge[1] - edge[0])).clamp(0.0, 1.0));
                }
            }
            Encoder::Boolean {
                fill,
                missing_indicator,
            } => {
                let value = match raw {
                    Raw::Missing => None,
                    Raw::Bool(b) => Some(b),
                    Raw::Number(v) if v == 0.0 || v == 1.0 => Some(v == 1.0),
                    Raw::Text(s) => Some(parse_bool(s).ok_or(()).map_err(kind)?),
                    Raw::Number(_) => return Err(Reject::Kind),
                };
                out[0] = value.map_or(*fill as f32, |b| if b { 1.0 } else { 0.0 });
                if *missing_indicator {
                    out[1] = if value.is_none() { 1.0 } else { 0.0 };
                }
            }
            Encoder::OneHot { vocabulary, lookup } => {
                let slot = match raw.key() {
                    None => vocabulary.len(),
                    Some(key) => lookup
                        .get(key.as_str())
                        .copied()
                        .unwrap_or(vocabulary.len() + 1),
                };
                out[slot] = 1.0;
            }
            Encoder::Hashed { buckets } => {
                if let Some(key) = raw.key() {
                    out[bucket(key.as_str(), *buckets)] = 1.0;
                }
            }
            Encoder::BagOfWords { .. } => {
                match raw {
                    Raw::Missing => {}
                    Raw::Text(s) => add_words(s, out),
                    Raw::Number(_) | Raw::Bool(_) => {
                        if let Some(key) = raw.key() {
                            add_words(key.as_str(), out);
                        }
                    }
                }
                l2_normalize(out);
            }
            Encoder::Tfidf(tfidf) => {
                let text = match raw {
                    Raw::Missing => return Ok(()),
                    Raw::Text(s) => Cow::Borrowed(s),
                    Raw::Number(_) | Raw::Bool(_) => match raw.key() {
                        Some(key) => Cow::Owned(key.as_str().to_owned()),
                        None => return Ok(()),
                    },
                };
                let SparseRow { entries, scratch } = sparse;
                tfidf.encode(&text, offset as u32, scratch, entries);
            }
            Encoder::Image(image) => match raw {
                Raw::Missing => out.fill(0.0),
                Raw::Text(s) => image
                    .encode(ImageInput::Text(s), out)
                    .map_err(Reject::Image)?,
                Raw::Number(_) | Raw::Bool(_) => return Err(Reject::Kind),
            },
            Encoder::Audio(audio) => match raw {
                Raw::Missing => out.fill(0.0),
                Raw::Text(s) => audio.encode(s, None, out).map_err(Reject::Audio)?,
                Raw::Number(_) | Raw::Bool(_) => return Err(Reject::Kind),
            },
        }
        Ok(())
    }
}

/// One row's sparse entries and the encoders' scratch space.
#[derive(Default)]
struct SparseRow {
    entries: Vec<(u32, f32)>,
    scratch: Vec<(u32, f32)>,
}

fn bucket(key: &str, buckets: usize) -> usize {
    (super::canon::fnv1a(key) % buckets as u64) as usize
}

fn to_f32(v: f64) -> f32 {
    v.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32
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

    /// Fits on `rows` of `table` using `schema`. Columns that are excluded in
    /// the schema (identifier, ignored, all missing) and the `target` column
    /// are left out.
    ///
    /// Errors: `target` or a schema column absent from the table, no rows,
    /// invalid options, a cell that does not parse as its column's kind
    /// (`InvalidValue`), and `NoFeatures` when nothing is left to encode.
    pub fn fit(
        table: &Table,
        rows: &[usize],
        schema: &Schema,
        target: &str,
        options: &PipelineOptions,
    ) -> Result<FeaturePipeline, DataError> {
        options.validate()?;
        if table.column_index(target).is_none() {
            return Err(DataError::UnknownColumn {
                name: target.to_owned(),
            });
        }
        if rows.is_empty() {
            return Err(DataError::Empty);
        }
        check_rows(table.rows(), rows)?;
        let mut columns = Vec::new();
        for column in &schema.columns {
            crate::cooperative::yield_point();
            if !column.is_feature() || column.name == target {
                continue;
            }
            let cells = table
                .column(&column.name)
                .ok_or_else(|| DataError::MissingColumn {
                    name: column.name.clone(),
                })?;
            check_rows(cells.len(), rows)?;
            let invalid =
                |row: usize, raw: Raw<'_>, expected: &'static str| DataError::InvalidValue {
                    column: column.name.clone(),
                    row: row + 1,
                    value: raw.describe(),
                    expected,
                };
            let encoder = match column.kind {
                ColumnKind::Identifier => continue,
                ColumnKind::Numeric => {
                    let mut values = Vec::with_capacity(rows.len());
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, super::YIELD_ROWS);
                        match Raw::from_cell(&cells[r]) {
                            Raw::Missing => {}
                            Raw::Number(v) if in_range(v) => values.push(v),
                            raw @ Raw::Text(s) => values.push(
                                parse_number(s).ok_or_else(|| invalid(r, raw, EXPECT_NUMBER))?,
                            ),
                            raw => return Err(invalid(r, raw, EXPECT_NUMBER)),
                        }
                    }
                    fit_numeric(
                        values,
                        rows.len(),
                        options.standardize,
                        options.numeric_bins,
                    )
                }
                ColumnKind::Boolean => {
                    let (mut trues, mut present) = (0usize, 0usize);
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, super::YIELD_ROWS);
                        let raw = Raw::from_cell(&cells[r]);
                        let value = match raw {
                            Raw::Missing => continue,
                            Raw::Bool(b) => b,
                            Raw::Number(v) if v == 0.0 || v == 1.0 => v == 1.0,
                            Raw::Text(s) => {
                                parse_bool(s).ok_or_else(|| invalid(r, raw, EXPECT_BOOL))?
                            }
                            Raw::Number(_) => return Err(invalid(r, raw, EXPECT_BOOL)),
                        };
                        present += 1;
                        trues += usize::from(value);
                    }
                    Encoder::Boolean {
                        fill: if present == 0 {
                            0.0
                        } else {
                            trues as f64 / present as f64
                        },
                        missing_indicator: present < rows.len(),
                    }
                }
                ColumnKind::Categorical => {
                    let mut counts: HashMap<String, usize> = HashMap::new();
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, super::YIELD_ROWS);
                        if let Some(key) = Raw::from_cell(&cells[r]).key() {
                            match counts.get_mut(key.as_str()) {
                                Some(count) => *count += 1,
                                None => {
                                    counts.insert(key.as_str().to_owned(), 1);
                                    if counts.len() > options.max_one_hot {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    if counts.len() > options.max_one_hot {
                        Encoder::Hashed {
                            buckets: options.hash_buckets,
                        }
                    } else {
                        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
                        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                        Encoder::OneHot {
                            vocabulary: ranked.into_iter().map(|(v, _)| v).collect(),
                            lookup: HashMap::default(),
                        }
                    }
                }
                ColumnKind::Image => {
                    let mut images = Vec::with_capacity(rows.len());
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, super::YIELD_ROWS);
                        images.push(match Raw::from_cell(&cells[r]) {
                            Raw::Missing => None,
                            Raw::Text(s) => Some(ImageInput::Text(s)),
                            raw => return Err(invalid(r, raw, EXPECT_IMAGE)),
                        });
                    }
                    let encoder =
                        ImageEncoder::fit(&options.image, images.into_iter(), options.standardize)
                            .map_err(|(i, reason)| DataError::InvalidImage {
                                column: column.name.clone(),
                                row: rows[i] + 1,
                                reason,
                            })?;
                    Encoder::Image(encoder)
                }
                ColumnKind::Audio => {
                    let mut clips = Vec::with_capacity(rows.len());
                    for &r in rows {
                        clips.push(match Raw::from_cell(&cells[r]) {
                            Raw::Missing => None,
                            Raw::Text(s) => Some(s),
                            raw => return Err(invalid(r, raw, EXPECT_AUDIO)),
                        });
                    }
                    let encoder =
                        AudioEncoder::fit(&options.audio, clips.into_iter(), options.standardize)
                            .map_err(|(i, reason)| DataError::InvalidAudio {
                            column: column.name.clone(),
                            row: rows[i] + 1,
                            reason,
                        })?;
                    Encoder::Audio(encoder)
                }
                ColumnKind::Text => {
                    let docs: Vec<Option<Cow<'_, str>>> = rows
                        .iter()
                        .map(|&r| match Raw::from_cell(&cells[r]) {
                            Raw::Missing => None,
                            Raw::Text(s) => Some(Cow::Borrowed(s)),
                            raw => raw.key().map(|k| Cow::Owned(k.as_str().to_owned())),
                        })
                        .collect();
                    Encoder::Tfidf(TfidfEncoder::fit(
                        docs.iter().map(|d| d.as_deref()),
                        options
                            .text_columns
                            .get(&column.name)
                            .unwrap_or(&options.text),
                    ))
                }
            };
            columns.push(FittedColumn {
                name: column.name.clone(),
                kind: column.kind,
                encoder,
                offset: 0,
            });
        }
        let pipeline = FeaturePipeline::assemble(columns)
            .map_err(|reason| DataError::InvalidOptions { reason })?;
        if pipeline.width == 0 {
            return Err(DataError::NoFeatures);
        }
        Ok(pipeline)
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

    /// Transforms `rows` of `table` (columns looked up by name) into a dense
    /// `(rows.len(), width)` matrix. Materializes the text block: prefer
    /// [`FeaturePipeline::transform_split`] for wide text vocabularies.
    ///
    /// Errors: as [`FeaturePipeline::transform_split`].
    pub fn transform(&self, table: &Table, rows: &[usize]) -> Result<Array2<f32>, DataError> {
        let (dense, sparse) = self.transform_split(table, rows)?;
        let mut out = Array2::zeros((rows.len(), self.width));
        out.slice_mut(s![.., ..self.dense_width]).assign(&dense);
        for r in 0..rows.len() {
            let (indices, values) = sparse.row(r);
            for (&c, &v) in indices.iter().zip(values) {
                out[[r, self.dense_width + c as usize]] = v;
            }
        }
        Ok(out)
    }

    /// Transforms `rows` of `table` into the dense block `(rows.len(), dense_width)`
    /// and the sparse text block `(rows.len(), width − dense_width)`.
    ///
    /// Errors: `MissingColumn` for a needed column absent from the table,
    /// `RowOutOfRange`, `InvalidValue` naming row, column and value for a cell
    /// that does not parse as its column's kind.
    pub fn transform_split(
        &self,
        table: &Table,
        rows: &[usize],
    ) -> Result<(Array2<f32>, CsrMatrix), DataError> {
        self.transform_rows(table, rows, None)
    }

    /// Most augmented copies any audio column asks for (0: no augmentation).
    pub fn augment_copies(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match &c.encoder {
                Encoder::Audio(audio) => audio.augment_copies(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// Training features with augmentation: `rows` as by
    /// [`FeaturePipeline::transform_split`], followed by `augment_copies()` more passes
    /// over `rows` in which audio columns encode augmented clips drawn from `seed`
    /// (other columns encode as usual). Row `i` of pass `c` is output row
    /// `c · rows.len() + i`.
    pub fn transform_split_augmented(
        &self,
        table: &Table,
        rows: &[usize],
        seed: u64,
    ) -> Result<(Array2<f32>, CsrMatrix), DataError> {
        let copies = self.augment_copies();
        let all: Vec<usize> = (0..=copies).flat_map(|_| rows.iter().copied()).collect();
        self.transform_rows(table, &all, Some((rows.len(), seed)))
    }

    /// `augment`: (rows per pass, seed); pass 0 is never augmented.
    fn transform_rows(
        &self,
        table: &Table,
        rows: &[usize],
        augment: Option<(usize, u64)>,
    ) -> Result<(Array2<f32>, CsrMatrix), DataError> {
        let width = self.dense_width;
        let sources = self
            .columns
            .iter()
            .map(|column| {
                table
                    .column(&column.name)
                    .ok_or_else(|| DataError::MissingColumn {
                        name: column.name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shortest = sources.iter().map(|c| c.len()).min();
        check_rows(shortest.unwrap_or_else(|| table.rows()), rows)?;
        let mut buf = vec![0.0f32; rows.len() * width];
        let mut sparse = CsrMatrix::new(self.width - self.dense_width);
        let mut row = SparseRow::default();
        for (i, &r) in rows.iter().enumerate() {
            crate::cooperative::yield_every(i, super::YIELD_ROWS);
            let out = &mut buf[i * width..(i + 1) * width];
            row.entries.clear();
            for (column, cells) in self.columns.iter().zip(&sources) {
                let raw = Raw::from_cell(&cells[r]);
                let span = column.dense_span();
                let augmented = match (augment, &column.encoder, raw) {
                    (Some((per_pass, seed)), Encoder::Audio(audio), Raw::Text(s))
                        if i >= per_pass =>
                    {
                        let draw = super::canon::fnv1a(&format!("{seed}/{}/{i}", column.name));
                        Some(audio.encode(s, Some(draw), &mut out[span.clone()]))
                    }
                    _ => None,
                };
                let result = match augmented {
                    Some(result) => result.map_err(Reject::Audio),
                    None => column
                        .encoder
                        .encode(raw, &mut out[span], &mut row, column.offset),
                };
                result.map_err(|reject| match reject {
                    Reject::Kind => DataError::InvalidValue {
                        column: column.name.clone(),
                        row: r + 1,
                        value: raw.describe(),
                        expected: column.encoder.expected(),
                    },
                    Reject::Image(reason) => DataError::InvalidImage {
                        column: column.name.clone(),
                        row: r + 1,
                        reason,
                    },
                    Reject::Audio(reason) => DataError::InvalidAudio {
                        column: column.name.clone(),
                        row: r + 1,
                        reason,
                    },
                })?;
            }
            sparse.push_row(&row.entries);
        }
        let dense = Array2::from_shape_vec((rows.len(), width), buf)
            .expect("buffer length is rows * width by construction");
        Ok((dense, sparse))
    }

    /// Serving path: one raw JSON record into `out` (`len == width`, panics
    /// otherwise), text features included densely. See
    /// [`FeaturePipeline::transform_record_split`] for the accepted values and errors.
    pub fn transform_record(
        &self,
        record: &Map<String, Value>,
        out: &mut [f32],
    ) -> Result<(), RecordError> {
        assert_eq!(
            out.len(),
            self.width,
            "output slice length must equal the pipeline width"
        );
        let mut sparse = CsrMatrix::new(self.width - self.dense_width);
        let (dense, text) = out.split_at_mut(self.dense_width);
        self.transform_record_split(record, dense, &mut sparse)?;
        text.fill(0.0);
        let (indices, values) = sparse.row(0);
        for (&c, &v) in indices.iter().zip(values) {
            text[c as usize] = v;
        }
        Ok(())
    }

    /// Serving path: one raw JSON record into `dense` (`len == dense_width`, panics
    /// otherwise) and one row appended to `sparse` (`cols == width − dense_width`).
    /// Allocates little in the common path.
    ///
    /// A needed field absent from the record is `MissingField`; `null` or a
    /// missing-token string is imputed. Numeric accepts numbers and numeric
    /// strings; boolean accepts booleans, 0/1 and true/false/yes/no/t/f/y/n
    /// strings; categorical accepts strings, numbers and booleans (canonical
    /// keys, unseen -> `__unknown__`); text accepts strings (numbers and
    /// booleans are read as their canonical text). Anything else, including
    /// objects and arrays, is `WrongType` naming field, expected kind and the
    /// value found. On error nothing is appended to `sparse`.
    pub fn transform_record_split(
        &self,
        record: &Map<String, Value>,
        dense: &mut [f32],
        sparse: &mut CsrMatrix,
    ) -> Result<(), RecordError> {
        self.transform_fields_split(|_, name| record.get(name).map(Field::Json), dense, sparse)
    }

    /// Serving path without a JSON record: `field(i, name)` gives column
    /// `i` (in [`FeaturePipeline::inputs`] order) of one record, `None` when
    /// absent. Otherwise as [`FeaturePipeline::transform_record_split`].
    pub fn transform_fields_split<'r>(
        &self,
        mut field: impl FnMut(usize, &str) -> Option<Field<'r>>,
        dense: &mut [f32],
        sparse: &mut CsrMatrix,
    ) -> Result<(), RecordError> {
        assert_eq!(
            dense.len(),
            self.dense_width,
            "output slice length must equal the pipeline's dense width"
        );
        dense.fill(0.0);
        let mut row = SparseRow::default();
        for (i, column) in self.columns.iter().enumerate() {
            let value = field(i, &column.name).ok_or_else(|| RecordError::MissingField {
                field: column.name.clone(),
            })?;
            let wrong = || RecordError::WrongType {
                field: column.name.clone(),
                expected: column.encoder.expected(),
                found: value.describe(),
            };
            let raw = match value {
                Field::Missing | Field::Json(Value::Null) => Raw::Missing,
                Field::Bool(b) | Field::Json(&Value::Bool(b)) => Raw::Bool(b),
                Field::Number(x) => Raw::Number(x),
                Field::Json(Value::Number(n)) => Raw::Number(n.as_f64().ok_or_else(wrong)?),
                Field::Text(s) => raw_text(s),
                Field::Json(Value::String(s)) => raw_text(s),
                Field::Json(Value::Array(items)) => {
                    if let Encoder::Image(image) = &column.encoder {
                        image
                            .encode(ImageInput::Array(items), &mut dense[column.dense_span()])
                            .map_err(|reason| RecordError::InvalidImage {
                                field: column.name.clone(),
                                reason,
                            })?;
                        continue;
                    }
                    return Err(wrong());
                }
                Field::Json(Value::Object(_)) => return Err(wrong()),
            };
            let span = column.dense_span();
            column
                .encoder
                .encode(raw, &mut dense[span], &mut row, column.offset)
                .map_err(|reject| match reject {
                    Reject::Kind => wrong(),
                    Reject::Image(reason) => RecordError::InvalidImage {
                        field: column.name.clone(),
                        reason,
                    },
                    Reject::Audio(reason) => RecordError::InvalidAudio {
                        field: column.name.clone(),
                        reason,
                    },
                })?;
        }
        sparse.push_row(&row.entries);
        Ok(())
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

/// Decodes every image cell of the image feature columns of `schema` in `rows`
/// (the `target` excluded), so that unreadable or oversized images are refused
/// before training starts.
///
/// Errors: `InvalidImage` naming the first bad cell's row and column,
/// `InvalidValue` for a number or boolean in an image column.
pub fn check_images(
    table: &Table,
    rows: &[usize],
    schema: &Schema,
    target: &str,
    options: &ImageOptions,
) -> Result<(), DataError> {
    let probe = ImageEncoder::new(options);
    let mut out = vec![0.0f32; probe.width()];
    for column in &schema.columns {
        if column.kind != ColumnKind::Image || !column.is_feature() || column.name == target {
            continue;
        }
        let Some(cells) = table.column(&column.name) else {
            continue;
        };
        for &r in rows.iter().filter(|&&r| r < cells.len()) {
            let raw = Raw::from_cell(&cells[r]);
            match raw {
                Raw::Missing => {}
                Raw::Text(s) => probe
                    .encode(ImageInput::Text(s), &mut out)
                    .map_err(|reason| DataError::InvalidImage {
                        column: column.name.clone(),
                        row: r + 1,
                        reason,
                    })?,
                raw => {
                    return Err(DataError::InvalidValue {
                        column: column.name.clone(),
                        row: r + 1,
                        value: raw.describe(),
                        expected: EXPECT_IMAGE,
                    })
                }
            }
        }
    }
    Ok(())
}

/// Rejects row indices at or past `n`, the length of the shortest column read.
fn check_rows(n: usize, rows: &[usize]) -> Result<(), DataError> {
    match rows.iter().find(|&&r| r >= n) {
        Some(&row) => Err(DataError::RowOutOfRange { row, rows: n }),
        None => Ok(()),
    }
}

fn fit_numeric(mut values: Vec<f64>, rows: usize, standardize: bool, bins: usize) -> Encoder {
    let missing = rows - values.len();
    let median = median(&mut values);
    let bin_edges = quantile_edges(&mut values, bins);
    let (mut mean, mut std) = (0.0, 1.0);
    if standardize {
        let n = rows as f64;
        let sum: f64 = values.iter().sum::<f64>() + missing as f64 * median;
        mean = sum / n;
        let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
            + missing as f64 * (median - mean) * (median - mean);
        std = (squares / n).sqrt();
        if !mean.is_finite() {
            mean = 0.0;
        }
        if !(std.is_finite() && std > 0.0) {
            std = 1.0;
        }
    }
    Encoder::Numeric {
        median,
        mean,
        std,
        missing_indicator: missing > 0,
        bin_edges,
    }
}

/// Distinct quantile edges at 0, 1/bins, ..., 1 of `values`; fewer than two
/// distinct edges (or `bins` 0) gives none.
fn quantile_edges(values: &mut [f64], bins: usize) -> Vec<f64> {
    if bins == 0 || values.is_empty() {
        return Vec::new();
    }
    values.sort_unstable_by(f64::total_cmp);
    let last = values.len() - 1;
    let mut edges: Vec<f64> = (0..=bins)
        .map(|i| values[(i * last + bins / 2) / bins])
        .collect();
    edges.dedup();
    if edges.len() < 2 {
        edges.clear();
    }
    edges
}

fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return upper;
    }
    let lower = values[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    lower / 2.0 + upper / 2.0
}

/// One field of a record on the serving path: a JSON value, or an element
/// already typed (inference protocol tensors). Text is read as in JSON: a
/// missing-value token is missing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    Json(&'a Value),
    Missing,
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

impl Field<'_> {
    fn describe(self) -> String {
        match self {
            Field::Json(value) => describe_json(value),
            Field::Missing => "null".to_owned(),
            Field::Number(x) => format!("the number {x}"),
            Field::Bool(b) => format!("the boolean {b}"),
            Field::Text(s) => format!("the string \"{}\"", snippet(s)),
        }
    }
}

fn raw_text(s: &str) -> Raw<'_> {
    if super::canon::is_missing_token(s) {
        Raw::Missing
    } else {
        Raw::Text(s)
    }
}

fn describe_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{}\"", snippet(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::data::read::{read_csv, ReadLimits};
    use crate::data::schema::infer_schema;
    use crate::data::table::Cell;
    use crate::data::text::TextOptions;

    fn csv(s: &str) -> Table {
        read_csv(s.as_bytes(), &ReadLimits::default()).unwrap()
    }

    fn fit_all(t: &Table, target: &str, options: &PipelineOptions) -> FeaturePipeline {
        let schema = infer_schema(t, &BTreeMap::new(), &[]).unwrap();
        let rows: Vec<usize> = (0..t.rows()).collect();
        FeaturePipeline::fit(t, &rows, &schema, target, options).unwrap()
    }

    fn record(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn row_of(p: &FeaturePipeline, t: &Table, r: usize) -> Vec<f32> {
        p.transform(t, &[r]).unwrap().row(0).to_vec()
    }

    fn via_record(p: &FeaturePipeline, json: &str) -> Result<Vec<f32>, RecordError> {
        let mut out = vec![f32::NAN; p.width()];
        p.transform_record(&record(json), &mut out)?;
        Ok(out)
    }

    const ADULTISH: &str = "\
age,workclass,hours,smoker,y
39, State-gov,40,true,<=50K
50, Self-emp,13,false,<=50K
38, Private,40,,>50K
53, Private,,true,>50K
28, Private,40,false,<=50K
";

    #[test]
    fn numeric_median_imputation_with_indicator() {
        let t = csv("x,y\n1,a\n?,b\n3,a\n10,b\n");
        let p = fit_all(
            &t,
            "y",
            &PipelineOptions {
                standardize: false,
                numeric_bins: 0,
                ..Default::default()
            },
        );
        assert_eq!(p.feature_names(), ["x", "x__missing"]);
        let m = p.transform(&t, &[0, 1, 2, 3]).unwrap();
        assert_eq!(m.column(0).to_vec(), [1.0, 3.0, 3.0, 10.0]);
        assert_eq!(m.column(1).to_vec(), [0.0, 1.0, 0.0, 0.0]);

        let t = csv("x,y\n1,a\n2,b\n4,a\n");
        let p = fit_all(
            &t,
            "y",
            &PipelineOptions {
                standardize: false,
                numeric_bins: 0,
                ..Default::default()
            },
        );
        assert_eq!(p.feature_names(), ["x"]);
        assert_eq!(via_record(&p, r#"{"x": null}"#).unwrap(), [2.0]);
    }

    #[test]
    fn piecewise_linear_bins_encode_progress_through_training_quantiles() {
        let t = csv("x,y\n0,a\n10,b\n20,a\n30,b\n40,a\n");
        let p = fit_all(
            &t,
            "y",
            &PipelineOptions {
                numeric_bins: 2,
                ..Default::default()
            },
        );
        assert_eq!(p.feature_names(), ["x", "x#bin1", "x#bin2"]);
        let row = |x: &str| via_record(&p, &format!(r#"{{"x": {x}}}"#)).unwrap()[1..].to_vec();
        assert_eq!(row("0"), [0.0, 0.0]);
        assert_eq!(row("10"), [0.5, 0.0]);
        assert_eq!(row("30"), [1.0, 0.5]);
        assert_eq!(row("99"), [1.0, 1.0]);
        assert_eq!(row("-5"), [0.0, 0.0]);
        let constant = csv("x,y\n5,a\n5,b\n5,a\n");
        let p = fit_all(&constant, "y", &PipelineOptions::default());
        assert_eq!(p.feature_names(), ["x"]);
    }

    #[test]
    fn standardization_uses_training_rows_only() {
        let t = csv("x,y\n1,a\n2,a\n3,b\n1000,b\n");
        let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        let p = FeaturePipeline::fit(&t, &[0, 1, 2], &schema, "y", &PipelineOptions::default())
            .unwrap();
        let train = p.transform(&t, &[0, 1, 2]).unwrap();
        let col = train.column(0);
        let mean: f32 = col.sum() / 3.0;
        let var: f32 = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "{mean} {var}"
        );
        let std = (2.0f32 / 3.0).sqrt();
        assert!((train[[2, 0]] - 1.0 / std).abs() < 1e-5);
        let test = p.transform(&t, &[3]).unwrap();
        assert!(
            (test[[0, 0]] - 998.0 / std).abs() < 1e-2,
            "{}",
            test[[0, 0]]
        );
    }

    #[test]
    fn constant_column_has_unit_std() {
        let t = csv("x,y\n5,a\n5,b\n");
        let p = fit_all(&t, "y", &PipelineOptions::default());
        assert_eq!(
            p.transform(&t, &[0, 1]).unwrap().column(0).to_vec(),
            [0.0, 0.0]
        );
        assert_eq!(via_record(&p, r#"{"x": 6}"#).unwrap(), [1.0]);
    }

    #[test]
    fn one_hot_with_missing_and_unknown_slots() {
        let t = csv("c,y\nb,1\na,0\nb,1\nNA,0\nc,1\n3.0,0\n");
        let p = fit_all(&t, "y", &PipelineOptions::default());
        assert_eq!(
            p.feature_names(),
            ["c=b", "c=3", "c=a", "c=c", "c=__missing__", "c=__unknown__"]
        );
        let m = p.transform(&t, &[0, 3]).unwrap();
        assert_eq!(m.row(0).to_vec(), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(m.row(1).to_vec(), [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(
            via_record(&p, r#"{"c": "zzz"}"#).unwrap(),
            [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
        );
        assert_eq!(
            via_record(&p, r#"{"c": null}"#).unwrap(),
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
        for three in [
            r#"{"c": 3}"#,
            r#"{"c": 3.0}"#,
            r#"{"c": "3"}"#,
            r#"{"c": " 03 "}"#,
        ] {
            assert_eq!(
                via_record(&p, three).unwrap(),
                [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                "{three}"
            );
        }
        assert_eq!(
            via_record(&p, r#"{"c": " a "}"#).unwrap(),
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn hashing_above_the_cap_is_stable() {
        let t = csv("c,y\nalpha,1\nbeta,0\ngamma,1\n");
        let options = PipelineOptions {
            max_one_hot: 2,
            hash_buckets: 8,
            ..Default::default()
        };
        let p = fit_all(&t, "y", &options);
        assert_eq!(p.width(), 8);
        assert_eq!(p.feature_names()[3], "c#hash3");
        let bucket_of = |json: &str| via_record(&p, json).unwrap().iter().position(|&v| v == 1.0);
        assert_eq!(super::super::canon::fnv1a("alpha") % 8, 3);
        assert_eq!(bucket_of(r#"{"c": "alpha"}"#), Some(3));
        assert_eq!(row_of(&p, &t, 0).iter().position(|&v| v == 1.0), Some(3));
        assert_eq!(
            bucket_of(r#"{"c": "never seen"}"#),
            Some((super::super::canon::fnv1a("never seen") % 8) as usize)
        );
        assert_eq!(via_record(&p, r#"{"c": null}"#).unwrap(), vec![0.0; 8]);
    }

    const REVIEWS: &str = "\
review,age,y
\"Great product, works great and arrived early\",31,pos
\"Terrible quality; broke after one day\",45,neg
\"Great value and great support team\",22,pos
\"Broke quickly, terrible support, not worth it\",52,neg
";

    fn text_pipeline(options: &PipelineOptions) -> (Table, FeaturePipeline) {
        let t = csv(REVIEWS);
        let overrides = BTreeMap::from([("review".to_string(), ColumnKind::Text)]);
        let schema = infer_schema(&t, &overrides, &[]).unwrap();
        let p = FeaturePipeline::fit(&t, &[0, 1, 2, 3], &schema, "y", options).unwrap();
        (t, p)
    }

    #[test]
    fn text_is_tfidf_after_the_dense_features() {
        let options = PipelineOptions {
            numeric_bins: 0,
            ..Default::default()
        };
        let (t, p) = text_pipeline(&options);
        assert_eq!(p.dense_width(), 1);
        let names = p.feature_names();
        assert_eq!(names.len(), p.width());
        assert_eq!(names[0], "age");
        // min_df 2: terms in at least two reviews, most frequent first.
        assert_eq!(
            &names[1..],
            [
                "review:and",
                "review:broke",
                "review:great",
                "review:support",
                "review:terrible"
            ]
        );
        let row = row_of(&p, &t, 0);
        let norm: f32 = row[1..].iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(row[2], 0.0);
        assert!(
            row[3] > row[1] && row[1] > 0.0,
            "`great` twice, `and` once: {row:?}"
        );
        let (dense, sparse) = p.transform_split(&t, &[1, 3]).unwrap();
        assert_eq!(dense.dim(), (2, 1));
        assert_eq!((sparse.rows(), sparse.cols()), (2, 5));
        assert_eq!(sparse.row(0).0, [1, 4]);
        let full = p.transform(&t, &[1, 3]).unwrap();
        assert_eq!(full.slice(s![.., 1..]), sparse.to_dense());
        let shouted = via_record(
            &p,
            r#"{"review": "GREAT product, works GREAT and arrived early", "age": 31}"#,
        )
        .unwrap();
        assert_eq!(shouted, row);
        assert_eq!(
            via_record(&p, r#"{"review": null, "age": 31}"#).unwrap()[1..],
            [0.0; 5]
        );
        assert_eq!(
            via_record(&p, r#"{"review": ["a"], "age": 31}"#)
                .unwrap_err()
                .to_string(),
            "field `review`: expected a string, found an array"
        );
    }

    #[test]
    fn text_options_shape_the_features() {
        let hashed = PipelineOptions {
            text: TextOptions {
                hashing: Some(16),
                ..TextOptions::default()
            },
            ..Default::default()
        };
        let (_, p) = text_pipeline(&hashed);
        assert_eq!(p.width() - p.dense_width(), 16);
        assert!(p.feature_names().contains(&"review#tfidf15".to_string()));
        let bigrams_only_once = PipelineOptions {
            text: TextOptions {
                min_df: 1,
                ngram_range: [1, 2],
                ..TextOptions::default()
            },
            ..Default::default()
        };
        let (_, p) = text_pipeline(&bigrams_only_once);
        assert!(p
            .feature_names()
            .contains(&"review:terrible quality".to_string()));
        let per_column = PipelineOptions {
            text_columns: BTreeMap::from([(
                "review".to_string(),
                TextOptions {
                    hashing: Some(8),
                    ..TextOptions::default()
                },
            )]),
            ..Default::default()
        };
        let (t, p) = text_pipeline(&per_column);
        assert_eq!(p.width() - p.dense_width(), 8);
        let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(per_column.check_columns(&schema), Ok(()));
        let not_text = PipelineOptions {
            text_columns: BTreeMap::from([("age".to_string(), TextOptions::default())]),
            ..Default::default()
        };
        let err = not_text.check_columns(&schema).unwrap_err();
        assert!(
            err.to_string()
                .contains("pipeline.text_columns names `age`"),
            "{err}"
        );
        let bad_column = PipelineOptions {
            text_columns: BTreeMap::from([(
                "review".to_string(),
                TextOptions {
                    min_df: 0,
                    ..TextOptions::default()
                },
            )]),
            ..Default::default()
        };
        let err = bad_column.validate().unwrap_err();
        assert!(
            err.to_string()
                .contains("pipeline.text_columns.review.min_df is 0"),
            "{err}"
        );
        let bad = PipelineOptions {
            text: TextOptions {
                min_df: 0,
                ..TextOptions::default()
            },
            ..Default::default()
        };
        let t = csv(REVIEWS);
        let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        let err = FeaturePipeline::fit(&t, &[0, 1], &schema, "y", &bad).unwrap_err();
        assert!(err.to_string().contains("pipeline.text.min_df"), "{err}");
    }

    #[test]
    fn text_pipeline_round_trips_through_json() {
        let (t, p) = text_pipeline(&PipelineOptions::default());
        let json = serde_json::to_string(&p).unwrap();
        let back: FeaturePipeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.transform(&t, &[0, 1, 2, 3]).unwrap(),
            p.transform(&t, &[0, 1, 2, 3]).unwrap()
        );
        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["columns"][0]["encoder"]["idf"]
            .as_array_mut()
            .unwrap()
            .pop();
        assert!(serde_json::from_value::<FeaturePipeline>(v).is_err());
    }

    #[test]
    fn stored_bag_of_words_columns_still_load() {
        let json = r#"{"columns": [{"name": "t", "kind": "text", "encoder": {"encoding": "bag_of_words", "buckets": 8}}]}"#;
        let p: FeaturePipeline = serde_json::from_str(json).unwrap();
        assert_eq!((p.width(), p.dense_width()), (8, 8));
        let row = via_record(&p, r#"{"t": "hello world"}"#).unwrap();
        let norm: f32 = row.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn record_path_matches_table_path() {
        let t = csv(ADULTISH);
        let p = fit_all(&t, "y", &PipelineOptions::default());
        assert_eq!(
            p.inputs(),
            [
                ("age".to_string(), ColumnKind::Numeric),
                ("workclass".to_string(), ColumnKind::Categorical),
                ("hours".to_string(), ColumnKind::Numeric),
                ("smoker".to_string(), ColumnKind::Boolean),
            ]
        );
        assert_eq!(p.width(), p.feature_names().len());
        let records = [
            r#"{"age": 39, "workclass": "State-gov", "hours": 40, "smoker": true}"#,
            r#"{"age": "50", "workclass": "Self-emp", "hours": 13.0, "smoker": "false"}"#,
            r#"{"age": 38.0, "workclass": " Private", "hours": "40", "smoker": null}"#,
            r#"{"age": 53, "workclass": "Private", "hours": null, "smoker": 1}"#,
            r#"{"age": 28, "workclass": "Private", "hours": "40", "smoker": "no", "y": "<=50K"}"#,
        ];
        let all = p.transform(&t, &[0, 1, 2, 3, 4]).unwrap();
        for (r, json) in records.iter().enumerate() {
            assert_eq!(
                via_record(&p, json).unwrap(),
                all.row(r).to_vec(),
                "row {r}"
            );
        }
        let rec = record(records[4]);
        assert_eq!(p.unknown_fields(&rec), ["y"]);
    }

    #[test]
    fn record_errors() {
        let t = csv(ADULTISH);
        let p = fit_all(&t, "y", &PipelineOptions::default());
        assert_eq!(
            via_record(
                &p,
                r#"{"workclass": "Private", "hours": 1, "smoker": true}"#
            )
            .unwrap_err(),
            RecordError::MissingField {
                field: "age".into()
            }
        );
        let wrong = |json: &str| via_record(&p, json).unwrap_err().to_string();
        assert_eq!(
            wrong(r#"{"age": "old", "workclass": "x", "hours": 1, "smoker": true}"#),
            "field `age`: expected a number, found the string \"old\""
        );
        assert_eq!(
            wrong(r#"{"age": true, "workclass": "x", "hours": 1, "smoker": true}"#),
            "field `age`: expected a number, found the boolean true"
        );
        assert_eq!(
            wrong(r#"{"age": "inf", "workclass": "x", "hours": 1, "smoker": true}"#),
            "field `age`: expected a number, found the string \"inf\""
        );
        assert_eq!(
            wrong(r#"{"age": 1, "workclass": {"a": 1}, "hours": 1, "smoker": true}"#),
            "field `workclass`: expected a string, number or boolean, found an object"
        );
        assert_eq!(
            wrong(r#"{"age": 1, "workclass": "x", "hours": [1], "smoker": true}"#),
            "field `hours`: expected a number, found an array"
        );
        assert_eq!(
            wrong(r#"{"age": 1, "workclass": "x", "hours": 1, "smoker": 2}"#),
            "field `smoker`: expected a boolean (true/false, yes/no, 1/0), found the number 2"
        );
    }

    #[test]
    fn table_transform_errors_name_row_and_column() {
        let t = csv(ADULTISH);
        let p = fit_all(&t, "y", &PipelineOptions::default());
        let other = csv("age,workclass,hours,smoker\n1,a,2,true\nx,a,2,true\n");
        assert_eq!(
            p.transform(&other, &[0, 1]).unwrap_err(),
            DataError::InvalidValue {
                column: "age".into(),
                row: 2,
                value: "x".into(),
                expected: "a number"
            }
        );
        let missing = csv("age,workclass\n1,a\n");
        assert_eq!(
            p.transform(&missing, &[0]).unwrap_err(),
            DataError::MissingColumn {
                name: "hours".into()
            }
        );
        assert_eq!(
            p.transform(&other, &[5]).unwrap_err(),
            DataError::RowOutOfRange { row: 5, rows: 2 }
        );
    }

    #[test]
    fn serde_round_trip_transforms_identically() {
        let t = csv(ADULTISH);
        let p = fit_all(
            &t,
            "y",
            &PipelineOptions {
                max_one_hot: 2,
                ..Default::default()
            },
        );
        let json = serde_json::to_string(&p).unwrap();
        let back: FeaturePipeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let rows = [0, 1, 2, 3, 4];
        assert_eq!(
            back.transform(&t, &rows).unwrap(),
            p.transform(&t, &rows).unwrap()
        );
        assert_eq!(back.feature_names(), p.feature_names());
        let rec =
            record(r#"{"age": 1, "workclass": "Private", "hours": 2, "smoker": true, "x": 1}"#);
        assert_eq!(back.unknown_fields(&rec), ["x"]);

        let p = fit_all(&t, "y", &PipelineOptions::default());
        let json = serde_json::to_string(&p).unwrap();
        let back: FeaturePipeline = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.transform(&t, &rows).unwrap(),
            p.transform(&t, &rows).unwrap()
        );
        let tampered = json.replace("\"std\":", "\"sd\":");
        assert!(serde_json::from_str::<FeaturePipeline>(&tampered).is_err());
        let extra = json.replace("\"median\":", "\"extra\":1,\"median\":");
        assert!(serde_json::from_str::<FeaturePipeline>(&extra).is_err());
        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["columns"][1]["encoder"]["vocabulary"][1] =
            v["columns"][1]["encoder"]["vocabulary"][0].clone();
        assert!(serde_json::from_value::<FeaturePipeline>(v).is_err());
    }

    #[test]
    fn fit_errors() {
        let t = csv(ADULTISH);
        let schema = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        let options = PipelineOptions::default();
        assert_eq!(
            FeaturePipeline::fit(&t, &[0], &schema, "nope", &options).unwrap_err(),
            DataError::UnknownColumn {
                name: "nope".into()
            }
        );
        assert_eq!(
            FeaturePipeline::fit(&t, &[], &schema, "y", &options).unwrap_err(),
            DataError::Empty
        );
        let bad = PipelineOptions {
            hash_buckets: 0,
            ..Default::default()
        };
        assert_eq!(
            FeaturePipeline::fit(&t, &[0], &schema, "y", &bad)
                .unwrap_err()
                .code(),
            "invalid_options"
        );
        let only_target = csv("id,y\na,1\nb,0\n");
        let ignore = ["id".to_string()];
        let schema = infer_schema(&only_target, &BTreeMap::new(), &ignore).unwrap();
        assert_eq!(
            FeaturePipeline::fit(&only_target, &[0, 1], &schema, "y", &options).unwrap_err(),
            DataError::NoFeatures
        );
    }

    #[test]
    fn excluded_columns_are_not_inputs() {
        let mut t = csv(ADULTISH);
        t.columns.push("empty".into());
        t.cells.push(vec![Cell::Missing; 5]);
        let ignore = ["hours".to_string()];
        let schema = infer_schema(&t, &BTreeMap::new(), &ignore).unwrap();
        let p = FeaturePipeline::fit(&t, &[0, 1, 2], &schema, "y", &PipelineOptions::default())
            .unwrap();
        let names: Vec<String> = p.inputs().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["age", "workclass", "smoker"]);
        let rec = record(r#"{"age": 1, "workclass": "Private", "smoker": true}"#);
        let mut out = vec![0.0; p.width()];
        p.transform_record(&rec, &mut out).unwrap();
    }

    #[test]
    fn transform_is_fast_enough_for_a_large_table() {
        let n = 40_000;
        let mut text = String::from("a,b,c,d,y\n");
        for i in 0..n {
            text.push_str(&format!(
                "{},{},cat{},{},{}\n",
                i % 90,
                (i * 7) % 13,
                i % 9,
                i % 2 == 0,
                i % 2
            ));
        }
        let t = csv(&text);
        let p = fit_all(&t, "y", &PipelineOptions::default());
        let rows: Vec<usize> = (0..n).collect();
        let start = std::time::Instant::now();
        let m = p.transform(&t, &rows).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(m.dim(), (n, p.width()));
        assert!(elapsed.as_millis() < 2_000, "{elapsed:?}");
    }
}
