//! Serving with the inverted-file index ([`super::ivf`]): approximate top-k for an
//! autoencoder-only model over a large catalog, and exact scoring of explicit candidates
//! without a pass over the whole catalog.

use super::dae::Dae;
use super::ivf::IvfIndex;
use super::model::{Recommender, ScoreScratch};
use super::topk::top_k_of;

/// The index a model serves with and how many lists a request probes at least.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Approximate {
    pub index: IvfIndex,
    pub probes: usize,
}

impl Recommender {
    /// Whether `recommend` goes through the inverted-file index (an autoencoder-only model
    /// trained on more than `recommend.exact_max_items` items).
    pub fn is_approximate(&self) -> bool {
        self.ann.is_some() && self.ease.is_none() && self.dae.is_some()
    }

    /// Bytes held by the inverted-file index (0 without one).
    pub fn index_bytes(&self) -> usize {
        self.ann.as_ref().map_or(0, |a| a.index.memory_bytes())
    }

    /// Attaches `index`, probing at least `probes` lists per request (clamped to
    /// `1..=lists`), and records both in the spec.
    pub(crate) fn with_index(mut self, index: IvfIndex, probes: usize) -> Recommender {
        let probes = probes.clamp(1, index.lists().max(1));
        self.spec.index_lists = index.lists();
        self.spec.index_probes = probes;
        self.ann = Some(Approximate { index, probes });
        self
    }

    /// Serves with exact scoring from now on (drops the index).
    #[doc(hidden)]
    pub fn without_index(mut self) -> Recommender {
        self.ann = None;
        self.spec.index_lists = 0;
        self.spec.index_probes = 0;
        self
    }

    /// Top `k` for a history with positive weight through the index, or over
    /// `candidates` only: without candidates the lists nearest to the user's hidden state
    /// are probed (at least `probes` of them, more until `k` items pass `exclude`); the
    /// probed items and every cold-start item are scored exactly as the exact path
    /// scores them and the best `k` returned.
    pub(crate) fn approximate_top_k(
        &self,
        history: &[(u32, f32)],
        k: usize,
        exclude: &dyn Fn(u32) -> bool,
        candidates: Option<&[u32]>,
        scratch: &mut ScoreScratch,
    ) -> Vec<(u32, f32)> {
        let (Some(dae), Some(ann)) = (&self.dae, &self.ann) else {
            return Vec::new();
        };
        let n = self.n_warm() as u32;
        let ScoreScratch {
            hidden,
            expanded,
            codes,
            select,
            pool,
            pool_scores,
            lists,
            list_order,
            ..
        } = scratch;
        self.expand_history(history, expanded);
        hidden.resize(dae.hidden(), 0.0);
        self.encode_into(dae, expanded, hidden);
        self.decoder8.quantise_query(hidden, codes);
        pool.clear();
        match candidates {
            Some(candidates) => {
                pool.extend(candidates.iter().copied().filter(|&i| !exclude(i)));
                pool.sort_unstable();
                pool.dedup();
            }
            None => {
                ann.index.rank_lists(hidden, lists, list_order);
                for (probed, &l) in list_order.iter().enumerate() {
                    if probed >= ann.probes && pool.len() >= k {
                        break;
                    }
                    let items = ann.index.list(l as usize);
                    pool.extend(items.iter().copied().filter(|&i| !exclude(i)));
                }
                pool.extend((n..self.n_items() as u32).filter(|&i| !exclude(i)));
            }
        }
        let bias = dae.decoder_bias.as_slice().expect("contiguous");
        let warm = |j: u32| bias[j as usize] + self.decoder8.product(j as usize, codes);
        pool_scores.clear();
        pool_scores.extend(pool.iter().map(|&i| {
            if i < n {
                warm(i)
            } else {
                match self.cold.get((i - n) as usize) {
                    Some(neighbours) if !neighbours.is_empty() => {
                        neighbours.iter().map(|&(j, w)| w * warm(j)).sum()
                    }
                    // Below every scored item, as in exact scoring.
                    _ => f32::MIN,
                }
            }
        }));
        top_k_of(pool, pool_scores, k, select)
    }
}

