//! Every row of the README's limits table: the answer names the setting (in
//! `detail` and `setting`) and its value (in `limit`).

use serde_json::{json, Value};

use crate::helpers::*;

/// Asserts a limit answer: status, code, and the setting and value named.
async fn assert_limit(
    response: reqwest::Response,
    status: u16,
    code: &str,
    setting: &str,
    value: u64,
) {
    let problem = assert_problem(response, status, Some(code)).await;
    assert_eq!(problem["setting"], setting, "{problem:#}");
    assert_eq!(problem["limit"], value, "{problem:#}");
    assert!(detail(&problem).contains(setting), "{problem:#}");
    assert!(detail(&problem).contains(&value.to_string()), "{problem:#}");
}

fn wide_rows(columns: usize) -> Vec<Value> {
    (0..20)
        .map(|i| {
            let mut row: serde_json::Map<String, Value> = (0..columns)
                .map(|c| (format!("c{c}"), json!(i * c)))
                .collect();
            row.insert("y".into(), json!(i % 2));
            Value::Object(row)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_answer_names_its_setting_and_value() {
    let app = spawn_app_with(|s| {
        s.limits.max_request_bytes = 1024;
        s.limits.max_train_body_bytes = 4096;
        s.limits.max_upload_bytes = 2048;
        s.limits.max_rows = 30;
        s.limits.max_columns = 12;
        s.limits.max_field_bytes = 64;
        s.limits.max_instances = 3;
        s.training.max_categories = 6;
        s.training.max_epochs = 100;
    })
    .await;
    // Bodies: small requests, training bodies (JSON and CSV), uploads.
    let instances: Vec<_> = (0..40)
        .map(|i| churn_instance(i, "basic", true, 50.0))
        .collect();
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": instances}),
        )
        .await;
    assert_limit(
        response,
        413,
        "body_too_large",
        "limits.max_request_bytes",
        1024,
    )
    .await;
    let big = train_request("churn", "churned", churn_rows(200, 61), tiny_params(2));
    let response = app.post_json("/train", &big).await;
    assert_limit(
        response,
        413,
        "body_too_large",
        "limits.max_train_body_bytes",
        4096,
    )
    .await;
    let csv = to_csv(&churn_rows(200, 62), &CHURN_COLUMNS);
    let response = app
        .post_raw("/train?model=churn&target=churned", "text/csv", csv.clone())
        .await;
    assert_limit(
        response,
        413,
        "body_too_large",
        "limits.max_train_body_bytes",
        4096,
    )
    .await;
    let response = app.post_raw("/datasets", "text/csv", csv).await;
    assert_limit(
        response,
        413,
        "body_too_large",
        "limits.max_upload_bytes",
        2048,
    )
    .await;

    // Rows, columns and field bytes of training data.
    let rows = train_request("churn", "churned", churn_rows(35, 1), tiny_params(2));
    let response = app.post_json("/train", &rows).await;
    assert_limit(response, 422, "too_many_rows", "limits.max_rows", 30).await;
    let wide = train_request("wide", "y", wide_rows(13), tiny_params(2));
    let response = app.post_json("/train", &wide).await;
    assert_limit(response, 422, "too_many_columns", "limits.max_columns", 12).await;
    let mut long = churn_rows(20, 2);
    long[3]["plan"] = json!("x".repeat(100));
    let response = app
        .post_json(
            "/train",
            &train_request("churn", "churned", long, tiny_params(2)),
        )
        .await;
    assert_limit(
        response,
        422,
        "field_too_large",
        "limits.max_field_bytes",
        64,
    )
    .await;

    // Classes of a target; training parameters.
    let classes: Vec<Value> = (0..24)
        .map(|i| json!({"x": i, "label": format!("c{}", i % 8)}))
        .collect();
    let response = app
        .post_json(
            "/train",
            &train_request("many", "label", classes, tiny_params(2)),
        )
        .await;
    assert_limit(
        response,
        422,
        "too_many_classes",
        "training.max_categories",
        6,
    )
    .await;
    let response = app
        .post_json(
            "/train",
            &train_request(
                "churn",
                "churned",
                churn_rows(20, 3),
                json!({"epochs": 1000}),
            ),
        )
        .await;
    let problem = assert_problem(response, 422, Some("invalid_parameter")).await;
    assert!(
        detail(&problem).contains("`training.max_epochs` = 100"),
        "{problem:#}"
    );

    // Instances per predict.
    app.train(&train_request(
        "churn",
        "churned",
        churn_rows(24, 5),
        tiny_params(2),
    ))
    .await;
    let instances: Vec<_> = (0..4)
        .map(|i| churn_instance(i, "pro", true, 20.0))
        .collect();
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "churn", "instances": instances}),
        )
        .await;
    assert_limit(
        response,
        413,
        "too_many_instances",
        "limits.max_instances",
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_with_its_job_limit_reached_answers_429_naming_the_limit() {
    let app = spawn_app_with(|s| {
        s.jobs.max_active_per_model = 1;
        s.jobs.retry_after_secs = 3;
    })
    .await;
    let running = submit_long(&app, "busy").await;
    let response = app
        .post_json(
            "/train",
            &train_request("busy", "churned", churn_rows(100, 1), tiny_params(1)),
        )
        .await;
    assert_eq!(response.headers()[reqwest::header::RETRY_AFTER], "3");
    let problem = assert_problem(response, 429, Some("model_busy")).await;
    assert_eq!(problem["limit"], 1);
    assert_eq!(problem["model"], "busy");
    assert!(
        detail(&problem).contains("jobs.max_active_per_model"),
        "{problem:#}"
    );

    // Another model is not affected, and the slot frees when the job ends.
    let other = app
        .submit(&train_request(
            "other",
            "churned",
            churn_rows(100, 1),
            tiny_params(1),
        ))
        .await;
    app.delete(&format!("/jobs/{}", job_id(&running))).await;
    app.wait_for_job(job_id(&running)).await;
    assert_eq!(
        app.wait_for_job(job_id(&other)).await["status"],
        "succeeded"
    );
    app.train(&train_request(
        "busy",
        "churned",
        churn_rows(100, 1),
        tiny_params(1),
    ))
    .await;
}
