//! The trained recommender: vocabularies, stored histories, components and
//! attributes, assembled and checked from their parts. Scoring and serving are in
//! `model/scoring.rs`.

use std::collections::HashMap;

use half::f16;
use ndarray::Array2;

use super::approx::Approximate;
use super::attributes::{cold_neighbours, Attributes, ItemFilter, UserSegments};
use super::dae::Dae;
use super::ease::Ease;
use super::error::RecommendError;
use super::kernels::to_f16;
use super::params::Component;
use super::quant::QuantizedColumns;

mod benchmark;
mod item_set;
mod scoring;
mod spec;

pub use item_set::ItemSet;
pub(crate) use scoring::blend_into;
pub use scoring::ScoreScratch;
pub use spec::{RecommenderSpec, SPEC_FORMAT};

/// Popularity given to a cold item relative to its content neighbours' (it has none of
/// its own yet).
const COLD_POPULARITY_DISCOUNT: f32 = 0.5;

/// A trained recommender. Item and user indices are dense `u32` (`0..n_items`,
/// `0..n_users`) in the order of first appearance in the training interactions.
#[derive(Clone, Debug)]
pub struct Recommender {
    pub(crate) spec: RecommenderSpec,
    pub(crate) item_ids: Vec<String>,
    pub(crate) user_ids: Vec<String>,
    item_index: HashMap<String, u32>,
    user_index: HashMap<String, u32>,
    /// CSR of stored (recency-weighted) histories.
    pub(crate) history_offsets: Vec<usize>,
    pub(crate) history_items: Vec<u32>,
    pub(crate) history_weights: Vec<f32>,
    pub(crate) popularity: Vec<f32>,
    pub(crate) dae: Option<Dae>,
    pub(crate) ease: Option<Ease>,
    /// Unit-norm item embeddings for `similar` (decoder columns), when an autoencoder exists.
    embeddings: Option<Array2<f32>>,
    /// Serving copies: the decoder (`hidden × n`) in `int8`, one dot product per item
    /// (see `quant`); the encoder (`n × hidden`) and item-item (`n × n`) weights in
    /// `f16`. Scoring streams these matrices, so fewer bytes is less time.
    pub(crate) decoder8: QuantizedColumns,
    encoder16: Vec<f16>,
    item_item16: Vec<f16>,
    /// Item attributes, one row per item index (warm and cold).
    items: Option<Attributes>,
    /// Content neighbours `(warm item, weight)` of each cold item `n_warm + c`.
    pub(crate) cold: Vec<Vec<(u32, f32)>>,
    /// The inverted-file index served instead of exact scoring (large catalogs).
    pub(crate) ann: Option<Approximate>,
    /// User attributes and per-segment popularity.
    segments: Option<UserSegments>,
}

/// Parts of a recommender, checked by [`Recommender::from_parts`].
pub(crate) struct Parts {
    pub spec: RecommenderSpec,
    pub item_ids: Vec<String>,
    pub user_ids: Vec<String>,
    pub history_offsets: Vec<usize>,
    pub history_items: Vec<u32>,
    pub history_weights: Vec<f32>,
    pub popularity: Vec<f32>,
    pub dae: Option<Dae>,
    pub ease: Option<Ease>,
}

fn bad(message: String) -> RecommendError {
    RecommendError::Artifact(message)
}

