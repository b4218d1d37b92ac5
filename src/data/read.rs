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

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::canon::is_missing_token;
use super::error::{snippet, DataError};
use super::table::{Cell, Table};

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
        crate::cooperative::yield_every(rows, super::YIELD_ROWS);
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

/// Reads a JSON array of flat objects, one object per row.
///
/// Errors name the line (and column, in the reason): malformed JSON, a
/// non-array top level, a non-object element, a repeated key within one
/// object, nested values (with record number and key); any limit crossed;
/// an empty array or blank input is `Empty`.
pub fn read_json_rows(bytes: &[u8], limits: &ReadLimits) -> Result<Table, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty);
    }
    let mut builder = Builder::new(limits);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ArraySeed {
        builder: &mut builder,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(e) = parsed {
        return Err(builder.error(&e, None));
    }
    builder.finish()
}

/// Reads newline-delimited JSON: one flat object per line, blank lines
/// skipped. Errors name the line.
pub fn read_ndjson<R: BufRead>(mut reader: R, limits: &ReadLimits) -> Result<Table, DataError> {
    let mut builder = Builder::new(limits);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| DataError::Io {
                reason: e.to_string(),
            })?;
        if n == 0 {
            break;
        }
        line += 1;
        let text = if line == 1 {
            buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf)
        } else {
            &buf
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        let parsed = RowSeed {
            builder: &mut builder,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Err(e) = parsed {
            return Err(builder.error(&e, Some(line)));
        }
    }
    builder.finish()
}

/// Builds a table from parsed JSON records (keys in `Map` order).
///
/// Nested objects/arrays are rejected as `Json { line: None, .. }` naming the
/// 1-based record and key; `FieldTooLarge::line` is the record number.
pub fn table_from_records(
    records: &[serde_json::Map<String, serde_json::Value>],
    limits: &ReadLimits,
) -> Result<Table, DataError> {
    let mut builder = Builder::new(limits);
    for (i, record) in records.iter().enumerate() {
        let number = i as u64 + 1;
        builder.begin_row()?;
        for (key, value) in record {
            let col = builder.column_for(key)?;
            let cell = match value {
                serde_json::Value::Null => Cell::Missing,
                serde_json::Value::Bool(b) => Cell::Bool(*b),
                serde_json::Value::Number(n) => n.as_f64().map_or(Cell::Missing, Cell::Number),
                serde_json::Value::String(s) => {
                    if s.len() > limits.max_field_bytes {
                        return Err(DataError::FieldTooLarge {
                            line: number,
                            limit: limits.max_field_bytes,
                        });
                    }
                    text_cell(s.clone())
                }
                serde_json::Value::Array(items) if items.iter().all(|v| v.is_number()) => {
                    Cell::Text(value.to_string())
                }
                serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                    return Err(DataError::Json {
                        line: None,
                        reason: nested_reason(number as usize, key, value.is_object()),
                    });
                }
            };
            builder.set(col, cell)?;
        }
        builder.end_row();
    }
    builder.finish()
}

fn text_cell(s: String) -> Cell {
    if is_missing_token(&s) {
        Cell::Missing
    } else {
        Cell::Text(s)
    }
}

fn nested_reason(record: usize, key: &str, object: bool) -> String {
    format!(
        "record {record}, field `{}`: nested {} are not supported; flatten the record",
        snippet(key),
        if object { "objects" } else { "arrays" }
    )
}

/// Accumulates rows into columns, creating columns as keys first appear.
struct Builder<'l> {
    limits: &'l ReadLimits,
    columns: Vec<String>,
    index: HashMap<String, usize>,
    cells: Vec<Vec<Cell>>,
    rows: usize,
    failure: Option<DataError>,
}

impl<'l> Builder<'l> {
    fn new(limits: &'l ReadLimits) -> Self {
        Builder {
            limits,
            columns: Vec::new(),
            index: HashMap::new(),
            cells: Vec::new(),
            rows: 0,
            failure: None,
        }
    }

    fn begin_row(&mut self) -> Result<(), DataError> {
        if self.rows == self.limits.max_rows {
            return Err(DataError::TooManyRows {
                limit: self.limits.max_rows,
            });
        }
        Ok(())
    }

