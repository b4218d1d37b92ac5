//! Recommendations: training on interactions, serving per strategy, logged
//! interactions (freshness and durability), similar items and errors.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const USERS: usize = 60;
pub(crate) const ITEMS: usize = 40;
pub(crate) const CLUSTERS: usize = 4;

/// Users of cluster `u % 4` interact with 6 of the 10 items of that cluster.
pub(crate) fn interaction_rows(seed: u64) -> Vec<Value> {
    let mut rng = Lcg::new(seed);
    let per_cluster = ITEMS / CLUSTERS;
    let mut rows = Vec::new();
    for u in 0..USERS {
        let cluster = u % CLUSTERS;
        let mut items = BTreeSet::new();
        while items.len() < 6 {
            items.insert(cluster * per_cluster + rng.below(per_cluster as u64) as usize);
        }
        for i in items {
            rows.push(json!({"user_id": format!("u{u}"), "item_id": format!("i{i}")}));
        }
    }
    rows
}

pub(crate) fn recommend_params() -> Value {
    json!({"hidden": 16, "epochs": 4, "batch_size": 16, "early_stopping_patience": null})
}

pub(crate) fn cluster_of(item: &str) -> usize {
    item[1..].parse::<usize>().unwrap() / (ITEMS / CLUSTERS)
}

pub(crate) fn items_of(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_string())
        .collect()
}

async fn train_recommender(app: &TestApp, model: &str) -> Value {
    app.train(&json!({
        "model": model,
        "task": "recommendation",
        "params": recommend_params(),
        "data": interaction_rows(7),
    }))
    .await
}

pub(crate) async fn recommend(app: &TestApp, body: Value) -> Value {
    json_ok(
        app.post_json("/recommend", &body).await,
        reqwest::StatusCode::OK,
    )
    .await
}

