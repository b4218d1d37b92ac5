//! Target encoding: deciding classification vs regression, fitting class
//! labels or scaling statistics, and producing the `y` matrix for training.
//!
//! Automatic task rule (`task: None`): a target with any non-numeric value
//! (text that does not parse as a number, or a boolean) is classification; a
//! numeric target whose values are all integers with at most
//! [`AUTO_CLASS_MAX_DISTINCT`] distinct values is classification; any other
//! numeric target is regression.
//!
//! Class labels are canonical category keys (see `canon`: trimmed, `1` and
//! `1.0` are one label), sorted numerically when every label is a number and
//! by byte order otherwise; for two labels index 1 is the positive class
//! (`>50K` over `<=50K`, `yes` over `no`, `true` over `false`, `1` over `0`).

use std::collections::{HashMap, HashSet};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::canon::{parse_number, FnvBuild, Raw};
use super::error::DataError;
use super::table::{Cell, Table};

/// Most distinct numeric integer values for an automatic classification.
pub const AUTO_CLASS_MAX_DISTINCT: usize = 20;
/// Most classes a classification target may have.
pub const MAX_CLASSES: usize = 1_000;

/// The learning task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Classification,
    Regression,
}

/// The rows of `table` whose `target` cell is present (empty if there is no
/// such column). Rows with a missing target are to be dropped by the caller
/// with this before fitting; the encoders reject them.
pub fn rows_with_target(table: &Table, target: &str) -> Vec<usize> {
    table.column(target).map_or_else(Vec::new, |cells| {
        cells
            .iter()
            .enumerate()
            .filter(|(_, c)| !matches!(Raw::from_cell(c), Raw::Missing))
            .map(|(r, _)| r)
            .collect()
    })
}

/// A fitted target encoding. `column` is the target column it reads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetEncoder {
    /// Two labels: binary (label index 1 positive); more: multiclass.
    Classes { column: String, labels: Vec<String> },
    /// Standardization of a numeric target.
    Regression { column: String, mean: f64, std: f64 },
}

impl TargetEncoder {
    /// Fits on `rows` of the `target` column; `task: None` decides by the
    /// module's automatic rule.
    ///
    /// Errors: `UnknownColumn`, `Empty` (no rows), `MissingTarget` naming the
    /// first row without a value (drop them with [`rows_with_target`]),
    /// `InvalidValue` for a non-number under regression, `SingleClass`,
    /// `TooManyClasses`.
    pub fn fit(
        table: &Table,
        rows: &[usize],
        target: &str,
        task: Option<Task>,
    ) -> Result<TargetEncoder, DataError> {
        TargetEncoder::fit_limited(table, rows, target, task, MAX_CLASSES)
    }

    /// [`TargetEncoder::fit`] with at most `max_classes` classes (capped at
    /// [`MAX_CLASSES`]); more are `TooManyClasses` naming the limit.
    pub fn fit_limited(
        table: &Table,
        rows: &[usize],
        target: &str,
        task: Option<Task>,
        max_classes: usize,
    ) -> Result<TargetEncoder, DataError> {
        let cells = target_cells(table, target, rows)?;
        if rows.is_empty() {
            return Err(DataError::Empty);
        }
        let mut raws = Vec::with_capacity(rows.len());
        for &r in rows {
            match Raw::from_cell(&cells[r]) {
                Raw::Missing => {
                    return Err(DataError::MissingTarget {
                        column: target.to_owned(),
                        row: r + 1,
                    })
                }
                raw => raws.push((r, raw)),
            }
        }
        match task.unwrap_or_else(|| auto_task(&raws)) {
            Task::Classification => fit_classes(target, &raws, max_classes.min(MAX_CLASSES)),
            Task::Regression => {
                let mut values = Vec::with_capacity(raws.len());
                for &(r, raw) in &raws {
                    values.push(number(raw).ok_or_else(|| DataError::InvalidValue {
                        column: target.to_owned(),
                        row: r + 1,
                        value: raw.describe(),
                        expected: "a number",
                    })?);
                }
                let n = values.len() as f64;
                let mut mean = values.iter().sum::<f64>() / n;
                let mut std =
                    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
                if !mean.is_finite() {
                    mean = 0.0;
                }
                if !(std.is_finite() && std > 0.0) {
                    std = 1.0;
                }
                Ok(TargetEncoder::Regression {
                    column: target.to_owned(),
                    mean,
                    std,
                })
            }
        }
    }

