//! The trained recommender: vocabularies, stored histories, scorers and serving.

use std::collections::HashMap;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::attributes::{cold_neighbours, Attributes, ItemFilter, UserSegments};
use half::f16;

use super::approx::Approximate;
use super::dae::Dae;
use super::ease::Ease;
use super::error::RecommendError;
use super::kernels::{add_rows, to_f16};
use super::metrics::HoldoutMetrics;
use super::params::{Component, HoldoutKind, RecommenderParams};
use super::quant::QuantizedColumns;
use super::topk::top_k;

/// Version of the [`RecommenderSpec`] layout.
pub const SPEC_FORMAT: u32 = 1;

/// Everything about a trained recommender except its tensors and vocabularies; small,
/// stored in `model.json` by the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommenderSpec {
    pub format: u32,
    /// The component actually trained (`dae`, `ease` or `blend`).
    pub component: Component,
    pub n_items: usize,
    pub n_users: usize,
    /// Autoencoder hidden width (0 without an autoencoder).
    pub hidden: usize,
    /// Autoencoder weight in the blend (1 for `dae`, 0 for `ease`).
    pub blend: f32,
    /// Strength of item attributes in the item-item model (0: none; see
    /// [`RecommenderParams::attribute_weight`]).
    #[serde(default)]
    pub attribute_weight: f32,
    /// Input weight of user attributes in the item-item model (0: none).
    #[serde(default)]
    pub user_attribute_weight: f32,
    /// User features (rows after the items in the item-item weights).
    #[serde(default)]
    pub user_features: usize,
    /// Recency exponent applied to stored histories (see
    /// [`RecommenderParams::recency_power`]); callers posting timestamped histories should
    /// weight them the same way with [`super::recency_weights`].
    pub recency_power: f32,
    /// The validation protocol whose choice the model keeps (`temporal` or `random`;
    /// see [`RecommenderParams::holdout`]); `None` without validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_used: Option<HoldoutKind>,
    /// Whether the training interactions had timestamps.
    pub timestamps: bool,
    /// Lists of the inverted-file index used for approximate top-k (0: exact scoring).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index_lists: usize,
    /// Lists probed per request when `index_lists > 0`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index_probes: usize,
    /// Largest `k` served.
    pub max_k: usize,
    /// Autoencoder epochs trained in the final model.
    pub epochs_trained: usize,
    /// Distinct (user, item) pairs trained on.
    pub interactions: usize,
    pub params: RecommenderParams,
    pub metrics: Option<HoldoutMetrics>,
    /// Items known only from the item attributes (indices `n_items..`), scored from their
    /// content neighbours.
    #[serde(default)]
    pub cold_items: usize,
    /// Names of the item attributes (filters, `include_attributes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_attributes: Vec<String>,
    /// Names of the user attributes (segment popularity for users without history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_attributes: Vec<String>,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

/// Popularity given to a cold item relative to its content neighbours' (it has none of
/// its own yet).
const COLD_POPULARITY_DISCOUNT: f32 = 0.5;

/// A set of item indices (bitset), e.g. the items to exclude from a recommendation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemSet {
    words: Vec<u64>,
}

impl ItemSet {
    pub fn new(n_items: usize) -> ItemSet {
        ItemSet {
            words: vec![0; n_items.div_ceil(64)],
        }
    }

    /// The items of a history.
    pub fn from_history(n_items: usize, history: &[(u32, f32)]) -> ItemSet {
        let mut set = ItemSet::new(n_items);
        for &(item, _) in history {
            set.insert(item);
        }
        set
    }

    /// Adds `item` (growing the set if needed).
    pub fn insert(&mut self, item: u32) {
        let word = item as usize / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (item % 64);
    }

    #[inline]
    pub fn contains(&self, item: u32) -> bool {
        self.words
            .get(item as usize / 64)
            .is_some_and(|w| w & (1 << (item % 64)) != 0)
    }

    pub fn clear(&mut self) {
        self.words.fill(0);
    }
}

