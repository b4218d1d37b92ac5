//! JSON into a [`Table`]: an array of flat objects, NDJSON, or records already
//! parsed, through one row builder that enforces the limits.

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ReadLimits;
use crate::data::canon::is_missing_token;
use crate::data::error::{snippet, DataError};
use crate::data::table::{Cell, Table};

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
        crate::cooperative::yield_every(self.rows, crate::data::YIELD_ROWS);
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
