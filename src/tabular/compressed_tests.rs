//! Compressed serving copies: close to the `f32` network, smaller, refused
//! above the accuracy budget.

use super::explain_tests::{instances, synthetic_rows, trained};
use super::{CompressedNet, Precision, Prediction};

#[test]
fn compressed_copies_predict_close_to_f32_in_less_memory() {
    let rows = synthetic_rows(600, 21, false);
    let (model, _) = trained(&rows, 20);
    let report = model.compression.as_ref().expect("measured in training");
    assert!(report.rows > 0);
    // Rows of int8 weights are padded to 64 bytes: small layers gain less than 4×.
    assert!(report.int8.bytes < report.f16.bytes, "{report:?}");
    assert!(report.f16.bytes < report.f32_bytes, "{report:?}");
    assert!(report.int8.accuracy_drop.abs() <= 0.05, "{report:?}");
    let probe = instances(&synthetic_rows(100, 5, false));
    let reference = model.predict_records(&probe).unwrap();
    for (precision, tolerance) in [(Precision::F16, 2e-3), (Precision::Int8, 5e-2)] {
        let net = model.serving_copy(precision, 1.0).unwrap().unwrap();
        assert_eq!(net.precision(), precision);
        let batch = model.predict_records_with(&probe, net).unwrap();
        let mut worst = 0.0_f32;
        for (a, b) in reference.predictions.iter().zip(&batch.predictions) {
            let (
                Prediction::Class {
                    probabilities: p, ..
                },
                Prediction::Class {
                    probabilities: q, ..
                },
            ) = (a, b)
            else {
                unreachable!()
            };
            for (label, v) in p {
                worst = worst.max((v - q[label]).abs());
            }
        }
        assert!(worst <= tolerance, "{precision:?}: {worst}");
    }
    // f32 is the network itself.
    assert!(model.serving_copy(Precision::F32, 0.0).unwrap().is_none());
    let net = CompressedNet::new(&model.mlp, Precision::F32);
    assert_eq!(net.bytes(), report.f32_bytes);
}

#[test]
fn a_copy_over_the_accuracy_budget_is_refused() {
    let rows = synthetic_rows(300, 22, true);
    let (mut model, _) = trained(&rows, 5);
    let report = model.compression.as_mut().unwrap();
    report.int8.accuracy_drop = 0.2;
    let reason = model.serving_copy(Precision::Int8, 0.01).unwrap_err();
    assert!(reason.contains("max_accuracy_drop"), "{reason}");
    // The decision stands for the model's lifetime; f16 is still served.
    assert!(model.serving_copy(Precision::Int8, 1.0).is_err());
    assert!(model.serving_copy(Precision::F16, 0.5).unwrap().is_some());
    model.compression = None;
    model.copies = Default::default();
    assert!(model.serving_copy(Precision::F16, 0.5).is_err());
}
