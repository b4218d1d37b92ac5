//! Readers from raw bytes to a [`Table`]: CSV, a JSON array of objects, NDJSON
//! and already-parsed JSON records, all bounded by [`ReadLimits`].
//!
//! CSV: the first record is the header (names trimmed, a UTF-8 BOM dropped);
//! fields keep their bytes as `Cell::Text` unless they are a missing token.
//! Input is streamed record by record; nothing but the table is retained.
//!
//! JSON: each row is a flat object; columns are the union of keys in
//! first-seen order (keys are read in document order, not sorted); an absent
//! key is `Missing`; an array of numbers (image pixels) is kept as its JSON
//! text; nested objects and other arrays are rejected with the record number
//! and key. `table_from_records` sees keys in `serde_json::Map` order.
//!
//! A whole file in memory is read with [`read_table`] in a [`TableFormat`]: the
//! one place a format (by name, as jobs and datasets record it, or by file
//! extension) chooses a reader.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::DataError;
use super::table::Table;

mod csv_rows;
mod json_rows;

pub use csv_rows::read_csv;
pub use json_rows::{read_json_rows, read_ndjson, table_from_records};

/// Size limits applied while reading.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReadLimits {
    /// Most data rows accepted (default 5,000,000).
    pub max_rows: usize,
    /// Most columns accepted (default 2,000).
    pub max_columns: usize,
    /// Longest single field in bytes (default 1 MiB).
    pub max_field_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_rows: 5_000_000,
            max_columns: 2_000,
            max_field_bytes: 1 << 20,
        }
    }
}

/// The formats a table file can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    /// CSV with a header row ([`read_csv`]).
    Csv,
    /// A JSON array of flat objects ([`read_json_rows`]).
    Json,
    /// One flat JSON object per line ([`read_ndjson`]).
    Ndjson,
}

impl TableFormat {
    /// The name jobs and datasets record the format under: `csv`, `json`, `ndjson`.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Csv => "csv",
            TableFormat::Json => "json",
            TableFormat::Ndjson => "ndjson",
        }
    }

    /// The format a file name extension (without the dot, any case) stands for:
    /// `json` and `ndjson`/`jsonl`; any other extension, or none, is CSV.
    pub fn from_extension(extension: &str) -> TableFormat {
        match extension.to_ascii_lowercase().as_str() {
            "json" => TableFormat::Json,
            "ndjson" | "jsonl" => TableFormat::Ndjson,
            _ => TableFormat::Csv,
        }
    }
}

impl FromStr for TableFormat {
    type Err = DataError;

    /// A format by its [`TableFormat::name`]; any other name is `UnknownFormat`.
    fn from_str(name: &str) -> Result<TableFormat, DataError> {
        [TableFormat::Csv, TableFormat::Json, TableFormat::Ndjson]
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| DataError::UnknownFormat {
                name: name.to_owned(),
            })
    }
}

/// Reads a whole table file held in memory.
///
/// Errors: those of the format's reader.
pub fn read_table(
    bytes: &[u8],
    format: TableFormat,
    limits: &ReadLimits,
) -> Result<Table, DataError> {
    match format {
        TableFormat::Csv => read_csv(bytes, limits),
        TableFormat::Json => read_json_rows(bytes, limits),
        TableFormat::Ndjson => read_ndjson(bytes, limits),
    }
}

#[cfg(test)]
mod tests;
