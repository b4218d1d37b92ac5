//! Prediction on raw records: validation of instances, unknown fields, limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_returns_422_naming_the_instance_and_field_when_a_field_is_missing() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 51).await;
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": [
                churn_instance(10, "basic", true, 50.0),
                {"tenure": 10, "plan": "basic", "autopay": true}
            ]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("missing_field")).await;
    assert_eq!(problem["instance_index"], 1);
    assert_eq!(problem["field"], "monthly");
    assert!(detail(&problem).contains("monthly"), "{problem:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_returns_422_naming_the_field_when_a_value_has_the_wrong_type() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 52).await;
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": [
                {"tenure": "a long time", "plan": "basic", "autopay": true, "monthly": 50.0}
            ]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("wrong_type")).await;
    assert_eq!(problem["instance_index"], 0);
    assert_eq!(problem["field"], "tenure");

    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": [
                {"tenure": 3, "plan": ["basic"], "autopay": true, "monthly": 50.0}
            ]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("wrong_type")).await;
    assert_eq!(problem["field"], "plan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_values_are_treated_as_missing_not_as_errors() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 53).await;
    let answer = app
        .predict(&json!({"model": "churn", "instances": [
            {"tenure": null, "plan": null, "autopay": null, "monthly": null}
        ]}))
        .await;
    assert!(answer["predictions"][0]["label"].is_string(), "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_in_instances_are_ignored_and_listed() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 54).await;
    let mut first = churn_instance(10, "basic", true, 50.0);
    first["customer_id"] = json!("c-17");
    first["churned"] = json!("no");
    let mut second = churn_instance(40, "pro", false, 70.0);
    second["zip"] = json!(12345);
    let plain = app
        .predict(&json!({"model": "churn", "instances": [churn_instance(10, "basic", true, 50.0)]}))
        .await;

    let answer = app
        .predict(&json!({"model": "churn", "instances": [first, second]}))
        .await;
    assert_eq!(
        answer["ignored_fields"],
        json!(["churned", "customer_id", "zip"])
    );
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 2);
    // Ignored fields do not change the prediction.
    assert_eq!(answer["predictions"][0], plain["predictions"][0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_instances_is_413_with_the_limit() {
    let app = spawn_app_with(|s| s.limits.max_instances = 3).await;
    train_churn(&app, "churn", 55).await;
    let instance = churn_instance(10, "basic", true, 50.0);
    let ok = app
        .predict(&json!({"model": "churn", "instances": [instance, instance, instance]}))
        .await;
    assert_eq!(ok["predictions"].as_array().unwrap().len(), 3);

    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": [instance, instance, instance, instance]}),
        )
        .await;
    let problem = assert_problem(response, 413, Some("too_many_instances")).await;
    assert_eq!(problem["limit"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_inline_limit_is_predicted_in_order() {
    let app = spawn_app_with(|s| s.limits.inline_predict_instances = 2).await;
    train_churn(&app, "churn", 56).await;
    let instances: Vec<_> = (0..20)
        .map(|i| {
            churn_instance(
                1 + i * 3,
                if i % 2 == 0 { "basic" } else { "pro" },
                i % 3 == 0,
                30.0 + i as f64,
            )
        })
        .collect();
    let batch = app
        .predict(&json!({"model": "churn", "instances": instances}))
        .await;
    let predictions = batch["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 20);
    for (i, instance) in instances.iter().enumerate().step_by(7) {
        let one = app
            .predict(&json!({"model": "churn", "instances": [instance]}))
            .await;
        let single = &one["predictions"][0];
        assert_eq!(single["label"], predictions[i]["label"], "instance {i}");
        for (label, p) in single["probabilities"].as_object().unwrap() {
            let batched = predictions[i]["probabilities"][label].as_f64().unwrap();
            assert!(
                (p.as_f64().unwrap() - batched).abs() < 1e-5,
                "instance {i}: {single} vs {}",
                predictions[i]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_instances_and_a_missing_model_are_422() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 57).await;
    let response = app
        .post_json("/predict", &json!({"model": "churn", "instances": []}))
        .await;
    assert_problem(response, 422, Some("no_instances")).await;
    let response = app
        .post_json(
            "/predict",
            &json!({"instances": [churn_instance(1, "pro", true, 20.0)]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("missing_field")).await;
    assert_eq!(problem["field"], "model");
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": [], "extra": 1}),
        )
        .await;
    assert_problem(response, 422, Some("invalid_body")).await;
    let response = app
        .post_json("/models/churn/predict", &json!({"instances": "x"}))
        .await;
    assert_problem(response, 422, Some("invalid_body")).await;
    let ok = app
        .post_json(
            "/models/churn/predict",
            &json!({"instances": [churn_instance(1, "pro", true, 20.0)]}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_values_given_as_text_predict_like_typed_values_and_unseen_categories_are_accepted() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 58).await;
    let typed = app
        .predict(&json!({"model": "churn", "instances": [churn_instance(10, "basic", true, 50.0)]}))
        .await;
    let text = app
        .predict(&json!({"model": "churn", "instances": [
            {"tenure": "10", "plan": "basic", "autopay": "yes", "monthly": "50.0"}
        ]}))
        .await;
    assert_eq!(text["predictions"], typed["predictions"]);

    let unseen = app
        .predict(
            &json!({"model": "churn", "instances": [churn_instance(10, "enterprise", true, 50.0)]}),
        )
        .await;
    assert!(unseen["predictions"][0]["label"].is_string(), "{unseen:#}");

    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": [
                {"tenure": 10, "plan": "basic", "autopay": "sometimes", "monthly": 50.0}
            ]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("wrong_type")).await;
    assert_eq!(problem["field"], "autopay");
}
