//! Data the dashboard shows that the API answers for everyone: a dataset's
//! first rows, a regression's residual histogram, a model's creation time, a
//! user's history beside their recommendations.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::recommend::{interaction_rows, recommend, recommend_params};

#[tokio::test]
async fn an_uploaded_dataset_answers_its_first_five_rows_as_records() {
    let app = spawn_app().await;
    let rows = churn_rows(20, 3);
    let csv = to_csv(&rows, &CHURN_COLUMNS);
    let meta = json_ok(
        app.post_raw("/datasets", "text/csv", csv).await,
        StatusCode::CREATED,
    )
    .await;
    let head = meta["head"].as_array().expect("no head");
    assert_eq!(head.len(), 5);
    for (shown, row) in head.iter().zip(&rows) {
        for column in CHURN_COLUMNS {
            let expected = match &row[column] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(shown[column], json!(expected), "{column} of {shown}");
        }
    }
    let id = meta["id"].as_str().unwrap();
    let again = app.get_ok(&format!("/datasets/{id}")).await;
    assert_eq!(again["head"], meta["head"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_version_has_a_residual_histogram_of_its_validation_rows() {
    let app = spawn_app().await;
    let job = app
        .train(&train_request(
            "price",
            "y",
            regression_rows(200, 5),
            tiny_params(3),
        ))
        .await;
    let card = app.get_ok("/models/price/versions/1").await;
    let metrics = &card["metrics"];
    let histogram = &metrics["residual_histogram"];
    let counts: Vec<u64> = histogram["counts"]
        .as_array()
        .expect("no residual histogram")
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    let edges: Vec<f64> = histogram["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect();
    assert_eq!(edges.len(), counts.len() + 1);
    assert!(edges.windows(2).all(|w| w[0] < w[1]), "{edges:?}");
    assert_eq!(
        counts.iter().sum::<u64>(),
        metrics["rows"].as_u64().unwrap()
    );
    assert_eq!(job["metrics"]["residual_histogram"], *histogram);

    // Classification keeps its confusion matrix and has no histogram.
    train_churn(&app, "churn", 4).await;
    let card = app.get_ok("/models/churn/versions/1").await;
    assert!(card["metrics"]["confusion_matrix"].is_array());
    assert!(card["metrics"].get("residual_histogram").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_list_when_their_latest_version_was_created() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 6).await;
    let card = app.get_ok("/models/churn/versions/1").await;
    let list = app.get_ok("/models").await;
    assert_eq!(list["models"][0]["created_at"], card["created_at"]);
    let model = app.get_ok("/models/churn").await;
    assert_eq!(model["created_at"], card["created_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_answer_the_history_they_came_from_when_asked() {
    let app = spawn_app().await;
    app.train(&json!({
        "model": "shop",
        "task": "recommendation",
        "params": recommend_params(),
        "data": interaction_rows(7),
    }))
    .await;
    let seen: BTreeSet<String> = interaction_rows(7)
        .into_iter()
        .filter(|r| r["user_id"] == "u3")
        .map(|r| r["item_id"].as_str().unwrap().to_string())
        .collect();

    let plain = recommend(&app, json!({"model": "shop", "user": "u3", "k": 3})).await;
    assert!(plain.get("history").is_none(), "{plain:#}");

    let answer = recommend(
        &app,
        json!({"model": "shop", "user": "u3", "k": 3, "include_history": true}),
    )
    .await;
    let history: BTreeSet<String> = answer["history"]
        .as_array()
        .expect("no history")
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(history, seen);

    // A posted history of an unknown user is what the answer came from.
    let answer = recommend(
        &app,
        json!({"model": "shop", "history": ["i1", "i2", "nope"], "include_history": true}),
    )
    .await;
    let items: Vec<&str> = answer["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["i1", "i2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommender_lists_the_users_it_was_trained_on() {
    let app = spawn_app_with(|s| {
        s.auth.keys = vec![
            "read:users-reader-0123456789abcdef".into(),
            "admin+inference:users-admin-0123456789abcdef".into(),
        ];
    })
    .await;
    let admin = "users-admin-0123456789abcdef";
    let reader = "users-reader-0123456789abcdef";
    let job = app
        .client
        .post(app.url("/train"))
        .bearer_auth(admin)
        .json(&json!({
            "model": "shop",
            "task": "recommendation",
            "params": recommend_params(),
            "data": interaction_rows(7),
        }))
        .send()
        .await
        .unwrap();
    let job = json_ok(job, StatusCode::ACCEPTED).await;
    let id = job["id"].as_str().unwrap();
    loop {
        let record: Value = app
            .client
            .get(app.url(&format!("/jobs/{id}")))
            .bearer_auth(reader)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if is_terminal(&record) {
            assert_eq!(record["status"], "succeeded", "{record:#}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let trained: BTreeSet<String> = interaction_rows(7)
        .into_iter()
        .map(|r| r["user_id"].as_str().unwrap().to_string())
        .collect();
    let get = |path: &str, key: &str| app.client.get(app.url(path)).bearer_auth(key).send();

    let all = json_ok(
        get("/models/shop/users?limit=1000", reader).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["total"], trained.len());
    let listed: BTreeSet<String> = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, trained);

    let page = json_ok(
        get("/models/shop/users?limit=5", reader).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["users"].as_array().unwrap().len(), 5);
    assert_eq!(page["version"], 1);

    assert_problem(
        get("/models/shop/users?limit=0", reader).await.unwrap(),
        422,
        Some("invalid_parameter"),
    )
    .await;
    assert_problem(get("/models/nope/users", reader).await.unwrap(), 404, None).await;
    assert_problem(
        app.get("/models/shop/users").await,
        401,
        Some("unauthorized"),
    )
    .await;
}
