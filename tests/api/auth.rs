//! API keys: 401 without or with an unknown key, 403 without the scope,
//! open health endpoints, configurable metrics and docs.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const ADMIN: &str = "admin-key-0123456789abcdef";
const INFERENCE: &str = "inference-key-0123456789abcdef";
const READER: &str = "reader-key-0123456789abcdef";

async fn spawn_with_keys(protect_docs: bool) -> TestApp {
    spawn_app_with(|s| {
        s.auth.keys = vec![
            format!("admin+read:{ADMIN}"),
            format!("inference:{INFERENCE}"),
            format!("read:{READER}"),
        ];
        s.auth.protect_docs = protect_docs;
    })
    .await
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<&serde_json::Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request failed")
}

#[tokio::test]
async fn requests_without_a_key_or_with_an_unknown_key_are_401() {
    let app = spawn_with_keys(false).await;
    for key in [None, Some("not-a-configured-key-at-all")] {
        for (method, path) in [
            (reqwest::Method::GET, "/models"),
            (reqwest::Method::GET, "/jobs"),
            (reqwest::Method::POST, "/predict"),
            (reqwest::Method::POST, "/train"),
            (reqwest::Method::GET, "/no/such/route"),
        ] {
            let response = send(&app, method.clone(), path, key, Some(&json!({}))).await;
            assert_eq!(
                response.headers()[reqwest::header::WWW_AUTHENTICATE],
                "Bearer realm=\"myelin\""
            );
            let problem = assert_problem(response, 401, Some("unauthorized")).await;
            if let Some(key) = key {
                assert!(!problem.to_string().contains(key), "{problem}");
            }
        }
    }
    // Not a bearer credential.
    let response = app
        .client
        .get(app.url("/models"))
        .header(reqwest::header::AUTHORIZATION, format!("Basic {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, Some("unauthorized")).await;
}

#[tokio::test]
async fn a_key_without_the_scope_is_403_naming_the_scope() {
    let app = spawn_with_keys(false).await;
    let train = train_request("churn", "churned", churn_rows(60, 1), tiny_params(1));
    let cases = [
        (
            reqwest::Method::POST,
            "/train",
            INFERENCE,
            Some(train.clone()),
            "admin",
        ),
        (
            reqwest::Method::POST,
            "/train",
            READER,
            Some(train.clone()),
            "admin",
        ),
        (
            reqwest::Method::DELETE,
            "/models/churn/versions/1",
            READER,
            None,
            "admin",
        ),
        (
            reqwest::Method::PUT,
            "/models/churn/aliases/production",
            INFERENCE,
            Some(json!({"version": 1})),
            "admin",
        ),
        (
            reqwest::Method::POST,
            "/predict",
            ADMIN,
            Some(json!({"model": "churn", "instances": [{}]})),
            "inference",
        ),
        (
            reqwest::Method::POST,
            "/interactions",
            READER,
            Some(json!({"model": "shop", "interactions": []})),
            "inference",
        ),
        (reqwest::Method::GET, "/models", INFERENCE, None, "read"),
        (reqwest::Method::GET, "/jobs", INFERENCE, None, "read"),
        (reqwest::Method::GET, "/metrics", INFERENCE, None, "read"),
    ];
    for (method, path, key, body, scope) in cases {
        let response = send(&app, method.clone(), path, Some(key), body.as_ref()).await;
        let problem = assert_problem(response, 403, Some("forbidden")).await;
        assert_eq!(problem["scope"], scope, "{method} {path}: {problem:#}");
        assert!(detail(&problem).contains(scope), "{problem:#}");
    }
    // Nothing was trained by the refused requests.
    let response = send(&app, reqwest::Method::GET, "/models", Some(READER), None).await;
    let models = json_ok(response, StatusCode::OK).await;
    assert_eq!(
        models["models"].as_array().map(Vec::len),
        Some(0),
        "{models:#}"
    );
}

#[tokio::test]
async fn each_scope_reaches_its_endpoints() {
    let app = spawn_with_keys(false).await;
    let train = train_request("churn", "churned", churn_rows(120, 3), tiny_params(2));
    let response = send(
        &app,
        reqwest::Method::POST,
        "/train",
        Some(ADMIN),
        Some(&train),
    )
    .await;
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    let path = format!("/jobs/{}", job_id(&job));
    let done = loop {
        let response = send(&app, reqwest::Method::GET, &path, Some(READER), None).await;
        let job = json_ok(response, StatusCode::OK).await;
        if is_terminal(&job) {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done:#}");

    let predict = json!({"model": "churn", "instances": [churn_instance(3, "basic", false, 30.0)]});
    let response = send(
        &app,
        reqwest::Method::POST,
        "/predict",
        Some(INFERENCE),
        Some(&predict),
    )
    .await;
    json_ok(response, StatusCode::OK).await;
    let response = send(
        &app,
        reqwest::Method::GET,
        "/models/churn",
        Some(READER),
        None,
    )
    .await;
    json_ok(response, StatusCode::OK).await;
    let response = send(
        &app,
        reqwest::Method::PUT,
        "/models/churn/aliases/production",
        Some(ADMIN),
        Some(&json!({"version": 1})),
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
    let response = send(&app, reqwest::Method::GET, "/metrics", Some(READER), None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_is_open_and_docs_follow_the_setting() {
    let app = spawn_with_keys(false).await;
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
    assert_problem(app.get("/metrics").await, 401, Some("unauthorized")).await;

    let app = spawn_with_keys(true).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_problem(app.get("/openapi.json").await, 401, Some("unauthorized")).await;
    let response = send(
        &app,
        reqwest::Method::GET,
        "/openapi.json",
        Some(READER),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn protected_docs_ask_a_browser_for_the_key_as_basic_credentials() {
    let app = spawn_with_keys(true).await;
    for path in ["/docs/", "/openapi.json"] {
        let response = app.get(path).await;
        let challenge = response.headers()[reqwest::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.starts_with("Basic realm="), "{path}: {challenge}");
        assert_problem(response, 401, Some("unauthorized")).await;
    }
    let basic = |key: &str| {
        app.client
            .get(app.url("/openapi.json"))
            .basic_auth("anyone", Some(key))
    };
    let response = basic(READER).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let spec: serde_json::Value = response.json().await.unwrap();
    assert_eq!(spec["info"]["title"], "Myelin");
    let ui = app
        .client
        .get(app.url("/docs/"))
        .basic_auth("", Some(READER))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    let wrong = basic("not-a-configured-key-at-all").send().await.unwrap();
    assert_problem(wrong, 401, Some("unauthorized")).await;
    // Basic credentials unlock the docs only, not the API.
    let api = app
        .client
        .get(app.url("/models"))
        .basic_auth("anyone", Some(READER))
        .send()
        .await
        .unwrap();
    assert_problem(api, 401, Some("unauthorized")).await;
}

#[tokio::test]
async fn without_keys_every_endpoint_is_open() {
    let app = spawn_app().await;
    assert_eq!(app.get("/models").await.status(), StatusCode::OK);
    assert_eq!(app.get("/metrics").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_key_entry_stops_the_start_naming_the_entry_not_the_key() {
    let store = tempfile::tempdir().unwrap();
    let mut settings = test_settings(store.path());
    settings.auth.keys = vec![
        format!("read:{READER}"),
        "superuser:abcdefghijklmnopqrstu".into(),
    ];
    let err = match myelin::Application::build(settings).await {
        Ok(_) => panic!("a bad key entry was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("entry 2 of auth.keys"), "{err}");
    assert!(err.contains("unknown scope `superuser`"), "{err}");
    assert!(!err.contains("abcdefghijklmnopqrstu"), "{err}");
}
