//! Approximate top-k for large catalogs: an inverted file (IVF) over the autoencoder's
//! item vectors, built at training time and stored with the version.
//!
//! An item's score is `a · D[:, j] + d_j` (hidden activations `a`, decoder column and
//! bias), a maximum-inner-product search. Each item becomes `v_j = (D[:, j], d_j)` and is
//! lifted to `x_j = (v_j, √(M² − ‖v_j‖²))` with `M = max ‖v_j‖`, so every `x_j` has norm
//! `M` and, for the query `q = (a, 1, 0)`, `‖q − x_j‖² = ‖q‖² + M² − 2·score_j`: the best
//! scores are the nearest lifted vectors. k-means (Lloyd, seeded, on a sample) cuts the
//! lifted vectors into lists; a request ranks the lists by `q · c − ‖c‖²/2` (nearest
//! centroid first), probes the best ones and re-ranks their items with the exact scorer.
//!
//! Cost per request: `O(lists · hidden)` for the centroids plus `O(probed items · hidden)`
//! for the re-rank, against `O(n_items · hidden)` for exact scoring. Build:
//! `O(iterations · sample · lists · hidden + n_items · lists · hidden)` as GEMMs.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView1, ArrayView2};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// ChaCha stream of the k-means sample and initialisation.
const KMEANS_STREAM: u64 = 30;
/// Lloyd iterations.
const ITERATIONS: usize = 10;
/// Training points per list in the k-means sample.
const SAMPLE_PER_LIST: usize = 32;
/// Rows per GEMM block when assigning items (bounds the distance matrix's memory).
const BLOCK_ROWS: usize = 8192;

/// Lists for a catalog of `n` items: about `2·√n`, at least 1.
pub(crate) fn default_lists(n: usize) -> usize {
    ((2.0 * (n as f64).sqrt()).round() as usize).clamp(1, n.max(1))
}

/// The inverted file: centroids in the lifted space and each list's items.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IvfIndex {
    /// `(lists, hidden + 2)`: lifted centroids.
    pub centroids: Array2<f32>,
    /// `lists + 1` offsets into `items`.
    pub offsets: Vec<usize>,
    /// Item indices grouped by list, ascending within a list.
    pub items: Vec<u32>,
    /// `‖c‖² / 2` per list.
    half_norms: Vec<f32>,
}

/// Lifted rows `x_j` of items `range` into `out` (`range.len() × (hidden + 2)`).
fn lift_rows(
    decoder: ArrayView2<f32>,
    bias: &[f32],
    max_sq: f32,
    items: &[usize],
    out: &mut Array2<f32>,
) {
    let hidden = decoder.nrows();
    for (r, &j) in items.iter().enumerate() {
        let mut row = out.row_mut(r);
        let mut sq = 0.0f32;
        for h in 0..hidden {
            let v = decoder[[h, j]];
            row[h] = v;
            sq += v * v;
        }
        row[hidden] = bias[j];
        sq += bias[j] * bias[j];
        row[hidden + 1] = (max_sq - sq).max(0.0).sqrt();
    }
}

/// For each row of `points`, the index of the nearest centroid (largest
/// `p · c − ‖c‖²/2`).
fn nearest(points: &Array2<f32>, centroids: &Array2<f32>, half_norms: &[f32]) -> Vec<u32> {
    let mut products = Array2::<f32>::zeros((points.nrows(), centroids.nrows()));
    general_mat_mul(1.0, points, &centroids.t(), 0.0, &mut products);
    products
        .rows()
        .into_iter()
        .map(|row| {
            let mut best = (f32::NEG_INFINITY, 0u32);
            for (c, (&p, &h)) in row.iter().zip(half_norms).enumerate() {
                let score = p - h;
                if score > best.0 {
                    best = (score, c as u32);
                }
            }
            best.1
        })
        .collect()
}

