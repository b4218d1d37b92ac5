//! CSV with a header row into a [`Table`], streamed record by record.

use std::io::Read;

use super::ReadLimits;
use crate::data::canon::is_missing_token;
use crate::data::error::DataError;
use crate::data::table::{Cell, Table};

/// Reads a CSV with a header row.
///
/// Errors: invalid UTF-8, a row whose field count differs from the header's
/// and read failures name the line; empty or duplicate header names; no data
/// rows; any limit crossed.
pub fn read_csv<R: Read>(reader: R, limits: &ReadLimits) -> Result<Table, DataError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(DataError::Empty);
    }
    let columns = csv_header(&record, limits)?;
    let width = columns.len();
    let mut cells: Vec<Vec<Cell>> = vec![Vec::new(); width];
    let mut rows = 0usize;
    while csv.read_byte_record(&mut record).map_err(csv_error)? {
        let line = record_line(&record);
        if record.len() != width {
            return Err(DataError::Csv {
                line,
                reason: format!("row has {} fields, header has {width}", record.len()),
            });
        }
        if rows == limits.max_rows {
            return Err(DataError::TooManyRows {
                limit: limits.max_rows,
            });
        }
        crate::cooperative::yield_every(rows, crate::data::YIELD_ROWS);
        for (col, field) in record.iter().enumerate() {
            if field.len() > limits.max_field_bytes {
                return Err(DataError::FieldTooLarge {
                    line,
                    limit: limits.max_field_bytes,
                });
            }
            let text = std::str::from_utf8(field).map_err(|e| DataError::Csv {
                line,
                reason: format!(
                    "column {} (`{}`) is not valid UTF-8 after byte {}",
                    col + 1,
                    columns[col],
                    e.valid_up_to()
                ),
            })?;
            cells[col].push(if is_missing_token(text) {
                Cell::Missing
            } else {
                Cell::Text(text.to_owned())
            });
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::Empty);
    }
    cells.iter_mut().for_each(Vec::shrink_to_fit);
    Ok(Table { columns, cells })
}

fn csv_header(record: &csv::ByteRecord, limits: &ReadLimits) -> Result<Vec<String>, DataError> {
    let line = record_line(record);
    if record.len() > limits.max_columns {
        return Err(DataError::TooManyColumns {
            limit: limits.max_columns,
            found: record.len(),
        });
    }
    let mut columns = Vec::with_capacity(record.len());
    let mut seen = std::collections::HashSet::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        if field.len() > limits.max_field_bytes {
            return Err(DataError::FieldTooLarge {
                line,
                limit: limits.max_field_bytes,
            });
        }
        let field = if i == 0 {
            field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
        } else {
            field
        };
        let name = std::str::from_utf8(field)
            .map_err(|e| DataError::Csv {
                line,
                reason: format!(
                    "header column {} is not valid UTF-8 after byte {}",
                    i + 1,
                    e.valid_up_to()
                ),
            })?
            .trim();
        if name.is_empty() {
            return Err(DataError::EmptyHeader { column: i + 1 });
        }
        if !seen.insert(name) {
            return Err(DataError::DuplicateHeader {
                name: name.to_owned(),
            });
        }
        columns.push(name.to_owned());
    }
    Ok(columns)
}

fn record_line(record: &csv::ByteRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

fn csv_error(e: csv::Error) -> DataError {
    let line = e.position().map_or(0, csv::Position::line);
    let reason = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => DataError::Io {
            reason: io.to_string(),
        },
        _ => DataError::Csv { line, reason },
    }
}
