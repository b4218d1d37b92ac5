//! Scoring every item for a history, and serving from the scores: top `k`,
//! popularity, segment popularity and similar items.

use super::Recommender;
use crate::recommend::dae::Dae;
use crate::recommend::error::RecommendError;
use crate::recommend::kernels::add_rows;
use crate::recommend::topk::top_k;

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

impl Recommender {
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
