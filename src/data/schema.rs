//! Column kind inference: what each raw column is (numeric, boolean,
//! categorical, free text, identifier) and which columns are not features.
//!
//! Rules, applied to the non-missing cells of a column in this order:
//! 1. none at all -> excluded as `AllMissing` (kind `Categorical`, or the
//!    override's kind);
//! 2. every cell a JSON boolean or the text true/false/yes/no (any case) ->
//!    `Boolean`;
//! 3. every cell a finite number or text parsing as one -> `Numeric`
//!    (a 0/1 column stays `Numeric`: standardized 0/1 carries the same
//!    information and serving keeps accepting plain numbers);
//! 4. every value a base64 PNG or JPEG (or a `data:image/` URL) -> `Image`;
//!    every value a base64 WAV (or a `data:audio/` URL) -> `Audio`;
//! 5. average length over 30 characters, at least half the values containing
//!    whitespace and at least half the values distinct -> `Text`;
//! 6. at least 20 non-missing values, all distinct -> `Identifier` (excluded
//!    from features);
//! 7. otherwise `Categorical`.
//!
//! Pixel-array image columns are never inferred: set them with an `image` override.
//!
//! `distinct` is counted exactly up to [`DISTINCT_CAP`] and reported as the cap
//! beyond it; past the cap a column counts as all-distinct when no repeat was
//! seen before the cap.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::audio::looks_like_encoded_audio;
use super::canon::{in_range, is_inferred_bool_text, is_out_of_range_number, parse_number, Raw};
use super::error::DataError;
use super::image::looks_like_encoded_image;
use super::table::{Cell, Table};

/// Distinct values are counted exactly up to this many per column.
pub const DISTINCT_CAP: usize = 100_000;
/// Fewest non-missing values for a column to be called an identifier.
pub const IDENTIFIER_MIN_ROWS: usize = 20;
/// Average character length above which distinct, spaced strings are `Text`.
pub const TEXT_MIN_AVG_CHARS: f64 = 30.0;

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Boolean,
    Categorical,
    Text,
    Image,
    Audio,
    Identifier,
}

/// Why a column is not a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Named in the caller's ignore list.
    Ignored,
    /// Inferred or overridden as `Identifier`.
    Identifier,
    /// Every value is missing.
    AllMissing,
}

/// One column's inferred (or overridden) kind and statistics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub kind: ColumnKind,
    /// Missing cells in the column.
    pub missing: usize,
    /// Distinct non-missing values, capped at [`DISTINCT_CAP`].
    pub distinct: usize,
    /// `false` when the kind came from an override.
    pub inferred: bool,
    /// Set when the pipeline must not use the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<Exclusion>,
}

impl ColumnSchema {
    /// Whether the feature pipeline may use this column.
    pub fn is_feature(&self) -> bool {
        self.excluded.is_none()
    }
}

/// The schema of a table: every column, in table order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Schema {
    pub rows: usize,
    pub columns: Vec<ColumnSchema>,
}

