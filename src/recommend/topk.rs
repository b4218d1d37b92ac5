//! Partial top-k selection in `O(n + k log k)`.

use std::cmp::Ordering;

/// Best first: higher score, then lower index (deterministic ties).
#[inline]
fn better(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The `k` highest-scoring items among `candidates` (all items when `None`) for which
/// `exclude` is false, best first, as `(item, score)`. Non-finite scores are skipped.
/// `buf` is reused between calls. Runs in `O(n + k log k)` with `n` the number of
/// candidates: one pass gathers the eligible items, `select_nth_unstable_by` partitions
/// around the `k`-th, and only the `k` winners are sorted.
///
/// # Panics
/// If a candidate index is out of range of `scores` (validate requests first).
pub fn top_k(
    scores: &[f32],
    k: usize,
    exclude: &dyn Fn(u32) -> bool,
    candidates: Option<&[u32]>,
    buf: &mut Vec<(f32, u32)>,
) -> Vec<(u32, f32)> {
    buf.clear();
    match candidates {
        Some(list) => {
            for &item in list {
                let s = scores[item as usize];
                if s.is_finite() && !exclude(item) {
                    buf.push((s, item));
                }
            }
            // A candidate listed twice must not be served twice.
            if list.len() > 1 {
                buf.sort_unstable_by_key(|&(_, item)| item);
                buf.dedup_by_key(|&mut (_, item)| item);
            }
        }
        None => {
            for (item, &s) in scores.iter().enumerate() {
                let item = item as u32;
                if s.is_finite() && !exclude(item) {
                    buf.push((s, item));
                }
            }
        }
    }
    if k == 0 || buf.is_empty() {
        return Vec::new();
    }
    if buf.len() > k {
        buf.select_nth_unstable_by(k - 1, better);
        buf.truncate(k);
    }
    buf.sort_unstable_by(better);
    buf.iter().map(|&(s, item)| (item, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_best_first_with_index_tie_break() {
        let scores = [0.1, 0.9, 0.5, 0.9, f32::NAN, 0.7];
        let mut buf = Vec::new();
        let got = top_k(&scores, 3, &|_| false, None, &mut buf);
        assert_eq!(got, [(1, 0.9), (3, 0.9), (5, 0.7)]);
        let got = top_k(&scores, 10, &|i| i == 1, None, &mut buf);
        assert_eq!(got.iter().map(|p| p.0).collect::<Vec<_>>(), [3, 5, 2, 0]);
        let got = top_k(&scores, 2, &|_| false, Some(&[0, 2, 2, 4]), &mut buf);
        assert_eq!(got, [(2, 0.5), (0, 0.1)]);
        assert!(top_k(&scores, 0, &|_| false, None, &mut buf).is_empty());
    }

    #[test]
    fn matches_full_sort_on_random_scores() {
        let scores: Vec<f32> = (0..997u32)
            .map(|i| ((i * 7919) % 1009) as f32 / 13.0)
            .collect();
        let mut buf = Vec::new();
        let mut all: Vec<(u32, f32)> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| (i as u32, s))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 5, 50, 997] {
            assert_eq!(top_k(&scores, k, &|_| false, None, &mut buf), all[..k]);
        }
    }
}