/// Higher score first, then lower list (a total order).
fn nearer(x: &(f32, u32), y: &(f32, u32)) -> std::cmp::Ordering {
    y.0.total_cmp(&x.0).then(x.1.cmp(&y.1))
}

fn half_norms(centroids: &Array2<f32>) -> Vec<f32> {
    centroids
        .rows()
        .into_iter()
        .map(|c| 0.5 * c.dot(&c))
        .collect()
}

impl IvfIndex {
    /// Builds the index over the columns of `decoder` (`hidden × n`) and `bias` (`n`)
    /// with `lists` lists (clamped to `1..=n`). Deterministic for `seed`; `None` when
    /// cancelled.
    pub fn build(
        decoder: ArrayView2<f32>,
        bias: &[f32],
        lists: usize,
        seed: u64,
        cancel: &dyn Fn() -> bool,
    ) -> Option<IvfIndex> {
        let (hidden, n) = decoder.dim();
        let dim = hidden + 2;
        let lists = lists.clamp(1, n.max(1));
        let max_sq = (0..n)
            .map(|j| {
                let column = decoder.column(j);
                column.dot(&column) + bias[j] * bias[j]
            })
            .fold(0.0f32, f32::max);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(KMEANS_STREAM);
        let sample_size = (lists * SAMPLE_PER_LIST).min(n);
        let mut chosen = sample(&mut rng, n, sample_size).into_vec();
        chosen.sort_unstable();
        let mut points = Array2::<f32>::zeros((sample_size, dim));
        lift_rows(decoder, bias, max_sq, &chosen, &mut points);
        // Initial centroids: `lists` distinct sample points.
        let init = sample(&mut rng, sample_size, lists).into_vec();
        let mut centroids = Array2::<f32>::zeros((lists, dim));
        for (c, &p) in init.iter().enumerate() {
            centroids.row_mut(c).assign(&points.row(p));
        }
        for _ in 0..ITERATIONS {
            if cancel() {
                return None;
            }
            let norms = half_norms(&centroids);
            let mut assignment = Vec::with_capacity(sample_size);
            for start in (0..sample_size).step_by(BLOCK_ROWS) {
                let end = (start + BLOCK_ROWS).min(sample_size);
                let block = points.slice(s![start..end, ..]).to_owned();
                assignment.extend(nearest(&block, &centroids, &norms));
            }
            let mut sums = Array2::<f32>::zeros((lists, dim));
            let mut counts = vec![0usize; lists];
            for (p, &c) in assignment.iter().enumerate() {
                let mut row = sums.row_mut(c as usize);
                row += &points.row(p);
                counts[c as usize] += 1;
            }
            for c in 0..lists {
                if counts[c] > 0 {
                    let mean = &sums.row(c) / counts[c] as f32;
                    centroids.row_mut(c).assign(&mean);
                } else {
                    // An empty list restarts at a sample point of the largest list.
                    let largest = (0..lists).max_by_key(|&l| counts[l]).unwrap_or(0);
                    if let Some(p) = assignment.iter().position(|&a| a as usize == largest) {
                        centroids.row_mut(c).assign(&points.row(p));
                        counts[largest] = counts[largest].saturating_sub(1);
                    }
                }
            }
        }
        drop(points);
        let norms = half_norms(&centroids);
        let mut assignment = Vec::with_capacity(n);
        let mut block = Array2::<f32>::zeros((BLOCK_ROWS.min(n), dim));
        let all: Vec<usize> = (0..n).collect();
        for chunk in all.chunks(BLOCK_ROWS) {
            if cancel() {
                return None;
            }
            if block.nrows() != chunk.len() {
                block = Array2::zeros((chunk.len(), dim));
            }
            lift_rows(decoder, bias, max_sq, chunk, &mut block);
            assignment.extend(nearest(&block, &centroids, &norms));
        }
        Some(IvfIndex::from_assignment(centroids, &assignment))
    }

