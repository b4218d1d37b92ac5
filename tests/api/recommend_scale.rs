//! Recommenders at scale: the validation protocol (`params.holdout`) and the stage times
//! of a job, and the inverted-file index of large catalogs (filters, exclusions,
//! candidates, a restart).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::recommend::{cluster_of, interaction_rows, items_of, recommend, recommend_params};

/// The interaction rows with a timestamp each (user by user, in row order).
fn timestamped_rows() -> Vec<Value> {
    interaction_rows(7)
        .into_iter()
        .enumerate()
        .map(|(t, mut row)| {
            row["timestamp"] = json!(1_700_000_000 + 60 * t as i64);
            row
        })
        .collect()
}

async fn train_timestamped(app: &TestApp, model: &str, holdout: Option<&str>) -> Value {
    let mut params = recommend_params();
    if let Some(holdout) = holdout {
        params["holdout"] = json!(holdout);
    }
    app.train(&json!({
        "model": model,
        "task": "recommendation",
        "interaction_columns": {"user": "user_id", "item": "item_id", "timestamp": "timestamp"},
        "params": params,
        "data": timestamped_rows(),
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamped_job_records_its_holdout_and_the_time_of_every_stage() {
    let app = spawn_app().await;
    let job = train_timestamped(&app, "auto", None).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let stages = job["stages"].as_array().expect("stages");
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    for expected in [
        "prepare",
        "autoencoder (validation",
        "selection",
        "autoencoder (refit",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "{expected} in {names:?}"
        );
    }
    assert!(
        stages
            .iter()
            .all(|s| s["wall_secs"].as_f64().unwrap() >= 0.0
                && s["cpu_secs"].as_f64().unwrap() >= 0.0)
    );
    let card = app.get_ok("/models/auto/versions/1").await;
    let used = card["recommender"]["holdout_used"]
        .as_str()
        .expect("holdout_used");
    assert!(["temporal", "random"].contains(&used), "{card:#}");
    assert_eq!(job["metrics"]["holdout"], used, "{job:#}");
    assert_eq!(card["recommender"]["params"]["holdout"], "auto");

    for (asked, used) in [
        ("temporal", "temporal"),
        ("last", "temporal"),
        ("random", "random"),
    ] {
        let job = train_timestamped(&app, asked, Some(asked)).await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
        let card = app.get_ok(&format!("/models/{asked}/versions/1")).await;
        assert_eq!(
            card["recommender"]["holdout_used"], used,
            "{asked}: {card:#}"
        );
        assert_eq!(job["metrics"]["holdout"], used, "{asked}: {job:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_holdout_answers_422_naming_the_parameter() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/train",
            &json!({
                "model": "bad",
                "task": "recommendation",
                "params": {"holdout": "sideways"},
                "data": interaction_rows(7),
            }),
        )
        .await;
    let problem = assert_problem(response, 422, Some("invalid_parameter")).await;
    assert!(detail(&problem).contains("params.holdout"), "{problem:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_over_the_exact_limit_serves_through_its_index_and_keeps_every_rule() {
    let store = tempfile::tempdir().unwrap();
    let small = |s: &mut myelin::config::Settings| {
        s.recommend.exact_max_items = 20;
        s.recommend.index_probes = 2;
    };
    let app = spawn_app_on(store.path(), small).await;
    let mut params = recommend_params();
    params["component"] = json!("dae");
    params["hidden"] = json!(8);
    let job = app
        .train(&json!({
            "model": "big",
            "task": "recommendation",
            "params": params,
            "data": interaction_rows(7),
        }))
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let stages: Vec<&str> = job["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert!(stages.iter().any(|s| s.starts_with("index")), "{stages:?}");
    let card = app.get_ok("/models/big/versions/1").await;
    let lists = card["recommender"]["index_lists"]
        .as_u64()
        .expect("index_lists");
    assert!(lists >= 2, "{card:#}");
    assert_eq!(card["recommender"]["index_probes"], 2);

    let seen: BTreeSet<String> = interaction_rows(7)
        .into_iter()
        .filter(|r| r["user_id"] == "u1")
        .map(|r| r["item_id"].as_str().unwrap().to_string())
        .collect();
    let check = |answer: &Value| {
        let items = items_of(answer);
        assert_eq!(items.len(), 5, "{answer:#}");
        assert!(items.iter().all(|i| !seen.contains(i)), "{answer:#}");
        assert_eq!(answer["strategy"], "personalized", "{answer:#}");
    };
    let before = recommend(&app, json!({"model": "big", "user": "u1", "k": 5})).await;
    check(&before);
    // Exclusions beyond the probed lists: more lists are probed until k items remain.
    let excluded: Vec<String> = items_of(&before);
    let answer = recommend(
        &app,
        json!({"model": "big", "user": "u1", "k": 5, "exclude": excluded}),
    )
    .await;
    check(&answer);
    assert!(
        items_of(&answer).iter().all(|i| !excluded.contains(i)),
        "{answer:#}"
    );
    // Candidates are scored exactly, wherever their lists are.
    let candidates = ["i0", "i13", "i25", "i39", "i38", "i12"];
    let answer = recommend(
        &app,
        json!({"model": "big", "user": "u1", "k": 3, "candidates": candidates}),
    )
    .await;
    let items = items_of(&answer);
    assert_eq!(items.len(), 3, "{answer:#}");
    assert!(items
        .iter()
        .all(|i| candidates.contains(&i.as_str()) && !seen.contains(i)));
    // Every list was probed when exclusions demand it: all unseen items come back.
    let all = recommend(&app, json!({"model": "big", "user": "u1", "k": 40})).await;
    assert_eq!(items_of(&all).len(), 40 - seen.len(), "{all:#}");
    assert!(items_of(&all).iter().any(|i| cluster_of(i) == 1));
    app.stop().await;

    // The index is stored with the version: the same answers after a restart.
    let app = spawn_app_on(store.path(), small).await;
    let after = recommend(&app, json!({"model": "big", "user": "u1", "k": 5})).await;
    assert_eq!(items_of(&after), items_of(&before));
}
