//! Item and user attributes: categorical values per id read from a table, and what the
//! recommender derives from them — item filters, content neighbours that score items
//! nobody has interacted with yet (cold-start items), and per-segment popularity for
//! users without any history.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::data::{id_text, require_column};
use super::error::RecommendError;
use crate::data::Table;

/// Content neighbours kept per cold-start item.
pub const COLD_NEIGHBOURS: usize = 50;
/// Items of one attribute value scanned when finding content neighbours; bounds the cost
/// of very common values (a value shared by most items says little anyway).
const MAX_POSTING_SCAN: usize = 20_000;
/// Items kept per user segment (attribute value) for segment popularity.
const SEGMENT_ITEMS: usize = 500;
/// Weight of overall popularity next to segment popularity (breaks ties, fills gaps).
const GLOBAL_POPULARITY_WEIGHT: f32 = 1e-3;

/// Which columns of an attribute table to read. Unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeColumns {
    /// Column holding the item (or user) id.
    pub id: String,
    /// Attribute columns; empty reads every other column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Splits a cell into several values (e.g. `|` for `Action|Comedy`); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
}

/// Categorical attribute values of entities (items or users), one row per entity.
///
/// Values are strings; a row may hold several values of one attribute (multi-valued
/// cells split on a separator) or none (missing).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    /// Attribute names, in table order.
    pub names: Vec<String>,
    /// Per attribute, its distinct values (a value's id is its position).
    pub vocab: Vec<Vec<String>>,
    /// Entity id of each row.
    pub ids: Vec<String>,
    /// Row `r` holds `entries[offsets[r]..offsets[r + 1]]`.
    pub offsets: Vec<u32>,
    /// `(attribute, value id)` pairs.
    pub entries: Vec<(u32, u32)>,
}

impl Attributes {
    /// Reads attributes from `table`: the id column and the attribute columns named in
    /// `columns` (every other column when empty).
    ///
    /// # Errors
    /// [`RecommendError::MissingColumn`] for an absent column; [`RecommendError::BadCell`]
    /// (1-based row) for an empty or repeated id; [`RecommendError::Data`] for an
    /// empty separator or a table without attribute columns.
    pub fn from_table(
        table: &Table,
        columns: &AttributeColumns,
    ) -> Result<Attributes, RecommendError> {
        let require = |name: &str| require_column(table, name);
        let id_col = require(&columns.id)?;
        let attr_cols: Vec<usize> = if columns.columns.is_empty() {
            (0..table.columns.len()).filter(|&c| c != id_col).collect()
        } else {
            columns
                .columns
                .iter()
                .map(|c| require(c))
                .collect::<Result<_, _>>()?
        };
        if attr_cols.is_empty() {
            return Err(RecommendError::Data(format!(
                "the attribute table has no column besides `{}`",
                columns.id
            )));
        }
        if columns.separator.as_deref() == Some("") {
            return Err(RecommendError::Data("`separator` must not be empty".into()));
        }
        let mut out = Attributes {
            names: attr_cols
                .iter()
                .map(|&c| table.columns[c].clone())
                .collect(),
            vocab: vec![Vec::new(); attr_cols.len()],
            offsets: vec![0],
            ..Attributes::default()
        };
        let mut value_ids: Vec<HashMap<String, u32>> = vec![HashMap::new(); attr_cols.len()];
        let mut seen = HashMap::new();
        for row in 0..table.rows() {
            let id = id_text(&table.cells[id_col][row]).ok_or_else(|| RecommendError::BadCell {
                row: row + 1,
                column: columns.id.clone(),
                reason: "id is empty".into(),
            })?;
            if let Some(first) = seen.insert(id.clone(), row) {
                return Err(RecommendError::BadCell {
                    row: row + 1,
                    column: columns.id.clone(),
                    reason: format!("id `{id}` already appears in row {}", first + 1),
                });
            }
            let row_start = out.entries.len();
            for (a, &c) in attr_cols.iter().enumerate() {
                let Some(text) = id_text(&table.cells[c][row]) else {
                    continue;
                };
                let parts: Vec<&str> = match &columns.separator {
                    Some(sep) => text.split(sep.as_str()).map(str::trim).collect(),
                    None => vec![text.as_str()],
                };
                for part in parts.into_iter().filter(|p| !p.is_empty()) {
                    let vocab = &mut out.vocab[a];
                    let v = *value_ids[a].entry(part.to_owned()).or_insert_with(|| {
                        vocab.push(part.to_owned());
                        (vocab.len() - 1) as u32
                    });
                    let entry = (a as u32, v);
                    if !out.entries[row_start..].contains(&entry) {
                        out.entries.push(entry);
                    }
                }
            }
            out.ids.push(id);
            out.offsets.push(out.entries.len() as u32);
        }
        Ok(out)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `(attribute, value id)` pairs of row `row` (empty for an out-of-range row).
    pub fn row(&self, row: usize) -> &[(u32, u32)] {
        match (self.offsets.get(row), self.offsets.get(row + 1)) {
            (Some(&a), Some(&b)) => &self.entries[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Position of the attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Row `row` as `(attribute name, values)`, attributes without a value left out.
    pub fn describe(&self, row: usize) -> Vec<(&str, Vec<&str>)> {
        let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
        for &(a, v) in self.row(row) {
            let name = self.names[a as usize].as_str();
            let value = self.vocab[a as usize][v as usize].as_str();
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => out.push((name, vec![value])),
            }
        }
        out
    }

    /// First index of every attribute's values in one global value numbering.
    fn value_base(&self) -> Vec<u32> {
        let mut base = Vec::with_capacity(self.vocab.len() + 1);
        let mut total = 0u32;
        for values in &self.vocab {
            base.push(total);
            total += values.len() as u32;
        }
        base.push(total);
        base
    }

    /// The same attributes with rows in the order of `ids`; ids without a row get an
    /// empty one.
    pub(crate) fn aligned(&self, ids: &[String]) -> Attributes {
        let rows: HashMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(r, id)| (id.as_str(), r))
            .collect();
        let mut out = Attributes {
            names: self.names.clone(),
            vocab: self.vocab.clone(),
            ids: ids.to_vec(),
            offsets: Vec::with_capacity(ids.len() + 1),
            entries: Vec::new(),
        };
        out.offsets.push(0);
        for id in ids {
            if let Some(&r) = rows.get(id.as_str()) {
                out.entries.extend_from_slice(self.row(r));
            }
            out.offsets.push(out.entries.len() as u32);
        }
        out
    }

    /// Checks internal consistency (for tables read back from disk).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.offsets.len() != self.ids.len() + 1
            || self.offsets.first() != Some(&0)
            || self.offsets.last().map(|&o| o as usize) != Some(self.entries.len())
            || self.offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err("attribute offsets are inconsistent".into());
        }
        if self.vocab.len() != self.names.len() {
            return Err("attribute names and value lists differ in length".into());
        }
        let bad = self.entries.iter().any(|&(a, v)| {
            self.vocab
                .get(a as usize)
                .is_none_or(|values| v as usize >= values.len())
        });
        if bad {
            return Err("an attribute entry is out of range".into());
        }
        Ok(())
    }
}

