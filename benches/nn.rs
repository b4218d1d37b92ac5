//! Criterion benchmarks of the engine's hot paths on a 39k × 108 synthetic table with
//! hidden layers [64, 32] and batch 256 (the shape of adult after one-hot encoding):
//! one full epoch, a training step with SGD and with Adam, batched forward and
//! single-row prediction, and the feature pipeline (256-row table transform and one
//! raw JSON record, as `/predict` does).
//!
//! Backward and the optimizer step are not public API on their own; they are the
//! differences `train_step_sgd − forward` (backward + plain SGD update) and
//! `train_step_adam − train_step_sgd` (the extra cost of Adam's update), which the
//! benchmark suite reports alongside.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, Criterion};
use myelin::data::{infer_schema, read_csv, FeaturePipeline, PipelineOptions, ReadLimits};
use myelin::nn::{
    fit, Activation, Architecture, Caps, Control, Head, InferenceScratch, Init, Mlp, OptimizerKind,
    TrainParams, TrainSet, Trainer,
};
use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

const ROWS: usize = 39_000;
const FEATURES: usize = 108;
const BATCH: usize = 256;

fn table() -> (Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = Array2::from_shape_fn((ROWS, FEATURES), |_| rng.random_range(-1.0..1.0));
    let direction = Array2::from_shape_fn((FEATURES, 1), |_| rng.random_range(-1.0..1.0));
    let y = x
        .dot(&direction)
        .mapv(|v: f32| f32::from(u8::from(v > 0.0)));
    (x, y)
}

fn params(optimizer: OptimizerKind) -> TrainParams {
    TrainParams {
        hidden_layers: vec![64, 32],
        optimizer,
        batch_size: BATCH,
        epochs: 1,
        validation_fraction: 0.0,
        early_stopping_patience: None,
        ..TrainParams::default()
    }
}

fn architecture() -> Architecture {
    Architecture {
        inputs: FEATURES,
        hidden: vec![64, 32],
        outputs: 1,
        activation: Activation::Relu,
        head: Head::Binary,
    }
}

/// An adult-like raw table: 6 numeric and 8 categorical columns plus a binary target.
fn raw_csv(rows: usize) -> String {
    const LEVELS: [usize; 8] = [9, 16, 7, 15, 6, 5, 2, 41];
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut csv = String::new();
    let numeric = (0..6).map(|i| format!("n{i}"));
    let categorical = (0..LEVELS.len()).map(|i| format!("c{i}"));
    let header: Vec<String> = numeric
        .chain(categorical)
        .chain(std::iter::once("y".to_owned()))
        .collect();
    csv.push_str(&header.join(","));
    csv.push('\n');
    for _ in 0..rows {
        let mut fields: Vec<String> = (0..6)
            .map(|_| format!("{:.3}", rng.random_range(0.0..100.0f32)))
            .collect();
        fields.extend(
            LEVELS
                .iter()
                .enumerate()
                .map(|(i, &n)| format!("v{i}_{}", rng.random_range(0..n))),
        );
        fields.push(u8::from(rng.random_bool(0.25)).to_string());
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    csv
}

fn engine(c: &mut Criterion) {
    let (x, y) = table();
    let caps = Caps::default();

    let mut group = c.benchmark_group("nn");
    group.sample_size(10);
    let adam = params(OptimizerKind::Adam);
    group.bench_function("fit_one_epoch_39k_x_108", |b| {
        b.iter(|| {
            let cancel = AtomicBool::new(false);
            let set = TrainSet::new(x.view(), y.view());
            fit(
                set,
                None,
                Head::Binary,
                &adam,
                &caps,
                Control::none(&cancel),
            )
        })
    });
    group.finish();

    let batch_x = x.slice(s![..BATCH, ..]);
    let batch_y = y.slice(s![..BATCH, ..]);
    let mut group = c.benchmark_group("nn");
    for (name, optimizer) in [
        ("train_step_sgd_256", OptimizerKind::Sgd),
        ("train_step_adam_256", OptimizerKind::Adam),
    ] {
        let mut trainer =
            Trainer::new(&architecture(), &params(optimizer), &caps).expect("valid setup");
        group.bench_function(name, |b| {
            b.iter(|| trainer.train_batch(TrainSet::new(batch_x, batch_y), 1e-3))
        });
    }

    let model = Mlp::new(&architecture(), Init::Auto, 7);
    let mut scratch = InferenceScratch::default();
    let mut out = Array2::zeros((BATCH, 1));
    group.bench_function("forward_256", |b| {
        b.iter(|| model.predict_into(black_box(batch_x), &mut scratch, out.view_mut()))
    });

    let row = x.slice(s![..1, ..]);
    let mut single = Array2::zeros((1, 1));
    group.bench_function("predict_single_row", |b| {
        b.iter(|| model.predict_into(black_box(row), &mut scratch, single.view_mut()))
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let text = raw_csv(4_096);
    let table = read_csv(text.as_bytes(), &ReadLimits::default()).expect("synthetic csv");
    let schema = infer_schema(&table, &BTreeMap::new(), &[]).expect("schema");
    let all: Vec<usize> = (0..table.rows()).collect();
    let pipeline = FeaturePipeline::fit(&table, &all, &schema, "y", &PipelineOptions::default())
        .expect("pipeline");

    let mut group = c.benchmark_group("pipeline");
    let rows: Vec<usize> = (0..BATCH).collect();
    group.bench_function("transform_table_256", |b| {
        b.iter(|| pipeline.transform(black_box(&table), &rows))
    });

    let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    let first: Vec<&str> = text.lines().nth(1).unwrap_or_default().split(',').collect();
    let record: Map<String, Value> = header
        .iter()
        .zip(&first)
        .filter(|(name, _)| **name != "y")
        .map(|(name, value)| {
            let value = value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String((*value).to_owned()), Value::Number);
            ((*name).to_owned(), value)
        })
        .collect();
    let mut features = vec![0.0f32; pipeline.width()];
    group.bench_function("transform_record", |b| {
        b.iter(|| pipeline.transform_record(black_box(&record), &mut features))
    });
    group.finish();
}

criterion_group!(benches, engine, pipeline);
criterion_main!(benches);