/// Reusable buffers for scoring; after the first call at a catalog size, scoring does not
/// allocate.
#[derive(Clone, Debug, Default)]
pub struct ScoreScratch {
    pub(crate) hidden: Vec<f32>,
    pub(crate) expanded: Vec<(u32, f32)>,
    first: Vec<f32>,
    second: Vec<f32>,
    scores: Vec<f32>,
    pub(crate) select: Vec<(f32, u32)>,
    pub(crate) codes: Vec<u8>,
    /// Items and scores re-ranked by the approximate path, and its list ranking.
    pub(crate) pool: Vec<u32>,
    pub(crate) pool_scores: Vec<f32>,
    pub(crate) lists: Vec<(f32, u32)>,
    pub(crate) list_order: Vec<u32>,
}

impl ScoreScratch {
    /// The scores written by the last [`Recommender::score_into`].
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

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

    /// Segment popularity for a user without history known from the user attributes:
    /// scores into `scratch` when the user's segments have interactions.
    pub fn segment_scores<'s>(
        &self,
        user: &str,
        scratch: &'s mut ScoreScratch,
    ) -> Option<&'s [f32]> {
        let segments = self.segments.as_ref()?;
        let row = segments.row_of(user)?;
        scratch.scores.resize(self.n_items(), 0.0);
        segments
            .score_into(row, &self.popularity, &mut scratch.scores)
            .then_some(&scratch.scores[..])
    }

    /// Top `k` of the segment popularity of a user without history known from the user
    /// attributes (see [`Recommender::segment_scores`]); `None` when the model has no
    /// segment for the user.
    ///
    /// # Errors
    /// [`RecommendError::Request`] for `k` outside `1..=max_k` or out-of-range candidates.
    pub fn recommend_for_segment(
        &self,
        user: &str,
        k: usize,
        exclude: &dyn Fn(u32) -> bool,
        candidates: Option<&[u32]>,
        scratch: &mut ScoreScratch,
    ) -> Result<Option<Vec<(u32, f32)>>, RecommendError> {
        self.check_k(k)?;
        self.check_candidates(candidates)?;
        if self.segment_scores(user, scratch).is_none() {
            return Ok(None);
        }
        Ok(Some(top_k(
            &scratch.scores,
            k,
            exclude,
            candidates,
            &mut scratch.select,
        )))
    }

    /// Trained (warm) items: indices `0..n_warm()` have learned parameters.
    pub fn n_warm(&self) -> usize {
        self.spec.n_items
    }

    /// Writes each cold item's score as the weighted sum of its neighbours' scores (below
    /// every warm score when it has no neighbour).
    fn score_cold(&self, scores: &mut [f32]) {
        let n = self.n_warm();
        if self.cold.is_empty() {
            return;
        }
        let mut floor = None;
        for (c, neighbours) in self.cold.iter().enumerate() {
            scores[n + c] = if neighbours.is_empty() {
                *floor.get_or_insert_with(|| {
                    scores[..n].iter().copied().fold(f32::INFINITY, f32::min) - 1.0
                })
            } else {
                neighbours
                    .iter()
                    .map(|&(j, w)| w * scores[j as usize])
                    .sum()
            };
        }
    }

    /// Autoencoder hidden activations `tanh(Σ x̂_j E[j,:] + c)` (L2-normalised history)
    /// from the `f16` encoder copy.
    pub(crate) fn encode_into(&self, dae: &Dae, history: &[(u32, f32)], hidden: &mut [f32]) {
        hidden.copy_from_slice(dae.encoder_bias.as_slice().expect("contiguous"));
        let norm = history.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            let picks = history.iter().map(|&(item, w)| (item as usize, w * inv));
            add_rows(&self.encoder16, dae.hidden(), picks, hidden);
        }
        for h in hidden.iter_mut() {
            *h = h.tanh();
        }
    }

    /// Autoencoder logits `a · D + d` from the `int8` decoder copy.
    fn decode_into(&self, dae: &Dae, hidden: &[f32], codes: &mut Vec<u8>, out: &mut [f32]) {
        out.copy_from_slice(dae.decoder_bias.as_slice().expect("contiguous"));
        self.decoder8.add_products(hidden, codes, out);
    }

    /// Item-item scores `Σ_i w_i · B[i, :]` from the `f16` copy.
    /// Training user `user`'s features add their rows (stored after the items').
    fn item_item_into(&self, history: &[(u32, f32)], user: Option<u32>, out: &mut [f32]) {
        out.fill(0.0);
        let n = self.n_warm();
        let features = match (&self.ease, user) {
            (Some(ease), Some(user)) => ease.user_features.of(user as usize),
            _ => &[],
        };
        let picks = history
            .iter()
            .map(|&(item, w)| (item as usize, w))
            .chain(features.iter().map(|&f| (n + f as usize, 1.0)));
        add_rows(&self.item_item16, n, picks, out);
    }

    /// `history` with every cold item replaced by its weighted warm neighbours.
    pub(crate) fn expand_history(&self, history: &[(u32, f32)], out: &mut Vec<(u32, f32)>) {
        let n = self.n_warm() as u32;
        out.clear();
        for &(item, w) in history {
            if item < n {
                out.push((item, w));
            } else if let Some(neighbours) = self.cold.get((item - n) as usize) {
                out.extend(neighbours.iter().map(|&(j, wj)| (j, w * wj)));
            }
        }
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

    /// Scores every item for `history` into `scratch` and returns them (higher is better).
    /// An empty (or all-zero) history gets the popularity scores. Cost: `O(|h| · hidden +
    /// hidden · n_items)` for the autoencoder, `O(|h| · n_items)` for the item-item model,
    /// `O(n_items)` to standardise and blend.
    ///
    /// # Errors
    /// [`RecommendError::Request`] for an out-of-range item or a negative or non-finite
    /// weight.
    pub fn score_into<'s>(
        &self,
        history: &[(u32, f32)],
        scratch: &'s mut ScoreScratch,
    ) -> Result<&'s [f32], RecommendError> {
        self.score_user_into(None, history, scratch)
    }

    /// [`Recommender::score_into`] for training user `user` (an index from
    /// [`Recommender::user_index`]): the item-item model also reads the user's attribute
    /// features when it was trained with them. `None` or an out-of-range index scores
    /// the history alone.
    ///
    /// # Errors
    /// As [`Recommender::score_into`].
    pub fn score_user_into<'s>(
        &self,
        user: Option<u32>,
        history: &[(u32, f32)],
        scratch: &'s mut ScoreScratch,
    ) -> Result<&'s [f32], RecommendError> {
        self.check_history(history)?;
        let n = self.n_warm();
        let ScoreScratch {
            hidden,
            expanded,
            first,
            second,
            scores,
            codes,
            ..
        } = scratch;
        scores.resize(self.n_items(), 0.0);
        self.expand_history(history, expanded);
        let history = &expanded[..];
        if history.iter().all(|&(_, w)| w == 0.0) {
            scores.copy_from_slice(&self.popularity);
            return Ok(scores);
        }
        let warm = &mut scores[..n];
        match (&self.dae, &self.ease) {
            (Some(dae), None) => {
                hidden.resize(dae.hidden(), 0.0);
                self.encode_into(dae, history, hidden);
                self.decode_into(dae, hidden, codes, warm);
            }
            (None, Some(_)) => self.item_item_into(history, user, warm),
            (Some(dae), Some(_)) => {
                hidden.resize(dae.hidden(), 0.0);
                first.resize(n, 0.0);
                second.resize(n, 0.0);
                self.encode_into(dae, history, hidden);
                self.decode_into(dae, hidden, codes, first);
                self.item_item_into(history, user, second);
                blend_into(first, second, self.spec.blend, warm);
            }
            (None, None) => warm.copy_from_slice(&self.popularity[..n]),
        }
        self.score_cold(scores);
        Ok(scores)
    }

    /// Top `k` items for `history`, best first, as `(item, score)`: only `candidates`
    /// when given, never an item for which `exclude` is true. History items are not
    /// excluded implicitly. `O(scoring + n_items)`, no full sort.
    ///
    /// # Errors
    /// [`RecommendError::Request`] for `k` outside `1..=max_k`, out-of-range items or
    /// invalid weights.
    pub fn recommend(
        &self,
        history: &[(u32, f32)],
        k: usize,
        exclude: &dyn Fn(u32) -> bool,
        candidates: Option<&[u32]>,
    ) -> Result<Vec<(u32, f32)>, RecommendError> {
        self.recommend_with(
            history,
            k,
            exclude,
            candidates,
            &mut ScoreScratch::default(),
        )
    }

    /// [`Recommender::recommend`] reusing `scratch`.
    pub fn recommend_with(
        &self,
        history: &[(u32, f32)],
        k: usize,
        exclude: &dyn Fn(u32) -> bool,
        candidates: Option<&[u32]>,
        scratch: &mut ScoreScratch,
    ) -> Result<Vec<(u32, f32)>, RecommendError> {
        self.recommend_user_with(None, history, k, exclude, candidates, scratch)
    }

    /// [`Recommender::recommend_with`] for training user `user` (see
    /// [`Recommender::score_user_into`]).
    ///
    /// # Errors
    /// As [`Recommender::recommend`].
    pub fn recommend_user_with(
        &self,
        user: Option<u32>,
        history: &[(u32, f32)],
        k: usize,
        exclude: &dyn Fn(u32) -> bool,
        candidates: Option<&[u32]>,
        scratch: &mut ScoreScratch,
    ) -> Result<Vec<(u32, f32)>, RecommendError> {
        self.check_k(k)?;
        self.check_candidates(candidates)?;
        if self.is_approximate() {
            self.check_history(history)?;
            if history.iter().any(|&(_, w)| w > 0.0) {
                return Ok(self.approximate_top_k(history, k, exclude, candidates, scratch));
            }
        }
        self.score_user_into(user, history, scratch)?;
        Ok(top_k(
            &scratch.scores,
            k,
            exclude,
            candidates,
            &mut scratch.select,
        ))
    }

    /// Top `k` by popularity (the fallback for users without history).
    ///
    /// # Errors
    /// [`RecommendError::Request`] for `k` outside `1..=max_k`.
    pub fn popular(
        &self,
        k: usize,
        exclude: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>, RecommendError> {
        self.check_k(k)?;
        Ok(top_k(&self.popularity, k, exclude, None, &mut Vec::new()))
    }

    /// The `k` items most similar to `item`, by cosine of the autoencoder's item output
    /// embeddings (`O(hidden · n_items)`); for an item-item-only model, by the learned
    /// item-item weights `B[item, :]`. The item itself is excluded.
    ///
    /// # Errors
    /// [`RecommendError::Request`] for an out-of-range item or invalid `k`.
    pub fn similar(&self, item: u32, k: usize) -> Result<Vec<(u32, f32)>, RecommendError> {
        self.check_k(k)?;
        let n = self.n_items();
        if item as usize >= n {
            return Err(RecommendError::Request(format!(
                "item index {item} is out of range (catalog has {n} items)"
            )));
        }
        let mut query = Vec::new();
        self.expand_history(&[(item, 1.0)], &mut query);
        let mut scores = vec![0.0; n];
        let warm = &mut scores[..self.n_warm()];
        match (&self.embeddings, &self.ease) {
            (Some(e), _) => {
                for &(j, w) in &query {
                    warm.iter_mut()
                        .zip(e.dot(&e.row(j as usize)))
                        .for_each(|(s, v)| *s += w * v);
                }
            }
            (None, Some(ease)) => ease.score_into(&query, None, warm),
            (None, None) => warm.copy_from_slice(&self.popularity[..self.n_warm()]),
        }
        self.score_cold(&mut scores);
        Ok(top_k(&scores, k, &|i| i == item, None, &mut Vec::new()))
    }
}

