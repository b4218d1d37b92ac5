//! Behavioural tests of `fit`: convergence, determinism, early stopping, control hooks,
//! heads, validation and data checks (optimizers, schedules and regularisation are in
//! `train_options_tests.rs`).

use super::*;
use crate::nn::activation::Activation;
use crate::nn::loss::RegressionLoss;
use crate::nn::optim::OptimizerKind;
use crate::nn::params::ParamError;
use ndarray::{array, Array1, Array2};
use rand::{Rng, SeedableRng};

pub(super) fn never() -> AtomicBool {
    AtomicBool::new(false)
}

pub(super) fn quiet_params() -> TrainParams {
    TrainParams {
        validation_fraction: 0.0,
        early_stopping_patience: None,
        ..TrainParams::default()
    }
}

/// Two noisy Gaussian-ish blobs in 4 dimensions with binary labels.
pub(super) fn blobs(rows: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::zeros((rows, 4));
    let mut y = Array2::zeros((rows, 1));
    for r in 0..rows {
        let label = r % 2;
        y[[r, 0]] = label as f32;
        for c in 0..4 {
            let centre = if label == 1 { 0.8 } else { -0.8 };
            x[[r, c]] = centre + rng.random_range(-1.2..1.2);
        }
    }
    (x, y)
}

pub(super) fn noise_regression(rows: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((rows, 3), |_| rng.random_range(-1.0..1.0));
    let y = Array2::from_shape_fn((rows, 1), |_| rng.random_range(-1.0..1.0));
    (x, y)
}

pub(super) fn fit_quiet(
    set: TrainSet,
    head: Head,
    params: &TrainParams,
) -> Result<FitOutcome, TrainError> {
    let cancel = never();
    fit(
        set,
        None,
        head,
        params,
        &Caps::default(),
        Control::none(&cancel),
    )
}

pub(super) fn parameter_vector(model: &Mlp) -> Vec<f32> {
    model.tensors().into_iter().flat_map(|t| t.data).collect()
}

pub(super) fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| f64::from(p - q).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn single_sigmoid_unit_learns_constant_positive() {
    let x = array![[0.0_f32, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]];
    let y = array![[1.0_f32], [1.0], [1.0], [1.0]];
    let params = TrainParams {
        hidden_layers: vec![],
        learning_rate: 0.1,
        epochs: 300,
        batch_size: 4,
        ..quiet_params()
    };
    let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &params).unwrap();
    assert_eq!(outcome.model.parameter_count(), 3);
    let predictions = outcome.model.predict(x.view());
    assert!(predictions.iter().all(|&p| p > 0.99), "{predictions:?}");
}

