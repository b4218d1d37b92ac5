//! Errors of the data layer: `DataError` for reading, inferring, fitting and
//! transforming tables, `RecordError` for one serving-time JSON record.

/// Everything that can go wrong between raw input bytes and model inputs.
///
/// Each `Display` is a user-facing sentence naming where the problem is (line,
/// 1-based data row, column) and the offending value. `row` fields are 1-based
/// data row numbers (the first record after a CSV header is row 1).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DataError {
    /// Malformed CSV: invalid UTF-8, a ragged row, broken quoting.
    #[error("invalid CSV at line {line}: {reason}")]
    Csv { line: u64, reason: String },
    /// Malformed JSON or NDJSON, or a record shape the reader does not accept.
    #[error("invalid JSON{}: {reason}", at_line(*.line))]
    Json { line: Option<u64>, reason: String },
    /// The underlying reader failed.
    #[error("could not read the input: {reason}")]
    Io { reason: String },
    /// A table format name that is not `csv`, `json` or `ndjson`.
    #[error("unknown table format `{name}`; the formats are csv, json and ndjson")]
    UnknownFormat { name: String },
    /// A header cell is empty (after trimming); `column` is 1-based.
    #[error("header column {column} has an empty name")]
    EmptyHeader { column: usize },
    /// Two columns share a name.
    #[error("column name `{name}` appears more than once in the header")]
    DuplicateHeader { name: String },
    /// The input has no data rows (or the caller passed no rows).
    #[error("the data has no rows")]
    Empty,
    /// More data rows than `ReadLimits::max_rows`.
    #[error("the data has more than {limit} rows, the limit `limits.max_rows`")]
    TooManyRows { limit: usize },
    /// More columns than `ReadLimits::max_columns`; for JSON, `found` is the
    /// count at the point the limit was crossed.
    #[error("the data has {found} columns, more than the limit `limits.max_columns` of {limit}")]
    TooManyColumns { limit: usize, found: usize },
    /// A field longer than `ReadLimits::max_field_bytes`; `line` is the input
    /// line (CSV, JSON, NDJSON) or the 1-based record number (records).
    #[error(
        "a field at line {line} is larger than the limit `limits.max_field_bytes` of {limit} bytes"
    )]
    FieldTooLarge { line: u64, limit: usize },
    /// A name given by the caller (target, override, ignore) is not a column.
    #[error("there is no column named `{name}`")]
    UnknownColumn { name: String },
    /// A column the fitted pipeline reads is absent from the table.
    #[error("the data has no column `{name}`, which the feature pipeline needs")]
    MissingColumn { name: String },
    /// A cell that cannot be read as its column's kind.
    #[error("row {row}, column `{column}`: expected {expected}, found `{value}`")]
    InvalidValue {
        column: String,
        row: usize,
        value: String,
        expected: &'static str,
    },
    /// A row whose target cell is missing.
    /// An image cell that cannot be decoded or is too large (1-based `row`).
    #[error("row {row}, column `{column}`: {reason}")]
    InvalidImage {
        column: String,
        row: usize,
        reason: String,
    },
    /// An audio cell that cannot be decoded, is unsupported or over the caps (1-based `row`).
    #[error("row {row}, column `{column}`: {reason}")]
    InvalidAudio {
        column: String,
        row: usize,
        reason: String,
    },
    #[error("row {row}: the target column `{column}` has no value")]
    MissingTarget { column: String, row: usize },
    /// A target label that the fitted encoder has not seen.
    #[error("row {row}: `{value}` in target column `{column}` is not a class seen in training")]
    UnknownLabel {
        column: String,
        row: usize,
        value: String,
    },
    /// A classification target with a single class.
    #[error("target column `{column}` has only one class (`{label}`); classification needs at least two")]
    SingleClass { column: String, label: String },
    /// A classification target with more classes than the encoder accepts.
    #[error("target column `{column}` has {found} classes, more than the limit `training.max_categories` of {limit}; choose regression or another target")]
    TooManyClasses {
        column: String,
        found: usize,
        limit: usize,
    },
    /// Label indices were asked of a regression encoder.
    #[error("the target is a regression target, so it has no class labels")]
    NotClassification,
    /// Pipeline options out of range.
    #[error("invalid pipeline options: {reason}")]
    InvalidOptions { reason: String },
    /// A row index past the end of the table (0-based `row`).
    #[error("row index {row} is out of range for a table with {rows} rows")]
    RowOutOfRange { row: usize, rows: usize },
    /// Every column is the target, ignored, an identifier or entirely missing.
    #[error("there are no usable feature columns: every column is the target, ignored, an identifier or entirely missing")]
    NoFeatures,
}

