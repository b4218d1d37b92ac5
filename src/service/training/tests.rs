//! The request's one check, in its order, and the stored form's round trip.

use serde_json::{json, Value};

use super::*;
use crate::config::Settings;

fn request(value: Value) -> TrainRequest {
    serde_json::from_value(value).unwrap()
}

fn refusal(value: Value) -> SubmitTrainError {
    request(value).validate(&Settings::defaults()).unwrap_err()
}

#[test]
fn a_valid_request_parses_its_parameters_once_into_the_plan() {
    let submission = request(json!({
        "model": "churn", "target": "churned", "params": {"epochs": 3, "hidden_layers": [4]},
        "columns": {"plan": "categorical"}, "csv": "plan,churned\na,yes\n"
    }))
    .validate(&Settings::defaults())
    .unwrap();
    let Plan::Tabular(spec) = &submission.job.plan else {
        panic!("a tabular plan");
    };
    assert_eq!(spec.target, "churned");
    assert_eq!(spec.params.epochs, 3);
    assert_eq!(spec.params.hidden_layers, vec![4]);
    assert!(spec.explicit.contains("epochs") && !spec.explicit.contains("seed"));
    assert!(matches!(submission.data, DataSource::Csv(_)));
}

#[test]
fn refusals_come_in_the_order_they_always_did_and_name_their_field() {
    // Missing target before two data sources.
    let e = refusal(json!({"model": "m", "data": [], "csv": "a\n"}));
    assert!(matches!(e, SubmitTrainError::MissingTarget));
    assert_eq!(e.field(), Some("target"));
    // Two data sources before unreadable params.
    let e = refusal(
        json!({"model": "m", "target": "t", "data": [], "csv": "a\n",
        "params": {"epochs": "x"}}),
    );
    assert!(matches!(e, SubmitTrainError::NoDataSource));
    assert_eq!(e.field(), None);
    // Unreadable params before validation and the name.
    let e = refusal(json!({"model": "M!", "target": "t", "csv": "a\n",
        "params": {"epochs": "x"}, "validation": {"kind": "kfold", "folds": 1}}));
    assert_eq!(e.field(), Some("params.epochs"));
    assert_eq!(
        e.to_string(),
        "`params.epochs`: invalid type: string \"x\", expected usize"
    );
    // Validation before the name.
    let e = refusal(json!({"model": "M!", "target": "t", "csv": "a\n",
        "validation": {"kind": "kfold", "folds": 1}}));
    assert_eq!(e.field(), Some("validation.folds"));
    let e = refusal(json!({"model": "M!", "target": "t", "csv": "a\n"}));
    assert!(matches!(
        e,
        SubmitTrainError::Invalid {
            code: crate::service::ErrorCode::InvalidName,
            ..
        }
    ));
    // An attribute table without a source names it; on a tabular job it is refused later.
    let e = refusal(json!({"model": "m", "target": "t", "csv": "a\n", "item_attributes": {}}));
    assert_eq!(e.field(), Some("item_attributes"));
    let e = refusal(json!({"model": "m", "target": "t", "csv": "a\n",
        "item_attributes": {"csv": "item_id\ni1\n"}}));
    assert_eq!(e.field(), None);
    assert!(e.to_string().contains("apply only to"), "{e}");
    // Recommender limits are checked last.
    let e = refusal(json!({"model": "r", "task": "recommendation", "csv": "a\n",
        "params": {"epochs": 1000000}}));
    assert!(e.to_string().contains("recommend.max_epochs"), "{e}");
}

#[test]
fn a_job_record_of_an_earlier_release_runs_as_stored() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0/_jobs");
    let path = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let stored = record["request"].clone();
    let spec: JobSpec = serde_json::from_value(stored.clone()).unwrap();
    let job = ValidJob::from_spec(spec).unwrap();
    let Plan::Tabular(train_spec) = &job.plan else {
        panic!("a tabular plan");
    };
    assert_eq!(train_spec.target, "churned");
    assert_eq!(train_spec.params.epochs, 2);
    // What the record holds is what a new record of the same job holds.
    assert_eq!(serde_json::to_value(&job.spec).unwrap(), stored);
}