/// `out = α·z(a) + (1−α)·z(b)` with `z` standardising over all items.
pub(crate) fn blend_into(a: &[f32], b: &[f32], alpha: f32, out: &mut [f32]) {
    let (ma, sa) = mean_std(a);
    let (mb, sb) = mean_std(b);
    let (wa, wb) = (alpha / sa, (1.0 - alpha) / sb);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = wa * (x - ma) + wb * (y - mb);
    }
}

fn mean_std(values: &[f32]) -> (f32, f32) {
    const LANES: usize = 16;
    let n = values.len().max(1) as f64;
    // Lane-wise f32 partial sums vectorise; the lanes are combined in f64.
    let (mut sum, mut squares) = ([0f32; LANES], [0f32; LANES]);
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for i in 0..LANES {
            sum[i] += chunk[i];
            squares[i] += chunk[i] * chunk[i];
        }
    }
    let mut s: f64 = sum.iter().map(|&v| f64::from(v)).sum();
    let mut q: f64 = squares.iter().map(|&v| f64::from(v)).sum();
    for &v in rest {
        s += f64::from(v);
        q += f64::from(v) * f64::from(v);
    }
    let mean = s / n;
    let std = (q / n - mean * mean).max(0.0).sqrt();
    (mean as f32, if std > 1e-6 { std as f32 } else { 1.0 })
}

