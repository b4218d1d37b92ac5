//! Recommendations with item and user attributes: filters, returned attributes,
//! cold-start items, segment popularity, and their errors.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::recommend::{
    cluster_of, interaction_rows, items_of, recommend, recommend_params, CLUSTERS, ITEMS, USERS,
};

/// Item attributes: `genre` is the item's cluster, `brand` cycles over three brands;
/// `new1` and `new2` are items nobody interacted with yet.
fn item_rows() -> Vec<Value> {
    let mut rows: Vec<Value> = (0..ITEMS)
        .map(|i| {
            json!({
                "item_id": format!("i{i}"),
                "genre": format!("g{}", i / (ITEMS / CLUSTERS)),
                "brand": format!("b{}", i % 3),
            })
        })
        .collect();
    rows.push(json!({"item_id": "new1", "genre": "g1", "brand": "b0"}));
    rows.push(json!({"item_id": "new2", "genre": "g2", "brand": "b9"}));
    rows
}

/// User attributes as CSV: the segment is the user's cluster; `fresh` has no history.
fn user_csv() -> String {
    let mut csv = String::from("user_id,segment\n");
    for u in 0..USERS {
        csv.push_str(&format!("u{u},s{}\n", u % CLUSTERS));
    }
    csv.push_str("fresh,s3\n");
    csv
}

async fn train_with_attributes(app: &TestApp) -> Value {
    app.train(&json!({
        "model": "shop",
        "task": "recommendation",
        "params": recommend_params(),
        "data": interaction_rows(7),
        "item_attributes": {"data": item_rows()},
        "user_attributes": {"csv": user_csv()},
    }))
    .await
}

