//! The fitted encoder of one column: its features' width, what it accepts, and
//! one raw value into its features.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::audio::AudioEncoder;
use crate::data::canon::{add_words, l2_normalize, FnvBuild, Raw, WrongKind};
use crate::data::image::{ImageEncoder, ImageInput};
use crate::data::text::TfidfEncoder;

pub(super) const EXPECT_NUMBER: &str = "a number";
pub(super) const EXPECT_BOOL: &str = "a boolean (true/false, yes/no, 1/0)";
const EXPECT_CATEGORY: &str = "a string, number or boolean";
const EXPECT_TEXT: &str = "a string";
pub(super) const EXPECT_IMAGE: &str =
    "a base64 PNG or JPEG image, or a pixel array in the declared layout";
pub(super) const EXPECT_AUDIO: &str = "a base64 WAV file";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "encoding", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Encoder {
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
pub(super) enum Reject {
    /// The value does not fit the encoder's kind.
    Kind,
    /// An image that cannot be decoded, with the reason.
    Image(String),
    /// An audio clip that cannot be decoded, with the reason.
    Audio(String),
}

impl Encoder {
    pub(super) fn width(&self) -> usize {
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
    pub(super) fn is_sparse(&self) -> bool {
        matches!(self, Encoder::Tfidf(_))
    }

    pub(super) fn expected(&self) -> &'static str {
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
    pub(super) fn encode(
        &self,
        raw: Raw<'_>,
        out: &mut [f32],
        sparse: &mut SparseRow,
        offset: usize,
    ) -> Result<(), Reject> {
        match self {
            Encoder::Numeric {
                median,
                mean,
                std,
                missing_indicator,
                bin_edges,
            } => {
                let value = raw.number()?;
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
                let value = raw.boolean()?;
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

impl From<WrongKind> for Reject {
    fn from(_: WrongKind) -> Reject {
        Reject::Kind
    }
}

/// One row's sparse entries and the encoders' scratch space.
#[derive(Default)]
pub(super) struct SparseRow {
    pub(super) entries: Vec<(u32, f32)>,
    pub(super) scratch: Vec<(u32, f32)>,
}

fn bucket(key: &str, buckets: usize) -> usize {
    (crate::data::canon::fnv1a(key) % buckets as u64) as usize
}

fn to_f32(v: f64) -> f32 {
    v.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32
}
