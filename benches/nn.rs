//! Criterion benchmarks of the `nn` hot paths on a 39k × 108 synthetic table with hidden
//! layers [64, 32], Adam and batch 256: one full epoch, one training step, batched
//! forward, and single-row prediction.

use std::hint::black_box;
use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, Criterion};
use myelin::nn::{
    fit, Activation, Architecture, Caps, Control, Head, InferenceScratch, Init, Mlp, OptimizerKind,
    TrainParams, TrainSet, Trainer,
};
use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

fn params() -> TrainParams {
    TrainParams {
        hidden_layers: vec![64, 32],
        optimizer: OptimizerKind::Adam,
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

fn benches(c: &mut Criterion) {
    let (x, y) = table();
    let params = params();
    let caps = Caps::default();

    let mut group = c.benchmark_group("nn");
    group.sample_size(20);
    group.bench_function("fit_one_epoch_39k_x_108", |b| {
        b.iter(|| {
            let cancel = AtomicBool::new(false);
            let set = TrainSet::new(x.view(), y.view());
            fit(
                set,
                None,
                Head::Binary,
                &params,
                &caps,
                Control::none(&cancel),
            )
        })
    });
    group.finish();

    let batch_x = x.slice(s![..BATCH, ..]);
    let batch_y = y.slice(s![..BATCH, ..]);
    let mut trainer = Trainer::new(&architecture(), &params, &caps).expect("valid benchmark setup");
    c.bench_function("nn/train_batch_256", |b| {
        b.iter(|| trainer.train_batch(TrainSet::new(batch_x, batch_y), 1e-3))
    });

    let model = Mlp::new(&architecture(), Init::Auto, 7);
    let mut scratch = InferenceScratch::default();
    let mut out = Array2::zeros((BATCH, 1));
    c.bench_function("nn/forward_256", |b| {
        b.iter(|| model.predict_into(black_box(batch_x), &mut scratch, out.view_mut()))
    });

    let row = x.slice(s![..1, ..]);
    let mut single = Array2::zeros((1, 1));
    c.bench_function("nn/predict_single_row", |b| {
        b.iter(|| model.predict_into(black_box(row), &mut scratch, single.view_mut()))
    });
}

criterion_group!(nn, benches);
criterion_main!(nn);
