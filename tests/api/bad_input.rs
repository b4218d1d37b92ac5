//! Bad input, case by case: each answers a 4xx problem+json naming what is
//! wrong, the service keeps serving, and nothing stored changes. Limits
//! answer naming the limit and its value.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cases::*;
use crate::helpers::*;

fn train_csv(csv: &str) -> Vec<u8> {
    csv.as_bytes().to_vec()
}

fn train(model: &str, rows: Vec<Value>, params: Value) -> Value {
    train_request(model, "churned", rows, params)
}

fn interactions() -> Vec<Value> {
    (0..40)
        .map(|i| json!({"user_id": format!("u{}", i % 8), "item_id": format!("i{}", i % 10)}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_a_4xx_problem_and_changes_nothing() {
    let app = spawn_app_with(|s| {
        s.limits.max_rows = 500;
        s.limits.max_columns = 12;
        s.limits.max_instances = 50;
        s.recommend.max_k = 20;
        s.training.max_categories = 6;
        s.training.max_layer_width = 256;
        s.training.max_parameters = 100_000;
        s.training.max_epochs = 100;
    })
    .await;
    train_churn(&app, "churn", 1).await;
    app.train(&json!({
        "model": "shop",
        "task": "recommendation",
        "params": {"hidden": 8, "epochs": 2, "batch_size": 8, "early_stopping_patience": null},
        "data": interactions(),
    }))
    .await;
    let csv = to_csv(&churn_rows(100, 3), &CHURN_COLUMNS);
    let response = app.post_raw("/datasets", CSV, csv).await;
    json_ok(response, StatusCode::CREATED).await;
    let before = store_snapshot(&app.store_path);

    let instance = churn_instance(3, "basic", false, 30.0);
    let good_rows = churn_rows(60, 2);
    let deep = format!(
        r#"{{"model": "churn", "instances": [{{"tenure": {}1{}}}]}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut one_class = churn_rows(60, 4);
    for row in &mut one_class {
        row["churned"] = json!("no");
    }
    let mut target_missing = churn_rows(60, 4);
    for row in &mut target_missing {
        row["churned"] = Value::Null;
    }
    let features_missing: Vec<Value> = churn_rows(60, 4)
        .into_iter()
        .map(|r| json!({"tenure": null, "plan": null, "monthly": null, "churned": r["churned"]}))
        .collect();
    let many_classes: Vec<Value> = (0..60)
        .map(|i| json!({"x": i, "label": format!("c{}", i % 10)}))
        .collect();
    let wide_row: Vec<Value> = (0..4)
        .map(|r| {
            let mut row = serde_json::Map::new();
            for c in 0..20 {
                row.insert(format!("c{c}"), json!(r * c));
            }
            Value::Object(row)
        })
        .collect();

    let cases = vec![
        // Malformed bodies.
        case(
            "malformed JSON",
            Method::POST,
            "/predict",
            JSON,
            r#"{"model": "churn" "instances": []}"#,
            400,
            "malformed_json",
            "expected",
        ),
        case(
            "truncated JSON",
            Method::POST,
            "/predict",
            JSON,
            r#"{"model": "churn", "instances": [{"tenure": 3"#,
            400,
            "malformed_json",
            "EOF",
        ),
        case(
            "truncated JSON on /train",
            Method::POST,
            "/train",
            JSON,
            r#"{"model": "churn", "target": "chu"#,
            400,
            "malformed_json",
            "EOF",
        ),
        case(
            "deeply nested JSON",
            Method::POST,
            "/predict",
            JSON,
            deep,
            400,
            "malformed_json",
            "recursion limit",
        ),
        case(
            "wrong content type",
            Method::POST,
            "/predict",
            "text/plain",
            instance.to_string(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        case(
            "wrong content type on /train",
            Method::POST,
            "/train?model=x&target=y",
            "application/xml",
            "<a/>",
            415,
            "unsupported_media_type",
            "application/xml",
        ),
        case(
            "JSON that is not an object",
            Method::POST,
            "/predict",
            JSON,
            "[1, 2]",
            422,
            "invalid_body",
            "invalid type",
        ),
        // CSV problems.
        case(
            "non-UTF-8 CSV",
            Method::POST,
            "/train?model=x&target=b",
            CSV,
            train_csv("a,b\n1,\u{0}\n")
                .into_iter()
                .map(|b| if b == 0 { 0xff } else { b })
                .collect::<Vec<u8>>(),
            422,
            "csv_invalid",
            "UTF-8",
        ),
        case(
            "non-UTF-8 CSV upload",
            Method::POST,
            "/datasets",
            CSV,
            vec![b'a', b',', b'b', b'\n', 0xc3, 0x28, b',', b'1', b'\n'],
            422,
            "csv_invalid",
            "UTF-8",
        ),
        case(
            "ragged rows",
            Method::POST,
            "/train?model=x&target=b",
            CSV,
            "a,b\n1,2\n3\n4,5\n",
            422,
            "csv_invalid",
            "line 3",
        ),
        case(
            "duplicate header names",
            Method::POST,
            "/train?model=x&target=b",
            CSV,
            "a,b,a\n1,2,3\n4,5,6\n",
            422,
            "duplicate_header",
            "`a`",
        ),
        case(
            "empty header name",
            Method::POST,
            "/datasets",
            CSV,
            "a,,c\n1,2,3\n",
            422,
            "empty_header",
            "column 2",
        ),
        // Training data that cannot make a model.
        json_case(
            "a target with one class",
            "/train",
            json!({"model": "x", "target": "churned", "task": "classification", "data": one_class}),
            422,
            "single_class",
            "`no`",
        ),
        json_case(
            "an all-missing target",
            "/train",
            train("x", target_missing, tiny_params(1)),
            422,
            "invalid_data",
            "churned",
        ),
        json_case(
            "all-missing feature columns",
            "/train",
            train("x", features_missing, tiny_params(1)),
            422,
            "no_features",
            "feature",
        ),
        // Non-finite and huge numbers.
        case(
            "NaN literal",
            Method::POST,
            "/predict",
            JSON,
            r#"{"model": "churn", "instances": [{"tenure": NaN, "plan": "basic", "autopay": true, "monthly": 1}]}"#,
            400,
            "malformed_json",
            "expected value",
        ),
        case(
            "Infinity literal",
            Method::POST,
            "/predict",
            JSON,
            r#"{"model": "churn", "instances": [{"tenure": Infinity, "plan": "basic", "autopay": true, "monthly": 1}]}"#,
            400,
            "malformed_json",
            "expected value",
        ),
        case(
            "1e400 overflows",
            Method::POST,
            "/predict",
            JSON,
            r#"{"model": "churn", "instances": [{"tenure": 1e400, "plan": "basic", "autopay": true, "monthly": 1}]}"#,
            400,
            "malformed_json",
            "out of range",
        ),
        json_case(
            "1e308 in a numeric field",
            "/predict",
            json!({"model": "churn", "instances": [{"tenure": 1e308, "plan": "basic", "autopay": true, "monthly": 1.0}]}),
            422,
            "wrong_type",
            "tenure",
        ),
        json_case(
            "\"inf\" as a number",
            "/predict",
            json!({"model": "churn", "instances": [{"tenure": "inf", "plan": "basic", "autopay": true, "monthly": 1.0}]}),
            422,
            "wrong_type",
            "tenure",
        ),
        json_case(
            "\"Infinity\" as a number",
            "/predict",
            json!({"model": "churn", "instances": [{"tenure": 3, "plan": "basic", "autopay": true, "monthly": "-Infinity"}]}),
            422,
            "wrong_type",
            "monthly",
        ),
        case(
            "Infinity in training CSV",
            Method::POST,
            "/train?model=x&target=churned",
            CSV,
            "tenure,plan,churned\n1,basic,yes\n-Infinity,pro,no\n3,basic,yes\n4,pro,no\n",
            422,
            "invalid_value",
            "row 2",
        ),
        case(
            "1e308 in training CSV",
            Method::POST,
            "/train?model=x&target=churned",
            CSV,
            "tenure,plan,churned\n1,basic,yes\n1e308,pro,no\n3,basic,yes\n4,pro,no\n",
            422,
            "invalid_value",
            "1e308",
        ),
        // Parameters.
        json_case(
            "zero epochs",
            "/train",
            train("x", good_rows.clone(), json!({"epochs": 0})),
            422,
            "invalid_parameter",
            "epochs",
        ),
        json_case(
            "negative epochs",
            "/train",
            train("x", good_rows.clone(), json!({"epochs": -3})),
            422,
            "invalid_parameter",
            "epochs",
        ),
        json_case(
            "zero learning rate",
            "/train",
            train("x", good_rows.clone(), json!({"learning_rate": 0.0})),
            422,
            "invalid_parameter",
            "learning_rate",
        ),
        json_case(
            "negative learning rate",
            "/train",
            train("x", good_rows.clone(), json!({"learning_rate": -0.1})),
            422,
            "invalid_parameter",
            "learning_rate",
        ),
        // Names.
        json_case(
            "model name `..`",
            "/train",
            train("..", good_rows.clone(), tiny_params(1)),
            422,
            "invalid_name",
            "..",
        ),
        json_case(
            "model name with `/`",
            "/train",
            train("a/b", good_rows.clone(), tiny_params(1)),
            422,
            "invalid_name",
            "a/b",
        ),
        json_case(
            "model name `%2e%2e`",
            "/train",
            train("%2e%2e", good_rows.clone(), tiny_params(1)),
            422,
            "invalid_name",
            "%2e%2e",
        ),
        json_case(
            "model name with NUL",
            "/train",
            train("a\u{0}b", good_rows.clone(), tiny_params(1)),
            422,
            "invalid_name",
            "invalid model name",
        ),
        json_case(
            "model name with a Cyrillic look-alike",
            "/train",
            train("\u{0441}hurn", good_rows.clone(), tiny_params(1)),
            422,
            "invalid_name",
            "\u{0441}hurn",
        ),
        // Clients resolve `%2e%2e` as `..`: the path leaves /models and matches
        // nothing (`/` itself is the dashboard's redirect).
        case(
            "path model `%2e%2e`",
            Method::GET,
            "/models/%2e%2e/nothing",
            "",
            "",
            404,
            "route_not_found",
            "no route",
        ),
        case(
            "path model `..%2f`",
            Method::GET,
            "/models/..%2fetc",
            "",
            "",
            422,
            "invalid_name",
            "../etc",
        ),
        case(
            "path model with NUL",
            Method::GET,
            "/models/churn%00",
            "",
            "",
            422,
            "invalid_name",
            "invalid model name",
        ),
        case(
            "path alias with `/`",
            Method::PUT,
            "/models/churn/aliases/a%2fb",
            JSON,
            r#"{"version": 1}"#,
            422,
            "invalid_name",
            "a/b",
        ),
        json_case(
            "predict on a look-alike name",
            "/predict",
            json!({"model": "\u{0441}hurn", "instances": [instance]}),
            422,
            "invalid_name",
            "\u{0441}hurn",
        ),
        // Unknown things.
        json_case(
            "unknown model",
            "/predict",
            json!({"model": "nope", "instances": [instance]}),
            404,
            "model_not_found",
            "nope",
        ),
        json_case(
            "unknown version",
            "/predict",
            json!({"model": "churn", "version": 9, "instances": [instance]}),
            404,
            "version_not_found",
            "9",
        ),
        json_case(
            "unknown alias",
            "/predict",
            json!({"model": "churn", "alias": "canary", "instances": [instance]}),
            404,
            "alias_not_found",
            "canary",
        ),
        case(
            "unknown version path",
            Method::GET,
            "/models/churn/versions/9",
            "",
            "",
            404,
            "version_not_found",
            "9",
        ),
        case(
            "unknown dataset",
            Method::GET,
            "/datasets/nope",
            "",
            "",
            404,
            "dataset_not_found",
            "nope",
        ),
        // The wrong kind of model.
        json_case(
            "predicting with a recommender",
            "/predict",
            json!({"model": "shop", "instances": [instance]}),
            422,
            "wrong_model_kind",
            "shop",
        ),
        json_case(
            "recommending with a classifier",
            "/recommend",
            json!({"model": "churn", "user": "u1"}),
            422,
            "wrong_model_kind",
            "churn",
        ),
        case(
            "similar items of a classifier",
            Method::GET,
            "/models/churn/items/i1/similar",
            "",
            "",
            422,
            "wrong_model_kind",
            "churn",
        ),
        // Limits: each names the limit and its value.
        json_case(
            "too many instances",
            "/predict",
            json!({"model": "churn", "instances": vec![instance.clone(); 51]}),
            413,
            "too_many_instances",
            "50",
        ),
        json_case(
            "k above the limit",
            "/recommend",
            json!({"model": "shop", "user": "u1", "k": 21}),
            422,
            "invalid_parameter",
            "20",
        ),
        case(
            "k above the limit on similar",
            Method::GET,
            "/models/shop/items/i1/similar?k=21",
            "",
            "",
            422,
            "invalid_parameter",
            "20",
        ),
        json_case(
            "too many rows",
            "/train",
            train("x", churn_rows(501, 1), tiny_params(1)),
            422,
            "too_many_rows",
            "500",
        ),
        json_case(
            "too many columns",
            "/train",
            json!({"model": "x", "target": "c0", "data": wide_row}),
            422,
            "too_many_columns",
            "12",
        ),
        json_case(
            "too many classes",
            "/train",
            json!({"model": "x", "target": "label", "task": "classification", "data": many_classes}),
            422,
            "too_many_classes",
            "6",
        ),
        json_case(
            "max_one_hot above its limit",
            "/train",
            json!({"model": "x", "target": "churned", "data": good_rows.clone(), "pipeline": {"max_one_hot": 1001}}),
            422,
            "invalid_options",
            "1000",
        ),
        json_case(
            "too many epochs",
            "/train",
            train("x", good_rows.clone(), json!({"epochs": 101})),
            422,
            "invalid_parameter",
            "100",
        ),
        json_case(
            "a hidden layer too wide",
            "/train",
            train("x", good_rows.clone(), json!({"hidden_layers": [257]})),
            422,
            "invalid_parameter",
            "256",
        ),
        json_case(
            "too many parameters",
            "/train",
            train(
                "x",
                good_rows.clone(),
                json!({"hidden_layers": [256, 256, 256]}),
            ),
            422,
            "invalid_parameter",
            "100000",
        ),
    ];

    check_cases(&app, &cases).await;

    let after = store_snapshot(&app.store_path);
    assert_eq!(before, after, "a refused request changed the store");
    let jobs = app.get_ok("/jobs").await;
    assert_eq!(
        jobs["total"], 2,
        "a refused request created a job: {jobs:#}"
    );
    app.predict(&json!({"model": "churn", "instances": [instance]}))
        .await;
}