    /// The target column this encoder reads.
    pub fn column(&self) -> &str {
        match self {
            TargetEncoder::Classes { column, .. } | TargetEncoder::Regression { column, .. } => {
                column
            }
        }
    }

    /// The task this encoder serves.
    pub fn task(&self) -> Task {
        match self {
            TargetEncoder::Classes { .. } => Task::Classification,
            TargetEncoder::Regression { .. } => Task::Regression,
        }
    }

    /// Two classes.
    pub fn is_binary(&self) -> bool {
        self.classes() == 2
    }

    /// Number of classes; 0 for regression.
    pub fn classes(&self) -> usize {
        self.labels().len()
    }

    /// Class labels in index order; empty for regression.
    pub fn labels(&self) -> &[String] {
        match self {
            TargetEncoder::Classes { labels, .. } => labels,
            TargetEncoder::Regression { .. } => &[],
        }
    }

    /// The `y` matrix: binary -> `(n, 1)` of 0/1 (label index 1 = 1);
    /// multiclass -> `(n, k)` one-hot; regression -> `(n, 1)` standardized.
    ///
    /// Errors name the row: `MissingTarget`, `UnknownLabel`, or `InvalidValue`
    /// for a non-number under regression; also `MissingColumn`, `RowOutOfRange`.
    pub fn encode(&self, table: &Table, rows: &[usize]) -> Result<Array2<f32>, DataError> {
        match self {
            TargetEncoder::Classes { labels, .. } => {
                let indices = self.label_indices(table, rows)?;
                if labels.len() == 2 {
                    Ok(Array2::from_shape_fn((rows.len(), 1), |(i, _)| {
                        indices[i] as f32
                    }))
                } else {
                    let mut y = Array2::zeros((rows.len(), labels.len()));
                    for (i, &k) in indices.iter().enumerate() {
                        y[[i, k]] = 1.0;
                    }
                    Ok(y)
                }
            }
            TargetEncoder::Regression { column, mean, std } => {
                let cells = encoder_cells(table, column, rows)?;
                let mut y = Array2::zeros((rows.len(), 1));
                for (i, &r) in rows.iter().enumerate() {
                    let raw = Raw::from_cell(&cells[r]);
                    let v = match raw {
                        Raw::Missing => {
                            return Err(DataError::MissingTarget {
                                column: column.clone(),
                                row: r + 1,
                            })
                        }
                        raw => number(raw).ok_or_else(|| DataError::InvalidValue {
                            column: column.clone(),
                            row: r + 1,
                            value: raw.describe(),
                            expected: "a number",
                        })?,
                    };
                    y[[i, 0]] = ((v - mean) / std) as f32;
                }
                Ok(y)
            }
        }
    }

    /// Label index of each row (classification only; `NotClassification`
    /// for regression). Errors name the row as for [`TargetEncoder::encode`].
    pub fn label_indices(&self, table: &Table, rows: &[usize]) -> Result<Vec<usize>, DataError> {
        let TargetEncoder::Classes { column, labels } = self else {
            return Err(DataError::NotClassification);
        };
        let cells = encoder_cells(table, column, rows)?;
        let lookup: HashMap<&str, usize, FnvBuild> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        rows.iter()
            .map(|&r| {
                let raw = Raw::from_cell(&cells[r]);
                let key = raw.key().ok_or_else(|| DataError::MissingTarget {
                    column: column.clone(),
                    row: r + 1,
                })?;
                lookup
                    .get(key.as_str())
                    .copied()
                    .ok_or_else(|| DataError::UnknownLabel {
                        column: column.clone(),
                        row: r + 1,
                        value: raw.describe(),
                    })
            })
            .collect()
    }

    /// Regression: a standardized model output back in target units.
    /// Classification: `z` unchanged.
    pub fn decode_value(&self, z: f32) -> f64 {
        match self {
            TargetEncoder::Regression { mean, std, .. } => f64::from(z) * std + mean,
            TargetEncoder::Classes { .. } => f64::from(z),
        }
    }
}

fn target_cells<'t>(
    table: &'t Table,
    target: &str,
    rows: &[usize],
) -> Result<&'t [Cell], DataError> {
    let cells = table
        .column(target)
        .ok_or_else(|| DataError::UnknownColumn {
            name: target.to_owned(),
        })?;
    check_rows(cells, rows)?;
    Ok(cells)
}

