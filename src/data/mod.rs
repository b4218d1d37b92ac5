//! Datasets and the fitted feature pipeline: reading raw CSV/JSON/NDJSON into
//! tables, inferring column kinds, fitting and applying the feature pipeline
//! and target encoding, splitting and fingerprinting training data.

mod audio;
mod canon;
mod error;
mod image;
mod mel;
mod pipeline;
mod read;
mod schema;
mod split;
mod table;
mod target;
mod text;
mod wav;

pub use audio::{
    audio_limits, set_audio_limits, wav_log_mel, AudioLimits, AudioOptions, AugmentOptions,
    MAX_AUDIO_FEATURES, MAX_MEL_BANDS, MAX_MODEL_DURATION_SECS, MAX_MODEL_SAMPLE_RATE,
    MIN_BAND_STD,
};
pub use canon::{is_missing_token, MISSING_TOKENS};
pub use error::{DataError, RecordError};
pub use image::{
    ImageMode, ImageOptions, PixelLayout, MAX_DECODED_SIDE, MAX_IMAGE_SIDE, MIN_PIXEL_STD,
};
pub use pipeline::{
    check_audio, check_images, ColumnLayout, EncodingView, FeaturePipeline, Field, PipelineOptions,
    MAX_HASH_BUCKETS, MAX_ONE_HOT_LIMIT,
};
pub use read::{
    read_csv, read_json_rows, read_ndjson, read_table, table_from_records, ReadLimits, TableFormat,
};
pub use schema::{
    infer_schema, ColumnKind, ColumnSchema, Exclusion, Schema, DISTINCT_CAP, IDENTIFIER_MIN_ROWS,
    TEXT_MIN_AVG_CHARS,
};
pub use split::{fingerprint, kfold, train_test_split, Fingerprint, HashingReader};
pub use table::{Cell, Table};
pub use target::{rows_with_target, TargetEncoder, Task, AUTO_CLASS_MAX_DISTINCT, MAX_CLASSES};
pub use text::{TextOptions, MAX_CHAR_NGRAM, MAX_TEXT_FEATURES};

/// Rows handled between two yield points when a training thread reads,
/// profiles or encodes a table (see [`crate::cooperative::yield_point`]).
pub(crate) const YIELD_ROWS: usize = 256;
