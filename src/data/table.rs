//! The in-memory raw table: named columns of raw cells, column-major.

use serde_json::{Map, Value};

/// One raw cell. CSV fields arrive as `Text` (or `Missing`); JSON values keep
/// their type (`null` and missing-token strings become `Missing`).
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Missing,
    Number(f64),
    Bool(bool),
    Text(String),
}

/// A column-major table of raw cells: `cells[col][row]`, every column as long
/// as the others.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub cells: Vec<Vec<Cell>>,
}

impl Table {
    /// Number of data rows (0 for a table without columns).
    pub fn rows(&self) -> usize {
        self.cells.first().map_or(0, Vec::len)
    }

    /// Position of the column named exactly `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The cells of the column named `name`.
    pub fn column(&self, name: &str) -> Option<&[Cell]> {
        self.column_index(name).map(|i| self.cells[i].as_slice())
    }

    /// A new table with the given rows, in the given order (repeats allowed).
    ///
    /// Panics if a row index is out of range; indices come from the caller,
    /// never from data.
    pub fn select_rows(&self, rows: &[usize]) -> Table {
        Table {
            columns: self.columns.clone(),
            cells: self
                .cells
                .iter()
                .map(|col| rows.iter().map(|&r| col[r].clone()).collect())
                .collect(),
        }
    }

    /// The first `n` rows as JSON records (column → value; missing cells are
    /// `null`), text cut to `max_chars` characters with `…` appended.
    pub fn head_records(&self, n: usize, max_chars: usize) -> Vec<Map<String, Value>> {
        (0..self.rows().min(n))
            .map(|r| {
                self.columns
                    .iter()
                    .zip(&self.cells)
                    .map(|(name, col)| {
                        let value = match &col[r] {
                            Cell::Missing => Value::Null,
                            Cell::Number(x) => {
                                serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
                            }
                            Cell::Bool(b) => Value::Bool(*b),
                            Cell::Text(t) if t.chars().count() > max_chars => {
                                Value::String(t.chars().take(max_chars).chain(['…']).collect())
                            }
                            Cell::Text(t) => Value::String(t.clone()),
                        };
                        (name.clone(), value)
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_rows_keeps_columns_and_order() {
        let t = Table {
            columns: vec!["a".into(), "b".into()],
            cells: vec![
                vec![Cell::Number(1.0), Cell::Number(2.0), Cell::Number(3.0)],
                vec![Cell::Text("x".into()), Cell::Missing, Cell::Bool(true)],
            ],
        };
        assert_eq!(t.rows(), 3);
        assert_eq!(t.column_index("b"), Some(1));
        assert_eq!(t.column_index("c"), None);
        let s = t.select_rows(&[2, 0]);
        assert_eq!(s.rows(), 2);
        assert_eq!(s.cells[0], vec![Cell::Number(3.0), Cell::Number(1.0)]);
        assert_eq!(
            s.column("b"),
            Some(&[Cell::Bool(true), Cell::Text("x".into())][..])
        );
        assert_eq!(Table::default().rows(), 0);
    }

    #[test]
    fn head_records_are_the_first_rows_as_json_with_long_text_cut() {
        let t = Table {
            columns: vec!["a".into(), "b".into()],
            cells: vec![
                vec![Cell::Number(1.5), Cell::Missing, Cell::Number(3.0)],
                vec![
                    Cell::Text("abcdef".into()),
                    Cell::Bool(true),
                    Cell::Text("x".into()),
                ],
            ],
        };
        let head = t.head_records(2, 3);
        assert_eq!(head.len(), 2);
        assert_eq!(head[0]["a"], serde_json::json!(1.5));
        assert_eq!(head[0]["b"], serde_json::json!("abc…"));
        assert_eq!(head[1]["a"], Value::Null);
        assert_eq!(head[1]["b"], serde_json::json!(true));
        assert!(t.head_records(10, 3).len() == 3);
        assert!(Table::default().head_records(5, 3).is_empty());
    }
}