impl Schema {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Infers every column's kind (see the module docs for the rules).
///
/// `overrides` force a kind (validated: a `Numeric` or `Boolean` override on a
/// value that does not parse is `InvalidValue` naming row and value); `ignore`
/// excludes columns. Naming an absent column in either is `UnknownColumn`.
pub fn infer_schema(
    table: &Table,
    overrides: &BTreeMap<String, ColumnKind>,
    ignore: &[String],
) -> Result<Schema, DataError> {
    for name in overrides.keys().chain(ignore) {
        if table.column_index(name).is_none() {
            return Err(DataError::UnknownColumn { name: name.clone() });
        }
    }
    let columns = table
        .columns
        .iter()
        .zip(&table.cells)
        .map(|(name, cells)| {
            let profile = Profile::of(cells);
            let inferred_kind = profile.kind();
            let (kind, inferred) = match overrides.get(name) {
                Some(&kind) => {
                    validate_override(name, cells, kind)?;
                    (kind, false)
                }
                None => (inferred_kind, true),
            };
            if kind == ColumnKind::Numeric && !ignore.iter().any(|i| i == name) {
                if let Some((row, value)) = &profile.out_of_range {
                    return Err(DataError::InvalidValue {
                        column: name.clone(),
                        row: row + 1,
                        value: value.clone(),
                        expected: "a finite number within ±3.4e38",
                    });
                }
            }
            let excluded = if ignore.iter().any(|i| i == name) {
                Some(Exclusion::Ignored)
            } else if profile.present == 0 {
                Some(Exclusion::AllMissing)
            } else if kind == ColumnKind::Identifier {
                Some(Exclusion::Identifier)
            } else {
                None
            };
            Ok(ColumnSchema {
                name: name.clone(),
                kind,
                missing: profile.missing,
                distinct: profile.distinct,
                inferred,
                excluded,
            })
        })
        .collect::<Result<_, DataError>>()?;
    Ok(Schema {
        rows: table.rows(),
        columns,
    })
}

fn validate_override(name: &str, cells: &[Cell], kind: ColumnKind) -> Result<(), DataError> {
    let (expected, reads): (_, fn(Raw) -> bool) = match kind {
        ColumnKind::Numeric => ("a number", |raw| raw.number().is_ok()),
        ColumnKind::Boolean => ("a boolean (true/false, yes/no, 1/0)", |raw| {
            raw.boolean().is_ok()
        }),
        _ => return Ok(()),
    };
    for (row, cell) in cells.iter().enumerate() {
        let raw = Raw::from_cell(cell);
        if !reads(raw) {
            return Err(DataError::InvalidValue {
                column: name.to_owned(),
                row: row + 1,
                value: raw.describe(),
                expected,
            });
        }
    }
    Ok(())
}

#[derive(PartialEq, Eq, Hash)]
enum Distinct<'a> {
    Text(&'a str),
    Number(u64),
    Bool(bool),
}

struct Profile {
    missing: usize,
    present: usize,
    all_bool: bool,
    all_numeric: bool,
    distinct: usize,
    all_distinct: bool,
    counted: usize,
    chars: usize,
    spaced: usize,
    /// The first row (0-based) and value that reads as a number but is not
    /// finite or out of range; such values do not make a column non-numeric.
    out_of_range: Option<(usize, String)>,
    all_image: bool,
    all_audio: bool,
}

impl Profile {
    fn of(cells: &[Cell]) -> Profile {
        let mut p = Profile {
            missing: 0,
            present: 0,
            all_bool: true,
            all_numeric: true,
            distinct: 0,
            all_distinct: true,
            counted: 0,
            chars: 0,
            spaced: 0,
            out_of_range: None,
            all_image: true,
            all_audio: true,
        };
        let mut seen: HashSet<Distinct<'_>> = HashSet::new();
        for (row, cell) in cells.iter().enumerate() {
            crate::cooperative::yield_every(row, super::YIELD_ROWS);
            let raw = Raw::from_cell(cell);
            let out_of_range = match raw {
                Raw::Number(v) => !in_range(v),
                Raw::Text(s) => is_out_of_range_number(s),
                _ => false,
            };
            if out_of_range {
                p.out_of_range.get_or_insert_with(|| (row, raw.describe()));
                p.all_bool = false;
                p.present += 1;
                continue;
            }
            let key = match raw {
                Raw::Missing => {
                    p.missing += 1;
                    continue;
                }
                Raw::Bool(b) => {
                    p.all_numeric = false;
                    p.all_image = false;
                    p.all_audio = false;
                    Distinct::Bool(b)
                }
                Raw::Number(v) => {
                    p.all_bool = false;
                    p.all_image = false;
                    p.all_audio = false;
                    Distinct::Number(number_bits(v))
                }
                Raw::Text(s) => {
                    let t = s.trim();
                    p.chars += t.chars().count();
                    if t.contains(char::is_whitespace) {
                        p.spaced += 1;
                    }
                    p.all_bool &= is_inferred_bool_text(t);
                    p.all_image &= looks_like_encoded_image(t);
                    p.all_audio = p.all_audio && looks_like_encoded_audio(t);
                    match parse_number(t) {
                        Some(v) => Distinct::Number(number_bits(v)),
                        None => {
                            p.all_numeric = false;
                            Distinct::Text(t)
                        }
                    }
                }
            };
            p.present += 1;
            if seen.len() < DISTINCT_CAP {
                p.counted += 1;
                if !seen.insert(key) {
                    p.all_distinct = false;
                }
            }
        }
        p.distinct = seen.len();
        p
    }

    fn kind(&self) -> ColumnKind {
        let n = self.present;
        if n == 0 {
            ColumnKind::Categorical
        } else if self.all_bool {
            ColumnKind::Boolean
        } else if self.all_numeric {
            ColumnKind::Numeric
        } else if self.all_image {
            ColumnKind::Image
        } else if self.all_audio {
            ColumnKind::Audio
        } else if self.chars as f64 / n as f64 > TEXT_MIN_AVG_CHARS
            && self.spaced * 2 >= n
            && self.distinct * 2 >= self.counted
        {
            ColumnKind::Text
        } else if n >= IDENTIFIER_MIN_ROWS && self.all_distinct {
            ColumnKind::Identifier
        } else {
            ColumnKind::Categorical
        }
    }
}

fn number_bits(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[(&str, Vec<Cell>)]) -> Table {
        Table {
            columns: columns.iter().map(|(n, _)| n.to_string()).collect(),
            cells: columns.iter().map(|(_, c)| c.clone()).collect(),
        }
    }