fn at_line(line: Option<u64>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

impl DataError {
    /// The setting and value of the limit this error exceeds, if it is one.
    pub fn limit(&self) -> Option<(&'static str, usize)> {
        match self {
            DataError::TooManyRows { limit } => Some(("limits.max_rows", *limit)),
            DataError::TooManyColumns { limit, .. } => Some(("limits.max_columns", *limit)),
            DataError::FieldTooLarge { limit, .. } => Some(("limits.max_field_bytes", *limit)),
            DataError::TooManyClasses { limit, .. } => Some(("training.max_categories", *limit)),
            _ => None,
        }
    }

    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            DataError::Csv { .. } => "csv_invalid",
            DataError::Json { .. } => "json_invalid",
            DataError::Io { .. } => "io_error",
            DataError::UnknownFormat { .. } => "unknown_format",
            DataError::EmptyHeader { .. } => "empty_header",
            DataError::DuplicateHeader { .. } => "duplicate_header",
            DataError::Empty => "empty_data",
            DataError::TooManyRows { .. } => "too_many_rows",
            DataError::TooManyColumns { .. } => "too_many_columns",
            DataError::FieldTooLarge { .. } => "field_too_large",
            DataError::UnknownColumn { .. } => "unknown_column",
            DataError::MissingColumn { .. } => "missing_column",
            DataError::InvalidValue { .. } => "invalid_value",
            DataError::MissingTarget { .. } => "missing_target",
            DataError::UnknownLabel { .. } => "unknown_label",
            DataError::SingleClass { .. } => "single_class",
            DataError::TooManyClasses { .. } => "too_many_classes",
            DataError::NotClassification => "not_classification",
            DataError::InvalidOptions { .. } => "invalid_options",
            DataError::InvalidImage { .. } => "invalid_image",
            DataError::InvalidAudio { .. } => "invalid_audio",
            DataError::RowOutOfRange { .. } => "row_out_of_range",
            DataError::NoFeatures => "no_features",
        }
    }
}

/// Why one serving-time JSON record cannot be turned into features.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RecordError {
    /// A field the pipeline reads is absent from the record.
    #[error("missing field `{field}`")]
    MissingField { field: String },
    /// A field whose JSON type or content does not fit its column kind.
    #[error("field `{field}`: expected {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: String,
    },
    /// An image field that cannot be decoded or is too large.
    #[error("field `{field}`: {reason}")]
    InvalidImage { field: String, reason: String },
    /// An audio field that cannot be decoded, is unsupported or over the caps.
    #[error("field `{field}`: {reason}")]
    InvalidAudio { field: String, reason: String },
}

/// Shortens a user value for inclusion in an error message.
pub(crate) fn snippet(s: &str) -> String {
    const MAX_CHARS: usize = 80;
    match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_place() {
        let e = DataError::Json {
            line: Some(3),
            reason: "expected value".into(),
        };
        assert_eq!(e.to_string(), "invalid JSON at line 3: expected value");
        let e = DataError::Json {
            line: None,
            reason: "record 2".into(),
        };
        assert_eq!(e.to_string(), "invalid JSON: record 2");
        assert_eq!(e.code(), "json_invalid");
    }

    #[test]
    fn snippet_truncates_long_values() {
        let long = "é".repeat(200);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), 81);
        assert_eq!(snippet("short"), "short");
    }
}