#[test]
fn xor_is_learned_exactly() {
    let x = array![[0.0_f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let y = array![[0.0_f32], [1.0], [1.0], [0.0]];
    let params = TrainParams {
        hidden_layers: vec![8],
        activation: Activation::Tanh,
        learning_rate: 0.05,
        epochs: 400,
        batch_size: 4,
        ..quiet_params()
    };
    let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &params).unwrap();
    let predictions = outcome.model.predict(x.view());
    for (p, t) in predictions.iter().zip(y.iter()) {
        assert_eq!(*p > 0.5, *t > 0.5, "{predictions:?}");
    }
    let last = outcome.history.last().unwrap();
    assert!(last.train_loss < 0.1, "{}", last.train_loss);
}

#[test]
fn same_seed_is_bit_identical_and_other_seed_differs() {
    let (x, y) = blobs(120, 1);
    let params = TrainParams {
        hidden_layers: vec![16, 8],
        dropout: 0.2,
        epochs: 4,
        batch_size: 32,
        validation_fraction: 0.2,
        ..TrainParams::default()
    };
    let run = |seed| {
        let params = TrainParams {
            seed,
            ..params.clone()
        };
        let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &params).unwrap();
        parameter_vector(&outcome.model)
    };
    let first = run(7);
    let second = run(7);
    assert!(first
        .iter()
        .zip(&second)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_ne!(first, run(8));
}

#[test]
fn early_stopping_restores_best_weights() {
    let (x, y) = noise_regression(48, 3);
    let (vx, vy) = noise_regression(48, 4);
    let head = Head::Regression {
        outputs: 1,
        loss: RegressionLoss::Mse,
    };
    let params = TrainParams {
        hidden_layers: vec![64],
        learning_rate: 0.01,
        epochs: 200,
        batch_size: 16,
        early_stopping_patience: Some(3),
        ..TrainParams::default()
    };
    let valid = TrainSet::new(vx.view(), vy.view());
    let cancel = never();
    let outcome = fit(
        TrainSet::new(x.view(), y.view()),
        Some(valid),
        head,
        &params,
        &Caps::default(),
        Control::none(&cancel),
    )
    .unwrap();
    assert!(outcome.stopped_early);
    assert_eq!(outcome.history.len(), outcome.best_epoch + 3);
    let losses: Vec<f64> = outcome
        .history
        .iter()
        .map(|r| r.valid_loss.unwrap())
        .collect();
    let best = losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(losses[outcome.best_epoch - 1], best);
    let mut trainer = Trainer::from_model(outcome.model.clone(), &params, 16, 0);
    let restored = trainer.evaluate(&valid, &(0..48).collect::<Vec<_>>());
    assert_eq!(restored.loss(), best);
    assert_ne!(restored.loss(), *losses.last().unwrap());
}

#[test]
fn progress_is_reported_once_per_epoch() {
    let (x, y) = blobs(64, 2);
    let params = TrainParams {
        hidden_layers: vec![8],
        epochs: 5,
        batch_size: 16,
        learning_rate: 0.02,
        validation_fraction: 0.25,
        early_stopping_patience: None,
        ..TrainParams::default()
    };
    let mut reports = Vec::new();
    let mut record = |report: &EpochReport| reports.push(report.clone());
    let cancel = never();
    let outcome = fit(
        TrainSet::new(x.view(), y.view()),
        None,
        Head::Binary,
        &params,
        &Caps::default(),
        Control::new(&mut record, &cancel),
    )
    .unwrap();
    assert_eq!(
        reports.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(reports, outcome.history);
    assert_eq!(outcome.best_epoch, 5);
    assert!(!outcome.stopped_early);
    for pair in reports.windows(2) {
        assert!(pair[1].elapsed_secs >= pair[0].elapsed_secs);
    }
    let last = &reports[4];
    assert_eq!(last.metric, "accuracy");
    assert!(last.valid_metric.unwrap() > 0.8, "{last:?}");
    assert!(last.valid_loss.is_some());
}

#[test]
fn cancellation_stops_training() {
    let (x, y) = blobs(64, 2);
    let params = TrainParams {
        hidden_layers: vec![8],
        epochs: 50,
        batch_size: 16,
        ..quiet_params()
    };
    let cancel = never();
    let mut calls = 0;
    let mut cancel_at_two = |report: &EpochReport| {
        calls += 1;
        if report.epoch == 2 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let result = fit(
        TrainSet::new(x.view(), y.view()),
        None,
        Head::Binary,
        &params,
        &Caps::default(),
        Control::new(&mut cancel_at_two, &cancel),
    );
    assert!(matches!(result, Err(TrainError::Cancelled)));
    assert_eq!(calls, 2);
    let already = AtomicBool::new(true);
    let result = fit(
        TrainSet::new(x.view(), y.view()),
        None,
        Head::Binary,
        &params,
        &Caps::default(),
        Control::none(&already),
    );
    assert!(matches!(result, Err(TrainError::Cancelled)));
}

#[test]
fn validation_is_held_out_only_when_requested() {
    let (x, y) = blobs(40, 11);
    let with = TrainParams {
        hidden_layers: vec![4],
        epochs: 2,
        validation_fraction: 0.25,
        ..quiet_params()
    };
    let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &with).unwrap();
    assert!(outcome
        .history
        .iter()
        .all(|r| r.valid_loss.is_some() && r.valid_metric.is_some()));
    let without = TrainParams {
        validation_fraction: 0.0,
        ..with
    };
    let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &without).unwrap();
    assert!(outcome.history.iter().all(|r| r.valid_loss.is_none()));
}

#[test]
fn divergence_is_reported_as_non_finite() {
    let x = Array2::from_elem((8, 2), 1.0_f32);
    let y = Array2::from_elem((8, 1), 1e20_f32);
    let head = Head::Regression {
        outputs: 1,
        loss: RegressionLoss::Mse,
    };
    let result = fit_quiet(TrainSet::new(x.view(), y.view()), head, &quiet_params());
    assert!(
        matches!(result, Err(TrainError::NonFinite { epoch: 1 })),
        "{result:?}"
    );
}

#[test]
fn bad_data_and_params_are_rejected_before_training() {
    let (x, y) = blobs(10, 12);
    let params = quiet_params();
    let shape_error = |set: TrainSet, head: Head| match fit_quiet(set, head, &params) {
        Err(TrainError::Shape(message)) => message,
        other => panic!(
            "expected a shape error, got {:?}",
            other.map(|o| o.best_epoch)
        ),
    };
    let message = shape_error(
        TrainSet::new(x.view(), y.slice(ndarray::s![..9, ..])),
        Head::Binary,
    );
    assert!(
        message.contains("10 rows") && message.contains("9"),
        "{message}"
    );
    let message = shape_error(
        TrainSet::new(x.view(), y.view()),
        Head::MultiLabel { labels: 2 },
    );
    assert!(message.contains("y has 1 columns"), "{message}");
    let mut bad_target = y.clone();
    bad_target[[3, 0]] = 2.0;
    let message = shape_error(TrainSet::new(x.view(), bad_target.view()), Head::Binary);
    assert!(message.contains("y[3, 0] = 2"), "{message}");
    let mut nan_x = x.clone();
    nan_x[[1, 2]] = f32::NAN;
    let message = shape_error(TrainSet::new(nan_x.view(), y.view()), Head::Binary);
    assert!(message.contains("x[1, 2] = NaN"), "{message}");
    let weights = Array1::from_elem(10, -1.0_f32);
    let message = shape_error(
        TrainSet {
            x: x.view(),
            sparse: None,
            y: y.view(),
            weights: Some(weights.view()),
        },
        Head::Binary,
    );
    assert!(message.contains("weights[0] = -1"), "{message}");
    let empty = Array2::<f32>::zeros((0, 4));
    let empty_y = Array2::<f32>::zeros((0, 1));
    assert!(
        shape_error(TrainSet::new(empty.view(), empty_y.view()), Head::Binary).contains("no rows")
    );

    let result = fit_quiet(
        TrainSet::new(x.view(), y.view()),
        Head::Binary,
        &TrainParams {
            dropout: 1.0,
            ..quiet_params()
        },
    );
    assert!(matches!(
        result,
        Err(TrainError::Params(ParamError::Invalid {
            name: "dropout",
            ..
        }))
    ));
}

#[test]
fn trainer_steps_reduce_batch_loss() {
    let (x, y) = blobs(32, 13);
    let arch = Architecture {
        inputs: 4,
        hidden: vec![8],
        outputs: 1,
        activation: Activation::Gelu,
        head: Head::Binary,
    };
    let params = TrainParams {
        batch_size: 32,
        learning_rate: 0.01,
        ..TrainParams::default()
    };
    let mut trainer = Trainer::new(&arch, &params, &Caps::default()).unwrap();
    let batch = TrainSet::new(x.view(), y.view());
    let first = trainer.train_batch(batch, 0.01).unwrap();
    let mut last = first;
    for _ in 0..50 {
        last = trainer.train_batch(batch, 0.01).unwrap();
    }
    assert!(last < 0.5 * first, "{first} -> {last}");
    let (big_x, big_y) = blobs(33, 13);
    assert!(matches!(
        trainer.train_batch(TrainSet::new(big_x.view(), big_y.view()), 0.01),
        Err(TrainError::Shape(_))
    ));
}

/// `x` split into its first `dense` columns and a CSR block of the rest (zeros dropped).
fn split_sparse(x: &Array2<f32>, dense: usize) -> (Array2<f32>, CsrMatrix) {
    let mut sparse = CsrMatrix::new(x.ncols() - dense);
    for row in x.rows() {
        let entries: Vec<(u32, f32)> = row
            .iter()
            .skip(dense)
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(|(c, &v)| (c as u32, v))
            .collect();
        sparse.push_row(&entries);
    }
    (x.slice(ndarray::s![.., ..dense]).to_owned(), sparse)
}

#[test]
fn sparse_inputs_train_the_same_network_as_dense_inputs_with_every_optimizer() {
    let (mut x, y) = blobs(96, 4);
    // Half the trailing features are zero, as in a bag of words.
    for ((r, c), v) in x.indexed_iter_mut() {
        if c >= 2 && (r + c) % 2 == 0 {
            *v = 0.0;
        }
    }
    for optimizer in [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ] {
        for dense_columns in [0, 2] {
            let params = TrainParams {
                hidden_layers: vec![6],
                optimizer,
                epochs: 5,
                batch_size: 16,
                dropout: 0.2,
                l2: 1e-3,
                weight_decay: 1e-2,
                ..quiet_params()
            };
            let dense = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &params)
                .unwrap()
                .model;
            let (head_x, sparse) = split_sparse(&x, dense_columns);
            let set = TrainSet {
                sparse: Some(&sparse),
                ..TrainSet::new(head_x.view(), y.view())
            };
            let split = fit_quiet(set, Head::Binary, &params).unwrap().model;
            for (a, b) in parameter_vector(&dense)
                .iter()
                .zip(parameter_vector(&split).iter())
            {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{optimizer:?}, {dense_columns} dense: {a} vs {b}"
                );
            }
            let gap = &split.predict_split(head_x.view(), Some(&sparse)) - &dense.predict(x.view());
            assert!(gap.iter().all(|d| d.abs() < 1e-5));
        }
    }
}

#[test]
fn sparse_set_shapes_are_checked() {
    let (x, y) = blobs(8, 1);
    let (head_x, sparse) = split_sparse(&x, 2);
    let short = head_x.slice(ndarray::s![..4, ..]).to_owned();
    let set = TrainSet {
        sparse: Some(&sparse),
        ..TrainSet::new(short.view(), y.slice(ndarray::s![..4, ..]))
    };
    let err = fit_quiet(set, Head::Binary, &quiet_params()).unwrap_err();
    assert!(err.to_string().contains("sparse block has 8"), "{err}");
}