impl Recommender {
    /// An untrained autoencoder-only model whose item vectors form `n_items / 100`
    /// clusters (the shape learned item embeddings have), encoder tied to the decoder, to
    /// measure the index against exact scoring at arbitrary catalog sizes. Deterministic
    /// for `seed`; no index until [`Recommender::with_built_index`]. Not meant for serving.
    #[doc(hidden)]
    pub fn benchmark_clustered(n_items: usize, hidden: usize, seed: u64) -> Recommender {
        use ndarray::{Array1, Array2};
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let clusters = (n_items / 100).max(1);
        let centers =
            Array2::from_shape_simple_fn((clusters, hidden), || rng.random_range(-1.0f32..1.0));
        let mut decoder = Array2::<f32>::zeros((hidden, n_items));
        let mut bias = Array1::<f32>::zeros(n_items);
        let scale = 1.0 / (hidden as f32).sqrt();
        for j in 0..n_items {
            let c = rng.random_range(0..clusters);
            for h in 0..hidden {
                let noise: f32 = rng.random_range(-0.5f32..0.5);
                decoder[[h, j]] = (centers[[c, h]] + noise) * scale;
            }
            bias[j] = -0.1 * (1.0 + j as f32).ln();
        }
        let encoder = decoder.t().as_standard_layout().into_owned();
        let dae = Dae {
            encoder,
            encoder_bias: Array1::zeros(hidden),
            decoder,
            decoder_bias: bias,
        };
        Recommender::benchmark_parts(n_items, Some(dae), None)
    }

    /// Builds the inverted-file index the training would build (`2·√n` lists) and serves
    /// through it, probing `probes` lists.
    #[doc(hidden)]
    pub fn with_built_index(self, probes: usize, seed: u64) -> Recommender {
        let Some(dae) = &self.dae else {
            return self;
        };
        let lists = super::ivf::default_lists(self.n_warm());
        let bias = dae.decoder_bias.as_slice().expect("contiguous");
        match IvfIndex::build(dae.decoder.view(), bias, lists, seed, &|| false) {
            Some(index) => self.with_index(index, probes),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::ItemSet;

    /// Histories of an anchor item and its nearest neighbours, for `users` anchors.
    fn histories(model: &Recommender, users: usize) -> Vec<Vec<(u32, f32)>> {
        let n = model.n_items();
        (0..users)
            .map(|u| {
                let anchor = ((u * 7919 + 13) % n) as u32;
                let mut history = vec![(anchor, 1.0)];
                let near = model.similar(anchor, 5).unwrap();
                history.extend(near.into_iter().map(|(i, _)| (i, 1.0)));
                history
            })
            .collect()
    }

    fn top10(
        model: &Recommender,
        history: &[(u32, f32)],
        exclude: &dyn Fn(u32) -> bool,
    ) -> Vec<u32> {
        model
            .recommend(history, 10, exclude, None)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn approximate_top_10_recalls_the_exact_one_on_clustered_vectors() {
        let exact = Recommender::benchmark_clustered(20_000, 32, 3);
        let approximate = exact.clone().with_built_index(48, 3);
        assert!(approximate.is_approximate() && !exact.is_approximate());
        assert_eq!(approximate.spec().index_lists, 283);
        let (mut hits, mut total) = (0, 0);
        for history in histories(&exact, 60) {
            let seen = ItemSet::from_history(exact.n_items(), &history);
            let skip = |i: u32| seen.contains(i);
            let truth = top10(&exact, &history, &skip);
            let got = top10(&approximate, &history, &skip);
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|&i| !seen.contains(i)));
            hits += got.iter().filter(|i| truth.contains(i)).count();
            total += truth.len();
        }
        let recall = hits as f64 / total as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn exclusions_widen_the_probe_and_candidates_are_scored_exactly() {
        let exact = Recommender::benchmark_clustered(2_000, 16, 5);
        let approximate = exact.clone().with_built_index(1, 5);
        let history = histories(&exact, 1).remove(0);
        // Excluding all but 10 items, wherever they are: lists are read until all 10
        // are found.
        let allowed: Vec<u32> = (0..10).map(|i| i * 157 + 3).collect();
        let skip = |i: u32| !allowed.contains(&i);
        let truth = top10(&exact, &history, &skip);
        assert_eq!(top10(&approximate, &history, &skip), truth);
        // Candidates, some listed twice: the exact ranking of those candidates.
        let candidates: Vec<u32> = allowed.iter().chain(&allowed[..4]).copied().collect();
        let want = exact
            .recommend(&history, 5, &|_| false, Some(&candidates))
            .unwrap();
        let got = approximate
            .recommend(&history, 5, &|_| false, Some(&candidates))
            .unwrap();
        assert_eq!(got, want);
        // An empty history falls back to popularity on both.
        assert_eq!(
            approximate.recommend(&[], 5, &|_| false, None).unwrap(),
            exact.recommend(&[], 5, &|_| false, None).unwrap()
        );
    }
}