    /// The index with `centroids` and item `j` in list `assignment[j]`.
    fn from_assignment(centroids: Array2<f32>, assignment: &[u32]) -> IvfIndex {
        let lists = centroids.nrows();
        let mut offsets = vec![0usize; lists + 1];
        for &c in assignment {
            offsets[c as usize + 1] += 1;
        }
        for c in 0..lists {
            offsets[c + 1] += offsets[c];
        }
        let mut next = offsets.clone();
        let mut items = vec![0u32; assignment.len()];
        for (j, &c) in assignment.iter().enumerate() {
            items[next[c as usize]] = j as u32;
            next[c as usize] += 1;
        }
        IvfIndex {
            half_norms: half_norms(&centroids),
            centroids,
            offsets,
            items,
        }
    }

    /// Rebuilds a stored index, checking it against a catalog of `n` items and `hidden`
    /// units: every item in exactly one list.
    pub fn from_parts(
        centroids: Array2<f32>,
        offsets: Vec<usize>,
        items: Vec<u32>,
        n: usize,
        hidden: usize,
    ) -> Result<IvfIndex, String> {
        let lists = centroids.nrows();
        if centroids.ncols() != hidden + 2 {
            return Err(format!(
                "index centroids have {} columns, expected {}",
                centroids.ncols(),
                hidden + 2
            ));
        }
        if offsets.len() != lists + 1
            || offsets.first() != Some(&0)
            || offsets.last() != Some(&items.len())
            || offsets.windows(2).any(|w| w[0] > w[1])
            || items.len() != n
        {
            return Err("index lists are inconsistent".into());
        }
        let mut seen = vec![false; n];
        for &j in &items {
            match seen.get_mut(j as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err(format!("index lists hold item {j} twice or out of range")),
            }
        }
        Ok(IvfIndex {
            half_norms: half_norms(&centroids),
            centroids,
            offsets,
            items,
        })
    }

    pub fn lists(&self) -> usize {
        self.centroids.nrows()
    }

    /// Items of list `l`.
    #[cfg(test)]
    pub fn list(&self, l: usize) -> &[u32] {
        &self.items[self.range(l)]
    }

    /// Positions of list `l`'s items in `items`.
    pub fn range(&self, l: usize) -> std::ops::Range<usize> {
        self.offsets[l]..self.offsets[l + 1]
    }

    /// Lists ordered nearest first for hidden activations `a` (the query `(a, 1, 0)`),
    /// written to `order`: the nearest `first` exactly, the others (all farther) in no
    /// particular order until [`IvfIndex::rank_rest`] sorts them. `scores` is scratch
    /// and holds the ranking for `rank_rest`.
    pub fn rank_lists(
        &self,
        a: &[f32],
        first: usize,
        scores: &mut Vec<(f32, u32)>,
        order: &mut Vec<u32>,
    ) {
        let hidden = a.len();
        let query = ArrayView1::from(a);
        scores.clear();
        for (l, c) in self.centroids.rows().into_iter().enumerate() {
            // `dot` on contiguous views keeps several accumulators (vectorised), unlike
            // a plain iterator sum.
            let dot = c.slice(s![..hidden]).dot(&query) + c[hidden];
            scores.push((dot - self.half_norms[l], l as u32));
        }
        let first = first.min(scores.len());
        if first > 0 && first < scores.len() {
            scores.select_nth_unstable_by(first - 1, nearer);
        }
        scores[..first].sort_unstable_by(nearer);
        order.clear();
        order.extend(scores.iter().map(|&(_, l)| l));
    }

    /// Sorts the lists after the nearest `first` ranked by [`IvfIndex::rank_lists`]
    /// (same `scores` and `order`), so `order` is the whole ranking.
    pub fn rank_rest(&self, first: usize, scores: &mut [(f32, u32)], order: &mut [u32]) {
        let first = first.min(scores.len());
        scores[first..].sort_unstable_by(nearer);
        for (o, &(_, l)) in order[first..].iter_mut().zip(&scores[first..]) {
            *o = l;
        }
    }

