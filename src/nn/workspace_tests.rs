//! Tests of `nn/workspace.rs`.

use super::*;
use crate::nn::activation::Activation;
use crate::nn::loss::{Head, RegressionLoss};
use crate::nn::mlp::{Architecture, Init};
use ndarray::{array, Array2, Zip};
use rand::{Rng, SeedableRng};

const L2: f32 = 0.1;

struct Case {
    activation: Activation,
    head: Head,
    y: Array2<f32>,
    dropout: f32,
}

fn x() -> Array2<f32> {
    array![
        [0.5, -1.2, 0.3],
        [1.5, 0.2, -0.7],
        [-0.4, 0.9, 1.1],
        [0.0, -0.3, 0.8],
        [-1.3, 0.6, -0.2]
    ]
}

fn row_weights() -> Array1<f32> {
    array![1.0, 0.5, 2.0, 1.5, 0.8]
}

fn model(case: &Case) -> Mlp {
    let arch = Architecture {
        inputs: 3,
        hidden: vec![4, 3],
        outputs: case.head.outputs(),
        activation: case.activation,
        head: case.head,
    };
    let mut model = Mlp::new(&arch, Init::Xavier, 11);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for layer in &mut model.layers {
        layer.bias.mapv_inplace(|_| rng.random_range(-0.5..0.5));
        layer.weight.mapv_inplace(|w| 1.5 * w);
    }
    model
}

/// Objective `Σ wᵢ·lossᵢ / n + ½·l2·‖W‖²` under a fixed dropout mask, and its analytic gradient.
fn objective_and_gradient(model: &Mlp, case: &Case, want_gradient: bool) -> (f64, Vec<Dense>) {
    let x = x();
    let weights = row_weights();
    let set = TrainSet {
        x: x.view(),
        sparse: None,
        y: case.y.view(),
        weights: Some(weights.view()),
    };
    let mut workspace = Workspace::new(model, 8, case.dropout, 0);
    let rows = workspace.load_rows(&set, &[0, 1, 2, 3, 4]);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let dropout = case.dropout > 0.0;
    workspace.forward(model, rows, dropout.then_some(&mut rng));
    let mut grads = zero_gradients(model);
    let loss_sum = if want_gradient {
        let loss_sum = workspace.backward(model, rows, dropout, &mut grads);
        add_l2_gradient(&mut grads, &model.layers, L2);
        loss_sum
    } else {
        workspace.loss_sum(model, rows)
    };
    let squares: f64 = model
        .layers
        .iter()
        .flat_map(|l| l.weight.iter())
        .map(|&w| f64::from(w).powi(2))
        .sum();
    (
        loss_sum / rows as f64 + 0.5 * f64::from(L2) * squares,
        grads,
    )
}

/// Largest `|numeric − analytic| / (1e-3 + |numeric|)` over all parameters.
fn worst_gradient_error(case: &Case, corrupt: bool) -> f64 {
    let base = model(case);
    let (_, mut analytic) = objective_and_gradient(&base, case, true);
    if corrupt {
        analytic[1].weight[[2, 1]] *= 1.05;
    }
    let eps = 1e-2_f32;
    let mut worst = 0.0_f64;
    let mut largest = 0.0_f64;
    for (layer, gradient) in analytic.iter().enumerate() {
        let exact_values = gradient.weight.iter().chain(gradient.bias.iter());
        for (flat, &exact) in exact_values.enumerate() {
            let evaluate = |delta: f32| {
                let mut probe = base.clone();
                let probed = &mut probe.layers[layer];
                let value = probed
                    .weight
                    .iter_mut()
                    .chain(probed.bias.iter_mut())
                    .nth(flat)
                    .unwrap();
                *value += delta;
                objective_and_gradient(&probe, case, false).0
            };
            let numeric = (evaluate(eps) - evaluate(-eps)) / (2.0 * f64::from(eps));
            largest = largest.max(numeric.abs());
            worst = worst.max((numeric - f64::from(exact)).abs() / (1e-3 + numeric.abs()));
        }
    }
    assert!(
        largest > 0.05,
        "gradients too small to be informative: {largest}"
    );
    worst
}

/// Smallest `|z|` over hidden pre-activations; finite differences across a ReLU kink
/// are meaningless, so kinked activations need it well above the step size.
fn closest_to_kink(case: &Case) -> f32 {
    let model = model(case);
    let x = x();
    let mut workspace = Workspace::new(&model, 5, 0.0, 0);
    let rows = workspace.load_rows(&TrainSet::new(x.view(), case.y.view()), &[0, 1, 2, 3, 4]);
    workspace.forward(&model, rows, None);
    workspace.layers[..2]
        .iter()
        .flat_map(|l| l.pre.iter())
        .fold(f32::INFINITY, |m, z| m.min(z.abs()))
}

fn assert_gradient_matches(case: Case) {
    if matches!(case.activation, Activation::Relu | Activation::LeakyRelu) {
        assert!(
            closest_to_kink(&case) > 0.05,
            "test network sits on a kink; reseed it"
        );
    }
    let worst = worst_gradient_error(&case, false);
    assert!(
        worst < 0.02,
        "{:?} / {:?} / dropout {}: relative gradient error {worst}",
        case.activation,
        case.head,
        case.dropout
    );
    let corrupted = worst_gradient_error(&case, true);
    assert!(corrupted > 0.04, "checker missed a 5% error: {corrupted}");
}

fn binary_targets() -> Array2<f32> {
    array![[1.0], [0.0], [0.3], [1.0], [0.0]]
}

#[test]
fn gradient_check_every_activation() {
    for activation in Activation::ALL {
        assert_gradient_matches(Case {
            activation,
            head: Head::Binary,
            y: binary_targets(),
            dropout: 0.0,
        });
    }
}