/// A compiled item filter: every clause must match; a clause matches an item having at
/// least one of its values for the attribute.
#[derive(Clone, Debug)]
pub struct ItemFilter {
    clauses: Vec<(u32, Vec<u32>)>,
}

impl ItemFilter {
    /// Compiles `clauses` (attribute name → accepted values) against `items`. Values the
    /// catalog does not have simply match nothing.
    ///
    /// # Errors
    /// [`RecommendError::Request`] naming an attribute the items do not have.
    pub fn new(
        items: &Attributes,
        clauses: &[(String, Vec<String>)],
    ) -> Result<Self, RecommendError> {
        let mut compiled = Vec::with_capacity(clauses.len());
        for (name, values) in clauses {
            let a = items.attribute(name).ok_or_else(|| {
                RecommendError::Request(format!(
                    "filter attribute `{name}` is not an item attribute (known: {})",
                    items.names.join(", ")
                ))
            })?;
            let ids: Vec<u32> = values
                .iter()
                .filter_map(|value| {
                    items.vocab[a]
                        .iter()
                        .position(|v| v == value)
                        .map(|p| p as u32)
                })
                .collect();
            compiled.push((a as u32, ids));
        }
        Ok(ItemFilter { clauses: compiled })
    }

    /// Whether row `item` of `items` passes every clause.
    #[inline]
    pub fn matches(&self, items: &Attributes, item: u32) -> bool {
        let row = items.row(item as usize);
        self.clauses.iter().all(|(a, accepted)| {
            row.iter()
                .any(|&(ra, rv)| ra == *a && accepted.contains(&rv))
        })
    }
}

