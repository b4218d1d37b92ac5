//! Serving with the inverted-file index ([`super::ivf`]): approximate top-k for an
//! autoencoder-only model over a large catalog, and exact scoring of explicit candidates
//! without a pass over the whole catalog.
//!
//! Probing a list reads its items' `int8` decoder rows. In the item-ordered serving copy
//! those rows are scattered (one cache and TLB miss per item at a million items), so the
//! index keeps a second copy of the rows, scales and decoder biases in list order, made
//! from the serving copy when the index is attached (at training and at load: the stored
//! format is unchanged). A probed list is then one sequential pass with the same kernel
//! and the same scores as exact scoring. It costs `stride + 12` bytes per item (332 at
//! 300 hidden units), about as much as the item-ordered copy.

use super::dae::Dae;
use super::ivf::IvfIndex;
use super::model::{Recommender, ScoreScratch};
use super::quant::QuantizedColumns;
use super::topk::top_k_of;

/// The index a model serves with and how many lists a request probes at least.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Approximate {
    pub index: IvfIndex,
    pub probes: usize,
    /// Row `r` is the `int8` decoder row of item `index.items[r]`: each list's rows are
    /// contiguous.
    rows: QuantizedColumns,
    /// Decoder bias of item `index.items[r]`.
    bias: Vec<f32>,
}

impl Recommender {
    /// Whether `recommend` goes through the inverted-file index (an autoencoder-only model
    /// trained on more than `recommend.exact_max_items` items).
    pub fn is_approximate(&self) -> bool {
        self.ann.is_some() && self.ease.is_none() && self.dae.is_some()
    }

    /// Bytes held by the inverted-file index (0 without one), its list-ordered copy of
    /// the decoder rows included.
    pub fn index_bytes(&self) -> usize {
        self.ann.as_ref().map_or(0, |a| {
            a.index.memory_bytes() + a.rows.bytes() + 4 * a.bias.len()
        })
    }

    /// Bytes of the index's list-ordered copy of the decoder rows, scales and biases (0
    /// without an index); part of [`Recommender::index_bytes`].
    pub fn index_rows_bytes(&self) -> usize {
        self.ann
            .as_ref()
            .map_or(0, |a| a.rows.bytes() + 4 * a.bias.len())
    }

    /// Attaches `index`, probing at least `probes` lists per request (clamped to
    /// `1..=lists`), and records both in the spec. Copies the decoder rows into list
    /// order (an index over a model without an autoencoder has no rows to copy and is
    /// never served).
    pub(crate) fn with_index(mut self, index: IvfIndex, probes: usize) -> Recommender {
        let probes = probes.clamp(1, index.lists().max(1));
        self.spec.index_lists = index.lists();
        self.spec.index_probes = probes;
        let (rows, bias) = match &self.dae {
            Some(dae) => {
                let bias = dae.decoder_bias.as_slice().expect("contiguous");
                (
                    self.decoder8.gather(&index.items),
                    index.items.iter().map(|&j| bias[j as usize]).collect(),
                )
            }
            None => (QuantizedColumns::default(), Vec::new()),
        };
        self.ann = Some(Approximate {
            index,
            probes,
            rows,
            bias,
        });
        self
    }

    /// Probes at least `probes` lists per request from now on (clamped to `1..=lists`;
    /// no effect without an index).
    #[doc(hidden)]
    pub fn with_probes(mut self, probes: usize) -> Recommender {
        if let Some(ann) = &mut self.ann {
            ann.probes = probes.clamp(1, ann.index.lists().max(1));
            self.spec.index_probes = ann.probes;
        }
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
        pool_scores.clear();
        let bias = dae.decoder_bias.as_slice().expect("contiguous");
        let warm = |j: u32| bias[j as usize] + self.decoder8.product(j as usize, codes);
        let cold = |i: u32| match self.cold.get((i - n) as usize) {
            Some(neighbours) if !neighbours.is_empty() => {
                neighbours.iter().map(|&(j, w)| w * warm(j)).sum()
            }
            // Below every scored item, as in exact scoring.
            _ => f32::MIN,
        };
        match candidates {
            Some(candidates) => {
                pool.extend(candidates.iter().copied().filter(|&i| !exclude(i)));
                pool.sort_unstable();
                pool.dedup();
                pool_scores.extend(pool.iter().map(|&i| if i < n { warm(i) } else { cold(i) }));
            }
            None => {
                ann.index.rank_lists(hidden, ann.probes, lists, list_order);
                for probed in 0..list_order.len() {
                    if probed >= ann.probes && pool.len() >= k {
                        break;
                    }
                    if probed == ann.probes {
                        // Exclusions left fewer than `k` items: read on, nearest first.
                        ann.index.rank_rest(probed, lists, list_order);
                    }
                    let l = list_order[probed];
                    // The list's rows in one sequential pass, then its excluded items
                    // dropped.
                    let range = ann.index.range(l as usize);
                    let base = pool.len();
                    pool.extend_from_slice(&ann.index.items[range.clone()]);
                    pool_scores.extend_from_slice(&ann.bias[range.clone()]);
                    ann.rows
                        .add_products_from(codes, range.start, &mut pool_scores[base..]);
                    let mut kept = base;
                    for r in base..pool.len() {
                        if !exclude(pool[r]) {
                            pool[kept] = pool[r];
                            pool_scores[kept] = pool_scores[r];
                            kept += 1;
                        }
                    }
                    pool.truncate(kept);
                    pool_scores.truncate(kept);
                }
                for i in n..self.n_items() as u32 {
                    if !exclude(i) {
                        pool.push(i);
                        pool_scores.push(cold(i));
                    }
                }
            }
        }
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
    fn a_loaded_index_rebuilds_its_list_ordered_rows_and_serves_the_same() {
        let model = Recommender::benchmark_clustered(3_000, 16, 9).with_built_index(4, 9);
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in model.artifact_files().unwrap() {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let loaded = Recommender::load(model.spec(), dir.path()).unwrap();
        assert!(loaded.is_approximate());
        assert_eq!(loaded.ann, model.ann, "lists, probes and list-ordered rows");
        assert_eq!(loaded.index_rows_bytes(), 3_000 * (64 + 12));
        for history in histories(&model, 10) {
            assert_eq!(
                top10(&loaded, &history, &|_| false),
                top10(&model, &history, &|_| false)
            );
        }
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
