//! Explanations on small trained models: completeness and ranking.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use super::{train, ExplainOptions, TabularModel, TrainSpec};
use crate::data::{table_from_records, ReadLimits, Table};
use crate::nn::{Control, TrainParams};

pub(crate) fn limits() -> ReadLimits {
    ReadLimits {
        max_rows: 100_000,
        max_columns: 64,
        max_field_bytes: 4096,
    }
}

/// `signal` decides the target; `noise_a`, `noise_b` and `color` are unused.
pub(crate) fn synthetic_rows(n: usize, seed: u64, regression: bool) -> Vec<Map<String, Value>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let signal: f64 = rng.random_range(-3.0..3.0);
            let target = if regression {
                json!(2.0 * signal + 10.0)
            } else {
                json!(if signal > 0.3 { "yes" } else { "no" })
            };
            let color = ["red", "green", "blue"][rng.random_range(0..3)];
            let record = json!({
                "noise_a": rng.random_range(-3.0..3.0),
                "signal": signal,
                "color": color,
                "noise_b": rng.random_range(0.0..100.0),
                "target": target,
            });
            match record {
                Value::Object(map) => map,
                _ => unreachable!(),
            }
        })
        .collect()
}

pub(crate) fn trained(rows: &[Map<String, Value>], epochs: usize) -> (TabularModel, Table) {
    let table = table_from_records(rows, &limits()).unwrap();
    let params = TrainParams {
        epochs,
        hidden_layers: vec![16, 8],
        ..Default::default()
    };
    let spec = TrainSpec {
        target: "target".into(),
        params,
        ..Default::default()
    };
    let cancel = AtomicBool::new(false);
    let trained = train(&table, &spec, &Default::default(), Control::none(&cancel)).unwrap();
    (trained.model, table)
}

/// `rows` without their target: instances to predict.
pub(super) fn instances(rows: &[Map<String, Value>]) -> Vec<Map<String, Value>> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove("target");
            r
        })
        .collect()
}

#[test]
fn attributions_add_up_to_prediction_minus_base_value() {
    for regression in [false, true] {
        let rows = synthetic_rows(600, 3, regression);
        let (model, _) = trained(&rows, 30);
        let probe = instances(&synthetic_rows(40, 99, regression));
        let explanations = model
            .explain_records(&probe, &ExplainOptions::default())
            .unwrap();
        for (e, record) in explanations.iter().zip(&probe) {
            let total: f64 = e.attributions.iter().map(|a| a.attribution).sum();
            let delta = e.prediction - e.base_value;
            assert!(
                (e.base_value + total - e.prediction).abs() <= 0.01 * delta.abs() + 1e-6,
                "regression {regression}: {e:?} for {record:?}"
            );
            assert_eq!(e.attributions.len(), 4);
            // The explained value is what /predict answers.
            let batch = model.predict_records(std::slice::from_ref(record)).unwrap();
            match &batch.predictions[0] {
                super::Prediction::Class {
                    label,
                    probabilities,
                } => {
                    assert_eq!(e.class.as_ref(), Some(label));
                    assert!((f64::from(probabilities[label]) - e.prediction).abs() < 1e-5);
                }
                super::Prediction::Value { value } => {
                    assert!((value - e.prediction).abs() < 1e-3 * value.abs().max(1.0));
                }
            }
        }
    }
}

#[test]
fn the_informative_column_ranks_first_and_unused_ones_near_zero() {
    let rows = synthetic_rows(800, 5, false);
    let (model, _) = trained(&rows, 40);
    let probe = instances(&synthetic_rows(50, 77, false));
    let explanations = model
        .explain_records(&probe, &ExplainOptions::default())
        .unwrap();
    let mut mean_abs = std::collections::BTreeMap::<String, f64>::new();
    for e in &explanations {
        for a in &e.attributions {
            *mean_abs.entry(a.column.clone()).or_default() += a.attribution.abs() / 50.0;
        }
    }
    let best = mean_abs
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, _)| k.clone());
    assert_eq!(best.as_deref(), Some("signal"), "{mean_abs:?}");
    for unused in ["noise_a", "noise_b", "color"] {
        assert!(
            mean_abs[unused] < 0.1 * mean_abs["signal"],
            "{unused}: {mean_abs:?}"
        );
    }
}

#[test]
fn a_named_class_is_explained_and_an_unknown_one_refused() {
    let rows = synthetic_rows(300, 8, false);
    let (model, _) = trained(&rows, 10);
    let probe = instances(&rows[..3]);
    for class in ["yes", "no"] {
        let options = ExplainOptions {
            class: Some(class.into()),
            ..Default::default()
        };
        for e in model.explain_records(&probe, &options).unwrap() {
            assert_eq!(e.class.as_deref(), Some(class));
        }
    }
    let options = ExplainOptions {
        class: Some("maybe".into()),
        ..Default::default()
    };
    let err = model.explain_records(&probe, &options).unwrap_err();
    assert!(err.to_string().contains("maybe"), "{err}");
}

#[test]
fn the_baseline_is_the_training_mean_and_most_frequent_value() {
    let rows = synthetic_rows(300, 8, false);
    let (model, _) = trained(&rows, 2);
    let signal = model.baseline["signal"].as_f64().unwrap();
    assert!(signal.abs() < 0.5, "{signal}");
    assert!(model.baseline["color"].is_string());
    // Stored with the model and read back.
    let spec = model.spec();
    let back = TabularModel::from_parts(spec, model.mlp.clone()).unwrap();
    assert_eq!(back.baseline, model.baseline);
}

#[test]
fn permutation_importance_ranks_the_informative_column_first() {
    for regression in [false, true] {
        let rows = synthetic_rows(800, 11, regression);
        let (model, _) = trained(&rows, 40);
        let importance = model.importance.as_ref().expect("measured in training");
        assert_eq!(
            importance.metric,
            if regression { "rmse" } else { "log_loss" }
        );
        assert!(importance.rows > 0 && importance.rows <= super::IMPORTANCE_MAX_ROWS);
        assert_eq!(importance.columns.len(), 4);
        assert_eq!(importance.columns[0].column, "signal", "{importance:?}");
        let top = importance.columns[0].importance;
        assert!(top > 0.0);
        for other in &importance.columns[1..] {
            assert!(other.importance.abs() < 0.1 * top, "{importance:?}");
        }
        // Stored in the card's spec.
        assert_eq!(model.spec().importance.as_deref(), Some(importance));
    }
}