/// For each cold item (rows `n_warm..` of `items`, aligned to item indices), up to
/// [`COLD_NEIGHBOURS`] warm items with the most similar attributes and their weights
/// (summing to 1): the cube of the cosine similarity of IDF-weighted attribute-value
/// indicators, so the closest neighbours dominate. An item sharing no value with any
/// warm item gets no neighbours.
pub(crate) fn cold_neighbours(items: &Attributes, n_warm: usize) -> Vec<Vec<(u32, f32)>> {
    let base = items.value_base();
    let n_values = *base.last().unwrap_or(&0) as usize;
    let global = |&(a, v): &(u32, u32)| (base[a as usize] + v) as usize;
    // Postings over warm items, and document frequencies.
    let mut df = vec![0u32; n_values];
    for item in 0..n_warm {
        for e in items.row(item) {
            df[global(e)] += 1;
        }
    }
    let mut starts = vec![0usize; n_values + 1];
    for g in 0..n_values {
        starts[g + 1] = starts[g] + df[g] as usize;
    }
    let mut fill = starts.clone();
    let mut postings = vec![0u32; starts[n_values]];
    for item in 0..n_warm {
        for e in items.row(item) {
            let g = global(e);
            postings[fill[g]] = item as u32;
            fill[g] += 1;
        }
    }
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| (1.0 + n_warm as f32 / (1.0 + d as f32)).ln())
        .collect();
    let norm = |item: usize| -> f32 {
        items
            .row(item)
            .iter()
            .map(|e| idf[global(e)].powi(2))
            .sum::<f32>()
            .sqrt()
    };
    let warm_norms: Vec<f32> = (0..n_warm).map(norm).collect();
    let mut acc = vec![0f32; n_warm];
    let mut touched: Vec<u32> = Vec::new();
    (n_warm..items.len())
        .map(|cold| {
            for e in items.row(cold) {
                let g = global(e);
                let weight = idf[g] * idf[g];
                let list = &postings[starts[g]..starts[g + 1]];
                for &j in &list[..list.len().min(MAX_POSTING_SCAN)] {
                    if acc[j as usize] == 0.0 {
                        touched.push(j);
                    }
                    acc[j as usize] += weight;
                }
            }
            let own = norm(cold);
            let mut scored: Vec<(u32, f32)> = touched
                .drain(..)
                .map(|j| {
                    let s = acc[j as usize] / (own * warm_norms[j as usize]).max(1e-12);
                    acc[j as usize] = 0.0;
                    (j, s.powi(3))
                })
                .collect();
            scored.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(COLD_NEIGHBOURS);
            let total: f32 = scored.iter().map(|&(_, s)| s).sum();
            if total > 0.0 {
                for (_, s) in &mut scored {
                    *s /= total;
                }
            }
            scored
        })
        .collect()
}

/// User attributes with the popularity of items within each segment (attribute value),
/// for users without history.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserSegments {
    pub users: Attributes,
    rows: HashMap<String, u32>,
    base: Vec<u32>,
    /// Per global value: up to [`SEGMENT_ITEMS`] `(item, share of the segment's
    /// interactions)`.
    popular: Vec<Vec<(u32, f32)>>,
}