fn encoder_cells<'t>(
    table: &'t Table,
    column: &str,
    rows: &[usize],
) -> Result<&'t [Cell], DataError> {
    let cells = table
        .column(column)
        .ok_or_else(|| DataError::MissingColumn {
            name: column.to_owned(),
        })?;
    check_rows(cells, rows)?;
    Ok(cells)
}

fn check_rows(cells: &[Cell], rows: &[usize]) -> Result<(), DataError> {
    match rows.iter().find(|&&r| r >= cells.len()) {
        Some(&row) => Err(DataError::RowOutOfRange {
            row,
            rows: cells.len(),
        }),
        None => Ok(()),
    }
}

fn number(raw: Raw<'_>) -> Option<f64> {
    match raw {
        Raw::Number(v) if v.is_finite() => Some(v),
        Raw::Text(s) => parse_number(s),
        _ => None,
    }
}

fn auto_task(raws: &[(usize, Raw<'_>)]) -> Task {
    let mut distinct: HashSet<u64> = HashSet::new();
    let mut fractional = false;
    for &(_, raw) in raws {
        match number(raw) {
            None => return Task::Classification,
            Some(v) if v.fract() != 0.0 => fractional = true,
            Some(v) => {
                if distinct.len() <= AUTO_CLASS_MAX_DISTINCT {
                    distinct.insert(if v == 0.0 { 0 } else { v.to_bits() });
                }
            }
        }
    }
    if fractional || distinct.len() > AUTO_CLASS_MAX_DISTINCT {
        Task::Regression
    } else {
        Task::Classification
    }
}

fn fit_classes(
    target: &str,
    raws: &[(usize, Raw<'_>)],
    max_classes: usize,
) -> Result<TargetEncoder, DataError> {
    let mut seen: HashSet<String> = HashSet::new();
    for &(_, raw) in raws {
        if let Some(key) = raw.key() {
            if !seen.contains(key.as_str()) {
                seen.insert(key.as_str().to_owned());
            }
        }
    }
    if seen.len() > max_classes {
        return Err(DataError::TooManyClasses {
            column: target.to_owned(),
            found: seen.len(),
            limit: max_classes,
        });
    }
    let mut labels: Vec<String> = seen.into_iter().collect();
    if labels.len() < 2 {
        return Err(DataError::SingleClass {
            column: target.to_owned(),
            label: labels.pop().unwrap_or_default(),
        });
    }
    let numeric: Option<Vec<f64>> = labels.iter().map(|l| parse_number(l)).collect();
    match numeric {
        Some(values) => {
            let mut pairs: Vec<(f64, String)> = values.into_iter().zip(labels).collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            labels = pairs.into_iter().map(|(_, l)| l).collect();
        }
        None => labels.sort_unstable(),
    }
    Ok(TargetEncoder::Classes {
        column: target.to_owned(),
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::read::{read_csv, ReadLimits};

    fn csv(s: &str) -> Table {
        read_csv(s.as_bytes(), &ReadLimits::default()).unwrap()
    }

    fn all(t: &Table) -> Vec<usize> {
        (0..t.rows()).collect()
    }

    #[test]
    fn binary_labels_sorted_with_positive_second() {
        let t = csv("income\n>50K\n<=50K\n <=50K\n>50K\n");
        let enc = TargetEncoder::fit(&t, &all(&t), "income", None).unwrap();
        assert_eq!(enc.task(), Task::Classification);
        assert!(enc.is_binary());
        assert_eq!(enc.labels(), ["<=50K", ">50K"]);
        let y = enc.encode(&t, &all(&t)).unwrap();
        assert_eq!(y.dim(), (4, 1));
        assert_eq!(y.column(0).to_vec(), [1.0, 0.0, 0.0, 1.0]);
        assert_eq!(enc.label_indices(&t, &[1, 0]).unwrap(), [0, 1]);
        let json = serde_json::to_string(&enc).unwrap();
        assert!(json.contains("\"kind\":\"classes\""), "{json}");
        let back: TargetEncoder = serde_json::from_str(&json).unwrap();
        assert_eq!(back, enc);
    }

    #[test]
    fn multiclass_one_hot_and_numeric_label_order() {
        let t = csv("grade\n10\n2\n2.0\n-1\n");
        let enc = TargetEncoder::fit(&t, &all(&t), "grade", None).unwrap();
        assert_eq!(enc.labels(), ["-1", "2", "10"]);
        assert_eq!(enc.classes(), 3);
        let y = enc.encode(&t, &all(&t)).unwrap();
        assert_eq!(y.dim(), (4, 3));
        assert_eq!(y.row(0).to_vec(), [0.0, 0.0, 1.0]);
        assert_eq!(y.row(2).to_vec(), [0.0, 1.0, 0.0]);
        assert_eq!(enc.label_indices(&t, &all(&t)).unwrap(), [2, 1, 1, 0]);
        let other = csv("grade\n3\n");
        assert_eq!(
            enc.encode(&other, &[0]).unwrap_err(),
            DataError::UnknownLabel {
                column: "grade".into(),
                row: 1,
                value: "3".into()
            }
        );
    }

    #[test]
    fn regression_round_trip() {
        let t = csv("price\n1.5\n2.5\n3.5\n4.5\n");
        let enc = TargetEncoder::fit(&t, &all(&t), "price", None).unwrap();
        assert_eq!(enc.task(), Task::Regression);
        assert_eq!(enc.classes(), 0);
        assert!(enc.labels().is_empty());
        let y = enc.encode(&t, &all(&t)).unwrap();
        assert!((y.sum()).abs() < 1e-6);
        for (i, v) in [1.5, 2.5, 3.5, 4.5].iter().enumerate() {
            assert!((enc.decode_value(y[[i, 0]]) - v).abs() < 1e-6);
        }
        assert_eq!(
            enc.label_indices(&t, &[0]).unwrap_err(),
            DataError::NotClassification
        );
        let back: TargetEncoder =
            serde_json::from_str(&serde_json::to_string(&enc).unwrap()).unwrap();
        assert_eq!(back, enc);
    }

    #[test]
    fn auto_task_rule() {
        let many: String = (0..30).map(|i| format!("{i}\n")).collect();
        let t = csv(&format!("n\n{many}"));
        assert_eq!(
            TargetEncoder::fit(&t, &all(&t), "n", None).unwrap().task(),
            Task::Regression
        );
        let enc = TargetEncoder::fit(&t, &all(&t), "n", Some(Task::Classification)).unwrap();
        assert_eq!(enc.classes(), 30);
        let t = csv("n\n0\n1\n1\n");
        assert!(TargetEncoder::fit(&t, &all(&t), "n", None)
            .unwrap()
            .is_binary());
        let t = csv("n\n0\n0.5\n1\n");
        assert_eq!(
            TargetEncoder::fit(&t, &all(&t), "n", None).unwrap().task(),
            Task::Regression
        );
        let t = csv("n\n0.5\n1\nhigh\n");
        assert_eq!(
            TargetEncoder::fit(&t, &all(&t), "n", None).unwrap().task(),
            Task::Classification
        );
    }

    #[test]
    fn target_errors() {
        let t = csv("y,x\na,1\na,2\n,3\nb,4\n");
        assert_eq!(
            TargetEncoder::fit(&t, &[0, 1], "y", None).unwrap_err(),
            DataError::SingleClass {
                column: "y".into(),
                label: "a".into()
            }
        );
        assert_eq!(
            TargetEncoder::fit(&t, &all(&t), "y", None).unwrap_err(),
            DataError::MissingTarget {
                column: "y".into(),
                row: 3
            }
        );
        let rows = rows_with_target(&t, "y");
        assert_eq!(rows, [0, 1, 3]);
        assert!(TargetEncoder::fit(&t, &rows, "y", None).is_ok());
        assert_eq!(
            TargetEncoder::fit(&t, &rows, "nope", None).unwrap_err(),
            DataError::UnknownColumn {
                name: "nope".into()
            }
        );
        assert_eq!(
            TargetEncoder::fit(&t, &rows, "y", Some(Task::Regression)).unwrap_err(),
            DataError::InvalidValue {
                column: "y".into(),
                row: 1,
                value: "a".into(),
                expected: "a number"
            }
        );
        assert_eq!(
            TargetEncoder::fit(&t, &[], "y", None).unwrap_err(),
            DataError::Empty
        );
        assert!(rows_with_target(&t, "nope").is_empty());
    }
}
