//! Warm start (`init_from`): training continues from a stored version's weights
//! and feature pipeline on new rows; data or parameters that do not fit the
//! stored model are refused before the job is queued.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::recommend::{interaction_rows, recommend_params};

/// One holdout of 20%, a fixed budget, a small network.
fn params(epochs: usize) -> Value {
    json!({
        "hidden_layers": [16],
        "epochs": epochs,
        "batch_size": 32,
        "learning_rate": 0.01,
        "early_stopping_patience": null,
        "validation_fraction": 0.2
    })
}

fn request(rows: Vec<Value>, params: Value, init_from: Option<Value>) -> Value {
    let mut body = json!({
        "model": "churn",
        "target": "churned",
        "params": params,
        "validation": {"kind": "holdout"},
        "data": rows,
    });
    if let Some(init) = init_from {
        body["init_from"] = init;
    }
    body
}

fn first_valid_loss(job: &Value) -> f64 {
    job["history"][0]["valid_loss"]
        .as_f64()
        .unwrap_or_else(|| panic!("no first-epoch validation loss: {job:#}"))
}

/// Version 1 of `churn`, trained on 600 rows.
async fn train_v1(app: &TestApp) -> Value {
    app.train(&request(churn_rows(600, 1), params(25), None))
        .await
}

#[tokio::test]
async fn a_warm_start_begins_near_the_stored_model_and_records_where_it_started() {
    let app = spawn_app().await;
    let v1 = train_v1(&app).await;
    assert_eq!(v1["version"], 1);
    let new_rows = churn_rows(300, 2);

    // The version defaults to the latest (no production alias); an explicit
    // `hidden_layers` equal to the stored network's is accepted.
    let warm = app
        .train(&request(
            new_rows.clone(),
            params(3),
            Some(json!({"model": "churn"})),
        ))
        .await;
    let scratch = app.train(&request(new_rows, params(3), None)).await;
    let (warm_loss, scratch_loss) = (first_valid_loss(&warm), first_valid_loss(&scratch));
    assert!(
        warm_loss < 0.6 * scratch_loss,
        "warm start first epoch {warm_loss}, from scratch {scratch_loss}"
    );
    // The job's request pins the version it resolved.
    assert_eq!(
        warm["request"]["init_from"],
        json!({"model": "churn", "version": 1})
    );

    let card = app
        .get_ok(&format!("/models/churn/versions/{}", warm["version"]))
        .await;
    assert_eq!(card["init_from"], json!({"model": "churn", "version": 1}));
    assert_eq!(card["architecture"]["hidden"], json!([16]));
    let scratch_card = app
        .get_ok(&format!("/models/churn/versions/{}", scratch["version"]))
        .await;
    assert!(scratch_card.get("init_from").is_none(), "{scratch_card:#}");
    // The pipeline is the stored one, not refit on the new rows.
    let v1_card = app.get_ok("/models/churn/versions/1").await;
    assert_eq!(card["pipeline"], v1_card["pipeline"]);

    // An explicit version, and the production alias when no version is given.
    let response = app
        .put_json("/models/churn/aliases/production", &json!({"version": 1}))
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let from_alias = app
        .train(&request(
            churn_rows(100, 3),
            params(1),
            Some(json!({"model": "churn"})),
        ))
        .await;
    assert_eq!(from_alias["request"]["init_from"]["version"], 1);
    let pinned = app
        .train(&request(
            churn_rows(100, 4),
            params(1),
            Some(json!({"model": "churn", "version": 2})),
        ))
        .await;
    assert_eq!(pinned["request"]["init_from"]["version"], 2);
    let served = app
        .predict(&json!({"model": "churn", "version": pinned["version"],
            "instances": [churn_instance(3, "basic", false, 50.0)]}))
        .await;
    assert!(served["predictions"][0].is_object(), "{served:#}");
    app.stop().await;
}

