//! Timestamps under the default holdout: the recency weighting is chosen jointly on the
//! latest and the random validation targets, and the card records the choice.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::tests::small_params;
use super::*;
use crate::nn::Control;

const RING: usize = 40;
const WALK: usize = 8;

/// Users walk a ring of [`RING`] items in order: each starts at a seeded random item and
/// interacts with the next [`WALK`] items, one a minute. What follows a user's last item
/// on the ring is their next interaction; the item before their first is as close to
/// their history by co-occurrence alone.
fn ring_walks(users: usize, seed: u64, timestamps: bool) -> (Interactions, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Interactions {
        timestamps: timestamps.then(Vec::new),
        ..Default::default()
    };
    let mut starts = Vec::new();
    for u in 0..users {
        let start = rng.random_range(0..RING);
        starts.push(start);
        for step in 0..WALK {
            data.users.push(format!("u{u}"));
            data.items.push(format!("i{}", (start + step) % RING));
            if let Some(times) = data.timestamps.as_mut() {
                times.push(1_000_000 + (u * 100 + step) as i64 * 60);
            }
        }
    }
    (data, starts)
}

fn fit_walks(timestamps: bool) -> (FitReport, Vec<usize>) {
    let (data, starts) = ring_walks(400, 11, timestamps);
    let params = RecommenderParams {
        holdout: HoldoutKind::Auto,
        ease_lambda: 20.0,
        ..small_params(Component::Ease)
    };
    let cancel = AtomicBool::new(false);
    let report = fit(
        &data,
        &params,
        &RecommendCaps::default(),
        Control::none(&cancel),
    )
    .unwrap();
    (report, starts)
}

/// Share of users whose top recommendation (from their stored history) is the item
/// after their last one, and the share whose top one is the item before their first.
fn follower_and_predecessor_shares(model: &Recommender, starts: &[usize]) -> (f64, f64) {
    let (mut follower, mut predecessor) = (0, 0);
    for (u, &start) in starts.iter().enumerate() {
        let user = model.user_index(&format!("u{u}")).unwrap();
        let history = model.user_history(user);
        let seen = ItemSet::from_history(model.n_items(), &history);
        let top = model
            .recommend(&history, 1, &|i| seen.contains(i), None)
            .unwrap();
        let id = model.item_id(top[0].0).unwrap();
        if id == format!("i{}", (start + WALK) % RING) {
            follower += 1;
        }
        if id == format!("i{}", (start + RING - 1) % RING) {
            predecessor += 1;
        }
    }
    let n = starts.len() as f64;
    (f64::from(follower) / n, f64::from(predecessor) / n)
}

#[test]
fn default_with_timestamps_ranks_the_follower_of_the_last_item_first() {
    let (report, starts) = fit_walks(true);
    let spec = report.model.spec();
    assert_eq!(spec.holdout_used, Some(HoldoutKind::Temporal), "{spec:?}");
    assert!(spec.recency_power > 0.0, "{spec:?}");
    assert!((0.0..1.0).contains(&spec.recency_floor), "{spec:?}");
    assert_eq!(
        report.metrics.as_ref().map(|m| m.holdout),
        Some(HoldoutKind::Temporal)
    );
    let (follower, predecessor) = follower_and_predecessor_shares(&report.model, &starts);
    assert!(
        follower > 0.9 && predecessor < 0.1,
        "follower {follower}, predecessor {predecessor}, {spec:?}"
    );
    // Deterministic for a seed.
    let (again, _) = fit_walks(true);
    assert_eq!(again.model.spec(), spec);
}

#[test]
fn without_timestamps_the_walks_get_no_recency() {
    let (report, starts) = fit_walks(false);
    let spec = report.model.spec();
    assert_eq!(spec.holdout_used, Some(HoldoutKind::Random), "{spec:?}");
    assert_eq!((spec.recency_power, spec.recency_floor), (0.0, 0.0));
    // Co-occurrence alone cannot tell which end of the walk comes next.
    let (follower, _) = follower_and_predecessor_shares(&report.model, &starts);
    assert!(follower < 0.75, "follower {follower}");
}
