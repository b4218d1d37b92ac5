//! Partial top-k selection: a bounded insertion list for small `k` (one comparison per
//! item against the current k-th best; `exclude` is asked only for items that would
//! enter), `select_nth_unstable` for large `k`.

use std::cmp::Ordering;

/// Best first: higher score, then lower index (deterministic ties).
#[inline]
fn better(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Largest `k` served by the insertion list.
const SMALL_K: usize = 128;

/// Inserts `(score, item)` into the sorted list `best` (at most `k` long) if it ranks
/// there and is not excluded (nor, with `dedup`, already present).
#[inline]
fn offer(
    best: &mut Vec<(f32, u32)>,
    k: usize,
    item: u32,
    score: f32,
    exclude: &dyn Fn(u32) -> bool,
    dedup: bool,
) {
    let entry = (score, item);
    if !score.is_finite() {
        return;
    }
    if best.len() == k && better(&entry, &best[k - 1]) != Ordering::Less {
        return;
    }
    if exclude(item) || (dedup && best.iter().any(|&(_, i)| i == item)) {
        return;
    }
    let position = best.partition_point(|e| better(e, &entry) == Ordering::Less);
    if best.len() == k {
        best.pop();
    }
    best.insert(position, entry);
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
    if k == 0 {
        return Vec::new();
    }
    if k <= SMALL_K {
        match candidates {
            Some(list) => {
                for &item in list {
                    offer(buf, k, item, scores[item as usize], exclude, true);
                }
            }
            None => {
                for (item, &s) in scores.iter().enumerate() {
                    offer(buf, k, item as u32, s, exclude, false);
                }
            }
        }
        return buf.iter().map(|&(s, item)| (item, s)).collect();
    }
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

/// The `k` best of `items` with parallel `scores` (distinct items, already filtered),
/// best first, as `(item, score)`; non-finite scores are skipped. `O(n + k log k)`.
pub(crate) fn top_k_of(
    items: &[u32],
    scores: &[f32],
    k: usize,
    buf: &mut Vec<(f32, u32)>,
) -> Vec<(u32, f32)> {
    buf.clear();
    if k == 0 {
        return Vec::new();
    }
    if k <= SMALL_K {
        for (&item, &s) in items.iter().zip(scores) {
            offer(buf, k, item, s, &|_| false, false);
        }
    } else {
        buf.extend(
            items
                .iter()
                .zip(scores)
                .filter(|(_, s)| s.is_finite())
                .map(|(&i, &s)| (s, i)),
        );
        if buf.len() > k {
            buf.select_nth_unstable_by(k - 1, better);
            buf.truncate(k);
        }
        buf.sort_unstable_by(better);
    }
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
        let items: Vec<u32> = (0..997).collect();
        for k in [1, 5, 50, 128, 129, 997] {
            assert_eq!(top_k(&scores, k, &|_| false, None, &mut buf), all[..k]);
            assert_eq!(top_k_of(&items, &scores, k, &mut buf), all[..k]);
            let odd = |i: u32| i % 2 == 1;
            let even: Vec<(u32, f32)> = all.iter().copied().filter(|p| !odd(p.0)).collect();
            let got = top_k(&scores, k, &odd, None, &mut buf);
            assert_eq!(got, even[..k.min(even.len())]);
            // Candidates listed twice are served once, in both selection paths.
            let twice: Vec<u32> = (0..997).chain(0..997).collect();
            assert_eq!(
                top_k(&scores, k, &|_| false, Some(&twice), &mut buf),
                all[..k]
            );
        }
    }
}