impl Recommender {
    /// Assembles and cross-checks the parts (sizes, indices, finiteness).
    pub(crate) fn from_parts(parts: Parts) -> Result<Recommender, RecommendError> {
        let Parts {
            spec,
            item_ids,
            user_ids,
            history_offsets,
            history_items,
            history_weights,
            popularity,
            dae,
            ease,
        } = parts;
        let n = spec.n_items;
        if item_ids.len() != n || popularity.len() != n {
            return Err(bad(format!(
                "{} item ids and {} popularity scores for n_items = {n}",
                item_ids.len(),
                popularity.len()
            )));
        }
        if user_ids.len() != spec.n_users || history_offsets.len() != spec.n_users + 1 {
            return Err(bad(format!(
                "{} user ids and {} history offsets for n_users = {}",
                user_ids.len(),
                history_offsets.len(),
                spec.n_users
            )));
        }
        let total = history_items.len();
        if history_weights.len() != total
            || history_offsets.first() != Some(&0)
            || history_offsets.last() != Some(&total)
            || history_offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad(
                "history offsets, items and weights are inconsistent".into()
            ));
        }
        if history_items.iter().any(|&i| i as usize >= n) {
            return Err(bad(
                "a stored history references an item out of range".into()
            ));
        }
        if popularity
            .iter()
            .chain(&history_weights)
            .any(|v| !v.is_finite())
        {
            return Err(bad("non-finite popularity or history weight".into()));
        }
        if let Some(dae) = &dae {
            if dae.n_items() != n
                || dae.hidden() != spec.hidden
                || dae.decoder.dim() != (spec.hidden, n)
                || dae.encoder_bias.len() != spec.hidden
                || dae.decoder_bias.len() != n
            {
                return Err(bad("autoencoder tensors do not match the spec".into()));
            }
        }
        if let Some(ease) = &ease {
            if ease.weights.dim() != (n + spec.user_features, n)
                || ease.user_features.count != spec.user_features
            {
                return Err(bad(
                    "item-item weights do not match n_items and user_features".into(),
                ));
            }
            ease.user_features.check(spec.n_users).map_err(bad)?;
        }
        let needs = |c: Component| spec.component == c || spec.component == Component::Blend;
        if needs(Component::Dae) != dae.is_some() || needs(Component::Ease) != ease.is_some() {
            return Err(bad(format!(
                "component `{:?}` does not match the stored tensors",
                spec.component
            )));
        }
        let index = |ids: &[String]| -> Result<HashMap<String, u32>, RecommendError> {
            let mut map = HashMap::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                if map.insert(id.clone(), i as u32).is_some() {
                    return Err(bad(format!("id `{id}` appears twice in the vocabulary")));
                }
            }
            Ok(map)
        };
        let embeddings = dae.as_ref().map(|dae| {
            let mut e = dae.item_embeddings();
            for mut row in e.rows_mut() {
                let norm = row.dot(&row).sqrt();
                if norm > 0.0 {
                    row /= norm;
                }
            }
            e
        });
        Ok(Recommender {
            item_index: index(&item_ids)?,
            user_index: index(&user_ids)?,
            spec,
            item_ids,
            user_ids,
            history_offsets,
            history_items,
            history_weights,
            popularity,
            decoder8: dae
                .as_ref()
                .map(|d| QuantizedColumns::from_columns(d.decoder.view()))
                .unwrap_or_default(),
            encoder16: dae
                .as_ref()
                .map(|d| to_f16(d.encoder.as_slice().expect("standard layout")))
                .unwrap_or_default(),
            item_item16: ease
                .as_ref()
                .map(|e| to_f16(e.weights.as_slice().expect("standard layout")))
                .unwrap_or_default(),
            dae,
            ease,
            embeddings,
            items: None,
            cold: Vec::new(),
            ann: None,
            segments: None,
        })
    }

    /// Adds item and/or user attributes. Item ids of `items` unknown to the model become
    /// cold-start items (indices after the trained ones), scored from the
    /// [`super::attributes::COLD_NEIGHBOURS`] warm items with the most similar
    /// attributes; their popularity is half their neighbours'. User attributes give users
    /// without history the popularity within their segments.
    ///
    /// # Errors
    /// [`RecommendError::Data`] when the catalog would exceed `max_items`.
    pub fn with_attributes(
        mut self,
        items: Option<Attributes>,
        users: Option<Attributes>,
        max_items: usize,
    ) -> Result<Recommender, RecommendError> {
        let n_warm = self.spec.n_items;
        if let Some(items) = items {
            self.item_ids.truncate(n_warm);
            self.item_index.retain(|_, &mut i| (i as usize) < n_warm);
            for id in &items.ids {
                if !self.item_index.contains_key(id) {
                    self.item_index
                        .insert(id.clone(), self.item_ids.len() as u32);
                    self.item_ids.push(id.clone());
                }
            }
            if self.item_ids.len() > max_items {
                return Err(RecommendError::Data(format!(
                    "{} items with the attribute table's new ones; the limit is {max_items}",
                    self.item_ids.len()
                )));
            }
            let aligned = items.aligned(&self.item_ids);
            let cold = cold_neighbours(&aligned, n_warm);
            self.popularity.truncate(n_warm);
            for neighbours in &cold {
                let p: f32 = neighbours
                    .iter()
                    .map(|&(j, w)| w * self.popularity[j as usize])
                    .sum();
                self.popularity.push(p * COLD_POPULARITY_DISCOUNT);
            }
            self.spec.cold_items = cold.len();
            self.spec.item_attributes = aligned.names.clone();
            self.items = Some(aligned);
            self.cold = cold;
        }
        if let Some(users) = users {
            self.spec.user_attributes = users.names.clone();
            let segments = UserSegments::new(users, |id| match self.user_index.get(id) {
                Some(&u) => {
                    let u = u as usize;
                    &self.history_items[self.history_offsets[u]..self.history_offsets[u + 1]]
                }
                None => &[],
            });
            self.segments = Some(segments);
        }
        Ok(self)
    }

    /// The item attributes, one row per item index, when the model has them.
    pub fn item_attributes(&self) -> Option<&Attributes> {
        self.items.as_ref()
    }

    /// The user attributes, when the model has them.
    pub fn user_attributes(&self) -> Option<&Attributes> {
        self.segments.as_ref().map(|s| &s.users)
    }

    /// Compiles an item filter (attribute name → accepted values).
    ///
    /// # Errors
    /// [`RecommendError::Request`] when the model has no item attributes or lacks one of
    /// the named attributes.
    pub fn item_filter(
        &self,
        clauses: &[(String, Vec<String>)],
    ) -> Result<ItemFilter, RecommendError> {
        let items = self.items.as_ref().ok_or_else(|| {
            RecommendError::Request(
                "`filter` needs item attributes; this model was trained without them".into(),
            )
        })?;
        ItemFilter::new(items, clauses)
    }

    /// Whether `item` passes `filter` (compiled by [`Recommender::item_filter`]).
    pub fn filter_matches(&self, filter: &ItemFilter, item: u32) -> bool {
        self.items
            .as_ref()
            .is_some_and(|items| filter.matches(items, item))
    }

    /// Trained (warm) items: indices `0..n_warm()` have learned parameters.
    pub fn n_warm(&self) -> usize {
        self.spec.n_items
    }

    /// The serialisable description (no tensors).
    pub fn spec(&self) -> &RecommenderSpec {
        &self.spec
    }

    /// Items of the catalog: the trained ones plus cold-start items.
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    pub fn n_users(&self) -> usize {
        self.spec.n_users
    }

    /// Index of an item id seen at training.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.item_index.get(id).copied()
    }

    /// Id of an item index.
    pub fn item_id(&self, index: u32) -> Option<&str> {
        self.item_ids.get(index as usize).map(String::as_str)
    }

    /// Index of a user id seen at training.
    pub fn user_index(&self, id: &str) -> Option<u32> {
        self.user_index.get(id).copied()
    }

    pub fn user_id(&self, index: u32) -> Option<&str> {
        self.user_ids.get(index as usize).map(String::as_str)
    }

    /// A training user's stored history as `(item, weight)` (recency-weighted per the
    /// spec), oldest first when timestamps existed; empty for an unknown index.
    pub fn user_history(&self, user: u32) -> Vec<(u32, f32)> {
        let u = user as usize;
        if u >= self.n_users() {
            return Vec::new();
        }
        let range = self.history_offsets[u]..self.history_offsets[u + 1];
        self.history_items[range.clone()]
            .iter()
            .copied()
            .zip(self.history_weights[range].iter().copied())
            .collect()
    }

    /// Popularity scores used as the fallback ranking (time-decayed when timestamps
    /// existed).
    pub fn popularity(&self) -> &[f32] {
        &self.popularity
    }

    fn check_history(&self, history: &[(u32, f32)]) -> Result<(), RecommendError> {
        let n = self.n_items();
        if let Some(&(item, w)) = history
            .iter()
            .find(|&&(item, w)| item as usize >= n || !(w.is_finite() && w >= 0.0))
        {
            return Err(RecommendError::Request(if item as usize >= n {
                format!("history item index {item} is out of range (catalog has {n} items)")
            } else {
                format!("history weight {w} for item {item} must be finite and >= 0")
            }));
        }
        Ok(())
    }

    fn check_k(&self, k: usize) -> Result<(), RecommendError> {
        if k == 0 || k > self.spec.max_k {
            return Err(RecommendError::Request(format!(
                "k = {k} must be in 1..={}",
                self.spec.max_k
            )));
        }
        Ok(())
    }

    fn check_candidates(&self, candidates: Option<&[u32]>) -> Result<(), RecommendError> {
        let n = self.n_items();
        if let Some(&bad) = candidates.into_iter().flatten().find(|&&i| i as usize >= n) {
            return Err(RecommendError::Request(format!(
                "candidate item index {bad} is out of range (catalog has {n} items)"
            )));
        }
        Ok(())
    }
}