#[test]
fn gradient_check_every_head() {
    let regression = |loss| Head::Regression { outputs: 2, loss };
    let values = array![
        [1.0, -2.0],
        [0.5, 0.2],
        [-0.7, 1.5],
        [2.0, 0.0],
        [0.1, -0.4]
    ];
    let cases = [
        (Head::Binary, binary_targets()),
        (
            Head::Multiclass { classes: 3 },
            array![
                [1.0, 0.0, 0.0],
                [0.2, 0.5, 0.3],
                [0.0, 0.0, 2.0],
                [0.0, 1.0, 0.0],
                [0.6, 0.0, 0.6]
            ],
        ),
        (
            Head::MultiLabel { labels: 2 },
            array![[1.0, 0.0], [0.5, 1.0], [0.0, 0.0], [1.0, 1.0], [0.2, 0.9]],
        ),
        (regression(RegressionLoss::Mse), values.clone()),
        (regression(RegressionLoss::Huber { delta: 0.8 }), values),
    ];
    for (head, y) in cases {
        assert_gradient_matches(Case {
            activation: Activation::Tanh,
            head,
            y,
            dropout: 0.0,
        });
    }
}

#[test]
fn gradient_check_with_fixed_dropout_mask() {
    assert_gradient_matches(Case {
        activation: Activation::Sigmoid,
        head: Head::Multiclass { classes: 3 },
        y: array![
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
            [1.0, 0.0, 0.0]
        ],
        dropout: 0.4,
    });
}

#[test]
fn dropout_mask_zeroes_and_rescales_units() {
    let case = Case {
        activation: Activation::Identity,
        head: Head::Binary,
        y: binary_targets(),
        dropout: 0.5,
    };
    let model = model(&case);
    let x = x();
    let set = TrainSet::new(x.view(), case.y.view());
    let mut workspace = Workspace::new(&model, 5, 0.5, 0);
    let rows = workspace.load_rows(&set, &[0, 1, 2, 3, 4]);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    workspace.forward(&model, rows, Some(&mut rng));
    let first = &workspace.layers[0];
    let dropped = first.mask.iter().filter(|&&m| m == 0.0).count();
    assert!(dropped > 0 && dropped < first.mask.len());
    assert!(first.mask.iter().all(|&m| m == 0.0 || m == 2.0));
    Zip::from(&first.dropped)
        .and(&first.post)
        .and(&first.mask)
        .for_each(|&d, &a, &m| assert_eq!(d, a * m));
    let with_dropout = workspace.logits(rows).to_owned();
    workspace.forward(&model, rows, None);
    assert_eq!(workspace.logits(rows), model.logits(x.view()));
    assert_ne!(workspace.logits(rows), with_dropout);
}

/// `x()` with two zeros in its last two columns: dense column 0, sparse columns 1..3.
fn split_x() -> (Array2<f32>, Array2<f32>, CsrMatrix) {
    let mut full = x();
    full[[1, 2]] = 0.0;
    full[[4, 1]] = 0.0;
    let mut sparse = CsrMatrix::new(2);
    for row in full.rows() {
        let entries: Vec<(u32, f32)> = (1..3)
            .filter(|&c| row[c] != 0.0)
            .map(|c| ((c - 1) as u32, row[c]))
            .collect();
        sparse.push_row(&entries);
    }
    let dense = full.slice(s![.., ..1]).to_owned();
    (full, dense, sparse)
}

/// Mean loss and gradient with the last two inputs fed as a sparse block (or dense).
fn split_objective(model: &Mlp, y: &Array2<f32>, sparse_path: bool) -> (f64, Vec<Dense>) {
    let (full, dense, sparse) = split_x();
    let set = if sparse_path {
        TrainSet {
            sparse: Some(&sparse),
            ..TrainSet::new(dense.view(), y.view())
        }
    } else {
        TrainSet::new(full.view(), y.view())
    };
    let mut workspace = Workspace::new(model, 8, 0.0, if sparse_path { 2 } else { 0 });
    let rows = workspace.load_rows(&set, &[0, 1, 2, 3, 4]);
    workspace.forward(model, rows, None);
    let mut grads = zero_gradients(model);
    let loss = workspace.backward(model, rows, false, &mut grads);
    (loss / rows as f64, grads)
}

#[test]
fn gradient_check_sparse_first_layer() {
    let case = Case {
        activation: Activation::Tanh,
        head: Head::Binary,
        y: binary_targets(),
        dropout: 0.0,
    };
    let base = model(&case);
    let (loss, analytic) = split_objective(&base, &case.y, true);
    let (dense_loss, dense_grads) = split_objective(&base, &case.y, false);
    assert!((loss - dense_loss).abs() < 1e-6);
    for (a, b) in analytic.iter().zip(&dense_grads) {
        assert!((&a.weight - &b.weight).iter().all(|d| d.abs() < 1e-5));
        assert!((&a.bias - &b.bias).iter().all(|d| d.abs() < 1e-5));
    }
    let eps = 1e-2_f32;
    let first = &analytic[0];
    let mut worst = 0.0_f64;
    for (flat, &exact) in first.weight.iter().chain(first.bias.iter()).enumerate() {
        let evaluate = |delta: f32| {
            let mut probe = base.clone();
            let layer = &mut probe.layers[0];
            *layer
                .weight
                .iter_mut()
                .chain(layer.bias.iter_mut())
                .nth(flat)
                .unwrap() += delta;
            split_objective(&probe, &case.y, true).0
        };
        let numeric = (evaluate(eps) - evaluate(-eps)) / (2.0 * f64::from(eps));
        worst = worst.max((numeric - f64::from(exact)).abs() / (1e-3 + numeric.abs()));
    }
    assert!(worst < 0.02, "relative gradient error {worst}");
}
