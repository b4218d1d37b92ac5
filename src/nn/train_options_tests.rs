//! Tests of `fit`'s options: every optimizer, learning-rate schedules, dropout,
//! gradient clipping, L2, sample weights and the output heads.

use super::tests::{
    blobs, distance, fit_quiet, never, noise_regression, parameter_vector, quiet_params,
};
use super::*;
use crate::nn::activation::Activation;
use crate::nn::loss::RegressionLoss;
use crate::nn::optim::{OptimizerKind, Schedule};
use ndarray::{Array1, Array2};

#[test]
fn every_optimizer_trains_and_its_settings_are_wired() {
    let (x, y) = blobs(128, 5);
    let set = TrainSet::new(x.view(), y.view());
    let run = |params: TrainParams| {
        let params = TrainParams {
            hidden_layers: vec![8],
            epochs: 15,
            batch_size: 16,
            ..params
        };
        let outcome = fit_quiet(set, Head::Binary, &params).unwrap();
        let first = outcome.history[0].train_loss;
        let last = outcome.history.last().unwrap().train_loss;
        assert!(
            last < 0.6 * first,
            "{:?}: {first} -> {last}",
            params.optimizer
        );
        parameter_vector(&outcome.model)
    };
    let sgd = TrainParams {
        optimizer: OptimizerKind::Sgd,
        learning_rate: 0.05,
        ..quiet_params()
    };
    let momentum = run(sgd.clone());
    let nesterov = run(TrainParams {
        nesterov: true,
        ..sgd.clone()
    });
    let plain = run(TrainParams {
        momentum: 0.0,
        ..sgd
    });
    assert_ne!(momentum, nesterov);
    assert_ne!(momentum, plain);
    let adam = TrainParams {
        optimizer: OptimizerKind::Adam,
        learning_rate: 0.01,
        weight_decay: 0.1,
        ..quiet_params()
    };
    let adam_weights = run(adam.clone());
    let adam_w = run(TrainParams {
        optimizer: OptimizerKind::AdamW,
        ..adam.clone()
    });
    let adam_no_decay = run(TrainParams {
        weight_decay: 0.0,
        ..adam
    });
    assert_eq!(adam_weights, adam_no_decay, "adam ignores weight_decay");
    assert_ne!(adam_weights, adam_w);
}

#[test]
fn cosine_schedule_is_applied_per_epoch() {
    let (x, y) = blobs(32, 6);
    let params = TrainParams {
        hidden_layers: vec![4],
        epochs: 4,
        learning_rate: 0.1,
        schedule: Schedule::Cosine { min_lr: 0.02 },
        ..quiet_params()
    };
    let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &params).unwrap();
    let rates: Vec<f64> = outcome.history.iter().map(|r| r.learning_rate).collect();
    for (epoch, rate) in rates.iter().enumerate() {
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / 4.0).cos());
        let expected = 0.02 + 0.08 * cosine;
        assert!(
            (rate - expected).abs() < 1e-6,
            "epoch {epoch}: {rate} vs {expected}"
        );
    }
}

#[test]
fn reduce_on_plateau_lowers_rate_after_stalled_validation() {
    let (x, y) = noise_regression(48, 3);
    let (vx, vy) = noise_regression(48, 4);
    let head = Head::Regression {
        outputs: 1,
        loss: RegressionLoss::Mse,
    };
    let params = TrainParams {
        hidden_layers: vec![64],
        learning_rate: 0.01,
        epochs: 30,
        batch_size: 16,
        schedule: Schedule::ReduceOnPlateau {
            factor: 0.5,
            patience: 1,
            min_lr: 0.001,
        },
        ..quiet_params()
    };
    let cancel = never();
    let outcome = fit(
        TrainSet::new(x.view(), y.view()),
        Some(TrainSet::new(vx.view(), vy.view())),
        head,
        &params,
        &Caps::default(),
        Control::none(&cancel),
    )
    .unwrap();
    let history = &outcome.history;
    let mut best = f64::INFINITY;
    let mut stalled = 0;
    let mut reductions = 0;
    for pair in history.windows(2) {
        let loss = pair[0].valid_loss.unwrap();
        if loss < best {
            best = loss;
            stalled = 0;
        } else {
            stalled += 1;
        }
        if pair[1].learning_rate < pair[0].learning_rate {
            reductions += 1;
            assert_eq!(stalled, 2, "reduced after {stalled} stalled epochs");
            assert!(
                (pair[1].learning_rate - (pair[0].learning_rate * 0.5).max(0.001)).abs() < 1e-9
            );
            stalled = 0;
        } else {
            assert!(stalled < 2 || pair[0].learning_rate <= 0.001 + 1e-9);
        }
    }
    assert!(reductions >= 2, "{history:?}");
}

