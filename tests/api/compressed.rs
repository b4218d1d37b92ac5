//! Compressed serving over HTTP: the precision a request names answers, the
//! card records what compressing costs, an over-budget copy is refused.

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_names_the_precision_and_the_card_records_its_cost() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 71).await;
    let card = app.get_ok("/models/churn/versions/1").await;
    let compression = &card["compression"];
    let f32_bytes = compression["f32_bytes"].as_u64().unwrap();
    assert!(
        compression["int8"]["bytes"].as_u64().unwrap() < f32_bytes,
        "{card:#}"
    );
    assert!(
        compression["f16"]["bytes"].as_u64().unwrap() < f32_bytes,
        "{card:#}"
    );
    assert!(compression["int8"]["accuracy_drop"].is_number(), "{card:#}");

    let instances: Vec<_> = (0..20)
        .map(|i| {
            churn_instance(
                i * 3,
                ["basic", "pro", "standard"][i as usize % 3],
                i % 2 == 0,
                40.0 + i as f64,
            )
        })
        .collect();
    let plain = app
        .predict(&json!({"model": "churn", "instances": instances}))
        .await;
    assert!(plain.get("precision").is_none(), "{plain:#}");
    for precision in ["f32", "f16", "int8"] {
        let answer = app
            .predict(&json!({"model": "churn", "instances": instances, "precision": precision}))
            .await;
        let drop = compression[precision]["accuracy_drop"]
            .as_f64()
            .unwrap_or(0.0);
        let expected = if drop > 0.01 { "f32" } else { precision };
        assert_eq!(answer["precision"], expected, "{answer:#}");
        for (a, b) in answer["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(plain["predictions"].as_array().unwrap())
        {
            for label in ["yes", "no"] {
                let (p, q) = (
                    a["probabilities"][label].as_f64().unwrap(),
                    b["probabilities"][label].as_f64().unwrap(),
                );
                assert!((p - q).abs() < 0.05, "{precision}: {a} vs {b}");
            }
        }
    }
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": instances, "precision": "int4"}),
        )
        .await;
    assert_problem(response, 422, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_precision_applies_and_an_over_budget_copy_is_refused() {
    // A negative drop never happens, so a budget below every drop refuses: use a
    // model whose copy lost accuracy, or else check the configured precision answers.
    let app = spawn_app_with(|s| {
        s.serving.precision = myelin::tabular::Precision::Int8;
        s.serving.max_accuracy_drop = 0.0;
    })
    .await;
    train_churn(&app, "churn", 72).await;
    let card = app.get_ok("/models/churn/versions/1").await;
    let drop = card["compression"]["int8"]["accuracy_drop"]
        .as_f64()
        .unwrap();
    let answer = app
        .predict(&json!({"model": "churn", "instances": [churn_instance(5, "basic", false, 30.0)]}))
        .await;
    let expected = if drop > 0.0 { "f32" } else { "int8" };
    assert_eq!(answer["precision"], expected, "drop {drop}: {answer:#}");
}