fn seen_by(user: &str) -> BTreeSet<String> {
    interaction_rows(7)
        .into_iter()
        .filter(|r| r["user_id"] == user)
        .map(|r| r["item_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommender_trains_and_serves_every_strategy() {
    let app = spawn_app().await;
    let job = train_recommender(&app, "shop").await;
    for side in ["model", "popularity"] {
        for metric in ["hr_at_10", "ndcg_at_10"] {
            assert!(
                job["metrics"][side][metric].is_number(),
                "missing {side}.{metric}: {job:#}"
            );
        }
    }
    let card = app.get_ok("/models/shop/versions/1").await;
    assert!(card.to_string().contains("hr_at_10"), "{card:#}");

    // A known user: personalised, seen items excluded, mostly their cluster.
    let answer = recommend(&app, json!({"model": "shop", "user": "u1", "k": 4})).await;
    assert_eq!(answer["strategy"], "personalized", "{answer:#}");
    assert_eq!(answer["version"], 1);
    let items = items_of(&answer);
    assert_eq!(items.len(), 4, "{answer:#}");
    let seen = seen_by("u1");
    assert!(items.iter().all(|i| !seen.contains(i)), "{answer:#}");
    assert!(
        items.iter().filter(|i| cluster_of(i) == 1).count() >= 2,
        "{answer:#}"
    );

    // An unknown user with a history; unknown items are listed.
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "newcomer", "history": ["i20", "i21", "nope"], "k": 5}),
    )
    .await;
    assert_eq!(answer["strategy"], "history", "{answer:#}");
    assert_eq!(answer["unknown_items"], json!(["nope"]));
    let items = items_of(&answer);
    assert!(!items.contains(&"i20".to_string()), "{answer:#}");
    assert!(
        items.iter().filter(|i| cluster_of(i) == 2).count() >= 3,
        "{answer:#}"
    );

    // Nobody: popular items; candidates and exclude are honoured.
    let answer = recommend(&app, json!({"model": "shop"})).await;
    assert_eq!(answer["strategy"], "popular", "{answer:#}");
    assert_eq!(items_of(&answer).len(), 10);
    let answer = recommend(
        &app,
        json!({"model": "shop", "k": 3, "candidates": ["i1", "i2", "i3", "i4"], "exclude": ["i2"]}),
    )
    .await;
    let items = items_of(&answer);
    assert_eq!(items.len(), 3, "{answer:#}");
    assert!(items
        .iter()
        .all(|i| ["i1", "i3", "i4"].contains(&i.as_str())));

    // GET form.
    let answer = app.get_ok("/recommend?model=shop&user=u2&k=3").await;
    assert_eq!(answer["strategy"], "personalized");
    assert_eq!(items_of(&answer).len(), 3);

    // Similar items.
    let similar = app.get_ok("/models/shop/items/i5/similar?k=3").await;
    assert_eq!(similar["item"], "i5");
    let items = items_of(&similar);
    assert_eq!(items.len(), 3);
    assert!(!items.contains(&"i5".to_string()));
    let missing = app.get("/models/shop/items/nope/similar").await;
    assert_problem(missing, 404, Some("item_not_found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_interactions_are_seen_at_once_and_survive_a_restart() {
    let store = tempfile::tempdir().unwrap();
    let first = spawn_app_on(store.path(), |_| {}).await;
    train_recommender(&first, "shop").await;
    let before = recommend(&first, json!({"model": "shop", "user": "u3", "k": 5})).await;
    let top = items_of(&before)[0].clone();

    let response = first
        .post_json(
            "/interactions",
            &json!({"model": "shop", "interactions": [{"user": "u3", "item": top}]}),
        )
        .await;
    let logged = json_ok(response, reqwest::StatusCode::CREATED).await;
    assert_eq!(logged["logged"], 1);
    let after = recommend(&first, json!({"model": "shop", "user": "u3", "k": 5})).await;
    assert!(!items_of(&after).contains(&top), "{after:#}");
    assert_ne!(items_of(&after), items_of(&before));

    // An unknown user with logged interactions gets the history strategy.
    let response = first
        .post_json(
            "/interactions",
            &json!({"model": "shop", "interactions": [
                {"user": "fresh", "item": "i30", "value": 2.0, "timestamp": 1_700_000_000},
                {"user": "fresh", "item": "i31"}
            ]}),
        )
        .await;
    json_ok(response, reqwest::StatusCode::CREATED).await;
    let fresh = first.get_ok("/recommend?model=shop&user=fresh&k=4").await;
    assert_eq!(fresh["strategy"], "history", "{fresh:#}");
    assert!(!items_of(&fresh).contains(&"i30".to_string()));
    first.stop().await;

    let second = spawn_app_on(store.path(), |_| {}).await;
    let again = recommend(&second, json!({"model": "shop", "user": "u3", "k": 5})).await;
    assert_eq!(items_of(&again), items_of(&after));
    let fresh = second.get_ok("/recommend?model=shop&user=fresh&k=4").await;
    assert_eq!(fresh["strategy"], "history");

    // Retraining with the log includes the logged users.
    second
        .train(&json!({
            "model": "shop",
            "task": "recommendation",
            "params": recommend_params(),
            "data": interaction_rows(7),
            "include_logged_interactions": true,
        }))
        .await;
    let fresh = second.get_ok("/recommend?model=shop&user=fresh&k=4").await;
    assert_eq!(fresh["version"], 2);
    assert_eq!(fresh["strategy"], "personalized", "{fresh:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendation_requests_are_validated() {
    let app = spawn_app().await;
    train_recommender(&app, "shop").await;
    train_churn(&app, "churn", 5).await;

    for k in [0, 100_000] {
        let response = app
            .post_json("/recommend", &json!({"model": "shop", "k": k}))
            .await;
        let problem = assert_problem(response, 422, Some("invalid_parameter")).await;
        assert_eq!(problem["field"], "k");
    }
    let response = app.get("/recommend?model=shop&k=0").await;
    assert_problem(response, 422, Some("invalid_parameter")).await;
    let response = app
        .post_json("/recommend", &json!({"model": "churn", "user": "u1"}))
        .await;
    assert_problem(response, 422, Some("wrong_model_kind")).await;
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "shop", "instances": [{"user_id": "u1"}]}),
        )
        .await;
    assert_problem(response, 422, Some("wrong_model_kind")).await;
    let response = app
        .post_json("/recommend", &json!({"model": "ghost"}))
        .await;
    assert_problem(response, 404, Some("model_not_found")).await;
    let response = app
        .post_json(
            "/interactions",
            &json!({"model": "ghost", "interactions": [{"user": "a", "item": "b"}]}),
        )
        .await;
    assert_problem(response, 404, Some("model_not_found")).await;
    let response = app
        .post_json(
            "/interactions",
            &json!({"model": "churn", "interactions": [{"user": "a", "item": "b"}]}),
        )
        .await;
    assert_problem(response, 422, Some("wrong_model_kind")).await;
    let response = app
        .post_json(
            "/interactions",
            &json!({"model": "shop", "interactions": [{"user": "a", "item": "b", "value": -1.0}]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("invalid_value")).await;
    assert_eq!(problem["field"], "interactions[0].value");

    // Training requests.
    let response = app
        .post_json(
            "/train",
            &json!({"model": "m", "task": "recommendation", "params": {"hidden": "wide"},
                    "data": interaction_rows(1)}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("invalid_parameter")).await;
    assert_eq!(problem["field"], "params.hidden");
    let response = app
        .post_json(
            "/train",
            &json!({"model": "m", "task": "recommendation",
                    "interaction_columns": {"user": "customer"},
                    "data": interaction_rows(1)}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("unknown_column")).await;
    assert!(detail(&problem).contains("customer"), "{problem:#}");
    let response = app
        .post_json("/train", &json!({"model": "m", "data": churn_rows(10, 1)}))
        .await;
    let problem = assert_problem(response, 422, Some("missing_field")).await;
    assert_eq!(problem["field"], "target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interaction_log_keeps_the_newest_events_when_it_outgrows_its_cap() {
    let app = spawn_app_with(|s| s.interactions.max_events_per_model = 4).await;
    train_recommender(&app, "shop").await;
    for i in 0..6 {
        let response = app
            .post_json(
                "/interactions",
                &json!({"model": "shop", "interactions": [{"user": "x", "item": format!("i{i}")}]}),
            )
            .await;
        json_ok(response, reqwest::StatusCode::CREATED).await;
    }
    // Past 4 + 4/4 events the log is rewritten with the newest 4.
    let log = std::fs::read_to_string(app.store_path.join("shop/interactions.ndjson")).unwrap();
    let items: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["item"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(items, ["i2", "i3", "i4", "i5"], "{log}");
    // The in-memory history follows: dropped events are no longer excluded as seen.
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "x", "k": 20, "candidates": ["i0", "i1", "i2", "i3"]}),
    )
    .await;
    assert_eq!(answer["strategy"], "history", "{answer:#}");
    let mut served = items_of(&answer);
    served.sort();
    assert_eq!(served, ["i0", "i1"], "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_max_k_bounds_every_recommendation_route() {
    let app = spawn_app_with(|s| s.recommend.max_k = 5).await;
    train_recommender(&app, "shop").await;
    let ok = app.get_ok("/recommend?model=shop&user=u1&k=5").await;
    assert_eq!(items_of(&ok).len(), 5);
    let problem = assert_problem(
        app.get("/recommend?model=shop&user=u1&k=6").await,
        422,
        Some("invalid_parameter"),
    )
    .await;
    assert_eq!(problem["max"], 5, "{problem:#}");
    assert_problem(
        app.get("/models/shop/items/i1/similar?k=6").await,
        422,
        Some("invalid_parameter"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_has_seen_every_item_gets_an_empty_list_marked_exhausted() {
    let app = spawn_app().await;
    train_recommender(&app, "shop").await;
    let everything: Vec<String> = (0..ITEMS).map(|i| format!("i{i}")).collect();
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "newcomer", "history": everything, "k": 5}),
    )
    .await;
    assert_eq!(answer["items"], json!([]), "{answer:#}");
    assert_eq!(answer["exhausted"], true, "{answer:#}");
    let answer = recommend(&app, json!({"model": "shop", "user": "u1", "k": 5})).await;
    assert_eq!(items_of(&answer).len(), 5, "{answer:#}");
    assert_eq!(answer["exhausted"], false, "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_interactions_on_items_the_model_does_not_know_are_reported() {
    let app = spawn_app().await;
    train_recommender(&app, "shop").await;
    let body = json!({"model": "shop", "interactions": [
        {"user": "u1", "item": "i3"}, {"user": "u1", "item": "nope"}, {"user": "u2", "item": "nope"}
    ]});
    let response = app.post_json("/interactions", &body).await;
    let answer = json_ok(response, reqwest::StatusCode::CREATED).await;
    assert_eq!(answer["logged"], 3, "{answer:#}");
    assert_eq!(answer["unknown_items"], json!(["nope"]), "{answer:#}");
}