    fn column_for(&mut self, key: &str) -> Result<usize, DataError> {
        if let Some(&col) = self.index.get(key) {
            return Ok(col);
        }
        if self.columns.len() == self.limits.max_columns {
            return Err(DataError::TooManyColumns {
                limit: self.limits.max_columns,
                found: self.columns.len() + 1,
            });
        }
        let col = self.columns.len();
        self.columns.push(key.to_owned());
        self.index.insert(key.to_owned(), col);
        self.cells.push(vec![Cell::Missing; self.rows]);
        Ok(col)
    }

    fn set(&mut self, col: usize, cell: Cell) -> Result<(), DataError> {
        let column = &mut self.cells[col];
        if column.len() > self.rows {
            return Err(DataError::Json {
                line: None,
                reason: format!(
                    "record {}: key `{}` appears more than once",
                    self.rows + 1,
                    snippet(&self.columns[col])
                ),
            });
        }
        column.push(cell);
        Ok(())
    }

    fn end_row(&mut self) {
        crate::cooperative::yield_every(self.rows, super::YIELD_ROWS);
        self.rows += 1;
        for column in &mut self.cells {
            if column.len() < self.rows {
                column.push(Cell::Missing);
            }
        }
    }

    fn finish(mut self) -> Result<Table, DataError> {
        if self.rows == 0 {
            return Err(DataError::Empty);
        }
        self.cells.iter_mut().for_each(Vec::shrink_to_fit);
        Ok(Table {
            columns: self.columns,
            cells: self.cells,
        })
    }

    /// Records `e` as the reason for the serde error about to be raised.
    fn fail<E: de::Error>(&mut self, e: DataError) -> E {
        let message = e.to_string();
        self.failure = Some(e);
        E::custom(message)
    }

    /// The `DataError` for a failed parse, placed at the parser's line (or
    /// at `line` for NDJSON, where each line is parsed alone).
    fn error(&mut self, e: &serde_json::Error, line: Option<u64>) -> DataError {
        let at = line.or((e.line() > 0).then_some(e.line() as u64));
        match self.failure.take() {
            Some(DataError::Json { reason, .. }) => DataError::Json { line: at, reason },
            Some(DataError::FieldTooLarge { limit, .. }) => DataError::FieldTooLarge {
                line: at.unwrap_or(0),
                limit,
            },
            Some(other) => other,
            None => {
                let full = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let reason = match full.strip_suffix(&suffix) {
                    Some(message) => format!("{message} (column {})", e.column()),
                    None => full,
                };
                DataError::Json { line: at, reason }
            }
        }
    }
}

struct ArraySeed<'b, 'l> {
    builder: &'b mut Builder<'l>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(RowSeed {
                builder: &mut *self.builder,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct RowSeed<'b, 'l> {
    builder: &'b mut Builder<'l>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one record)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let b = self.builder;
        if let Err(e) = b.begin_row() {
            return Err(b.fail(e));
        }
        let record = b.rows + 1;
        while let Some(col) = map.next_key_seed(KeySeed { builder: &mut *b })? {
            let mut fault = None;
            let max_bytes = b.limits.max_field_bytes;
            match map.next_value_seed(CellSeed {
                fault: &mut fault,
                max_bytes,
            }) {
                Ok(cell) => {
                    if let Err(e) = b.set(col, cell) {
                        return Err(b.fail(e));
                    }
                }
                Err(e) => {
                    match fault {
                        Some(Fault::Nested { object }) => {
                            b.failure = Some(DataError::Json {
                                line: None,
                                reason: nested_reason(record, &b.columns[col], object),
                            });
                        }
                        Some(Fault::TooLarge) => {
                            b.failure = Some(DataError::FieldTooLarge {
                                line: 0,
                                limit: max_bytes,
                            });
                        }
                        None => {}
                    }
                    return Err(e);
                }
            }
        }
        b.end_row();
        Ok(())
    }
}

struct KeySeed<'b, 'l> {
    builder: &'b mut Builder<'l>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        if key.len() > self.builder.limits.max_field_bytes {
            let limit = self.builder.limits.max_field_bytes;
            return Err(self
                .builder
                .fail(DataError::FieldTooLarge { line: 0, limit }));
        }
        match self.builder.column_for(key) {
            Ok(col) => Ok(col),
            Err(e) => Err(self.builder.fail(e)),
        }
    }
}

