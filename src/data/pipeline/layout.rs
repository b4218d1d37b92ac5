//! A read-only view of the fitted encoders: which features each input column
//! produces and with which statistics — what explanations sum attributions
//! back over and what exports translate into other formats — and the
//! baseline record explanations start from.

use std::collections::HashMap;
use std::ops::Range;

use serde_json::{Map, Value};

use super::{Encoder, FeaturePipeline};
use crate::data::canon::Raw;
use crate::data::schema::ColumnKind;
use crate::data::table::Table;

/// One input column and the features it produces.
#[derive(Clone, Debug)]
pub struct ColumnLayout<'a> {
    pub name: &'a str,
    pub kind: ColumnKind,
    /// Its features in the full feature row (dense block, then the text block).
    pub features: Range<usize>,
    pub encoding: EncodingView<'a>,
}

/// A column's fitted encoder.
#[derive(Clone, Debug)]
pub enum EncodingView<'a> {
    /// Feature 0: `(value or median − mean) / std`; then a missing indicator if
    /// `missing_indicator`; then one feature per bin `clamp((x − e₀)/(e₁ − e₀), 0, 1)`.
    Numeric {
        median: f64,
        mean: f64,
        std: f64,
        missing_indicator: bool,
        bin_edges: &'a [f64],
    },
    /// Feature 0: 1/0, missing → `fill`; then a missing indicator if `missing_indicator`.
    Boolean { fill: f64, missing_indicator: bool },
    /// One slot per vocabulary entry, then `__missing__`, then `__unknown__`.
    OneHot { vocabulary: &'a [String] },
    /// FNV-1a bucket of the category key.
    Hashed { buckets: usize },
    /// Text features (TF-IDF or hashed words).
    Text,
    /// Pixels, `height × width × channels` in row-major order.
    Image {
        width: usize,
        height: usize,
        channels: usize,
    },
    /// Log-mel frames.
    Audio,
}

impl FeaturePipeline {
    /// Every input column with its features, in pipeline order.
    pub fn layout(&self) -> Vec<ColumnLayout<'_>> {
        self.columns
            .iter()
            .map(|column| {
                let start = if column.encoder.is_sparse() {
                    self.dense_width + column.offset
                } else {
                    column.offset
                };
                let encoding = match &column.encoder {
                    Encoder::Numeric {
                        median,
                        mean,
                        std,
                        missing_indicator,
                        bin_edges,
                    } => EncodingView::Numeric {
                        median: *median,
                        mean: *mean,
                        std: *std,
                        missing_indicator: *missing_indicator,
                        bin_edges,
                    },
                    Encoder::Boolean {
                        fill,
                        missing_indicator,
                    } => EncodingView::Boolean {
                        fill: *fill,
                        missing_indicator: *missing_indicator,
                    },
                    Encoder::OneHot { vocabulary, .. } => EncodingView::OneHot { vocabulary },
                    Encoder::Hashed { buckets } => EncodingView::Hashed { buckets: *buckets },
                    Encoder::BagOfWords { .. } | Encoder::Tfidf(_) => EncodingView::Text,
                    Encoder::Image(image) => {
                        let (width, height, channels) = image.dimensions();
                        EncodingView::Image {
                            width,
                            height,
                            channels,
                        }
                    }
                    Encoder::Audio(_) => EncodingView::Audio,
                };
                ColumnLayout {
                    name: &column.name,
                    kind: column.kind,
                    features: start..start + column.encoder.width(),
                    encoding,
                }
            })
            .collect()
    }

    /// The reference record of explanations, from `rows` of `table`: per column
    /// the training mean (numeric), the most frequent value (boolean,
    /// categorical), or `null` — no text, no image, no audio — for the rest.
    pub fn baseline_record(&self, table: &Table, rows: &[usize]) -> Map<String, Value> {
        let mut record = Map::new();
        for column in &self.columns {
            let cells = table.column(&column.name).unwrap_or(&[]);
            let raws = || {
                rows.iter()
                    .filter_map(|&r| cells.get(r))
                    .map(Raw::from_cell)
            };
            let value = match &column.encoder {
                Encoder::Numeric { .. } => {
                    let (mut sum, mut count) = (0.0, 0usize);
                    for raw in raws() {
                        if let Ok(Some(v)) = raw.number() {
                            sum += v;
                            count += 1;
                        }
                    }
                    number(if count == 0 {
                        None
                    } else {
                        Some(sum / count as f64)
                    })
                }
                Encoder::Boolean { .. } => {
                    let (mut trues, mut present) = (0usize, 0usize);
                    for raw in raws() {
                        if let Ok(Some(v)) = raw.boolean() {
                            present += 1;
                            trues += usize::from(v);
                        }
                    }
                    if present == 0 {
                        Value::Null
                    } else {
                        Value::Bool(2 * trues >= present)
                    }
                }
                Encoder::OneHot { vocabulary, .. } => vocabulary
                    .first()
                    .map_or(Value::Null, |v| Value::String(v.clone())),
                Encoder::Hashed { .. } => {
                    let mut counts: HashMap<String, usize> = HashMap::new();
                    for raw in raws() {
                        if let Some(key) = raw.key() {
                            *counts.entry(key.as_str().to_owned()).or_default() += 1;
                        }
                    }
                    counts
                        .into_iter()
                        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                        .map_or(Value::Null, |(k, _)| Value::String(k))
                }
                _ => Value::Null,
            };
            record.insert(column.name.clone(), value);
        }
        record
    }

    /// [`FeaturePipeline::baseline_record`] from the fitted statistics alone, for
    /// models stored without one: the mean (the median when not standardized),
    /// the more frequent boolean, the most frequent one-hot category, else `null`.
    pub fn default_baseline(&self) -> Map<String, Value> {
        self.columns
            .iter()
            .map(|column| {
                let value = match &column.encoder {
                    Encoder::Numeric {
                        median, mean, std, ..
                    } => {
                        let standardized = *mean != 0.0 || *std != 1.0;
                        number(Some(if standardized { *mean } else { *median }))
                    }
                    Encoder::Boolean { fill, .. } => Value::Bool(*fill >= 0.5),
                    Encoder::OneHot { vocabulary, .. } => vocabulary
                        .first()
                        .map_or(Value::Null, |v| Value::String(v.clone())),
                    _ => Value::Null,
                };
                (column.name.clone(), value)
            })
            .collect()
    }
}

fn number(value: Option<f64>) -> Value {
    value
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}
