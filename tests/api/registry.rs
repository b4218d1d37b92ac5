//! The model registry: versions, cards, aliases, deletion.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// An app with two versions of `churn`.
async fn two_versions() -> TestApp {
    let app = spawn_app().await;
    let first = train_churn(&app, "churn", 41).await;
    assert_eq!(first["version"], 1);
    let second = train_churn(&app, "churn", 42).await;
    assert_eq!(second["version"], 2);
    app
}

async fn served_version(app: &TestApp, extra: Value) -> u64 {
    let mut body =
        json!({"model": "churn", "instances": [churn_instance(12, "basic", true, 40.0)]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let answer = app.predict(&body).await;
    answer["version"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_training_adds_version_2_listed_with_latest_version_and_aliases() {
    let app = two_versions().await;
    app.put_json("/models/churn/aliases/staging", &json!({"version": 1}))
        .await
        .error_for_status()
        .unwrap();

    let list = app.get_ok("/models").await;
    let models = list["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    let model = &models[0];
    assert_eq!(model["name"], "churn");
    assert_eq!(model["kind"], "tabular");
    assert_eq!(model["task"], "classification");
    assert_eq!(model["latest_version"], 2);
    assert_eq!(model["serving_version"], 2);
    assert_eq!(model["versions"], json!([1, 2]));
    assert_eq!(model["aliases"], json!({"staging": 1}));
    assert!(model["metrics"]["accuracy"].is_number(), "{model:#}");

    let one = app.get_ok("/models/churn").await;
    assert_eq!(&one, model);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_card_has_params_metrics_history_schema_and_a_sha256_fingerprint() {
    let app = spawn_app().await;
    let rows = churn_rows(240, 43);
    let done = app
        .train(&train_request(
            "churn",
            "churned",
            rows.clone(),
            tiny_params(4),
        ))
        .await;
    let card = app.get_ok("/models/churn/versions/1").await;

    assert_eq!(card["name"], "churn");
    assert_eq!(card["version"], 1);
    assert_eq!(card["kind"], "tabular");
    assert_eq!(card["task"], "classification");
    assert_eq!(card["job_id"], done["id"]);
    assert_eq!(card["params"]["epochs"], 4);
    assert_eq!(card["params"]["hidden_layers"], json!([8]));
    assert_eq!(card["metrics"], done["metrics"]);
    assert_eq!(card["history"].as_array().unwrap().len(), 4);
    let schema_columns: Vec<&str> = card["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for column in CHURN_COLUMNS {
        assert!(
            schema_columns.contains(&column),
            "{column} missing from {schema_columns:?}"
        );
    }
    assert_eq!(card["schema"]["rows"], 240);
    let sha = card["fingerprint"]["sha256"].as_str().expect("no sha256");
    assert_eq!(sha.len(), 64);
    assert!(
        sha.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{sha}"
    );
    assert_eq!(card["fingerprint"]["rows"], 240);
    assert_eq!(card["fingerprint"]["columns"], 5);

    // The same data gives the same fingerprint.
    app.train(&train_request("churn", "churned", rows, tiny_params(2)))
        .await;
    let card2 = app.get_ok("/models/churn/versions/2").await;
    assert_eq!(card2["fingerprint"]["sha256"], sha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_alias_rolls_serving_back_and_deleting_it_serves_the_latest_again() {
    let app = two_versions().await;
    assert_eq!(served_version(&app, json!({})).await, 2);

    let response = app
        .put_json("/models/churn/aliases/production", &json!({"version": 1}))
        .await;
    let alias = json_ok(response, StatusCode::OK).await;
    assert_eq!(
        alias,
        json!({"model": "churn", "alias": "production", "version": 1})
    );
    assert_eq!(served_version(&app, json!({})).await, 1);
    let model = app.get_ok("/models/churn").await;
    assert_eq!(model["serving_version"], 1);
    assert_eq!(model["latest_version"], 2);
    assert_eq!(
        served_version(&app, json!({"alias": "production"})).await,
        1
    );

    let response = app.delete("/models/churn/aliases/production").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(served_version(&app, json!({})).await, 2);
    let response = app.delete("/models/churn/aliases/production").await;
    assert_problem(response, 404, Some("alias_not_found")).await;
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "alias": "production", "instances": [churn_instance(1, "pro", true, 20.0)]}),
        )
        .await;
    assert_problem(response, 404, Some("alias_not_found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_version_in_predict_wins_over_the_alias() {
    let app = two_versions().await;
    app.put_json("/models/churn/aliases/production", &json!({"version": 1}))
        .await
        .error_for_status()
        .unwrap();
    assert_eq!(served_version(&app, json!({"version": 2})).await, 2);
    assert_eq!(served_version(&app, json!({})).await, 1);

    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "version": 2, "alias": "production",
                    "instances": [churn_instance(1, "pro", true, 20.0)]}),
        )
        .await;
    assert_problem(response, 422, Some("version_and_alias")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_to_a_missing_version_is_404() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 44).await;
    let response = app
        .put_json("/models/churn/aliases/production", &json!({"version": 9}))
        .await;
    assert_problem(response, 404, Some("version_not_found")).await;
    let response = app
        .put_json("/models/nope/aliases/production", &json!({"version": 1}))
        .await;
    assert_problem(response, 404, Some("model_not_found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_aliased_version_is_409() {
    let app = two_versions().await;
    app.put_json("/models/churn/aliases/production", &json!({"version": 1}))
        .await
        .error_for_status()
        .unwrap();
    let response = app.delete("/models/churn/versions/1").await;
    let problem = assert_problem(response, 409, Some("version_aliased")).await;
    assert!(detail(&problem).contains("production"), "{problem:#}");
    app.get_ok("/models/churn/versions/1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_unaliased_version_answers_204_and_then_404() {
    let app = two_versions().await;
    // Load version 1 so the deletion must also drop it from memory.
    assert_eq!(served_version(&app, json!({"version": 1})).await, 1);

    let response = app.delete("/models/churn/versions/1").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let response = app.get("/models/churn/versions/1").await;
    assert_problem(response, 404, Some("version_not_found")).await;
    let response = app.delete("/models/churn/versions/1").await;
    assert_problem(response, 404, Some("version_not_found")).await;
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "version": 1, "instances": [churn_instance(1, "pro", true, 20.0)]}),
        )
        .await;
    assert_problem(response, 404, Some("version_not_found")).await;

    let model = app.get_ok("/models/churn").await;
    assert_eq!(model["versions"], json!([2]));
    assert_eq!(served_version(&app, json!({})).await, 2);

    // Version numbers are not reused while a later version exists.
    let third = train_churn(&app, "churn", 45).await;
    assert_eq!(third["version"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_versions_beyond_the_retention_are_deleted_unless_aliased() {
    let app = spawn_app_with(|s| s.store.retain_versions = 1).await;
    train_churn(&app, "churn", 46).await;
    app.put_json("/models/churn/aliases/production", &json!({"version": 1}))
        .await
        .error_for_status()
        .unwrap();
    train_churn(&app, "churn", 47).await;
    train_churn(&app, "churn", 48).await;
    let model = app.get_ok("/models/churn").await;
    assert_eq!(model["versions"], json!([1, 3]), "{model:#}");
}
