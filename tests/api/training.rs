//! Training from every kind of input, then predicting with the result.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_from_inline_rows_answers_202_with_location_then_succeeds_as_version_1() {
    let app = spawn_app().await;
    let request = train_request("churn", "churned", churn_rows(300, 1), tiny_params(6));

    let response = app.post_json("/train", &request).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("202 without Location")
        .to_string();
    let job: Value = response.json().await.unwrap();
    let id = job_id(&job).to_string();
    assert_eq!(location, format!("/jobs/{id}"));
    assert_eq!(job["model"], "churn");
    assert!(
        matches!(job["status"].as_str(), Some("queued" | "running")),
        "{job:#}"
    );

    let done = app.wait_for_job(&id).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["version"], 1);
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["history"].as_array().unwrap().len(), 6);
    assert_eq!(done["request"]["source"], "rows");
    let metrics = &done["metrics"];
    let accuracy = metrics["accuracy"].as_f64().expect("no accuracy");
    assert!((0.0..=1.0).contains(&accuracy), "{metrics:#}");
    assert!(metrics["rows"].as_u64().unwrap() > 0, "{metrics:#}");
    assert!(metrics["log_loss"].is_number(), "{metrics:#}");

    // The Location header points at the same record.
    let via_location = app.get_ok(&location).await;
    assert_eq!(via_location["id"], done["id"]);
    assert_eq!(via_location["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_on_raw_records_returns_a_label_and_probabilities_for_each_instance() {
    let app = spawn_app().await;
    app.train(&train_request(
        "churn",
        "churned",
        churn_rows(400, 2),
        json!({"hidden_layers": [16], "epochs": 10, "batch_size": 16,
               "learning_rate": 0.02, "early_stopping_patience": null}),
    ))
    .await;

    let loyal = churn_instance(70, "pro", true, 30.0);
    let leaving = churn_instance(2, "basic", false, 110.0);
    let answer = app
        .predict(&json!({"model": "churn", "instances": [loyal, leaving]}))
        .await;

    assert_eq!(answer["model"], "churn");
    assert_eq!(answer["version"], 1);
    assert_eq!(answer["ignored_fields"], json!([]));
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    for p in predictions {
        let label = p["label"].as_str().expect("no label");
        assert!(label == "yes" || label == "no", "{p}");
        let probabilities = p["probabilities"].as_object().expect("no probabilities");
        let mut names: Vec<&str> = probabilities.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["no", "yes"]);
        let sum: f64 = probabilities.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}: {p}");
        let best = probabilities
            .iter()
            .max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap())
            .unwrap()
            .0;
        assert_eq!(best, label, "the label is not the most probable class: {p}");
    }
    // The rule is learnable: the clear cases come out right.
    assert_eq!(predictions[0]["label"], "no", "{answer:#}");
    assert_eq!(predictions[1]["label"], "yes", "{answer:#}");

    // The named route answers the same.
    let named = app
        .post_json(
            "/models/churn/predict",
            &json!({"instances": [churn_instance(2, "basic", false, 110.0)]}),
        )
        .await;
    let named = json_ok(named, StatusCode::OK).await;
    assert_eq!(named["version"], 1);
    assert_eq!(named["predictions"][0], predictions[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_model_predicts_a_value_for_each_instance() {
    let app = spawn_app().await;
    let done = app
        .train(&train_request(
            "price",
            "y",
            regression_rows(300, 3),
            tiny_params(8),
        ))
        .await;
    assert!(done["metrics"]["rmse"].is_number(), "{done:#}");
    assert!(done["metrics"]["r2"].is_number(), "{done:#}");
    // Epoch reports give the validation RMSE in the target's units, as the final metrics do
    // (the target's standard deviation here is about 10).
    let last = done["history"].as_array().unwrap().last().unwrap();
    assert_eq!(last["metric"], "rmse", "{last}");
    let (epoch_rmse, rmse) = (
        last["valid_metric"].as_f64().unwrap(),
        done["metrics"]["rmse"].as_f64().unwrap(),
    );
    assert!(
        (epoch_rmse - rmse).abs() <= 0.02 * rmse,
        "last epoch's val rmse {epoch_rmse} vs the model's rmse {rmse}"
    );

    let answer = app
        .predict(&json!({"model": "price", "instances": [
            {"x1": 1.0, "x2": 4.0, "region": "south"},
            {"x1": 9.0, "x2": 0.5, "region": "north"}
        ]}))
        .await;
    assert_eq!(answer["model"], "price");
    assert_eq!(answer["version"], 1);
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    let low = predictions[0]["value"].as_f64().expect("no value");
    let high = predictions[1]["value"].as_f64().expect("no value");
    assert!(predictions[0].get("label").is_none(), "{answer:#}");
    assert!(
        high > low,
        "y = 3·x1 − 2·x2 + region: expected {high} > {low}"
    );

    let card = app.get_ok("/models/price/versions/1").await;
    assert_eq!(card["task"], "regression");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_from_inline_csv_succeeds() {
    let app = spawn_app().await;
    let csv = to_csv(&churn_rows(240, 4), &CHURN_COLUMNS);
    let job = app
        .submit(&json!({"model": "churn-csv", "target": "churned", "params": tiny_params(3), "csv": csv}))
        .await;
    let done = app.wait_for_job(job_id(&job)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["version"], 1);
    assert_eq!(done["request"]["source"], "csv");

    let card = app.get_ok("/models/churn-csv/versions/1").await;
    assert_eq!(card["fingerprint"]["rows"], 240);
    assert_eq!(card["fingerprint"]["columns"], 5);
    let answer = app
        .predict(
            &json!({"model": "churn-csv", "instances": [churn_instance(10, "basic", true, 50.0)]}),
        )
        .await;
    assert!(answer["predictions"][0]["label"].is_string(), "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_from_a_raw_csv_body_takes_model_and_target_from_the_query() {
    let app = spawn_app().await;
    let csv = to_csv(&churn_rows(240, 5), &CHURN_COLUMNS);
    let params = tiny_params(3).to_string();
    let response = app
        .client
        .post(app.url("/train"))
        .query(&[
            ("model", "churn-body"),
            ("target", "churned"),
            ("params", &params),
        ])
        .header(reqwest::header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .body(csv)
        .send()
        .await
        .unwrap();
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    assert_eq!(job["model"], "churn-body");
    assert_eq!(job["epochs"], 3, "params from the query apply: {job:#}");

    let done = app.wait_for_job(job_id(&job)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["version"], 1);
    assert_eq!(done["request"]["target"], "churned");
    assert_eq!(done["request"]["source"], "csv");
    app.get_ok("/models/churn-body").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_from_an_ndjson_body_succeeds() {
    let app = spawn_app().await;
    let body = to_ndjson(&regression_rows(200, 6));
    let params = tiny_params(3).to_string();
    let response = app
        .client
        .post(app.url("/train"))
        .query(&[("model", "price-nd"), ("target", "y"), ("params", &params)])
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    let done = app.wait_for_job(job_id(&job)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(done["request"]["source"], "body");

    let answer = app
        .predict(
            &json!({"model": "price-nd", "instances": [{"x1": 2.0, "x2": 1.0, "region": "east"}]}),
        )
        .await;
    assert!(answer["predictions"][0]["value"].is_number(), "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_body_without_model_in_the_query_is_422_naming_it() {
    let app = spawn_app().await;
    let csv = to_csv(&churn_rows(30, 7), &CHURN_COLUMNS);
    let response = app.post_raw("/train?target=churned", "text/csv", csv).await;
    let problem = assert_problem(response, 422, Some("missing_field")).await;
    assert_eq!(problem["field"], "model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_overrides_ignored_columns_and_class_weight_are_applied() {
    let app = spawn_app().await;
    let done = app
        .train(&json!({
            "model": "churn",
            "target": "churned",
            "columns": {"tenure": "categorical"},
            "ignore": ["monthly"],
            "class_weight": "balanced",
            "params": tiny_params(3),
            "data": churn_rows(240, 8),
        }))
        .await;
    assert_eq!(done["request"]["columns"], json!({"tenure": "categorical"}));
    assert_eq!(done["request"]["class_weight"], "balanced");

    let card = app.get_ok("/models/churn/versions/1").await;
    let column = |name: &str| {
        card["schema"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    assert_eq!(column("tenure")["kind"], "categorical");
    assert_eq!(column("tenure")["inferred"], false);
    assert_eq!(column("monthly")["excluded"], "ignored");
    assert_eq!(column("plan")["inferred"], true);

    // The ignored column is not needed to predict, and is reported when sent.
    let without = app
        .predict(&json!({"model": "churn", "instances": [{"tenure": 5, "plan": "basic", "autopay": false}]}))
        .await;
    assert_eq!(without["ignored_fields"], json!([]));
    let with = app
        .predict(&json!({"model": "churn", "instances": [churn_instance(5, "basic", false, 99.0)]}))
        .await;
    assert_eq!(with["ignored_fields"], json!(["monthly"]));
    assert_eq!(with["predictions"], without["predictions"]);
}