    /// Bytes held by the index.
    pub fn memory_bytes(&self) -> usize {
        self.centroids.len() * 4
            + self.half_norms.len() * 4
            + self.offsets.len() * 8
            + self.items.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn pseudo(i: usize) -> f32 {
        ((i.wrapping_mul(2_654_435_761) % 10_007) as f32 / 10_007.0 - 0.5) * 2.0
    }

    #[test]
    fn every_item_lands_in_one_list_and_parts_round_trip() {
        let (hidden, n) = (8, 500);
        let decoder = Array2::from_shape_fn((hidden, n), |(h, j)| pseudo(h * n + j));
        let bias: Vec<f32> = (0..n).map(|j| pseudo(j + 77) * 0.1).collect();
        let index = IvfIndex::build(decoder.view(), &bias, 20, 7, &|| false).unwrap();
        assert_eq!(index.lists(), 20);
        let mut all = index.items.clone();
        all.sort_unstable();
        assert_eq!(all, (0..n as u32).collect::<Vec<_>>());
        let again = IvfIndex::build(decoder.view(), &bias, 20, 7, &|| false).unwrap();
        assert_eq!(index, again, "deterministic for a seed");
        let rebuilt = IvfIndex::from_parts(
            index.centroids.clone(),
            index.offsets.clone(),
            index.items.clone(),
            n,
            hidden,
        )
        .unwrap();
        assert_eq!(rebuilt, index);
        let mut items = index.items.clone();
        items[0] = items[1];
        assert!(
            IvfIndex::from_parts(index.centroids.clone(), index.offsets, items, n, hidden).is_err()
        );
        assert!(IvfIndex::build(decoder.view(), &bias, 20, 7, &|| true).is_none());
    }

    #[test]
    fn the_nearest_list_holds_the_best_scoring_item_of_a_clean_cluster() {
        // Four well separated directions; the query points at the third.
        let (hidden, n) = (4, 400);
        let decoder = Array2::from_shape_fn((hidden, n), |(h, j)| {
            if h == j % 4 {
                1.0 + 0.01 * pseudo(j)
            } else {
                0.01 * pseudo(j + h)
            }
        });
        let bias = vec![0.0; n];
        let index = IvfIndex::build(decoder.view(), &bias, 4, 1, &|| false).unwrap();
        let (mut scores, mut order) = (Vec::new(), Vec::new());
        index.rank_lists(&[0.0, 0.0, 1.0, 0.0], 1, &mut scores, &mut order);
        let first = index.list(order[0] as usize);
        assert!(!first.is_empty());
        assert!(first.iter().all(|&j| j % 4 == 2), "{first:?}");
    }

    #[test]
    fn a_partial_ranking_completed_is_the_full_ranking() {
        let (hidden, n) = (8, 600);
        let decoder = Array2::from_shape_fn((hidden, n), |(h, j)| pseudo(h * n + j + 3));
        let bias: Vec<f32> = (0..n).map(|j| pseudo(j + 11) * 0.1).collect();
        let index = IvfIndex::build(decoder.view(), &bias, 30, 2, &|| false).unwrap();
        let a: Vec<f32> = (0..hidden).map(|h| pseudo(h + 500)).collect();
        let (mut scores, mut full) = (Vec::new(), Vec::new());
        index.rank_lists(&a, 30, &mut scores, &mut full);
        for first in [0, 1, 5, 29, 30, 40] {
            let mut order = Vec::new();
            index.rank_lists(&a, first, &mut scores, &mut order);
            assert_eq!(
                order[..first.min(30)],
                full[..first.min(30)],
                "first {first}"
            );
            index.rank_rest(first, &mut scores, &mut order);
            assert_eq!(order, full, "first {first}");
        }
    }
}