impl Recommender {
    /// A model with cheap deterministic pseudo-random weights and no training, to measure
    /// scoring cost at arbitrary catalog sizes (autoencoder with `hidden` units, plus the
    /// item-item matrix when `item_item`). Not meant for serving.
    #[doc(hidden)]
    pub fn benchmark_model(n_items: usize, hidden: usize, item_item: bool) -> Recommender {
        let pseudo =
            |i: usize| ((i.wrapping_mul(2_654_435_761) % 20_011) as f32 / 20_011.0 - 0.5) * 0.1;
        let dae = (hidden > 0).then(|| Dae {
            encoder: Array2::from_shape_fn((n_items, hidden), |(i, j)| pseudo(i * hidden + j)),
            encoder_bias: ndarray::Array1::zeros(hidden),
            decoder: Array2::from_shape_fn((hidden, n_items), |(i, j)| pseudo(i * n_items + j + 7)),
            decoder_bias: ndarray::Array1::from_shape_fn(n_items, pseudo),
        });
        let ease = item_item.then(|| Ease {
            user_features: Default::default(),
            weights: Array2::from_shape_fn((n_items, n_items), |(i, j)| {
                pseudo(i * n_items + j + 3)
            }),
        });
        Recommender::benchmark_parts(n_items, dae, ease)
    }

