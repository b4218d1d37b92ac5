//! Per-prediction explanations: integrated gradients from the model's baseline
//! record to each instance, summed back to the raw columns.

use serde::Serialize;
use serde_json::{Map, Value};

use super::evaluate::argmax;
use super::predict::InstanceError;
use super::TabularModel;
use crate::data::{EncodingView, RecordError, Task};

/// Fewest and most integration steps a request may ask for.
pub const STEPS_RANGE: std::ops::RangeInclusive<usize> = 1..=1024;
/// Integration steps when the request names none.
pub const DEFAULT_STEPS: usize = 64;
/// Steps are doubled (up to [`MAX_REFINED_STEPS`]) while `|Σ attributions −
/// (prediction − base_value)|` exceeds this fraction of `|prediction − base_value|`.
pub const COMPLETENESS_TOLERANCE: f64 = 0.005;
/// Most steps the refinement goes to.
pub const MAX_REFINED_STEPS: usize = 4096;
/// Tokens listed per text column.
pub const TOP_TOKENS: usize = 10;

/// What to explain and how.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// Integration steps (at least; refined while completeness is off).
    pub steps: usize,
    /// Class label to explain; `None`: the predicted class.
    pub class: Option<String>,
    /// Whether image columns carry a per-pixel map.
    pub pixel_map: bool,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions {
            steps: DEFAULT_STEPS,
            class: None,
            pixel_map: false,
        }
    }
}

/// Why an explanation could not be given.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExplainError {
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("`class` is `{class}`, which the model does not predict (labels: {labels})")]
    UnknownClass { class: String, labels: String },
    #[error("`class` applies to classification models only")]
    ClassOnRegression,
    #[error("the stored baseline record cannot be encoded: {0}")]
    Baseline(RecordError),
}

/// One instance's explanation.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Explanation {
    /// The class whose probability is explained (classification only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The explained output at the instance: that class's probability, or the value.
    pub prediction: f64,
    /// The explained output at the model's baseline record.
    pub base_value: f64,
    /// One entry per input column, largest `|attribution|` first; they add up to
    /// `prediction − base_value`.
    pub attributions: Vec<ColumnAttribution>,
    /// `|base_value + Σ attributions − prediction|`.
    pub completeness_gap: f64,
    /// Integration steps used.
    pub steps: usize,
}

/// A raw column's share of `prediction − base_value`.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ColumnAttribution {
    pub column: String,
    pub attribution: f64,
    /// Text columns: the tokens contributing most, largest `|attribution|` first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<TokenAttribution>>,
    /// Image columns, on request: attribution per pixel (channels summed), rows of
    /// `width` values, top row first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixels: Option<Vec<Vec<f32>>>,
}

/// A text token's attribution.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TokenAttribution {
    /// The token (or `#tfidfK`, a hashed feature).
    pub token: String,
    pub attribution: f64,
}

impl TabularModel {
    /// Explains every record; the first unreadable record fails the batch.
    pub fn explain_records(
        &self,
        records: &[Map<String, Value>],
        options: &ExplainOptions,
    ) -> Result<Vec<Explanation>, ExplainError> {
        let target = self.explained_class(options.class.as_deref())?;
        let width = self.pipeline.width();
        let mut baseline = vec![0.0_f32; width];
        self.pipeline
            .transform_record(&self.baseline, &mut baseline)
            .map_err(ExplainError::Baseline)?;
        let names = self.pipeline.feature_names();
        let mut x = vec![0.0_f32; width];
        records
            .iter()
            .enumerate()
            .map(|(index, record)| {
                self.pipeline
                    .transform_record(record, &mut x)
                    .map_err(|error| InstanceError { index, error })?;
                Ok(self.explain_features(&x, &baseline, target, options, &names))
            })
            .collect()
    }

    /// The output to explain: `(class index, label)`; `None` picks the predicted class.
    fn explained_class(&self, class: Option<&str>) -> Result<Option<usize>, ExplainError> {
        let Some(class) = class else {
            return Ok(None);
        };
        if self.encoder.task() == Task::Regression {
            return Err(ExplainError::ClassOnRegression);
        }
        let labels = self.encoder.labels();
        labels
            .iter()
            .position(|l| l == class)
            .map(Some)
            .ok_or_else(|| ExplainError::UnknownClass {
                class: class.to_string(),
                labels: labels.join(", "),
            })
    }

