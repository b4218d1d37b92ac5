//! Interactions as given by callers, and the indexed per-user histories trained on.

use std::collections::HashMap;

use crate::data::{Cell, Table};

use super::error::RecommendError;
use super::params::RecommendCaps;

/// Raw interactions: parallel columns, one entry per event.
///
/// `values` (rating, count, weight) must be finite and `>= 0` when present;
/// `timestamps` are Unix seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interactions {
    pub users: Vec<String>,
    pub items: Vec<String>,
    pub values: Option<Vec<f32>>,
    pub timestamps: Option<Vec<i64>>,
}

/// Column names read by [`Interactions::from_table`]. `value` and `timestamp` are
/// optional columns: when absent from the table they are simply not used.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InteractionColumns {
    pub user: String,
    pub item: String,
    pub value: String,
    pub timestamp: String,
}

impl Default for InteractionColumns {
    fn default() -> Self {
        InteractionColumns {
            user: "user_id".into(),
            item: "item_id".into(),
            value: "value".into(),
            timestamp: "timestamp".into(),
        }
    }
}

/// Position of the column named `name`, or [`RecommendError::MissingColumn`] listing
/// the columns present.
pub(crate) fn require_column(table: &Table, name: &str) -> Result<usize, RecommendError> {
    table
        .column_index(name)
        .ok_or_else(|| RecommendError::MissingColumn {
            column: name.to_owned(),
            present: table.columns.join(", "),
        })
}

/// A cell as an id or attribute value: trimmed text, integral numbers without a
/// fraction; `None` when missing or empty.
pub(crate) fn id_text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Missing => None,
        Cell::Text(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        }
        Cell::Number(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(format!("{}", *v as i64)),
        Cell::Number(v) => Some(v.to_string()),
        Cell::Bool(b) => Some(b.to_string()),
    }
}

fn number(cell: &Cell) -> Result<f64, String> {
    match cell {
        Cell::Number(v) => Ok(*v),
        Cell::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a number")),
        Cell::Bool(b) => Ok(f64::from(u8::from(*b))),
        Cell::Missing => Err("value is missing".into()),
    }
}

impl Interactions {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Reads interactions from a table. `columns.user` and `columns.item` are required;
    /// `columns.value` and `columns.timestamp` are used when the table has them.
    ///
    /// # Errors
    /// [`RecommendError::MissingColumn`] naming the column, or [`RecommendError::BadCell`]
    /// naming the 1-based row and column of an empty id, a non-numeric or negative value,
    /// or a non-integer timestamp.
    pub fn from_table(
        table: &Table,
        columns: &InteractionColumns,
    ) -> Result<Interactions, RecommendError> {
        let require = |name: &str| require_column(table, name).map(|c| table.cells[c].as_slice());
        let user_col = require(&columns.user)?;
        let item_col = require(&columns.item)?;
        let bad = |row: usize, column: &str, reason: String| RecommendError::BadCell {
            row: row + 1,
            column: column.to_owned(),
            reason,
        };
        let rows = table.rows();
        let mut users = Vec::with_capacity(rows);
        let mut items = Vec::with_capacity(rows);
        for row in 0..rows {
            users.push(
                id_text(&user_col[row])
                    .ok_or_else(|| bad(row, &columns.user, "user id is empty".into()))?,
            );
            items.push(
                id_text(&item_col[row])
                    .ok_or_else(|| bad(row, &columns.item, "item id is empty".into()))?,
            );
        }
        let values = match table.column(&columns.value) {
            None => None,
            Some(col) => {
                let mut values = Vec::with_capacity(rows);
                for (row, cell) in col.iter().enumerate() {
                    let v = number(cell).map_err(|r| bad(row, &columns.value, r))?;
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(bad(
                            row,
                            &columns.value,
                            format!("value {v} must be finite and >= 0"),
                        ));
                    }
                    values.push(v as f32);
                }
                Some(values)
            }
        };
        let timestamps = match table.column(&columns.timestamp) {
            None => None,
            Some(col) => {
                let mut stamps = Vec::with_capacity(rows);
                for (row, cell) in col.iter().enumerate() {
                    let v = number(cell).map_err(|r| bad(row, &columns.timestamp, r))?;
                    if !(v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15) {
                        return Err(bad(
                            row,
                            &columns.timestamp,
                            format!("timestamp {v} must be an integer (Unix seconds)"),
                        ));
                    }
                    stamps.push(v as i64);
                }
                Some(stamps)
            }
        };
        Ok(Interactions {
            users,
            items,
            values,
            timestamps,
        })
    }

    /// Checks that the columns have equal lengths, values are finite and `>= 0`, and the
    /// sizes are within `caps`.
    pub(crate) fn check(&self, caps: &RecommendCaps) -> Result<(), RecommendError> {
        let n = self.users.len();
        if n == 0 {
            return Err(RecommendError::Data("no interactions".into()));
        }
        if n > caps.max_interactions {
            return Err(RecommendError::Data(format!(
                "{n} interactions exceed the limit `recommend.max_interactions` = {}",
                caps.max_interactions
            )));
        }
        let mismatch =
            |what: &str, len: usize| RecommendError::Data(format!("{len} {what} for {n} users"));
        if self.items.len() != n {
            return Err(mismatch("items", self.items.len()));
        }
        if let Some(values) = &self.values {
            if values.len() != n {
                return Err(mismatch("values", values.len()));
            }
            if let Some((i, v)) = values
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
            {
                return Err(RecommendError::Data(format!(
                    "values[{i}] = {v} must be finite and >= 0"
                )));
            }
        }
        if let Some(stamps) = &self.timestamps {
            if stamps.len() != n {
                return Err(mismatch("timestamps", stamps.len()));
            }
        }
        Ok(())
    }
}

