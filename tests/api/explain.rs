//! Explanations over HTTP: completeness, the card's baseline, text tokens,
//! image pixel maps, and refusals.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn explain(app: &TestApp, path: &str, body: &Value) -> Value {
    json_ok(app.post_json(path, body).await, StatusCode::OK).await
}

fn assert_complete(e: &Value) {
    let total: f64 = e["attributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attribution"].as_f64().unwrap())
        .sum();
    let prediction = e["prediction"].as_f64().unwrap();
    let base = e["base_value"].as_f64().unwrap();
    assert!(
        (base + total - prediction).abs() <= 0.01 * (prediction - base).abs() + 1e-6,
        "{e:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explanations_add_up_and_explain_the_predicted_probability() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 61).await;
    let rows = churn_rows(30, 7);
    let instances: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("churned");
            r
        })
        .collect();
    let answer = explain(
        &app,
        "/explain",
        &json!({"model": "churn", "instances": instances, "steps": 32}),
    )
    .await;
    let predicted = app
        .predict(&json!({"model": "churn", "instances": instances}))
        .await;
    assert_eq!(answer["version"], 1);
    let explanations = answer["explanations"].as_array().unwrap();
    assert_eq!(explanations.len(), 30);
    for (e, p) in explanations
        .iter()
        .zip(predicted["predictions"].as_array().unwrap())
    {
        assert_complete(e);
        assert_eq!(e["class"], p["label"], "{e:#}");
        let label = p["label"].as_str().unwrap();
        let probability = p["probabilities"][label].as_f64().unwrap();
        assert!((probability - e["prediction"].as_f64().unwrap()).abs() < 1e-5);
        let columns: Vec<&str> = e["attributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["column"].as_str().unwrap())
            .collect();
        let mut sorted = columns.clone();
        sorted.sort();
        assert_eq!(sorted, ["autopay", "monthly", "plan", "tenure"], "{e:#}");
        assert!(e["steps"].as_u64().unwrap() >= 32);
    }
    // A named class, on the named route.
    let answer = explain(
        &app,
        "/models/churn/explain",
        &json!({"instances": [instances[0]], "class": "yes"}),
    )
    .await;
    assert_eq!(answer["explanations"][0]["class"], "yes");
    assert_complete(&answer["explanations"][0]);
    // The baseline is stored in the card.
    let card = app.get_ok("/models/churn/versions/1").await;
    for column in ["tenure", "plan", "monthly", "autopay"] {
        assert!(!card["baseline"][column].is_null(), "{card:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_explanations_are_in_target_units() {
    let app = spawn_app().await;
    app.train(&train_request(
        "prices",
        "y",
        regression_rows(300, 3),
        tiny_params(30),
    ))
    .await;
    let answer = explain(
        &app,
        "/explain",
        &json!({"model": "prices", "instances": [{"x1": 9.0, "x2": 0.5, "region": "north"}]}),
    )
    .await;
    let e = &answer["explanations"][0];
    assert!(e.get("class").is_none(), "{e:#}");
    assert_complete(e);
    let predicted = app
        .predict(
            &json!({"model": "prices", "instances": [{"x1": 9.0, "x2": 0.5, "region": "north"}]}),
        )
        .await;
    let value = predicted["predictions"][0]["value"].as_f64().unwrap();
    assert!((value - e["prediction"].as_f64().unwrap()).abs() < 1e-3 * value.abs().max(1.0));
    // x1 (weight 3, far above its mean) explains the most.
    assert_eq!(e["attributions"][0]["column"], "x1", "{e:#}");
    assert!(e["attributions"][0]["attribution"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_columns_list_their_top_tokens_and_images_a_pixel_map() {
    let app = spawn_app().await;
    let words = ["great", "awful", "fine", "terrible", "lovely", "broken"];
    let rows: Vec<Value> = (0..120)
        .map(|i| {
            let word = words[i % words.len()];
            let good = matches!(word, "great" | "fine" | "lovely");
            json!({"review": format!("the item was {word} and arrived {}", i % 7),
                   "stars": (i % 5) as f64, "good": if good { "yes" } else { "no" }})
        })
        .collect();
    app.train(
        &json!({"model": "reviews", "target": "good", "columns": {"review": "text"},
                      "params": tiny_params(30), "data": rows}),
    )
    .await;
    let answer = explain(
        &app,
        "/explain",
        &json!({"model": "reviews", "instances": [{"review": "the item was awful", "stars": 2}]}),
    )
    .await;
    let e = &answer["explanations"][0];
    assert_complete(e);
    let review = e["attributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["column"] == "review")
        .unwrap();
    let tokens = review["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty(), "{e:#}");
    assert!(
        tokens
            .iter()
            .any(|t| t["token"].as_str().unwrap().contains("awful")),
        "{e:#}"
    );

    let images = pixel_shape_rows(90);
    app.train(&json!({
        "model": "tiny-pixels", "target": "shape", "columns": {"pixels": "image"},
        "params": tiny_params(20),
        "pipeline": {"image": {"width": 4, "height": 4, "pixel_max": 9,
                               "pixels": {"width": 4, "height": 4, "channels": 1}}},
        "data": images.clone()}))
        .await;
    let answer = explain(
        &app,
        "/explain",
        &json!({"model": "tiny-pixels", "instances": [{"pixels": images[4]["pixels"]}], "pixel_map": true}),
    )
    .await;
    let e = &answer["explanations"][0];
    assert_complete(e);
    let map = e["attributions"][0]["pixels"].as_array().unwrap();
    assert_eq!(map.len(), 4);
    assert!(map.iter().all(|row| row.as_array().unwrap().len() == 4));
    let total: f64 = map
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .sum();
    let column = e["attributions"][0]["attribution"].as_f64().unwrap();
    assert!(
        (total - column).abs() < 1e-3 * column.abs().max(1e-3),
        "{e:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_explanation_requests_answer_problems_naming_the_field() {
    let app = spawn_app_with(|s| s.limits.max_instances = 3).await;
    train_churn(&app, "churn", 62).await;
    let one = churn_instance(10, "basic", true, 50.0);
    let problem = assert_problem(
        app.post_json(
            "/explain",
            &json!({"model": "churn", "instances": [one], "class": "maybe"}),
        )
        .await,
        422,
        Some("invalid_class"),
    )
    .await;
    assert_eq!(problem["field"], "class");
    assert!(detail(&problem).contains("maybe"));
    let problem = assert_problem(
        app.post_json(
            "/explain",
            &json!({"model": "churn", "instances": [one], "steps": 0}),
        )
        .await,
        422,
        Some("invalid_parameter"),
    )
    .await;
    assert_eq!(problem["field"], "steps");
    let problem = assert_problem(
        app.post_json(
            "/explain",
            &json!({"model": "churn", "instances": [{"tenure": 3}]}),
        )
        .await,
        422,
        Some("missing_field"),
    )
    .await;
    assert_eq!(problem["instance_index"], 0);
    assert_problem(
        app.post_json(
            "/explain",
            &json!({"model": "churn", "instances": [one, one, one, one]}),
        )
        .await,
        413,
        Some("too_many_instances"),
    )
    .await;
    assert_problem(
        app.post_json("/explain", &json!({"model": "nope", "instances": [one]}))
            .await,
        404,
        Some("model_not_found"),
    )
    .await;
}
