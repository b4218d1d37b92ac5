//! Top-k ranking metrics over held-out items.

use serde::{Deserialize, Serialize};

use super::params::HoldoutKind;

/// Ranking quality averaged over evaluated users (each user counts once).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    /// Share of users with at least one held-out item in their top 10.
    pub hr_at_10: f64,
    /// NDCG@10 with binary relevance, ideal DCG over `min(|held-out|, 10)` positions.
    pub ndcg_at_10: f64,
    /// Held-out items found in the top 20 divided by the number held out.
    pub recall_at_20: f64,
    /// Share of the catalog appearing in at least one top-10 list.
    pub coverage_at_10: f64,
    /// Users evaluated.
    pub users: usize,
}

/// Validation metrics recorded at fit time for the model and for the popularity ranking
/// on the same held-out users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldoutMetrics {
    /// How the held-out items were drawn (`temporal` or `random`); under `auto`, the
    /// protocol whose choice was kept.
    pub holdout: HoldoutKind,
    pub model: RankingMetrics,
    /// Interaction counts (not time-decayed), training items excluded per user.
    pub popularity: RankingMetrics,
}

/// Accumulates [`RankingMetrics`] one user at a time.
#[derive(Clone, Debug)]
pub struct RankingAccumulator {
    hr: f64,
    ndcg: f64,
    recall: f64,
    users: usize,
    /// Sum of squares of each user's NDCG@10 + Recall@20 (for its standard error).
    score_sq: f64,
    covered: Vec<bool>,
}

impl RankingAccumulator {
    pub fn new(n_items: usize) -> Self {
        RankingAccumulator {
            hr: 0.0,
            ndcg: 0.0,
            recall: 0.0,
            users: 0,
            score_sq: 0.0,
            covered: vec![false; n_items],
        }
    }

    /// Adds one user: `ranked` best first (at least the top 20 when available),
    /// `targets` the held-out items (users without targets are ignored).
    pub fn add(&mut self, ranked: &[u32], targets: &[u32]) {
        if targets.is_empty() {
            return;
        }
        self.users += 1;
        let is_target = |item: &u32| targets.contains(item);
        let mut dcg = 0.0;
        let mut hit10 = false;
        for (rank, item) in ranked.iter().take(10).enumerate() {
            if let Some(slot) = self.covered.get_mut(*item as usize) {
                *slot = true;
            }
            if is_target(item) {
                hit10 = true;
                dcg += 1.0 / (rank as f64 + 2.0).log2();
            }
        }
        let ideal: f64 = (0..targets.len().min(10))
            .map(|rank| 1.0 / (rank as f64 + 2.0).log2())
            .sum();
        self.ndcg += dcg / ideal;
        self.hr += f64::from(u8::from(hit10));
        let hits20 = ranked.iter().take(20).filter(|i| is_target(i)).count();
        let recall = hits20 as f64 / targets.len() as f64;
        self.recall += recall;
        self.score_sq += (dcg / ideal + recall).powi(2);
    }

    /// Mean over users of NDCG@10 + Recall@20 (the selection score) and its standard
    /// error.
    pub fn score_and_error(&self) -> (f64, f64) {
        let n = self.users.max(1) as f64;
        let mean = (self.ndcg + self.recall) / n;
        let variance = (self.score_sq / n - mean * mean).max(0.0);
        (mean, (variance / (n - 1.0).max(1.0)).sqrt())
    }

    pub fn finish(&self) -> RankingMetrics {
        let users = self.users.max(1) as f64;
        let n_items = self.covered.len().max(1) as f64;
        RankingMetrics {
            hr_at_10: self.hr / users,
            ndcg_at_10: self.ndcg / users,
            recall_at_20: self.recall / users,
            coverage_at_10: self.covered.iter().filter(|c| **c).count() as f64 / n_items,
            users: self.users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_hand_computed_cases() {
        let mut acc = RankingAccumulator::new(30);
        acc.add(&[5, 1, 2], &[1]);
        acc.add(&[3, 4], &[9, 8]);
        acc.add(&[1], &[]);
        let m = acc.finish();
        assert_eq!(m.users, 2);
        assert!((m.hr_at_10 - 0.5).abs() < 1e-12);
        assert!((m.ndcg_at_10 - 0.5 / 3f64.log2()).abs() < 1e-12);
        assert!((m.recall_at_20 - 0.5).abs() < 1e-12);
        assert!((m.coverage_at_10 - 5.0 / 30.0).abs() < 1e-12);
    }
}