/// History weighting by recency rank `r` (0 = most recent): `floor + (1 − floor) ·
/// (1 + r)^-power`. `power = 0` (or `floor = 1`) leaves the weights unchanged; `floor = 0`
/// is the plain power law, and a floor between keeps the whole history in play with the
/// latest interactions counting more.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Recency {
    pub power: f32,
    pub floor: f32,
}

impl Recency {
    /// No recency weighting.
    pub const NONE: Recency = Recency {
        power: 0.0,
        floor: 0.0,
    };

    /// Whether every rank weighs 1.
    pub fn is_off(self) -> bool {
        self.power == 0.0 || self.floor >= 1.0
    }

    /// The weight of the interaction at recency rank `rank`.
    pub fn weight(self, rank: f32) -> f32 {
        if self.is_off() {
            1.0
        } else {
            self.floor + (1.0 - self.floor) * (1.0 + rank).powf(-self.power)
        }
    }
}

/// Recency-weighted history: `weight · recency.weight(r)`, `r` the rank from the most
/// recent event (ties in time keep the given order, later entries counting as more
/// recent). With recency off the weights are returned unchanged.
pub fn recency_weights(history: &[(u32, f32, i64)], recency: Recency) -> Vec<(u32, f32)> {
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|&i| (history[i].2, i));
    let n = order.len();
    let mut out = vec![(0, 0.0); n];
    for (position, &i) in order.iter().enumerate() {
        let rank = (n - 1 - position) as f32;
        let (item, weight, _) = history[i];
        out[i] = (item, weight * recency.weight(rank));
    }
    out
}

/// Indexed interactions: item and user vocabularies and one deduplicated history per user
/// (CSR), in time order when timestamps exist, otherwise in first-seen order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dataset {
    pub item_ids: Vec<String>,
    pub user_ids: Vec<String>,
    pub offsets: Vec<usize>,
    pub items: Vec<u32>,
    /// Interaction weight (1 or the summed values).
    pub values: Vec<f32>,
    /// Latest timestamp of each (user, item) pair.
    pub times: Option<Vec<i64>>,
}

