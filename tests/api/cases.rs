//! A table of bad requests and the problem each must get, and the runner
//! that sends them one by one, checking the service keeps serving.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// One bad request and the answer it must get.
pub struct Case {
    what: &'static str,
    method: Method,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A fragment the `detail` must contain (the field, value or limit).
    mentions: &'static str,
}

// One argument per column of the table below.
#[allow(clippy::too_many_arguments)]
pub fn case(
    what: &'static str,
    method: Method,
    path: &str,
    content_type: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
    mentions: &'static str,
) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        content_type,
        body: body.into(),
        status,
        code,
        mentions,
    }
}

pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv";

pub fn json_case(
    what: &'static str,
    path: &str,
    body: Value,
    status: u16,
    code: &'static str,
    mentions: &'static str,
) -> Case {
    case(
        what,
        Method::POST,
        path,
        JSON,
        body.to_string(),
        status,
        code,
        mentions,
    )
}

/// Sends every case; fails naming each whose answer differed, and checks
/// `/healthz` after each one.
pub async fn check_cases(app: &TestApp, cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let mut request = app.client.request(c.method.clone(), app.url(&c.path));
        if !c.content_type.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, c.content_type)
                .body(c.body.clone());
        }
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        let text = response.text().await.unwrap_or_default();
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ok = status == c.status
            && content_type.starts_with("application/problem+json")
            && problem["code"] == c.code
            && problem["status"] == c.status
            && detail(&problem).contains(c.mentions);
        if !ok {
            failures.push(format!(
                "{}: expected {} {} mentioning {:?}, got {status} {content_type}: {text}",
                c.what, c.status, c.code, c.mentions
            ));
        }
        // The service keeps serving after each one.
        assert_eq!(
            app.get("/healthz").await.status(),
            StatusCode::OK,
            "{}",
            c.what
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
