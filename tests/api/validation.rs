//! Validation of a training run: k-fold cross-validation, the automatic choice
//! on small tables, and parameters sized from the row count.

use serde_json::{json, Value};

use crate::helpers::*;

fn kfold_request(model: &str, rows: Vec<Value>, validation: Value) -> Value {
    let mut request = train_request(model, "churned", rows, tiny_params(5));
    request["validation"] = validation;
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kfold_reports_every_fold_and_their_mean_and_std_in_the_job_and_the_card() {
    let app = spawn_app().await;
    let rows = churn_rows(240, 3);
    let job = app
        .train(&kfold_request(
            "churn",
            rows.clone(),
            json!({"kind": "kfold", "folds": 4}),
        ))
        .await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let metrics = &job["metrics"];
    assert_eq!(metrics["evaluated_on"], "cross_validation", "{metrics:#}");
    assert_eq!(metrics["rows"], 240);
    let cv = &metrics["cross_validation"];
    assert_eq!(cv["folds"], 4);
    assert_eq!(cv["stratified"], true);
    let folds = cv["per_fold"].as_array().unwrap();
    assert_eq!(folds.len(), 4);
    assert_eq!(
        folds
            .iter()
            .map(|f| f["rows"].as_u64().unwrap())
            .sum::<u64>(),
        240
    );
    let accuracies: Vec<f64> = folds
        .iter()
        .map(|f| f["metrics"]["accuracy"].as_f64().unwrap())
        .collect();
    let mean = accuracies.iter().sum::<f64>() / 4.0;
    assert!((cv["mean"]["accuracy"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!((metrics["accuracy"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!(cv["std"]["accuracy"].as_f64().unwrap() >= 0.0);
    assert!(cv["mean"]["roc_auc"].as_f64().unwrap() > 0.5, "{cv:#}");
    // The summed confusion matrix counts every row once.
    let cells: u64 = metrics["confusion_matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()))
        .sum();
    assert_eq!(cells, 240);
    // The served model is the refit on all rows for the chosen epochs.
    let chosen = cv["chosen_epochs"].as_u64().unwrap();
    assert!((1..=5).contains(&chosen), "{cv:#}");
    let card = app.get_ok("/models/churn/versions/1").await;
    assert_eq!(card["metrics"], *metrics);
    assert_eq!(card["best_epoch"], chosen);
    assert_eq!(card["history"].as_array().unwrap().len() as u64, chosen);
    // Job progress reports every fold's epochs, numbered on.
    let epochs: Vec<u64> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, (1..=4 * 5 + chosen).collect::<Vec<_>>());
    let prediction = app
        .predict(&json!({"model": "churn", "instances": [churn_instance(2, "basic", false, 30.0)]}))
        .await;
    assert!(prediction["predictions"][0]["label"].is_string());

    // Same seed, same folds, same metrics and weights.
    let again = app
        .train(&kfold_request(
            "churn",
            rows,
            json!({"kind": "kfold", "folds": 4}),
        ))
        .await;
    assert_eq!(again["metrics"], *metrics);
    let second = app.get_ok("/models/churn/versions/2").await;
    assert_eq!(second["architecture"], card["architecture"]);
    let p1 = app
        .predict(&json!({"model": "churn", "version": 1, "instances": [churn_instance(9, "pro", true, 55.0)]}))
        .await;
    let p2 = app
        .predict(&json!({"model": "churn", "version": 2, "instances": [churn_instance(9, "pro", true, 55.0)]}))
        .await;
    assert_eq!(p1["predictions"], p2["predictions"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kfold_regression_reports_rmse_per_fold_and_pooled_residuals() {
    let app = spawn_app().await;
    let mut request = train_request("price", "y", regression_rows(150, 2), tiny_params(4));
    request["validation"] = json!({"kind": "kfold", "folds": 3});
    let job = app.train(&request).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let cv = &job["metrics"]["cross_validation"];
    assert_eq!(
        cv["stratified"], false,
        "regression folds are not stratified"
    );
    assert_eq!(cv["per_fold"].as_array().unwrap().len(), 3);
    assert!(cv["mean"]["rmse"].as_f64().unwrap() > 0.0);
    assert!(cv["std"].get("rmse").is_some());
    let counts: u64 = job["metrics"]["residual_histogram"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_validation_is_refused_with_422_naming_the_field() {
    let app = spawn_app().await;
    for (validation, field) in [
        (json!({"kind": "kfold", "folds": 1}), "validation.folds"),
        (json!({"kind": "kfold", "folds": 21}), "validation.folds"),
        (json!({"kind": "leave_one_out"}), "validation"),
        (json!({"kind": "kfold", "fold": 3}), "validation"),
    ] {
        let request = kfold_request("churn", churn_rows(40, 1), validation.clone());
        let response = app.post_json("/train", &request).await;
        let problem = assert_problem(response, 422, Some("invalid_parameter")).await;
        assert!(
            problem["field"].as_str().unwrap().starts_with(field),
            "{validation}: {problem:#}"
        );
    }
    // More folds than labelled rows.
    let request = kfold_request(
        "churn",
        churn_rows(6, 1),
        json!({"kind": "kfold", "folds": 8}),
    );
    let problem = assert_problem(app.post_json("/train", &request).await, 422, None).await;
    assert!(detail(&problem).contains("validation.folds"), "{problem:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_tables_cross_validate_by_default_and_size_their_parameters() {
    let app = spawn_app().await;
    // Only the network's shape is set: batch, epochs and patience come from the rows.
    let request = train_request(
        "churn",
        "churned",
        churn_rows(200, 5),
        json!({"hidden_layers": [8]}),
    );
    let job = app.train(&request).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["metrics"]["evaluated_on"], "cross_validation");
    assert_eq!(job["metrics"]["cross_validation"]["folds"], 5);
    let card = app.get_ok("/models/churn/versions/1").await;
    assert_eq!(card["params"]["batch_size"], 16, "{:#}", card["params"]);
    assert_eq!(card["params"]["epochs"], 200);
    assert_eq!(card["params"]["early_stopping_patience"], 25);
    assert!((card["params"]["dropout"].as_f64().unwrap() - 0.1).abs() < 1e-6);

    // A holdout when asked for, with the parameters as given.
    let mut request = train_request(
        "churn",
        "churned",
        churn_rows(200, 5),
        json!({"hidden_layers": [8], "batch_size": 256, "epochs": 3}),
    );
    request["validation"] = json!({"kind": "holdout"});
    let job = app.train(&request).await;
    assert_eq!(job["metrics"]["evaluated_on"], "validation");
    assert!(job["metrics"].get("cross_validation").is_none());
    let card = app.get_ok("/models/churn/versions/2").await;
    assert_eq!(card["params"]["batch_size"], 256);
    assert_eq!(card["params"]["epochs"], 3);
}