#[test]
fn dropout_changes_training_but_not_inference() {
    let (x, y) = blobs(128, 7);
    let base = TrainParams {
        hidden_layers: vec![32],
        epochs: 10,
        batch_size: 32,
        ..quiet_params()
    };
    let plain = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &base).unwrap();
    let dropped = fit_quiet(
        TrainSet::new(x.view(), y.view()),
        Head::Binary,
        &TrainParams {
            dropout: 0.5,
            ..base
        },
    )
    .unwrap();
    assert_ne!(
        parameter_vector(&plain.model),
        parameter_vector(&dropped.model)
    );
    assert_eq!(
        dropped.model.predict(x.view()),
        dropped.model.predict(x.view())
    );
    let predictions = dropped.model.predict(x.view());
    let correct = predictions
        .iter()
        .zip(y.iter())
        .filter(|(p, t)| (**p > 0.5) == (**t > 0.5))
        .count();
    assert!(correct as f64 / 128.0 > 0.8, "{correct}");
}

#[test]
fn gradient_clipping_bounds_the_update() {
    let (x, y) = blobs(64, 8);
    let arch_params = TrainParams {
        hidden_layers: vec![8],
        optimizer: OptimizerKind::Sgd,
        momentum: 0.0,
        learning_rate: 1.0,
        epochs: 1,
        batch_size: 64,
        ..quiet_params()
    };
    let arch = Architecture {
        inputs: 4,
        hidden: vec![8],
        outputs: 1,
        activation: Activation::Relu,
        head: Head::Binary,
    };
    let initial = parameter_vector(&Mlp::new(&arch, arch_params.init, arch_params.seed));
    let step = |clip| {
        let params = TrainParams {
            clip_grad_norm: clip,
            ..arch_params.clone()
        };
        let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), Head::Binary, &params).unwrap();
        distance(&initial, &parameter_vector(&outcome.model))
    };
    let clipped = step(Some(0.001));
    assert!(
        clipped <= 0.001 * (1.0 + 1e-4) && clipped > 0.0009,
        "{clipped}"
    );
    assert!(step(None) > 0.01);
}

#[test]
fn l2_penalty_shrinks_weights() {
    let (x, y) = blobs(64, 9);
    let base = TrainParams {
        hidden_layers: vec![16],
        epochs: 30,
        batch_size: 16,
        learning_rate: 0.01,
        ..quiet_params()
    };
    let norm = |l2| {
        let outcome = fit_quiet(
            TrainSet::new(x.view(), y.view()),
            Head::Binary,
            &TrainParams { l2, ..base.clone() },
        )
        .unwrap();
        outcome
            .model
            .layers()
            .iter()
            .map(|l| l.weight.iter().map(|w| f64::from(*w).powi(2)).sum::<f64>())
            .sum::<f64>()
    };
    assert!(norm(0.5) < 0.5 * norm(0.0));
}

#[test]
fn sample_weights_shift_the_decision() {
    let x = Array2::<f32>::zeros((20, 1));
    let y = Array2::from_shape_fn((20, 1), |(r, _)| (r % 2) as f32);
    let params = TrainParams {
        hidden_layers: vec![],
        learning_rate: 0.05,
        epochs: 300,
        batch_size: 20,
        ..quiet_params()
    };
    let probability_with = |positive_weight: f32| {
        let weights = Array1::from_shape_fn(20, |r| if r % 2 == 1 { positive_weight } else { 1.0 });
        let set = TrainSet {
            x: x.view(),
            sparse: None,
            y: y.view(),
            weights: Some(weights.view()),
        };
        let outcome = fit_quiet(set, Head::Binary, &params).unwrap();
        outcome.model.predict(x.view())[[0, 0]]
    };
    assert!((probability_with(1.0) - 0.5).abs() < 0.01);
    assert!((probability_with(3.0) - 0.75).abs() < 0.01);
    assert!((probability_with(1.0 / 3.0) - 0.25).abs() < 0.01);
}

#[test]
fn multiclass_and_regression_heads_learn() {
    let (x, labels) = blobs(120, 10);
    let one_hot = Array2::from_shape_fn((120, 2), |(r, c)| {
        f32::from(u8::from(labels[[r, 0]] as usize == c))
    });
    let params = TrainParams {
        hidden_layers: vec![16],
        epochs: 20,
        batch_size: 16,
        learning_rate: 0.01,
        ..quiet_params()
    };
    let outcome = fit_quiet(
        TrainSet::new(x.view(), one_hot.view()),
        Head::Multiclass { classes: 2 },
        &params,
    )
    .unwrap();
    let probabilities = outcome.model.predict(x.view());
    let correct = probabilities
        .rows()
        .into_iter()
        .zip(labels.iter())
        .filter(|(row, &t)| (row[1] > row[0]) == (t > 0.5))
        .count();
    assert!(correct > 100, "{correct}");

    let y = x
        .map_axis(ndarray::Axis(1), |row| row.sum() * 0.5)
        .insert_axis(ndarray::Axis(1));
    for loss in [RegressionLoss::Mse, RegressionLoss::Huber { delta: 0.5 }] {
        let head = Head::Regression { outputs: 1, loss };
        let outcome = fit_quiet(TrainSet::new(x.view(), y.view()), head, &params).unwrap();
        let predictions = outcome.model.predict(x.view());
        let rmse = (predictions - &y).mapv(|r| r * r).mean().unwrap().sqrt();
        assert!(rmse < 0.3, "{loss:?}: {rmse}");
    }
}
