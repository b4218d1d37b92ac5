//! Entry points of the fuzz targets in `fuzz/` (and of their regression
//! tests, which replay the committed corpus on stable Rust). Each takes
//! arbitrary bytes; an error is fine, a panic or a non-finite prediction is
//! a bug.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::data::{self, ReadLimits};
use crate::registry::{self, ServingModel, CARD_FILE};
use crate::tabular::{self, TabularModel, TrainSpec};

/// Small reader limits, so inputs cannot make the fuzzer allocate much.
fn limits() -> ReadLimits {
    ReadLimits {
        max_rows: 10_000,
        max_columns: 64,
        max_field_bytes: 4096,
    }
}

/// The dataset readers and schema inference: `bytes` as CSV, as NDJSON and
/// as a JSON array of records.
pub fn dataset(bytes: &[u8]) {
    let limits = limits();
    let tables = [
        data::read_csv(bytes, &limits),
        data::read_ndjson(bytes, &limits),
        data::read_json_rows(bytes, &limits),
    ];
    for table in tables.into_iter().flatten() {
        let schema = data::infer_schema(&table, &Default::default(), &[]);
        if let (Ok(schema), Some(target)) = (schema, table.columns.last()) {
            // The pipeline fit sees whatever the schema accepted.
            let rows: Vec<usize> = (0..table.rows()).collect();
            let _ = data::FeaturePipeline::fit(
                &table,
                &rows,
                &schema,
                target,
                &data::PipelineOptions::default(),
            );
        }
    }
}

/// `bytes` as a WAV file through the audio front end (decode, resample, log-mel) under
/// small caps. Panics if a decoded clip gives a non-finite feature.
pub fn audio(bytes: &[u8]) {
    let limits = data::AudioLimits {
        max_clip_secs: 2.0,
        max_sample_rate: 96_000,
    };
    let options = data::AudioOptions {
        duration_secs: 0.25,
        deltas: true,
        ..Default::default()
    };
    if let Ok(features) = data::wav_log_mel(bytes, &options, &limits) {
        assert!(
            features.iter().all(|v| v.is_finite()),
            "a decoded clip has a non-finite feature"
        );
    }
}

/// A small classifier trained once: the model predict inputs are decoded for.
pub fn fixture_model() -> &'static TabularModel {
    static MODEL: OnceLock<TabularModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let rows: Vec<Map<String, Value>> = (0..60)
            .map(|i| {
                let plan = ["basic", "pro", "team"][i % 3];
                let record = json!({
                    "tenure": i % 37,
                    "plan": plan,
                    "autopay": i % 2 == 0,
                    "note": format!("customer {i} on {plan}"),
                    "churned": if i % 37 < 12 { "yes" } else { "no" },
                });
                match record {
                    Value::Object(map) => map,
                    _ => Map::new(),
                }
            })
            .collect();
        let table = match data::table_from_records(&rows, &limits()) {
            Ok(t) => t,
            Err(e) => unreachable!("the fixture table is valid: {e}"),
        };
        let mut params = crate::nn::TrainParams {
            epochs: 2,
            hidden_layers: vec![4],
            ..Default::default()
        };
        params.early_stopping_patience = None;
        let spec = TrainSpec {
            target: "churned".into(),
            task: None,
            overrides: [("note".to_string(), data::ColumnKind::Text)].into(),
            ignore: Vec::new(),
            params,
            pipeline: Default::default(),
            class_weight: None,
            ..Default::default()
        };
        let cancel = AtomicBool::new(false);
        let mut on_epoch = |_: &crate::nn::EpochReport| {};
        let control = crate::nn::Control {
            on_epoch: &mut on_epoch,
            cancel: &cancel,
        };
        match tabular::train(&table, &spec, &Default::default(), control) {
            Ok(trained) => trained.model,
            Err(e) => unreachable!("the fixture model trains: {e}"),
        }
    })
}

/// Decodes `bytes` as a `/predict` body and predicts its instances with
/// [`fixture_model`]. Panics if a prediction is not finite.
pub fn predict_request(bytes: &[u8]) {
    let Ok(request) = serde_json::from_slice::<crate::api::predict::PredictRequest>(bytes) else {
        return;
    };
    let model = fixture_model();
    if let Ok(batch) = model.predict_records(&request.instances) {
        for prediction in &batch.predictions {
            let value = serde_json::to_value(prediction).unwrap_or(Value::Null);
            assert!(
                all_finite(&value),
                "a prediction is not finite: {value} for {}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

fn all_finite(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Array(items) => items.iter().all(all_finite),
        Value::Object(map) => map.values().all(all_finite),
        // serde_json writes non-finite floats as null.
        Value::Null => false,
        _ => true,
    }
}

/// Writes `bytes` as `model.json` into `dir`, which holds the fixture's
/// weights, and loads the version; a model that loads must predict finite
/// values.
pub fn model_card(dir: &Path, bytes: &[u8]) {
    if std::fs::write(dir.join(CARD_FILE), bytes).is_err() {
        return;
    }
    let Ok(loaded) = registry::load_dir(dir) else {
        return;
    };
    if let ServingModel::Tabular(model) = &loaded.model {
        let instance = json!({"tenure": 3, "plan": "basic", "autopay": true, "note": "x"});
        if let Value::Object(map) = instance {
            if let Ok(batch) = model.predict_records(&[map]) {
                let value = serde_json::to_value(&batch.predictions).unwrap_or(Value::Null);
                assert!(all_finite(&value), "a loaded model predicts {value}");
            }
        }
    }
}

/// A version directory of [`fixture_model`] (weights and a valid
/// `model.json`) under `dir`, for [`model_card`].
pub fn write_fixture_version(dir: &Path) -> std::io::Result<()> {
    let model = fixture_model();
    let weights = registry::weights_bytes(&model.mlp).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(registry::WEIGHTS_FILE), weights)?;
    let card = fixture_card(model);
    std::fs::write(
        dir.join(CARD_FILE),
        serde_json::to_vec_pretty(&card).map_err(std::io::Error::other)?,
    )
}

fn fixture_card(model: &TabularModel) -> registry::ModelCard {
    registry::ModelCard {
        version: 1,
        created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        ..registry::ModelCard::tabular_model("fixture", model, data::fingerprint(b"", 0, 0))
    }
}
