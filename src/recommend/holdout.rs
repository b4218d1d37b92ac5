//! The validation split drawn at fit time and the ranking of its held-out items.
//!
//! Two kinds of targets can be held out per sampled user: a random share of the items
//! (`random`) and the most recent one (`temporal`); `auto` with timestamps holds out
//! both at once, so one set of component fits is scored for both uses. The components
//! are trained without either, but each kind of target is ranked from the user's history
//! as that protocol would see it: the latest item from everything before it (the random
//! targets included), the random targets from everything else (the latest item
//! included). Ranking the latest item from a history with random gaps would hide the
//! sequence that leads to it, and with it what recency weighting is for.

use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::dae::Dae;
use super::data::{Dataset, Recency};
use super::ease::Ease;
use super::metrics::{RankingAccumulator, RankingMetrics};
use super::model::{blend_into, ItemSet};
use super::params::{HoldoutKind, RecommenderParams};
use super::topk::top_k;

/// ChaCha stream of the validation split.
const SPLIT_STREAM: u64 = 20;
/// Autoencoder scores computed per GEMM block while validating (users × items).
const BLOCK_SCORES: usize = 1 << 22;

/// Held-out items of sampled users, and the training data without them.
pub(crate) struct Holdout {
    /// `temporal`, `random` or `auto` (both target sets).
    pub kind: HoldoutKind,
    pub train: Dataset,
    pub users: Vec<u32>,
    /// Per user, the random held-out items (empty under `temporal`).
    pub random: Vec<Vec<u32>>,
    /// Per user, the most recent item (empty under `random`).
    pub latest: Vec<Vec<u32>>,
    /// Per entry of the split dataset: [`TRAIN`], [`RANDOM`] or [`LATEST`].
    pub role: Vec<u8>,
}

/// An entry the components are trained on.
pub(crate) const TRAIN: u8 = 0;
/// A random target.
pub(crate) const RANDOM: u8 = 1;
/// A latest-item target.
pub(crate) const LATEST: u8 = 2;

/// Draws the split for `params.holdout`; `None` for `none` or when no user has two
/// interactions.
pub(crate) fn split(data: &Dataset, params: &RecommenderParams) -> Option<Holdout> {
    let kind = match params.holdout {
        HoldoutKind::None => return None,
        HoldoutKind::Auto if data.times.is_none() => HoldoutKind::Random,
        other => other,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream(SPLIT_STREAM);
    let mut users: Vec<u32> = (0..data.n_users() as u32)
        .filter(|&u| data.range(u as usize).len() >= 2)
        .collect();
    if users.is_empty() {
        return None;
    }
    users.shuffle(&mut rng);
    users.truncate(params.holdout_max_users);
    users.sort_unstable();
    let mut role = vec![TRAIN; data.items.len()];
    let (mut random, mut latest) = (Vec::new(), Vec::new());
    for &user in &users {
        let range = data.range(user as usize);
        // Histories are in time order when timestamps exist.
        let last = (kind != HoldoutKind::Random).then_some(range.end - 1);
        let pool: Vec<usize> = range.filter(|&j| Some(j) != last).collect();
        let chosen: Vec<usize> = if kind == HoldoutKind::Temporal {
            Vec::new()
        } else {
            // At least one item stays in training.
            let room = pool.len().saturating_sub(1);
            let count = ((pool.len() as f32 * params.holdout_fraction).round() as usize)
                .clamp(usize::from(room > 0), room);
            let mut positions = pool;
            positions.shuffle(&mut rng);
            positions.truncate(count);
            positions
        };
        random.push(chosen.iter().map(|&j| data.items[j]).collect());
        latest.push(last.iter().map(|&j| data.items[j]).collect());
        for j in chosen {
            role[j] = RANDOM;
        }
        if let Some(j) = last {
            role[j] = LATEST;
        }
    }
    Some(Holdout {
        kind,
        train: data.filter(|j| role[j] == TRAIN),
        users,
        random,
        latest,
        role,
    })
}

/// The scorers being validated.
pub(crate) struct Scorers<'a> {
    pub dae: Option<&'a Dae>,
    pub ease: Option<&'a Ease>,
}

/// Metrics on one target set with the selection score (NDCG@10 + Recall@20) and its
/// standard error over users.
#[derive(Clone, Debug)]
pub(crate) struct Scored {
    pub metrics: RankingMetrics,
    pub score: f64,
    pub error: f64,
}

/// One configuration's results on the random and on the latest targets (each `None`
/// when the split has no such targets).
#[derive(Clone, Debug)]
pub(crate) struct Evaluation {
    pub random: Option<Scored>,
    pub latest: Option<Scored>,
}

impl Evaluation {
    /// Sum of the available NDCG@10 values (the autoencoder's early-stopping signal).
    pub fn ndcg(&self) -> f64 {
        self.random
            .iter()
            .chain(&self.latest)
            .map(|s| s.metrics.ndcg_at_10)
            .sum()
    }
}

fn scored(acc: &RankingAccumulator) -> Option<Scored> {
    let metrics = acc.finish();
    (metrics.users > 0).then(|| {
        let (score, error) = acc.score_and_error();
        Scored {
            metrics,
            score,
            error,
        }
    })
}

