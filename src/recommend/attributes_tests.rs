//! Tests of item and user attribute tables: side information for the item-item
//! model, cold items, strengths chosen on validation, and stored specs.

use std::sync::atomic::AtomicBool;

use super::tests::{
    cluster_of, item, save_to, small_params, synthetic, train, CLUSTERS, PER_CLUSTER,
};
use super::*;
use crate::nn::Control;

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