    fn explain_features(
        &self,
        x: &[f32],
        baseline: &[f32],
        class: Option<usize>,
        options: &ExplainOptions,
        names: &[String],
    ) -> Explanation {
        let task = self.encoder.task();
        let labels = self.encoder.labels();
        let binary = task == Task::Classification && self.mlp.outputs() == 1;
        let class = match (task, class) {
            (Task::Regression, _) => None,
            (Task::Classification, Some(c)) => Some(c),
            (Task::Classification, None) => {
                let row = ndarray::ArrayView2::from_shape((1, x.len()), x)
                    .expect("one row of the pipeline's width");
                let out = self.mlp.predict(row);
                let probabilities: Vec<f32> = if binary {
                    vec![1.0 - out[[0, 0]], out[[0, 0]]]
                } else {
                    out.row(0).to_vec()
                };
                Some(argmax(&probabilities))
            }
        };
        // The network output explained and the affine map to the reported scale.
        let (output, scale, shift) = match (class, binary) {
            (Some(0), true) => (0, -1.0, 1.0),
            (Some(_), true) => (0, 1.0, 0.0),
            (Some(c), false) => (c, 1.0, 0.0),
            (None, _) => match &self.encoder {
                crate::data::TargetEncoder::Regression { mean, std, .. } => (0, *std, *mean),
                crate::data::TargetEncoder::Classes { .. } => (0, 1.0, 0.0),
            },
        };
        let mut steps = options.steps.max(1);
        let (features, prediction, base_value, gap) = loop {
            let (attr, fx, fb) = self.mlp.integrated_gradients(x, baseline, output, steps);
            let features: Vec<f64> = attr.iter().map(|&a| f64::from(a) * scale).collect();
            let prediction = f64::from(fx) * scale + shift;
            let base_value = f64::from(fb) * scale + shift;
            let total: f64 = features.iter().sum();
            let gap = (base_value + total - prediction).abs();
            let tolerance = COMPLETENESS_TOLERANCE * (prediction - base_value).abs();
            if gap <= tolerance || steps * 2 > MAX_REFINED_STEPS {
                break (features, prediction, base_value, gap);
            }
            steps *= 2;
        };
        let mut attributions: Vec<ColumnAttribution> = self
            .pipeline
            .layout()
            .into_iter()
            .map(|column| {
                let span = &features[column.features.clone()];
                let mut entry = ColumnAttribution {
                    column: column.name.to_string(),
                    attribution: span.iter().sum(),
                    tokens: None,
                    pixels: None,
                };
                match column.encoding {
                    EncodingView::Text => {
                        let prefix = format!("{}:", column.name);
                        let mut tokens: Vec<TokenAttribution> = column
                            .features
                            .clone()
                            .zip(span)
                            .filter(|(_, a)| **a != 0.0)
                            .map(|(f, &a)| {
                                let name = &names[f];
                                let token = name
                                    .strip_prefix(&prefix)
                                    .or_else(|| name.strip_prefix(column.name))
                                    .unwrap_or(name);
                                TokenAttribution {
                                    token: token.to_string(),
                                    attribution: a,
                                }
                            })
                            .collect();
                        tokens.sort_by(|a, b| b.attribution.abs().total_cmp(&a.attribution.abs()));
                        tokens.truncate(TOP_TOKENS);
                        entry.tokens = Some(tokens);
                    }
                    EncodingView::Image {
                        width, channels, ..
                    } if options.pixel_map => {
                        entry.pixels = Some(
                            span.chunks(width * channels)
                                .map(|row| {
                                    row.chunks(channels)
                                        .map(|pixel| pixel.iter().sum::<f64>() as f32)
                                        .collect()
                                })
                                .collect(),
                        );
                    }
                    _ => {}
                }
                entry
            })
            .collect();
        attributions.sort_by(|a, b| b.attribution.abs().total_cmp(&a.attribution.abs()));
        Explanation {
            class: class.map(|c| labels[c].clone()),
            prediction,
            base_value,
            attributions,
            completeness_gap: gap,
            steps,
        }
    }
}