/// Ranks held-out users' items with every blend weight in `alphas` (the autoencoder's
/// weight; ignored when only one scorer exists), histories (from `data`, the dataset the
/// split was drawn from) weighted by `recency`; one evaluation per weight.
pub(crate) fn validate(
    data: &Dataset,
    holdout: &Holdout,
    scorers: &Scorers,
    recency: Recency,
    alphas: &[f32],
) -> Vec<Evaluation> {
    let n = holdout.train.n_items();
    let new = || -> Vec<RankingAccumulator> {
        alphas.iter().map(|_| RankingAccumulator::new(n)).collect()
    };
    let (mut random, mut latest) = (new(), new());
    if holdout.kind != HoldoutKind::Temporal {
        rank_targets(data, holdout, scorers, recency, alphas, RANDOM, &mut random);
    }
    if holdout.kind != HoldoutKind::Random {
        rank_targets(data, holdout, scorers, recency, alphas, LATEST, &mut latest);
    }
    random
        .iter()
        .zip(&latest)
        .map(|(r, l)| Evaluation {
            random: scored(r),
            latest: scored(l),
        })
        .collect()
}

/// Ranks the targets of role `targets` (`RANDOM` or `LATEST`) from each held-out user's
/// history without them, into one accumulator per blend weight.
#[allow(clippy::too_many_arguments)]
fn rank_targets(
    data: &Dataset,
    holdout: &Holdout,
    scorers: &Scorers,
    recency: Recency,
    alphas: &[f32],
    targets: u8,
    accumulators: &mut [RankingAccumulator],
) {
    let n = holdout.train.n_items();
    let wanted = if targets == LATEST {
        &holdout.latest
    } else {
        &holdout.random
    };
    let keep = |j: usize| holdout.role[j] != targets;
    let mut history = Vec::new();
    let (mut b, mut blended) = (vec![0.0; n], vec![0.0; n]);
    let mut seen = ItemSet::new(n);
    let mut buf = Vec::new();
    // Autoencoder scores of a block of users come from one GEMM.
    let block = (BLOCK_SCORES / n.max(1)).clamp(1, holdout.users.len().max(1));
    let mut dae_scores = Array2::<f32>::zeros((0, n));
    for first in (0..holdout.users.len()).step_by(block) {
        let last = (first + block).min(holdout.users.len());
        if let Some(dae) = scorers.dae {
            let mut act = Array2::<f32>::zeros((last - first, dae.hidden()));
            for (row, &user) in act.rows_mut().into_iter().zip(&holdout.users[first..last]) {
                data.weighted_history_where(user as usize, recency, keep, &mut history);
                let mut row = row;
                dae.encode_into(&history, row.as_slice_mut().expect("standard layout"));
            }
            dae_scores = Array2::<f32>::zeros((last - first, n));
            for mut row in dae_scores.rows_mut() {
                row.assign(&dae.decoder_bias);
            }
            general_mat_mul(1.0, &act, &dae.decoder, 1.0, &mut dae_scores);
        }
        for (position, (&user, targets)) in holdout
            .users
            .iter()
            .zip(wanted)
            .enumerate()
            .take(last)
            .skip(first)
        {
            if targets.is_empty() {
                continue;
            }
            data.weighted_history_where(user as usize, recency, keep, &mut history);
            seen.clear();
            history.iter().for_each(|&(i, _)| seen.insert(i));
            if let Some(ease) = scorers.ease {
                ease.score_into(&history, Some(user), &mut b);
            }
            let a: &[f32] = match scorers.dae {
                Some(_) => dae_scores
                    .row(position - first)
                    .to_slice()
                    .expect("standard layout"),
                None => &[],
            };
            for (i, &alpha) in alphas.iter().enumerate() {
                let scores: &[f32] = match (scorers.dae, scorers.ease) {
                    (Some(_), Some(_)) => {
                        blend_into(a, &b, alpha, &mut blended);
                        &blended
                    }
                    (Some(_), None) => a,
                    _ => &b,
                };
                let ranked: Vec<u32> = top_k(scores, 20, &|i| seen.contains(i), None, &mut buf)
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect();
                accumulators[i].add(&ranked, targets);
            }
        }
    }
}

/// Popularity (interaction counts) on the same held-out users: on the random targets,
/// else on the latest ones.
pub(crate) fn popularity_metrics(
    data: &Dataset,
    holdout: &Holdout,
    latest: bool,
) -> RankingMetrics {
    let popularity = holdout.train.popularity(None);
    let n = holdout.train.n_items();
    let mut acc = RankingAccumulator::new(n);
    let mut seen = ItemSet::new(n);
    let mut buf = Vec::new();
    let targets = if latest {
        &holdout.latest
    } else {
        &holdout.random
    };
    let role = if latest { LATEST } else { RANDOM };
    for (&user, targets) in holdout.users.iter().zip(targets) {
        seen.clear();
        data.range(user as usize)
            .filter(|&j| holdout.role[j] != role)
            .for_each(|j| seen.insert(data.items[j]));
        let ranked: Vec<u32> = top_k(&popularity, 20, &|i| seen.contains(i), None, &mut buf)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        acc.add(&ranked, targets);
    }
    acc.finish()
}