    /// An untrained model of `n_items` items around the given components (see
    /// [`Recommender::benchmark_model`]).
    pub(crate) fn benchmark_parts(
        n_items: usize,
        dae: Option<Dae>,
        ease: Option<Ease>,
    ) -> Recommender {
        let pseudo =
            |i: usize| ((i.wrapping_mul(2_654_435_761) % 20_011) as f32 / 20_011.0 - 0.5) * 0.1;
        let hidden = dae.as_ref().map_or(0, Dae::hidden);
        let component = match (dae.is_some(), ease.is_some()) {
            (true, true) => Component::Blend,
            (false, true) => Component::Ease,
            _ => Component::Dae,
        };
        let spec = RecommenderSpec {
            format: SPEC_FORMAT,
            component,
            n_items,
            n_users: 0,
            hidden,
            blend: 0.5,
            attribute_weight: 0.0,
            user_attribute_weight: 0.0,
            user_features: 0,
            recency_power: 0.0,
            holdout_used: None,
            timestamps: false,
            index_lists: 0,
            index_probes: 0,
            max_k: 1000,
            epochs_trained: 0,
            interactions: 0,
            params: RecommenderParams::default(),
            metrics: None,
            cold_items: 0,
            item_attributes: Vec::new(),
            user_attributes: Vec::new(),
        };
        Recommender::from_parts(Parts {
            spec,
            item_ids: (0..n_items).map(|i| i.to_string()).collect(),
            user_ids: Vec::new(),
            history_offsets: vec![0],
            history_items: Vec::new(),
            history_weights: Vec::new(),
            popularity: (0..n_items).map(pseudo).collect(),
            dae,
            ease,
        })
        .expect("consistent benchmark parts")
    }
}