    fn texts(values: &[&str]) -> Vec<Cell> {
        values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    Cell::Missing
                } else {
                    Cell::Text(v.to_string())
                }
            })
            .collect()
    }

    fn kinds(schema: &Schema) -> Vec<(ColumnKind, Option<Exclusion>)> {
        schema
            .columns
            .iter()
            .map(|c| (c.kind, c.excluded))
            .collect()
    }

    #[test]
    fn infers_each_kind() {
        let n = 24;
        let ids: Vec<String> = (0..n).map(|i| format!("user-{i:03}")).collect();
        let notes: Vec<String> = (0..n)
            .map(|i| format!("customer {i} wrote a fairly long complaint about the delivery"))
            .collect();
        let t = table(&[
            (
                "num",
                (0..n)
                    .map(|i| Cell::Text(format!(" {}.5", i % 5)))
                    .collect(),
            ),
            (
                "zero_one",
                (0..n).map(|i| Cell::Text((i % 2).to_string())).collect(),
            ),
            ("flag", (0..n).map(|i| Cell::Bool(i % 3 == 0)).collect()),
            (
                "yes_no",
                (0..n)
                    .map(|i| Cell::Text(if i % 2 == 0 { "Yes" } else { "no" }.into()))
                    .collect(),
            ),
            (
                "cat",
                (0..n)
                    .map(|i| Cell::Text(["a", "b", "c"][i % 3].into()))
                    .collect(),
            ),
            ("id", ids.iter().map(|s| Cell::Text(s.clone())).collect()),
            (
                "note",
                notes.iter().map(|s| Cell::Text(s.clone())).collect(),
            ),
            ("empty", vec![Cell::Missing; n]),
            ("json_num", (0..n).map(|i| Cell::Number(i as f64)).collect()),
        ]);
        let s = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(s.rows, n);
        assert_eq!(
            kinds(&s),
            [
                (ColumnKind::Numeric, None),
                (ColumnKind::Numeric, None),
                (ColumnKind::Boolean, None),
                (ColumnKind::Boolean, None),
                (ColumnKind::Categorical, None),
                (ColumnKind::Identifier, Some(Exclusion::Identifier)),
                (ColumnKind::Text, None),
                (ColumnKind::Categorical, Some(Exclusion::AllMissing)),
                (ColumnKind::Numeric, None),
            ]
        );
        let num = s.column("num").unwrap();
        assert_eq!((num.missing, num.distinct, num.inferred), (0, 5, true));
        assert_eq!(s.column("empty").unwrap().missing, n);
        assert!(!s.column("id").unwrap().is_feature());
    }

    #[test]
    fn encoded_images_are_inferred_as_images() {
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==";
        let jpeg = "/9j/4AAQSkZJRgABAQAAAQABAAD";
        let url = "data:image/png;base64,iVBORw0KGgo";
        let t = table(&[
            ("img", texts(&[png, jpeg, url, ""])),
            ("mixed", texts(&[png, "a cat", png, png])),
        ]);
        let s = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(s.columns[0].kind, ColumnKind::Image);
        assert_eq!(s.columns[1].kind, ColumnKind::Categorical);
    }

    #[test]
    fn small_unique_columns_stay_categorical() {
        let t = table(&[("c", texts(&["a", "b", "c"]))]);
        let s = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(s.columns[0].kind, ColumnKind::Categorical);
    }

    #[test]
    fn mixed_numbers_and_words_are_categorical() {
        let t = table(&[("c", texts(&["1", "2", "x", "", "2"]))]);
        let s = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(s.columns[0].kind, ColumnKind::Categorical);
        assert_eq!((s.columns[0].missing, s.columns[0].distinct), (1, 3));
    }

    #[test]
    fn overrides_and_ignore() {
        let t = table(&[
            ("a", texts(&["1", "2", "3"])),
            ("b", texts(&["x", "y", "x"])),
            ("c", texts(&["1", "0", ""])),
        ]);
        let overrides = BTreeMap::from([
            ("a".to_string(), ColumnKind::Categorical),
            ("c".to_string(), ColumnKind::Boolean),
        ]);
        let s = infer_schema(&t, &overrides, &["b".to_string()]).unwrap();
        let a = s.column("a").unwrap();
        assert_eq!(
            (a.kind, a.inferred, a.excluded),
            (ColumnKind::Categorical, false, None)
        );
        let b = s.column("b").unwrap();
        assert_eq!(
            (b.kind, b.inferred, b.excluded),
            (ColumnKind::Categorical, true, Some(Exclusion::Ignored))
        );
        assert_eq!(s.column("c").unwrap().kind, ColumnKind::Boolean);

        let unknown = BTreeMap::from([("nope".to_string(), ColumnKind::Numeric)]);
        assert_eq!(
            infer_schema(&t, &unknown, &[]).unwrap_err(),
            DataError::UnknownColumn {
                name: "nope".into()
            }
        );
        assert_eq!(
            infer_schema(&t, &BTreeMap::new(), &["zz".to_string()]).unwrap_err(),
            DataError::UnknownColumn { name: "zz".into() }
        );
        let bad = BTreeMap::from([("b".to_string(), ColumnKind::Numeric)]);
        assert_eq!(
            infer_schema(&t, &bad, &[]).unwrap_err(),
            DataError::InvalidValue {
                column: "b".into(),
                row: 1,
                value: "x".into(),
                expected: "a number"
            }
        );
    }

    #[test]
    fn schema_serializes_snake_case() {
        let t = table(&[("a", texts(&["1", "2"]))]);
        let s = infer_schema(&t, &BTreeMap::new(), &[]).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["columns"][0]["kind"], "numeric");
        assert!(json["columns"][0].get("excluded").is_none());
        let back: Schema = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
