//! End-to-end tests of fitting and serving on small synthetic data.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::nn::{Control, EpochReport};

const CLUSTERS: usize = 4;
const PER_CLUSTER: usize = 10;

/// Writes a model's artifact files into `dir`, as the registry does when it publishes a
/// version.
fn save_to(model: &Recommender, dir: &std::path::Path) {
    for (name, bytes) in model.artifact_files().unwrap() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn item(cluster: usize, i: usize) -> String {
    format!("c{cluster}_i{i}")
}

/// Users each belong to one cluster and interact with 4..8 of its items (with
/// timestamps), so items co-occur only within their cluster. Item `c0_i0` is the most
/// popular overall.
fn synthetic(users: usize, seed: u64) -> Interactions {
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

fn small_params(component: Component) -> RecommenderParams {
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

fn train(params: &RecommenderParams) -> FitReport {
    let cancel = AtomicBool::new(false);
    fit(
        &synthetic(160, 7),
        params,
        &RecommendCaps::default(),
        Control::none(&cancel),
    )
    .expect("fit")
}

fn cluster_of(model: &Recommender, index: u32) -> usize {
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

fn attribute_table(id: &str, column: &str, rows: &[(String, String)]) -> Attributes {
    let table = crate::data::Table {
        columns: vec![id.to_string(), column.to_string()],
        cells: vec![
            rows.iter()
                .map(|(k, _)| crate::data::Cell::Text(k.clone()))
                .collect(),
            rows.iter()
                .map(|(_, v)| crate::data::Cell::Text(v.clone()))
                .collect(),
        ],
    };
    let columns = AttributeColumns {
        id: id.to_string(),
        columns: Vec::new(),
        separator: None,
    };
    Attributes::from_table(&table, &columns).unwrap()
}

#[test]
fn attributes_survive_a_save_load_round_trip_with_cold_items() {
    let mut items: Vec<(String, String)> = (0..CLUSTERS)
        .flat_map(|c| (0..PER_CLUSTER).map(move |i| (item(c, i), format!("g{c}"))))
        .collect();
    items.push(("fresh_c2".into(), "g2".into()));
    let users: Vec<(String, String)> = (0..40)
        .map(|u| (format!("u{u}"), format!("s{}", u % CLUSTERS)))
        .chain([("new_user".to_string(), "s1".to_string())])
        .collect();
    let model = train(&small_params(Component::Blend))
        .model
        .with_attributes(
            Some(attribute_table("item_id", "genre", &items)),
            Some(attribute_table("user_id", "segment", &users)),
            usize::MAX,
        )
        .unwrap();
    assert_eq!(model.spec().cold_items, 1);
    assert_eq!(model.n_items(), model.n_warm() + 1);
    let cold = model.item_index("fresh_c2").unwrap();
    // The cold item ranks with its genre: above every other cluster's items for a
    // cluster-2 history.
    let history = [(model.item_index(&item(2, 0)).unwrap(), 1.0)];
    let ranked = model.recommend(&history, 12, &|_| false, None).unwrap();
    let position = ranked.iter().position(|&(i, _)| i == cold);
    assert!(position.is_some_and(|p| p < PER_CLUSTER), "{ranked:?}");

    let dir = tempfile::tempdir().unwrap();
    save_to(&model, dir.path());
    let spec: RecommenderSpec =
        serde_json::from_str(&serde_json::to_string(model.spec()).unwrap()).unwrap();
    let loaded = Recommender::load(&spec, dir.path()).unwrap();
    assert_eq!(loaded.item_index("fresh_c2"), Some(cold));
    assert_eq!(
        loaded.recommend(&history, 12, &|_| false, None).unwrap(),
        ranked
    );
    let mut a = ScoreScratch::default();
    let mut b = ScoreScratch::default();
    let from_model = model
        .recommend_for_segment("new_user", 5, &|_| false, None, &mut a)
        .unwrap()
        .expect("a segment");
    assert!(from_model.iter().all(|&(i, _)| cluster_of(&model, i) == 1));
    assert_eq!(
        loaded
            .recommend_for_segment("new_user", 5, &|_| false, None, &mut b)
            .unwrap(),
        Some(from_model)
    );
    // A damaged attribute file is an error, not a panic.
    std::fs::write(dir.path().join(ATTRIBUTES_FILE), b"{\"items\": 3}").unwrap();
    assert!(Recommender::load(&spec, dir.path()).is_err());
}

/// Fits on `synthetic(160, 7)` with item and/or user attribute tables.
fn train_with_attributes(
    params: &RecommenderParams,
    items: Option<&Attributes>,
    users: Option<&Attributes>,
) -> FitReport {
    let cancel = AtomicBool::new(false);
    fit_with_attributes(
        &synthetic(160, 7),
        items,
        users,
        params,
        &RecommendCaps::default(),
        Control::none(&cancel),
    )
    .expect("fit")
}

/// User attributes of `synthetic(160, _)`: the segment is the user's cluster.
fn segments() -> Attributes {
    let users: Vec<(String, String)> = (0..160)
        .map(|u| (format!("u{u}"), format!("s{}", u % CLUSTERS)))
        .collect();
    attribute_table("user_id", "segment", &users)
}

/// Mean score of each cluster's items.
fn cluster_means(model: &Recommender, scores: &[f32]) -> Vec<f32> {
    let mut sums = vec![0.0; CLUSTERS];
    for (i, &s) in scores.iter().enumerate() {
        sums[cluster_of(model, i as u32)] += s / PER_CLUSTER as f32;
    }
    sums
}

#[test]
fn user_attributes_are_item_item_inputs_for_known_users_and_survive_a_round_trip() {
    // The segment is the user's cluster, so it predicts the user's items.
    let users = segments();
    let params = RecommenderParams {
        user_attribute_weight: Some(1.0),
        ..small_params(Component::Ease)
    };
    let model = train_with_attributes(&params, None, Some(&users)).model;
    assert_eq!(model.spec().user_features, CLUSTERS);
    assert_eq!(model.spec().user_attribute_weight, 1.0);
    // User u1 (cluster 1) with a cluster-2 item as the only history: the segment lifts
    // cluster 1's items, which the history alone does not.
    let user = model.user_index("u1").unwrap();
    let history = [(model.item_index(&item(2, 0)).unwrap(), 1.0)];
    let (mut a, mut b) = (ScoreScratch::default(), ScoreScratch::default());
    let plain = cluster_means(&model, model.score_into(&history, &mut a).unwrap());
    let with_user = model.score_user_into(Some(user), &history, &mut b).unwrap();
    let with = cluster_means(&model, with_user);
    assert!(with[1] - plain[1] > 0.05, "{plain:?} {with:?}");
    for c in [0, 3] {
        assert!(
            with[1] - plain[1] > 5.0 * (with[c] - plain[c]).abs(),
            "{plain:?} {with:?}"
        );
    }
    let with_user = with_user.to_vec();

    let dir = tempfile::tempdir().unwrap();
    save_to(&model, dir.path());
    let spec: RecommenderSpec =
        serde_json::from_str(&serde_json::to_string(model.spec()).unwrap()).unwrap();
    let loaded = Recommender::load(&spec, dir.path()).unwrap();
    let mut c = ScoreScratch::default();
    assert_eq!(
        loaded
            .score_user_into(Some(user), &history, &mut c)
            .unwrap(),
        &with_user[..]
    );
    // A spec that disagrees with the stored tensors is refused, not served.
    let wrong = RecommenderSpec {
        user_features: CLUSTERS + 1,
        ..spec
    };
    assert!(Recommender::load(&wrong, dir.path()).is_err());

    // Without user attributes (or with weight 0) there are no feature rows.
    let model = train_with_attributes(&small_params(Component::Ease), None, None).model;
    assert_eq!(model.spec().user_features, 0);
    let params = RecommenderParams {
        user_attribute_weight: Some(0.0),
        ..small_params(Component::Ease)
    };
    let model = train_with_attributes(&params, None, Some(&users)).model;
    assert_eq!(model.spec().user_features, 0);
}

#[test]
fn item_attributes_link_items_that_share_a_value() {
    // Clusters 0 and 1 share the genre `x`; clusters 2 and 3 have their own.
    let items: Vec<(String, String)> = (0..CLUSTERS)
        .flat_map(|c| (0..PER_CLUSTER).map(move |i| (item(c, i), format!("g{}", c.max(1)))))
        .collect();
    let items = attribute_table("item_id", "genre", &items);
    let history: Vec<(u32, f32)> = Vec::new();
    let mut means = Vec::new();
    for weight in [0.0, 1.0] {
        let params = RecommenderParams {
            attribute_weight: Some(weight),
            ..small_params(Component::Ease)
        };
        let model = train_with_attributes(&params, Some(&items), None).model;
        assert_eq!(model.spec().attribute_weight, weight);
        let history: Vec<(u32, f32)> = history
            .iter()
            .copied()
            .chain((0..3).map(|i| (model.item_index(&item(0, i)).unwrap(), 1.0)))
            .collect();
        let mut scratch = ScoreScratch::default();
        means.push(cluster_means(
            &model,
            model.score_into(&history, &mut scratch).unwrap(),
        ));
    }
    let (plain, with) = (&means[0], &means[1]);
    // Cluster 1 never co-occurs with cluster 0; only the shared genre lifts it above
    // clusters 2 and 3.
    assert!(
        (plain[1] - plain[2]).abs() < 1e-3 && (plain[1] - plain[3]).abs() < 1e-3,
        "{plain:?}"
    );
    assert!(with[1] > 0.05 * with[0], "{with:?}");
    assert!(
        with[1] > with[2] + 0.01 && with[1] > with[3] + 0.01,
        "{with:?}"
    );
}

#[test]
fn attribute_strengths_are_chosen_on_validation_and_checked() {
    let users = segments();
    let items: Vec<(String, String)> = (0..CLUSTERS)
        .flat_map(|c| (0..PER_CLUSTER).map(move |i| (item(c, i), format!("g{c}"))))
        .collect();
    let items = attribute_table("item_id", "genre", &items);
    let report = train_with_attributes(&small_params(Component::Blend), Some(&items), Some(&users));
    let spec = report.model.spec();
    assert!([0.0, 0.2].contains(&spec.attribute_weight), "{spec:?}");
    assert!([0.0, 1.0].contains(&spec.user_attribute_weight), "{spec:?}");
    assert_eq!(
        spec.user_features,
        if spec.user_attribute_weight > 0.0 {
            CLUSTERS
        } else {
            0
        }
    );
    assert!(report.metrics.is_some());
    // The autoencoder alone ignores attributes.
    let model =
        train_with_attributes(&small_params(Component::Dae), Some(&items), Some(&users)).model;
    assert_eq!(
        (model.spec().attribute_weight, model.spec().user_features),
        (0.0, 0)
    );
    for (name, params) in [
        (
            "attribute_weight",
            RecommenderParams {
                attribute_weight: Some(11.0),
                ..small_params(Component::Ease)
            },
        ),
        (
            "user_attribute_weight",
            RecommenderParams {
                user_attribute_weight: Some(-1.0),
                ..small_params(Component::Ease)
            },
        ),
    ] {
        let cancel = AtomicBool::new(false);
        let err = fit_with_attributes(
            &synthetic(10, 1),
            None,
            None,
            &params,
            &RecommendCaps::default(),
            Control::none(&cancel),
        )
        .unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn a_spec_written_before_attribute_side_information_still_loads() {
    let model = train(&small_params(Component::Blend)).model;
    let dir = tempfile::tempdir().unwrap();
    save_to(&model, dir.path());
    let mut json = serde_json::to_value(model.spec()).unwrap();
    let spec = json.as_object_mut().unwrap();
    for key in ["attribute_weight", "user_attribute_weight", "user_features"] {
        assert!(spec.remove(key).is_some(), "{key}");
    }
    let params = spec["params"].as_object_mut().unwrap();
    for key in ["attribute_weight", "user_attribute_weight"] {
        assert!(params.remove(key).is_some(), "{key}");
    }
    let old: RecommenderSpec = serde_json::from_value(json).unwrap();
    assert_eq!(&old, model.spec());
    let loaded = Recommender::load(&old, dir.path()).unwrap();
    let history = model.user_history(0);
    assert_eq!(
        loaded.recommend(&history, 10, &|_| false, None).unwrap(),
        model.recommend(&history, 10, &|_| false, None).unwrap()
    );
}
