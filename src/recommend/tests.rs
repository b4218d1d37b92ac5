//! End-to-end tests of fitting and serving on small synthetic data.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::nn::{Control, EpochReport};

pub(super) const CLUSTERS: usize = 4;
pub(super) const PER_CLUSTER: usize = 10;

/// Writes a model's artifact files into `dir`, as the registry does when it publishes a
/// version.
pub(super) fn save_to(model: &Recommender, dir: &std::path::Path) {
    for (name, bytes) in model.artifact_files().unwrap() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

pub(super) fn item(cluster: usize, i: usize) -> String {
    format!("c{cluster}_i{i}")
}

/// Users each belong to one cluster and interact with 4..8 of its items (with
/// timestamps), so items co-occur only within their cluster. Item `c0_i0` is the most
/// popular overall.
pub(super) fn synthetic(users: usize, seed: u64) -> Interactions {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Interactions {
        timestamps: Some(Vec::new()),
        values: Some(Vec::new()),
        ..Default::default()
    };
    for u in 0..users {
        let cluster = u % CLUSTERS;
        let count = rng.random_range(4..8);
        let mut chosen: Vec<usize> = (0..PER_CLUSTER).collect();
        for i in 0..PER_CLUSTER {
            let j = rng.random_range(i..PER_CLUSTER);
            chosen.swap(i, j);
        }
        if cluster == 0 && !chosen[..count].contains(&0) {
            chosen[0] = 0;
        }
        for (t, &i) in chosen[..count].iter().enumerate() {
            data.users.push(format!("u{u}"));
            data.items.push(item(cluster, i));
            data.values.as_mut().unwrap().push(1.0 + (t % 3) as f32);
            data.timestamps
                .as_mut()
                .unwrap()
                .push(1_000_000 + (u * 10 + t) as i64 * 60);
        }
    }
    data
}

pub(super) fn small_params(component: Component) -> RecommenderParams {
    RecommenderParams {
        component,
        hidden: 16,
        epochs: 25,
        batch_size: 32,
        learning_rate: 0.01,
        ease_lambda: 5.0,
        holdout: HoldoutKind::Random,
        ..RecommenderParams::default()
    }
}

pub(super) fn train(params: &RecommenderParams) -> FitReport {
    let cancel = AtomicBool::new(false);
    fit(
        &synthetic(160, 7),
        params,
        &RecommendCaps::default(),
        Control::none(&cancel),
    )
    .expect("fit")
}

pub(super) fn cluster_of(model: &Recommender, index: u32) -> usize {
    let id = model.item_id(index).unwrap();
    id[1..2].parse().unwrap()
}

#[test]
fn learns_co_occurrence_with_every_component() {
    for component in [Component::Dae, Component::Ease, Component::Blend] {
        let report = train(&small_params(component));
        let model = &report.model;
        assert_eq!(model.spec().component, component);
        for cluster in 0..CLUSTERS {
            let given = model.item_index(&item(cluster, 3)).unwrap();
            let history = [(given, 1.0)];
            let top = model.recommend(&history, 5, &|i| i == given, None).unwrap();
            assert_eq!(top.len(), 5);
            let same = top
                .iter()
                .filter(|(i, _)| cluster_of(model, *i) == cluster)
                .count();
            assert!(same >= 4, "{component:?} cluster {cluster}: {top:?}");
            assert!(
                top.windows(2).all(|w| w[0].1 >= w[1].1),
                "sorted best first"
            );
        }
        let metrics = report.metrics.expect("holdout metrics");
        assert!(
            metrics.model.ndcg_at_10 > metrics.popularity.ndcg_at_10,
            "{component:?}: {metrics:?}"
        );
        assert!(metrics.model.users > 0 && metrics.model.coverage_at_10 > 0.0);
    }
}

#[test]
fn exclusions_candidates_and_k_are_respected() {
    let model = train(&small_params(Component::Ease)).model;
    let given = model.item_index(&item(1, 0)).unwrap();
    let history = [(given, 1.0)];
    let excluded = ItemSet::from_history(model.n_items(), &[(given, 1.0), (given + 1, 1.0)]);
    let top = model
        .recommend(&history, 1000, &|i| excluded.contains(i), None)
        .unwrap();
    assert_eq!(top.len(), model.n_items() - 2);
    assert!(top.iter().all(|(i, _)| !excluded.contains(*i)));

    let candidates = [5u32, 9, 2, 9, given];
    let top = model
        .recommend(&history, 10, &|i| i == given, Some(&candidates))
        .unwrap();
    let mut got: Vec<u32> = top.iter().map(|p| p.0).collect();
    got.sort_unstable();
    assert_eq!(got, [2, 5, 9]);

    for k in [0, 1001] {
        let err = model.recommend(&history, k, &|_| false, None).unwrap_err();
        assert!(err.to_string().contains(&format!("k = {k}")), "{err}");
    }
    let n = model.n_items() as u32;
    assert!(model
        .recommend(&history, 3, &|_| false, Some(&[n]))
        .is_err());
    assert!(model.recommend(&[(n, 1.0)], 3, &|_| false, None).is_err());
    assert!(model
        .recommend(&[(0, f32::NAN)], 3, &|_| false, None)
        .is_err());
}

#[test]
fn popular_fallback_and_empty_history() {
    let model = train(&small_params(Component::Ease)).model;
    let top = model.popular(3, &|_| false).unwrap();
    assert_eq!(model.item_id(top[0].0), Some("c0_i0"));
    let empty = model.recommend(&[], 3, &|_| false, None).unwrap();
    assert_eq!(empty, top);
    let first = top[0].0;
    let rest = model.popular(2, &|i| i == first).unwrap();
    assert_eq!(rest, top[1..3]);
    assert!(model.popular(0, &|_| false).is_err());
}

#[test]
fn similar_items_share_a_cluster() {
    for component in [Component::Dae, Component::Ease] {
        let model = train(&small_params(component)).model;
        let given = model.item_index(&item(2, 5)).unwrap();
        let top = model.similar(given, 4).unwrap();
        assert!(top.iter().all(|(i, _)| *i != given));
        let same = top
            .iter()
            .filter(|(i, _)| cluster_of(&model, *i) == 2)
            .count();
        assert!(same >= 3, "{component:?}: {top:?}");
        assert!(model.similar(model.n_items() as u32, 3).is_err());
    }
}

#[test]
fn unknown_user_is_served_from_a_posted_history() {
    let model = train(&small_params(Component::Blend)).model;
    assert!(model.user_index("stranger").is_none());
    let known = model.user_index("u5").unwrap();
    let stored = model.user_history(known);
    assert!(!stored.is_empty());
    let posted: Vec<(u32, f32)> = stored.iter().map(|&(i, w)| (i, w)).collect();
    let seen = ItemSet::from_history(model.n_items(), &posted);
    let from_post = model
        .recommend(&posted, 5, &|i| seen.contains(i), None)
        .unwrap();
    let from_store = model
        .recommend(&stored, 5, &|i| seen.contains(i), None)
        .unwrap();
    assert_eq!(from_post, from_store);
    let cluster = cluster_of(&model, stored[0].0);
    assert!(
        from_post
            .iter()
            .all(|(i, _)| cluster_of(&model, *i) == cluster),
        "{from_post:?}"
    );
}

#[test]
fn recency_weighting_favours_recent_items() {
    let params = RecommenderParams {
        recency_power: Some(1.0),
        ..small_params(Component::Ease)
    };
    let model = train(&params).model;
    assert_eq!(model.spec().recency_power, 1.0);
    let user = model.user_index("u3").unwrap();
    let history = model.user_history(user);
    let weights: Vec<f32> = history.iter().map(|p| p.1).collect();
    assert_eq!(*weights.last().unwrap(), 1.0);
    assert!(
        weights.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {weights:?}"
    );
}

#[test]
fn recency_is_chosen_on_a_last_item_split_and_plain_ease_learns_too() {
    let params = RecommenderParams {
        holdout: HoldoutKind::Temporal,
        ease_dropout: 0.0,
        ..small_params(Component::Ease)
    };
    let report = train(&params);
    let metrics = report.metrics.expect("metrics");
    assert_eq!(
        metrics.holdout,
        HoldoutKind::Temporal,
        "a temporal split judges on the latest items"
    );
    assert_eq!(
        report.model.spec().holdout_used,
        Some(HoldoutKind::Temporal)
    );
    assert!([0.0, 0.25, 0.5, 1.0, 1.5].contains(&report.model.spec().recency_power));
    let model = report.model;
    let given = model.item_index(&item(3, 1)).unwrap();
    let top = model
        .recommend(&[(given, 1.0)], 4, &|i| i == given, None)
        .unwrap();
    assert!(
        top.iter().all(|(i, _)| cluster_of(&model, *i) == 3),
        "{top:?}"
    );
}

#[test]
fn params_errors_name_the_parameter() {
    let cancel = AtomicBool::new(false);
    let bad = RecommenderParams {
        input_dropout: 1.5,
        ..small_params(Component::Dae)
    };
    let err = fit(
        &synthetic(10, 1),
        &bad,
        &RecommendCaps::default(),
        Control::none(&cancel),
    )
    .unwrap_err();
    assert!(matches!(err, RecommendError::Params(_)), "{err}");
    assert!(
        err.to_string().contains("input_dropout") && err.to_string().contains("1.5"),
        "{err}"
    );
    let caps = RecommendCaps {
        max_ease_items: 10,
        ..RecommendCaps::default()
    };
    let err = fit(
        &synthetic(10, 1),
        &small_params(Component::Ease),
        &caps,
        Control::none(&cancel),
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_ease_items"), "{err}");
}

#[test]
fn save_load_round_trip_gives_identical_recommendations() {
    for component in [Component::Blend, Component::Dae, Component::Ease] {
        let model = train(&small_params(component)).model;
        let dir = tempfile::tempdir().unwrap();
        save_to(&model, dir.path());
        let spec_json = serde_json::to_string(model.spec()).unwrap();
        assert!(
            spec_json.len() < 4096,
            "spec stays small: {}",
            spec_json.len()
        );
        let spec: RecommenderSpec = serde_json::from_str(&spec_json).unwrap();
        let loaded = Recommender::load(&spec, dir.path()).unwrap();
        for user in 0..model.n_users() as u32 {
            let history = model.user_history(user);
            assert_eq!(history, loaded.user_history(user));
            let a = model.recommend(&history, 10, &|_| false, None).unwrap();
            let b = loaded.recommend(&history, 10, &|_| false, None).unwrap();
            assert_eq!(a, b);
        }
        assert_eq!(model.similar(3, 5).unwrap(), loaded.similar(3, 5).unwrap());
        assert_eq!(loaded.item_index("c3_i9"), model.item_index("c3_i9"));
        // A damaged directory is an error, not a panic.
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"junk").unwrap();
        assert!(Recommender::load(&spec, dir.path()).is_err());
    }
}

#[test]
fn same_seed_same_model_and_progress_is_reported() {
    let params = small_params(Component::Blend);
    let a = train(&params);
    let b = train(&params);
    assert_eq!(a.model.spec(), b.model.spec());
    for user in [0u32, 17, 101] {
        let history = a.model.user_history(user);
        let mut sa = ScoreScratch::default();
        let mut sb = ScoreScratch::default();
        assert_eq!(
            a.model.score_into(&history, &mut sa).unwrap(),
            b.model.score_into(&history, &mut sb).unwrap()
        );
    }
    assert!(!a.history.is_empty());
    assert!(a.history.iter().any(|r| r.valid_metric.is_some()));
    let other = train(&RecommenderParams { seed: 9, ..params });
    let history = a.model.user_history(0);
    let mut sa = ScoreScratch::default();
    let mut sb = ScoreScratch::default();
    assert_ne!(
        a.model.score_into(&history, &mut sa).unwrap(),
        other.model.score_into(&history, &mut sb).unwrap()
    );
}

#[test]
fn cancel_stops_training() {
    let cancel = AtomicBool::new(false);
    let mut epochs = 0;
    let mut on_epoch = |_: &EpochReport| {
        epochs += 1;
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let err = fit(
        &synthetic(40, 3),
        &small_params(Component::Dae),
        &RecommendCaps::default(),
        Control::new(&mut on_epoch, &cancel),
    )
    .unwrap_err();
    assert!(matches!(err, RecommendError::Cancelled));
    assert_eq!(epochs, 1);
}