fn genre(item: &Value) -> &str {
    item["attributes"]["genre"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_included_attributes_follow_the_item_table() {
    let app = spawn_app().await;
    train_with_attributes(&app).await;
    let card = app.get_ok("/models/shop/versions/1").await;
    assert_eq!(card["recommender"]["cold_items"], 2, "{card:#}");

    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "u1", "k": 5, "filter": {"genre": "g2"},
               "include_attributes": true}),
    )
    .await;
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{answer:#}");
    assert!(items.iter().all(|i| genre(i) == "g2"), "{answer:#}");

    // A list of values, and two clauses that must both hold.
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "u1", "k": 20,
               "filter": {"genre": ["g0", "g3"], "brand": "b1"}, "include_attributes": true}),
    )
    .await;
    let items = answer["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{answer:#}");
    for item in items {
        assert!(["g0", "g3"].contains(&genre(item)), "{answer:#}");
        assert_eq!(item["attributes"]["brand"], "b1", "{answer:#}");
    }

    // Without include_attributes no attributes are sent; a value nobody has matches nothing.
    let answer = recommend(&app, json!({"model": "shop", "user": "u1", "k": 3})).await;
    assert!(answer["items"][0].get("attributes").is_none(), "{answer:#}");
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "u1", "filter": {"genre": "g9"}}),
    )
    .await;
    assert_eq!(answer["items"], json!([]), "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_items_are_scored_from_items_with_similar_attributes() {
    let app = spawn_app().await;
    train_with_attributes(&app).await;

    // For a cluster-1 user, the new cluster-1 item outranks the new cluster-2 item.
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "u1", "k": 2, "candidates": ["new2", "new1"]}),
    )
    .await;
    assert_eq!(items_of(&answer), ["new1", "new2"], "{answer:#}");
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "u2", "k": 2, "candidates": ["new1", "new2"]}),
    )
    .await;
    assert_eq!(items_of(&answer), ["new2", "new1"], "{answer:#}");

    // A cold item is known: it can be in a history, it is not listed as unknown, and
    // its similar items come from its genre.
    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "someone", "history": ["new2"], "k": 4}),
    )
    .await;
    assert_eq!(answer["strategy"], "history", "{answer:#}");
    assert_eq!(answer["unknown_items"], json!([]), "{answer:#}");
    let items = items_of(&answer);
    assert!(
        items
            .iter()
            .filter(|i| i.starts_with('i') && cluster_of(i) == 2)
            .count()
            >= 3,
        "{answer:#}"
    );
    // new1 is (g1, b0): the warm items sharing both values come first.
    let similar = app.get_ok("/models/shop/items/new1/similar?k=3").await;
    let mut items = items_of(&similar);
    items.sort();
    assert_eq!(items, ["i12", "i15", "i18"], "{similar:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_history_gets_the_popular_items_of_their_segment() {
    let app = spawn_app().await;
    train_with_attributes(&app).await;
    let answer = app.get_ok("/recommend?model=shop&user=fresh&k=5").await;
    assert_eq!(answer["strategy"], "popular", "{answer:#}");
    let items = items_of(&answer);
    assert_eq!(items.len(), 5, "{answer:#}");
    assert!(
        items
            .iter()
            .all(|i| i.starts_with('i') && cluster_of(i) == 3),
        "segment s3 interacts with cluster 3 only: {answer:#}"
    );
    // Someone in no segment gets overall popularity (any cluster).
    let answer = app.get_ok("/recommend?model=shop&user=nobody&k=5").await;
    assert_eq!(answer["strategy"], "popular", "{answer:#}");
    assert_eq!(items_of(&answer).len(), 5, "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_attribute_tables_and_filters_are_refused_by_name() {
    let app = spawn_app().await;
    let base = json!({
        "model": "shop",
        "task": "recommendation",
        "params": recommend_params(),
        "data": interaction_rows(7),
    });
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (
            with(
                "item_attributes",
                json!({"data": [{"sku": "i1", "genre": "g"}]}),
            ),
            "item_id",
        ),
        (
            with(
                "item_attributes",
                json!({"data": [{"item_id": "i1", "genre": "g"}, {"item_id": "i1", "genre": "h"}]}),
            ),
            "row 2",
        ),
        (
            with(
                "user_attributes",
                json!({"csv": "user_id,segment\nu1,a\n", "data": []}),
            ),
            "exactly one of",
        ),
        (
            with(
                "item_attributes",
                json!({"data": [{"item_id": "i1", "genre": "g"}], "columns": ["colour"]}),
            ),
            "colour",
        ),
    ];
    for (body, needle) in cases {
        let problem = assert_problem(app.post_json("/train", &body).await, 422, None).await;
        assert!(detail(&problem).contains(needle), "{needle}: {problem:#}");
    }
    let tabular = json!({"model": "t", "target": "y", "data": [{"x": 1, "y": 2}],
                         "item_attributes": {"data": [{"item_id": "i1", "genre": "g"}]}});
    let problem = assert_problem(app.post_json("/train", &tabular).await, 422, None).await;
    assert!(detail(&problem).contains("recommendation"), "{problem:#}");

    // Filters: a model without attributes, an unknown attribute, a bad value.
    app.train(&base).await;
    let problem = assert_problem(
        app.post_json(
            "/recommend",
            &json!({"model": "shop", "user": "u1", "filter": {"genre": "g1"}}),
        )
        .await,
        422,
        Some("invalid_filter"),
    )
    .await;
    assert!(detail(&problem).contains("item attributes"), "{problem:#}");
    let mut attributed = base.clone();
    attributed["model"] = json!("shop2");
    attributed["item_attributes"] = json!({"data": item_rows()});
    app.train(&attributed).await;
    let problem = assert_problem(
        app.post_json(
            "/recommend",
            &json!({"model": "shop2", "user": "u1", "filter": {"colour": "red"}}),
        )
        .await,
        422,
        Some("invalid_filter"),
    )
    .await;
    assert!(detail(&problem).contains("colour"), "{problem:#}");
    let problem = assert_problem(
        app.post_json(
            "/recommend",
            &json!({"model": "shop2", "user": "u1", "filter": {"genre": {"a": 1}}}),
        )
        .await,
        422,
        Some("invalid_filter"),
    )
    .await;
    assert_eq!(problem["field"], "filter.genre", "{problem:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_attribute_table_is_kept_while_a_job_needs_it() {
    let app = spawn_app().await;
    let blocker = submit_long(&app, "blocker").await;
    let mut csv = String::from("item_id,genre\n");
    for i in 0..ITEMS {
        csv.push_str(&format!("i{i},g{}\n", i / (ITEMS / CLUSTERS)));
    }
    csv.push_str("new1,g1\n");
    let response = app.post_raw("/datasets", "text/csv", csv).await;
    let meta = json_ok(response, reqwest::StatusCode::CREATED).await;
    let id = meta["id"].as_str().unwrap().to_string();
    let queued = app
        .submit(&json!({
            "model": "shop",
            "task": "recommendation",
            "params": recommend_params(),
            "data": interaction_rows(7),
            "item_attributes": {"dataset": id},
        }))
        .await;
    assert_eq!(queued["status"], "queued");
    let response = app.delete(&format!("/datasets/{id}")).await;
    assert_problem(response, 409, Some("dataset_in_use")).await;

    app.delete(&format!("/jobs/{}", job_id(&blocker))).await;
    let done = app.wait_for_job(job_id(&queued)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let card = app.get_ok("/models/shop/versions/1").await;
    assert_eq!(card["recommender"]["cold_items"], 1, "{card:#}");
    let response = app.delete(&format!("/datasets/{id}")).await;
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
}

/// Score of each returned item.
fn scores_of(answer: &Value) -> std::collections::HashMap<String, f64> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item"].as_str().unwrap().to_string(),
                i["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_attributes_are_inputs_of_the_item_item_model_for_known_users() {
    let app = spawn_app().await;
    app.train(&json!({
        "model": "tastes",
        "task": "recommendation",
        "params": {"component": "ease", "user_attribute_weight": 1.0, "recency_power": 0.0},
        "data": interaction_rows(7),
        "item_attributes": {"data": item_rows()},
        "user_attributes": {"csv": user_csv()},
    }))
    .await;
    let card = app.get_ok("/models/tastes/versions/1").await;
    let spec = &card["recommender"];
    assert_eq!(spec["user_features"], CLUSTERS, "{card:#}");
    assert_eq!(spec["user_attribute_weight"], 1.0, "{card:#}");
    assert!(spec["attribute_weight"].is_number(), "{card:#}");

    // u1's own items, posted as a history without the user: the same items, no segment.
    let own: Vec<String> = interaction_rows(7)
        .into_iter()
        .filter(|r| r["user_id"] == "u1")
        .map(|r| r["item_id"].as_str().unwrap().to_string())
        .collect();
    let known = recommend(&app, json!({"model": "tastes", "user": "u1", "k": 40})).await;
    let posted = recommend(&app, json!({"model": "tastes", "history": own, "k": 40})).await;
    assert_eq!(known["strategy"], "personalized", "{known:#}");
    assert_eq!(posted["strategy"], "history", "{posted:#}");
    assert_eq!(items_of(&known).len(), items_of(&posted).len());
    // u1's segment is cluster 1: its items gain, the others barely move.
    let (with, without) = (scores_of(&known), scores_of(&posted));
    let lift = |cluster: usize| {
        let gains: Vec<f64> = with
            .iter()
            .filter(|(item, _)| item.starts_with('i') && cluster_of(item) == cluster)
            .map(|(item, s)| s - without[item])
            .collect();
        gains.iter().sum::<f64>() / gains.len().max(1) as f64
    };
    assert!(lift(1) > 0.01, "{known:#} {posted:#}");
    for other in [0, 2, 3] {
        assert!(
            lift(1) > 3.0 * lift(other).abs(),
            "cluster {other}: {known:#} {posted:#}"
        );
    }
}
