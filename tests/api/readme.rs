//! The README's examples, run through the API: the outputs it shows are the
//! outputs the commands give (numbers to the decimals shown), so they cannot drift.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// The README section under `## {title}` (up to the next `## ` heading).
fn section(title: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README has no section {title}"));
    let rest = &readme[start + 4..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
}

/// Every JSON body given with `-d '...'` in a section, in order.
fn payloads(section: &str) -> Vec<Value> {
    section
        .split("-d '")
        .skip(1)
        .filter_map(|s| serde_json::from_str(&s[..s.find('\'')?]).ok())
        .collect()
}

/// Every output line shown in a section: an indented line that is a JSON object.
fn outputs(section: &str) -> Vec<Value> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Asserts `actual` has exactly the shape and values of `shown`, numbers
/// rounded to the decimals `shown` writes.
fn assert_shown(actual: &Value, shown: &Value, at: &str) {
    match (actual, shown) {
        (Value::Object(a), Value::Object(s)) => {
            let (ak, sk): (Vec<_>, Vec<_>) = (a.keys().collect(), s.keys().collect());
            assert_eq!(ak, sk, "{at}: keys differ; actual {actual}");
            for (key, value) in s {
                assert_shown(&a[key], value, &format!("{at}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(s)) => {
            assert_eq!(a.len(), s.len(), "{at}: lengths differ; actual {actual}");
            for (i, (x, y)) in a.iter().zip(s).enumerate() {
                assert_shown(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(s)) => {
            let text = s.to_string();
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
            let scale = 10f64.powi(decimals);
            let rounded = (a.as_f64().unwrap() * scale).round() / scale;
            assert_eq!(
                rounded,
                s.as_f64().unwrap(),
                "{at}: actual {a}, README {text}"
            );
        }
        _ => assert_eq!(actual, shown, "{at}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_churn_walk_through_gives_the_output_it_shows() {
    let app = spawn_app().await;
    let text = section("Walk-through with curl");
    let (bodies, shown) = (payloads(&text), outputs(&text));
    let job = app.train(&bodies[0]).await;
    // Six rows: too few to hold any out, so the metrics are on the training rows.
    assert_eq!(job["metrics"]["rows"], 6, "{job:#}");
    assert_eq!(job["metrics"]["evaluated_on"], "training", "{job:#}");
    assert!(job["metrics"]["accuracy"].is_number(), "{job:#}");
    let card = app.get_ok("/models/churn/versions/1").await;
    assert_eq!(card["metrics"], job["metrics"]);
    let answer = app.predict(&bodies[1]).await;
    assert_shown(&answer, &shown[0], "predict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_recommendation_example_gives_the_output_it_shows() {
    let app = spawn_app().await;
    let text = section("Recommendations");
    let (bodies, shown) = (payloads(&text), outputs(&text));
    app.train(&bodies[0]).await;
    let response = app.post_json("/recommend", &bodies[1]).await;
    assert_shown(
        &json_ok(response, StatusCode::OK).await,
        &shown[0],
        "recommend",
    );
    let response = app.post_json("/interactions", &bodies[2]).await;
    assert_shown(
        &json_ok(response, StatusCode::CREATED).await,
        &shown[1],
        "interactions",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_csv_body_example_trains_on_the_shipped_churn_csv() {
    let app = spawn_app().await;
    let csv = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/churn.csv"))
        .expect("examples/churn.csv");
    let response = app
        .client
        .post(app.url("/train"))
        .query(&[
            ("model", "churn"),
            ("target", "churned"),
            ("params", r#"{"epochs":20}"#),
        ])
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let job = json_ok(response, StatusCode::ACCEPTED).await;
    let done = app.wait_for_job(job_id(&job)).await;
    assert_eq!(done["status"], "succeeded", "{done:#}");
    // 300 rows: cross-validated by default.
    assert_eq!(
        done["metrics"]["evaluated_on"], "cross_validation",
        "{done:#}"
    );
    assert!(
        done["metrics"]["accuracy"].as_f64().unwrap() > 0.7,
        "{done:#}"
    );
}