impl UserSegments {
    /// Builds segment popularity from the training histories of the users in `users`
    /// (`history(user id)` gives the stored items of a training user, or nothing).
    pub fn new<'h>(users: Attributes, history: impl Fn(&str) -> &'h [u32]) -> UserSegments {
        let base = users.value_base();
        let n_values = *base.last().unwrap_or(&0) as usize;
        let mut counts: Vec<HashMap<u32, f32>> = vec![HashMap::new(); n_values];
        for (row, id) in users.ids.iter().enumerate() {
            let items = history(id);
            for &(a, v) in users.row(row) {
                let segment = &mut counts[(base[a as usize] + v) as usize];
                for &item in items {
                    *segment.entry(item).or_insert(0.0) += 1.0;
                }
            }
        }
        let popular = counts
            .into_iter()
            .map(|segment| {
                let total: f32 = segment.values().sum();
                let mut list: Vec<(u32, f32)> = segment.into_iter().collect();
                list.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                list.truncate(SEGMENT_ITEMS);
                for (_, c) in &mut list {
                    *c /= total.max(1.0);
                }
                list
            })
            .collect();
        let rows = users
            .ids
            .iter()
            .enumerate()
            .map(|(r, id)| (id.clone(), r as u32))
            .collect();
        UserSegments {
            users,
            rows,
            base,
            popular,
        }
    }

    /// Row of a user id in the attribute table.
    pub fn row_of(&self, user: &str) -> Option<u32> {
        self.rows.get(user).copied()
    }

    /// Writes segment-popularity scores for user row `row` into `scores` (one per item):
    /// the sum over the user's attribute values of each item's share of that segment's
    /// interactions, plus a small share of overall `popularity`. Returns `false` (scores
    /// untouched) when the user has no attribute value with any interaction.
    pub fn score_into(&self, row: u32, popularity: &[f32], scores: &mut [f32]) -> bool {
        let lists: Vec<&Vec<(u32, f32)>> = self
            .users
            .row(row as usize)
            .iter()
            .map(|&(a, v)| &self.popular[(self.base[a as usize] + v) as usize])
            .filter(|list| !list.is_empty())
            .collect();
        if lists.is_empty() {
            return false;
        }
        let max = popularity.iter().copied().fold(0.0f32, f32::max);
        let scale = if max > 0.0 {
            GLOBAL_POPULARITY_WEIGHT / max
        } else {
            0.0
        };
        for (s, &p) in scores.iter_mut().zip(popularity) {
            *s = p * scale;
        }
        for list in lists {
            for &(item, share) in list {
                if let Some(s) = scores.get_mut(item as usize) {
                    *s += share;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Cell;

    fn table(columns: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            cells: (0..columns.len())
                .map(|c| {
                    rows.iter()
                        .map(|r| {
                            if r[c].is_empty() {
                                Cell::Missing
                            } else {
                                Cell::Text(r[c].to_string())
                            }
                        })
                        .collect()
                })
                .collect(),
        }
    }

    fn columns(sep: Option<&str>) -> AttributeColumns {
        AttributeColumns {
            id: "item_id".into(),
            columns: Vec::new(),
            separator: sep.map(str::to_owned),
        }
    }

    #[test]
    fn reads_multi_valued_cells_and_missing_values() {
        let t = table(
            &["item_id", "genre", "brand"],
            &[&["a", "x|y", "acme"], &["b", "y", ""]],
        );
        let attrs = Attributes::from_table(&t, &columns(Some("|"))).unwrap();
        assert_eq!(attrs.names, ["genre", "brand"]);
        assert_eq!(
            attrs.describe(0),
            vec![("genre", vec!["x", "y"]), ("brand", vec!["acme"])]
        );
        assert_eq!(attrs.describe(1), vec![("genre", vec!["y"])]);
        assert!(attrs.check().is_ok());
    }

    #[test]
    fn a_repeated_id_names_both_rows() {
        let t = table(&["item_id", "genre"], &[&["a", "x"], &["a", "y"]]);
        let err = Attributes::from_table(&t, &columns(None)).unwrap_err();
        assert!(err.to_string().contains("row 2"), "{err}");
        assert!(err.to_string().contains("row 1"), "{err}");
    }

    #[test]
    fn a_missing_id_column_is_named() {
        let t = table(&["sku", "genre"], &[&["a", "x"]]);
        let err = Attributes::from_table(&t, &columns(None)).unwrap_err();
        assert!(err.to_string().contains("item_id"), "{err}");
    }

    #[test]
    fn filter_requires_every_clause() {
        let t = table(
            &["item_id", "genre", "brand"],
            &[
                &["a", "x", "acme"],
                &["b", "x", "other"],
                &["c", "y", "acme"],
            ],
        );
        let attrs = Attributes::from_table(&t, &columns(None)).unwrap();
        let filter = ItemFilter::new(
            &attrs,
            &[
                ("genre".into(), vec!["x".into()]),
                ("brand".into(), vec!["acme".into(), "nope".into()]),
            ],
        )
        .unwrap();
        let passing: Vec<u32> = (0..3).filter(|&i| filter.matches(&attrs, i)).collect();
        assert_eq!(passing, [0]);
        assert!(ItemFilter::new(&attrs, &[("colour".into(), vec![])]).is_err());
    }

    #[test]
    fn cold_items_get_neighbours_sharing_their_values() {
        let t = table(
            &["item_id", "genre", "brand"],
            &[
                &["w0", "x", "acme"],
                &["w1", "y", "other"],
                &["w2", "x", "other"],
                &["c0", "x", "acme"],
                &["c1", "z", "none"],
            ],
        );
        let attrs = Attributes::from_table(&t, &columns(None)).unwrap();
        let cold = cold_neighbours(&attrs, 3);
        assert_eq!(cold.len(), 2);
        assert_eq!(
            cold[0][0].0, 0,
            "the item with both values first: {:?}",
            cold[0]
        );
        assert!(cold[0].iter().all(|&(j, _)| j != 1));
        let total: f32 = cold[0].iter().map(|&(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!(cold[1].is_empty());
    }

    #[test]
    fn segment_popularity_follows_the_segment() {
        let t = table(
            &["user_id", "age"],
            &[&["u0", "young"], &["u1", "young"], &["u2", "old"]],
        );
        let mut cols = columns(None);
        cols.id = "user_id".into();
        let users = Attributes::from_table(&t, &cols).unwrap();
        let histories: HashMap<&str, Vec<u32>> =
            [("u0", vec![0, 1]), ("u1", vec![1]), ("u2", vec![2])].into();
        let segments =
            UserSegments::new(users, |id| histories.get(id).map_or(&[][..], Vec::as_slice));
        let mut scores = vec![0.0; 3];
        let popularity = [1.0, 1.0, 5.0];
        assert!(segments.score_into(segments.row_of("u1").unwrap(), &popularity, &mut scores));
        assert!(scores[1] > scores[0] && scores[0] > scores[2], "{scores:?}");
        assert!(segments.score_into(segments.row_of("u2").unwrap(), &popularity, &mut scores));
        assert!(scores[2] > scores[0], "{scores:?}");
    }
}