impl Dataset {
    pub fn from_interactions(
        data: &Interactions,
        use_values: bool,
        caps: &RecommendCaps,
    ) -> Result<Dataset, RecommendError> {
        data.check(caps)?;
        let mut item_index: HashMap<&str, u32> = HashMap::new();
        let mut user_index: HashMap<&str, u32> = HashMap::new();
        let mut item_ids = Vec::new();
        let mut user_ids = Vec::new();
        let mut rows: Vec<(u32, u32, f32, i64, usize)> = Vec::with_capacity(data.len());
        for (row, (user, item)) in data.users.iter().zip(&data.items).enumerate() {
            let next_item = item_index.len() as u32;
            let i = *item_index.entry(item.as_str()).or_insert_with(|| {
                item_ids.push(item.clone());
                next_item
            });
            let next_user = user_index.len() as u32;
            let u = *user_index.entry(user.as_str()).or_insert_with(|| {
                user_ids.push(user.clone());
                next_user
            });
            let value = match (&data.values, use_values) {
                (Some(values), true) => values[row],
                _ => 1.0,
            };
            let time = data.timestamps.as_ref().map_or(0, |t| t[row]);
            rows.push((u, i, value, time, row));
        }
        if item_ids.len() > caps.max_items {
            return Err(RecommendError::Data(format!(
                "{} distinct items exceed the limit `recommend.max_items` = {}",
                item_ids.len(),
                caps.max_items
            )));
        }
        if user_ids.len() > caps.max_users {
            return Err(RecommendError::Data(format!(
                "{} distinct users exceed the limit `recommend.max_users` = {}",
                user_ids.len(),
                caps.max_users
            )));
        }
        // Deduplicate (user, item): sum values (or keep 1), keep the latest time.
        rows.sort_unstable_by_key(|&(u, i, _, _, row)| (u, i, row));
        let mut merged: Vec<(u32, u32, f32, i64, usize)> = Vec::with_capacity(rows.len());
        for r in rows {
            match merged.last_mut() {
                Some(last) if last.0 == r.0 && last.1 == r.1 => {
                    if use_values {
                        last.2 += r.2;
                    }
                    if r.3 >= last.3 {
                        last.3 = r.3;
                        last.4 = r.4;
                    }
                }
                _ => merged.push(r),
            }
        }
        let has_time = data.timestamps.is_some();
        if has_time {
            merged.sort_unstable_by_key(|&(u, i, _, t, _)| (u, t, i));
        } else {
            merged.sort_unstable_by_key(|&(u, _, _, _, row)| (u, row));
        }
        let mut offsets = vec![0usize; user_ids.len() + 1];
        for r in &merged {
            offsets[r.0 as usize + 1] += 1;
        }
        for u in 0..user_ids.len() {
            offsets[u + 1] += offsets[u];
        }
        Ok(Dataset {
            item_ids,
            user_ids,
            offsets,
            items: merged.iter().map(|r| r.1).collect(),
            values: merged.iter().map(|r| r.2).collect(),
            times: has_time.then(|| merged.iter().map(|r| r.3).collect()),
        })
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn range(&self, user: usize) -> std::ops::Range<usize> {
        self.offsets[user]..self.offsets[user + 1]
    }

    /// A user's history with recency weighting applied (recency off: the raw weights).
    pub fn weighted_history(&self, user: usize, recency: Recency, out: &mut Vec<(u32, f32)>) {
        self.weighted_history_where(user, recency, |_| true, out);
    }

    /// [`Dataset::weighted_history`] of the entries `j` where `keep(j)` holds, recency
    /// ranks counted among them.
    pub fn weighted_history_where(
        &self,
        user: usize,
        recency: Recency,
        keep: impl Fn(usize) -> bool,
        out: &mut Vec<(u32, f32)>,
    ) {
        out.clear();
        let kept: Vec<usize> = self.range(user).filter(|&j| keep(j)).collect();
        let n = kept.len();
        let weigh = self.times.is_some() && !recency.is_off();
        for (position, j) in kept.into_iter().enumerate() {
            let w = if weigh {
                recency.weight((n - 1 - position) as f32)
            } else {
                1.0
            };
            out.push((self.items[j], self.values[j] * w));
        }
    }

    /// A dataset with the same vocabularies keeping only entries where `keep(j)` holds.
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> Dataset {
        let mut offsets = Vec::with_capacity(self.offsets.len());
        offsets.push(0);
        let (mut items, mut values) = (Vec::new(), Vec::new());
        let mut times = self.times.as_ref().map(|_| Vec::new());
        for user in 0..self.n_users() {
            for j in self.range(user) {
                if keep(j) {
                    items.push(self.items[j]);
                    values.push(self.values[j]);
                    if let (Some(out), Some(src)) = (times.as_mut(), self.times.as_ref()) {
                        out.push(src[j]);
                    }
                }
            }
            offsets.push(items.len());
        }
        Dataset {
            item_ids: self.item_ids.clone(),
            user_ids: self.user_ids.clone(),
            offsets,
            items,
            values,
            times,
        }
    }

    /// Popularity scores: users per item, or exponentially time-decayed counts with the
    /// given half-life (days) measured back from the latest timestamp.
    pub fn popularity(&self, half_life_days: Option<f32>) -> Vec<f32> {
        let mut scores = vec![0.0f64; self.n_items()];
        match (&self.times, half_life_days) {
            (Some(times), Some(days)) => {
                let latest = times.iter().copied().max().unwrap_or(0);
                let rate = std::f64::consts::LN_2 / (f64::from(days) * 86_400.0);
                for (&item, &t) in self.items.iter().zip(times) {
                    scores[item as usize] += (-(latest - t) as f64 * rate).exp();
                }
            }
            _ => {
                for &item in &self.items {
                    scores[item as usize] += 1.0;
                }
            }
        }
        scores.into_iter().map(|s| s as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            cells: (0..columns.len())
                .map(|c| rows.iter().map(|r| Cell::Text(r[c].to_string())).collect())
                .collect(),
        }
    }

    #[test]
    fn from_table_reads_optional_columns_and_names_errors() {
        let t = table(
            &["user_id", "item_id", "value", "timestamp"],
            &[&["u1", "a", "4", "10"], &["u2", "b", "2.5", "11"]],
        );
        let got = Interactions::from_table(&t, &InteractionColumns::default()).unwrap();
        assert_eq!(got.users, ["u1", "u2"]);
        assert_eq!(got.values, Some(vec![4.0, 2.5]));
        assert_eq!(got.timestamps, Some(vec![10, 11]));

        let t = table(&["user", "item_id"], &[&["u1", "a"]]);
        let err = Interactions::from_table(&t, &InteractionColumns::default()).unwrap_err();
        assert!(err.to_string().contains("`user_id`"), "{err}");
        let columns = InteractionColumns {
            user: "user".into(),
            ..Default::default()
        };
        let got = Interactions::from_table(&t, &columns).unwrap();
        assert_eq!((got.values, got.timestamps), (None, None));

        let t = table(
            &["user_id", "item_id", "value"],
            &[&["u1", "a", "1"], &["u1", "b", "x"]],
        );
        let err = Interactions::from_table(&t, &InteractionColumns::default()).unwrap_err();
        assert!(
            err.to_string().contains("row 2") && err.to_string().contains("`value`"),
            "{err}"
        );
        let t = table(&["user_id", "item_id"], &[&["u1", " "]]);
        let err = Interactions::from_table(&t, &InteractionColumns::default()).unwrap_err();
        assert!(
            err.to_string().contains("row 1") && err.to_string().contains("item_id"),
            "{err}"
        );
    }

    #[test]
    fn dataset_dedupes_and_orders_by_time() {
        let data = Interactions {
            users: vec!["u".into(), "u".into(), "u".into(), "v".into()],
            items: vec!["a".into(), "b".into(), "a".into(), "b".into()],
            values: Some(vec![1.0, 2.0, 3.0, 1.0]),
            timestamps: Some(vec![5, 3, 9, 1]),
        };
        let caps = RecommendCaps::default();
        let ds = Dataset::from_interactions(&data, true, &caps).unwrap();
        assert_eq!(ds.item_ids, ["a", "b"]);
        assert_eq!(ds.offsets, [0, 2, 3]);
        assert_eq!(ds.items, [1, 0, 1]);
        assert_eq!(ds.values, [2.0, 4.0, 1.0]);
        assert_eq!(ds.times, Some(vec![3, 9, 1]));
        let mut h = Vec::new();
        let power = Recency {
            power: 1.0,
            floor: 0.0,
        };
        ds.weighted_history(0, power, &mut h);
        assert_eq!(h, [(1, 1.0), (0, 4.0)]);
        // A floor keeps older interactions in play: 0.5 + 0.5 · 2^-1 = 0.75.
        let floored = Recency {
            power: 1.0,
            floor: 0.5,
        };
        ds.weighted_history(0, floored, &mut h);
        assert_eq!(h, [(1, 1.5), (0, 4.0)]);
        ds.weighted_history(0, Recency::NONE, &mut h);
        assert_eq!(h, [(1, 2.0), (0, 4.0)]);
        let binary = Dataset::from_interactions(&data, false, &caps).unwrap();
        assert_eq!(binary.values, [1.0, 1.0, 1.0]);
        assert_eq!(
            recency_weights(&[(7, 1.0, 5), (8, 1.0, 2)], power),
            [(7, 1.0), (8, 0.5)]
        );
        assert_eq!(
            recency_weights(&[(7, 1.0, 5), (8, 1.0, 2)], floored),
            [(7, 1.0), (8, 0.75)]
        );
    }

    #[test]
    fn dataset_rejects_bad_lengths_and_values() {
        let caps = RecommendCaps::default();
        let mut data = Interactions {
            users: vec!["u".into()],
            items: vec![],
            values: None,
            timestamps: None,
        };
        assert!(Dataset::from_interactions(&data, false, &caps).is_err());
        data.items.push("a".into());
        data.values = Some(vec![-1.0]);
        let err = Dataset::from_interactions(&data, false, &caps).unwrap_err();
        assert!(err.to_string().contains("values[0]"), "{err}");
        assert!(Dataset::from_interactions(&Interactions::default(), false, &caps).is_err());
    }
}
