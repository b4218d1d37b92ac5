//! Tests of `nn/params.rs`.

use super::*;

fn rejected(params: TrainParams, expected_name: &str, expected_value: &str) {
    match params.check(&Caps::default()) {
        Err(ParamError::Invalid { name, value, .. }) => {
            assert_eq!(name, expected_name);
            assert_eq!(value, expected_value);
        }
        Ok(()) => panic!("{expected_name} = {expected_value} was accepted"),
    }
}

#[test]
fn defaults_are_valid_and_empty_json_gives_defaults() {
    let params: TrainParams = serde_json::from_str("{}").unwrap();
    assert_eq!(params, TrainParams::default());
    params.check(&Caps::default()).unwrap();
    let caps: Caps = serde_json::from_str("{}").unwrap();
    assert_eq!(caps, Caps::default());
}

#[test]
fn unknown_fields_are_rejected() {
    assert!(serde_json::from_str::<TrainParams>(r#"{"learning_rat": 0.1}"#).is_err());
    assert!(serde_json::from_str::<Caps>(r#"{"max_epoch": 3}"#).is_err());
}

#[test]
fn serde_names() {
    let params: TrainParams = serde_json::from_str(
        r#"{"optimizer":"adam_w","schedule":{"type":"reduce_on_plateau","factor":0.5,"patience":2,"min_lr":0.0},"loss":"huber","init":"he","activation":"tanh"}"#,
    )
    .unwrap();
    assert_eq!(params.optimizer, OptimizerKind::AdamW);
    assert_eq!(
        params.schedule,
        Schedule::ReduceOnPlateau {
            factor: 0.5,
            patience: 2,
            min_lr: 0.0
        }
    );
    assert_eq!(
        params.regression_loss(),
        RegressionLoss::Huber { delta: 1.0 }
    );
}

#[test]
fn each_invalid_parameter_is_named_with_its_value() {
    let base = TrainParams::default;
    rejected(
        TrainParams {
            learning_rate: -0.1,
            ..base()
        },
        "learning_rate",
        "-0.1",
    );
    rejected(
        TrainParams {
            learning_rate: 0.0,
            ..base()
        },
        "learning_rate",
        "0.0",
    );
    rejected(
        TrainParams {
            learning_rate: f32::NAN,
            ..base()
        },
        "learning_rate",
        "NaN",
    );
    rejected(
        TrainParams {
            epochs: 0,
            ..base()
        },
        "epochs",
        "0",
    );
    rejected(
        TrainParams {
            epochs: 10_001,
            ..base()
        },
        "epochs",
        "10001",
    );
    rejected(
        TrainParams {
            dropout: 1.0,
            ..base()
        },
        "dropout",
        "1.0",
    );
    rejected(
        TrainParams {
            dropout: -0.1,
            ..base()
        },
        "dropout",
        "-0.1",
    );
    rejected(
        TrainParams {
            batch_size: 0,
            ..base()
        },
        "batch_size",
        "0",
    );
    rejected(
        TrainParams {
            batch_size: 65_537,
            ..base()
        },
        "batch_size",
        "65537",
    );
    rejected(
        TrainParams {
            hidden_layers: vec![64, 5000],
            ..base()
        },
        "hidden_layers",
        "[64, 5000]",
    );
    rejected(
        TrainParams {
            hidden_layers: vec![0],
            ..base()
        },
        "hidden_layers",
        "[0]",
    );
    rejected(
        TrainParams {
            hidden_layers: vec![4; 9],
            ..base()
        },
        "hidden_layers",
        "[4, 4, 4, 4, 4, 4, 4, 4, 4]",
    );
    rejected(
        TrainParams {
            validation_fraction: 0.6,
            ..base()
        },
        "validation_fraction",
        "0.6",
    );
    rejected(
        TrainParams {
            validation_fraction: f32::NAN,
            ..base()
        },
        "validation_fraction",
        "NaN",
    );
    rejected(
        TrainParams {
            momentum: 1.0,
            ..base()
        },
        "momentum",
        "1.0",
    );
    rejected(
        TrainParams {
            beta1: 1.5,
            ..base()
        },
        "beta1",
        "1.5",
    );
    rejected(
        TrainParams {
            beta2: -0.5,
            ..base()
        },
        "beta2",
        "-0.5",
    );
    rejected(
        TrainParams {
            epsilon: 0.0,
            ..base()
        },
        "epsilon",
        "0.0",
    );
    rejected(
        TrainParams {
            weight_decay: -1.0,
            ..base()
        },
        "weight_decay",
        "-1.0",
    );
    rejected(
        TrainParams {
            l2: f32::INFINITY,
            ..base()
        },
        "l2",
        "inf",
    );
    rejected(
        TrainParams {
            clip_grad_norm: Some(0.0),
            ..base()
        },
        "clip_grad_norm",
        "0.0",
    );
    rejected(
        TrainParams {
            min_delta: -1e-3,
            ..base()
        },
        "min_delta",
        "-0.001",
    );
    rejected(
        TrainParams {
            huber_delta: 0.0,
            ..base()
        },
        "huber_delta",
        "0.0",
    );
    rejected(
        TrainParams {
            schedule: Schedule::Cosine { min_lr: 0.5 },
            ..base()
        },
        "schedule.min_lr",
        "0.5",
    );
    rejected(
        TrainParams {
            schedule: Schedule::ReduceOnPlateau {
                factor: 1.0,
                patience: 3,
                min_lr: 0.0,
            },
            ..base()
        },
        "schedule.factor",
        "1.0",
    );
    rejected(
        TrainParams {
            schedule: Schedule::ReduceOnPlateau {
                factor: 0.5,
                patience: 3,
                min_lr: 0.01,
            },
            ..base()
        },
        "schedule.min_lr",
        "0.01",
    );
}

#[test]
fn caps_are_configurable() {
    let caps = Caps {
        max_layer_width: 16,
        ..Caps::default()
    };
    let params = TrainParams {
        hidden_layers: vec![32],
        ..TrainParams::default()
    };
    assert!(params.check(&Caps::default()).is_ok());
    assert!(params.check(&caps).is_err());
}

#[test]
fn architecture_checks() {
    let caps = Caps::default();
    let arch = Architecture {
        inputs: 10,
        hidden: vec![8],
        outputs: 3,
        activation: Activation::Relu,
        head: Head::Multiclass { classes: 3 },
    };
    caps.check_architecture(&arch).unwrap();
    let name_of = |arch: &Architecture, caps: &Caps| match caps.check_architecture(arch) {
        Err(ParamError::Invalid { name, .. }) => name,
        Ok(()) => "accepted",
    };
    assert_eq!(
        name_of(
            &Architecture {
                inputs: 0,
                ..arch.clone()
            },
            &caps
        ),
        "inputs"
    );
    assert_eq!(
        name_of(
            &Architecture {
                outputs: 2,
                ..arch.clone()
            },
            &caps
        ),
        "outputs"
    );
    assert_eq!(
        name_of(
            &Architecture {
                outputs: 1,
                head: Head::Multiclass { classes: 1 },
                ..arch.clone()
            },
            &caps
        ),
        "head.classes"
    );
    assert_eq!(
        name_of(
            &Architecture {
                outputs: 1,
                head: Head::Regression {
                    outputs: 1,
                    loss: RegressionLoss::Huber { delta: -1.0 }
                },
                ..arch.clone()
            },
            &caps
        ),
        "head.loss.delta"
    );
    let small = Caps {
        max_parameters: 100,
        ..Caps::default()
    };
    assert_eq!(name_of(&arch, &small), "parameters");
    assert_eq!(
        name_of(
            &Architecture {
                inputs: 100_000_000,
                ..arch.clone()
            },
            &caps
        ),
        "parameters"
    );
}