enum Fault {
    Nested { object: bool },
    TooLarge,
}

struct CellSeed<'f> {
    fault: &'f mut Option<Fault>,
    max_bytes: usize,
}

impl CellSeed<'_> {
    fn text<E: de::Error>(self, s: &str) -> Result<Option<()>, E> {
        if s.len() > self.max_bytes {
            *self.fault = Some(Fault::TooLarge);
            return Err(E::custom("field too large"));
        }
        Ok(Some(()))
    }
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = Cell;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cell, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = Cell;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Cell, E> {
        Ok(Cell::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
        Ok(Cell::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
        Ok(Cell::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
        Ok(if v.is_finite() {
            Cell::Number(v)
        } else {
            Cell::Missing
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
        self.text(v)?;
        Ok(text_cell(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cell, E> {
        self.text(&v)?;
        Ok(text_cell(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Missing)
    }

    fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Missing)
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Cell, A::Error> {
        *self.fault = Some(Fault::Nested { object: true });
        Err(de::Error::custom("nested object"))
    }

    /// An array of numbers (an image's pixels) is kept as its JSON text.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell, A::Error> {
        use std::fmt::Write as _;
        let mut text = String::from("[");
        loop {
            match seq.next_element::<f64>() {
                Ok(Some(v)) => {
                    if text.len() > 1 {
                        text.push(',');
                    }
                    let _ = write!(text, "{v}");
                    if text.len() > self.max_bytes {
                        *self.fault = Some(Fault::TooLarge);
                        return Err(de::Error::custom("field too large"));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    *self.fault = Some(Fault::Nested { object: false });
                    return Err(de::Error::custom("nested array"));
                }
            }
        }
        text.push(']');
        Ok(Cell::Text(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(s: &str) -> Result<Table, DataError> {
        read_csv(s.as_bytes(), &ReadLimits::default())
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    #[test]
    fn csv_quoted_fields_with_commas_and_newlines() {
        let t =
            csv("name,note,n\n\"Smith, J\",\"line one\nline two\", 3 \nx,\"say \"\"hi\"\"\",NA\n")
                .unwrap();
        assert_eq!(t.columns, ["name", "note", "n"]);
        assert_eq!(t.rows(), 2);
        assert_eq!(t.cells[0][0], text("Smith, J"));
        assert_eq!(t.cells[1][0], text("line one\nline two"));
        assert_eq!(t.cells[2][0], text(" 3 "));
        assert_eq!(t.cells[1][1], text("say \"hi\""));
        assert_eq!(t.cells[2][1], Cell::Missing);
    }

    #[test]
    fn csv_missing_tokens_become_missing() {
        let t = csv("a,b,c,d,e,f,g\n,null,NA,N/A,?,NaN,none\n").unwrap();
        for col in 0..6 {
            assert_eq!(t.cells[col][0], Cell::Missing, "column {col}");
        }
        assert_eq!(t.cells[6][0], text("none"));
    }

    #[test]
    fn csv_invalid_utf8_names_the_line() {
        let mut bytes = b"a,b\n1,2\n3,".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.push(b'\n');
        let e = read_csv(&bytes[..], &ReadLimits::default()).unwrap_err();
        match &e {
            DataError::Csv { line: 3, reason } => {
                assert!(reason.contains("column 2 (`b`)"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("line 3"));
        assert_eq!(e.code(), "csv_invalid");
    }

    #[test]
    fn csv_ragged_row_names_the_line() {
        let e = csv("a,b,c,d\n1,2,3,4\n1,2,3\n").unwrap_err();
        assert_eq!(
            e,
            DataError::Csv {
                line: 3,
                reason: "row has 3 fields, header has 4".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "invalid CSV at line 3: row has 3 fields, header has 4"
        );
    }

    #[test]
    fn csv_header_problems() {
        assert_eq!(
            csv("a,,c\n1,2,3\n").unwrap_err(),
            DataError::EmptyHeader { column: 2 }
        );
        assert_eq!(
            csv("a, b ,b\n1,2,3\n").unwrap_err(),
            DataError::DuplicateHeader { name: "b".into() }
        );
        assert_eq!(csv("a,b\n").unwrap_err(), DataError::Empty);
        assert_eq!(csv("").unwrap_err(), DataError::Empty);
        let t = csv("\u{feff}age , workclass\n39, State-gov\n").unwrap();
        assert_eq!(t.columns, ["age", "workclass"]);
    }

    #[test]
    fn csv_limits() {
        let limits = ReadLimits {
            max_rows: 2,
            max_columns: 2,
            max_field_bytes: 4,
        };
        assert_eq!(
            read_csv(&b"a,b\n1,2\n3,4\n5,6\n"[..], &limits).unwrap_err(),
            DataError::TooManyRows { limit: 2 }
        );
        assert_eq!(
            read_csv(&b"a,b,c\n1,2,3\n"[..], &limits).unwrap_err(),
            DataError::TooManyColumns { limit: 2, found: 3 }
        );
        assert_eq!(
            read_csv(&b"a,b\n1,2\n3,12345\n"[..], &limits).unwrap_err(),
            DataError::FieldTooLarge { line: 3, limit: 4 }
        );
    }

    #[test]
    fn json_array_keeps_types_and_first_seen_key_order() {
        let t = read_json_rows(
            br#"[{"z": 1, "a": "x", "b": true},
                 {"a": null, "c": 2.5},
                 {"z": "NA", "b": false}]"#,
            &ReadLimits::default(),
        )
        .unwrap();
        assert_eq!(t.columns, ["z", "a", "b", "c"]);
        assert_eq!(t.rows(), 3);
        assert_eq!(
            t.cells[0],
            [Cell::Number(1.0), Cell::Missing, Cell::Missing]
        );
        assert_eq!(t.cells[1], [text("x"), Cell::Missing, Cell::Missing]);
        assert_eq!(
            t.cells[2],
            [Cell::Bool(true), Cell::Missing, Cell::Bool(false)]
        );
        assert_eq!(
            t.cells[3],
            [Cell::Missing, Cell::Number(2.5), Cell::Missing]
        );
    }

    #[test]
    fn json_errors_name_line_and_record() {
        let limits = ReadLimits::default();
        let e = read_json_rows(b"[{\"a\": 1},\n {\"a\": {\"b\": 2}}]", &limits).unwrap_err();
        match &e {
            DataError::Json {
                line: Some(2),
                reason,
            } => {
                assert!(reason.contains("record 2, field `a`"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let pixels = read_json_rows(b"[{\"a\": [0, 2.5, 255]}]", &limits).unwrap();
        assert_eq!(pixels.cells[0], [text("[0,2.5,255]")]);
        let records: Vec<serde_json::Map<String, serde_json::Value>> =
            vec![serde_json::from_str(r#"{"a": [0, 2.5, 255]}"#).unwrap()];
        let t = table_from_records(&records, &limits).unwrap();
        assert_eq!(t.cells[0], [text("[0,2.5,255]")]);
        let e = read_json_rows(b"[{\"a\": 1},\n {\"a\": [\"x\"]}]", &limits).unwrap_err();
        assert!(e.to_string().contains("nested arrays"), "{e}");
        let e = read_json_rows(b"[{\"a\": 1},\n\n {\"a\": 1,}]", &limits).unwrap_err();
        assert!(matches!(e, DataError::Json { line: Some(3), .. }), "{e:?}");
        let e = read_json_rows(b"{\"a\": 1}", &limits).unwrap_err();
        assert!(e.to_string().contains("a JSON array of objects"), "{e}");
        let e = read_json_rows(b"[{\"a\": 1}, 3]", &limits).unwrap_err();
        assert!(e.to_string().contains("a JSON object"), "{e}");
        let e = read_json_rows(b"[{\"a\": 1, \"a\": 2}]", &limits).unwrap_err();
        assert!(e.to_string().contains("appears more than once"), "{e}");
        assert_eq!(
            read_json_rows(b"[]", &limits).unwrap_err(),
            DataError::Empty
        );
        assert_eq!(
            read_json_rows(b"  ", &limits).unwrap_err(),
            DataError::Empty
        );
        let e = read_json_rows(b"[{\"a\": 1}] x", &limits).unwrap_err();
        assert_eq!(e.code(), "json_invalid");
    }

    #[test]
    fn json_limits() {
        let limits = ReadLimits {
            max_rows: 1,
            max_columns: 2,
            max_field_bytes: 3,
        };
        assert_eq!(
            read_json_rows(b"[{\"a\": 1}, {\"a\": 2}]", &limits).unwrap_err(),
            DataError::TooManyRows { limit: 1 }
        );
        assert_eq!(
            read_json_rows(b"[{\"a\": 1, \"b\": 2, \"c\": 3}]", &limits).unwrap_err(),
            DataError::TooManyColumns { limit: 2, found: 3 }
        );
        assert_eq!(
            read_json_rows(b"[\n{\"a\": \"abcd\"}]", &limits).unwrap_err(),
            DataError::FieldTooLarge { line: 2, limit: 3 }
        );
    }

    #[test]
    fn ndjson_skips_blank_lines_and_names_bad_line() {
        let limits = ReadLimits::default();
        let t = read_ndjson(
            &b"{\"a\": 1, \"b\": \"x\"}\n\n  \n{\"b\": \"y\"}\n"[..],
            &limits,
        )
        .unwrap();
        assert_eq!(t.columns, ["a", "b"]);
        assert_eq!(t.cells[0], [Cell::Number(1.0), Cell::Missing]);
        assert_eq!(t.cells[1], [text("x"), text("y")]);
        let e = read_ndjson(&b"{\"a\": 1}\n\n{\"a\": 2\n{\"a\": 3}\n"[..], &limits).unwrap_err();
        assert!(matches!(e, DataError::Json { line: Some(3), .. }), "{e:?}");
        let e = read_ndjson(&b"{\"a\": 1}\n[1]\n"[..], &limits).unwrap_err();
        assert!(matches!(e, DataError::Json { line: Some(2), .. }), "{e:?}");
        let e = read_ndjson(&b"{\"a\": 1}\n{\"a\": 1} {}\n"[..], &limits).unwrap_err();
        assert!(matches!(e, DataError::Json { line: Some(2), .. }), "{e:?}");
        let e = read_ndjson(&b"{\"a\": 1}\n{\"a\": {}}\n"[..], &limits).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid JSON at line 2: record 2, field `a`"),
            "{e}"
        );
        assert_eq!(
            read_ndjson(&b"\n\n"[..], &limits).unwrap_err(),
            DataError::Empty
        );
    }

    #[test]
    fn records_become_a_table() {
        let records: Vec<serde_json::Map<String, serde_json::Value>> = vec![
            serde_json::from_str(r#"{"b": 1, "a": "x"}"#).unwrap(),
            serde_json::from_str(r#"{"c": null, "a": "?"}"#).unwrap(),
        ];
        let t = table_from_records(&records, &ReadLimits::default()).unwrap();
        assert_eq!(t.columns, ["a", "b", "c"]);
        assert_eq!(t.cells[0], [text("x"), Cell::Missing]);
        assert_eq!(t.cells[1], [Cell::Number(1.0), Cell::Missing]);
        assert_eq!(t.cells[2], [Cell::Missing, Cell::Missing]);
        let nested: Vec<serde_json::Map<String, serde_json::Value>> =
            vec![serde_json::from_str(r#"{"a": {"b": 1}}"#).unwrap()];
        let e = table_from_records(&nested, &ReadLimits::default()).unwrap_err();
        assert!(matches!(e, DataError::Json { line: None, .. }));
        assert!(e.to_string().contains("record 1, field `a`"), "{e}");
        assert_eq!(
            table_from_records(&[], &ReadLimits::default()).unwrap_err(),
            DataError::Empty
        );
    }

    #[test]
    fn limits_deserialize_with_defaults() {
        let l: ReadLimits = serde_json::from_str(r#"{"max_rows": 10}"#).unwrap();
        assert_eq!(l.max_rows, 10);
        assert_eq!(l.max_columns, 2_000);
        assert!(serde_json::from_str::<ReadLimits>(r#"{"rows": 1}"#).is_err());
    }
}