async fn refused(app: &TestApp, body: &Value, status: u16, code: &str) -> Value {
    assert_problem(app.post_json("/train", body).await, status, Some(code)).await
}

#[tokio::test]
async fn data_and_parameters_that_do_not_fit_the_stored_model_are_refused() {
    let app = spawn_app().await;
    train_v1(&app).await;
    let init = Some(json!({"model": "churn", "version": 1}));
    let rows = churn_rows(100, 5);

    // A column the pipeline reads is missing.
    let without_monthly: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("monthly");
            r
        })
        .collect();
    let problem = refused(
        &app,
        &request(without_monthly, params(2), init.clone()),
        422,
        "schema_mismatch",
    )
    .await;
    assert!(detail(&problem).contains("`monthly`"), "{problem:#}");
    assert_eq!(problem["field"], "init_from");

    // A numeric column that holds words.
    let words: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r["tenure"] = json!(if i % 2 == 0 { "long" } else { "short" });
            r
        })
        .collect();
    let problem = refused(
        &app,
        &request(words, params(2), init.clone()),
        422,
        "schema_mismatch",
    )
    .await;
    assert!(detail(&problem).contains("`tenure`"), "{problem:#}");
    assert!(detail(&problem).contains("numeric"), "{problem:#}");

    // A target class the model does not know.
    let mut unknown = rows.clone();
    unknown[7]["churned"] = json!("maybe");
    let problem = refused(
        &app,
        &request(unknown, params(2), init.clone()),
        422,
        "schema_mismatch",
    )
    .await;
    assert!(detail(&problem).contains("maybe"), "{problem:#}");
    assert!(detail(&problem).contains("no, yes"), "{problem:#}");

    // Hidden layers other than the stored network's.
    let mut wider = params(2);
    wider["hidden_layers"] = json!([32]);
    let problem = refused(
        &app,
        &request(rows.clone(), wider, init.clone()),
        422,
        "schema_mismatch",
    )
    .await;
    assert_eq!(problem["field"], "params.hidden_layers");
    assert!(detail(&problem).contains("[16]"), "{problem:#}");

    // Another target than the stored model's.
    let mut body = request(rows.clone(), params(2), init.clone());
    body["target"] = json!("plan");
    let problem = refused(&app, &body, 422, "schema_mismatch").await;
    assert_eq!(problem["field"], "target");

    // A recommender cannot be continued as a tabular model.
    app.train(&json!({"model": "recs", "task": "recommendation",
        "params": recommend_params(), "data": interaction_rows(7)}))
        .await;
    let problem = refused(
        &app,
        &request(rows.clone(), params(2), Some(json!({"model": "recs"}))),
        422,
        "wrong_model_kind",
    )
    .await;
    assert_eq!(problem["field"], "init_from");

    // `init_from` on a recommendation job, and with a search.
    let problem = refused(
        &app,
        &json!({"model": "recs", "task": "recommendation", "init_from": {"model": "recs"},
            "data": interaction_rows(7)}),
        422,
        "invalid_body",
    )
    .await;
    assert_eq!(problem["field"], "init_from");
    let mut body = request(rows.clone(), params(2), init.clone());
    body["search"] = json!({"max_trials": 4});
    let problem = refused(&app, &body, 422, "invalid_parameter").await;
    assert_eq!(problem["field"], "search");

    // Unknown models and versions: 404.
    let problem = refused(
        &app,
        &request(rows.clone(), params(2), Some(json!({"model": "nope"}))),
        404,
        "model_not_found",
    )
    .await;
    assert_eq!(problem["field"], "init_from");
    refused(
        &app,
        &request(
            rows.clone(),
            params(2),
            Some(json!({"model": "churn", "version": 9})),
        ),
        404,
        "version_not_found",
    )
    .await;

    // Nothing was queued by the refusals: only the two trainings ran.
    let jobs = app.get_ok("/jobs").await;
    assert_eq!(jobs["total"], 2, "{jobs:#}");
    app.stop().await;
}
