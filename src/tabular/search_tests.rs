//! Successive halving's schedule, the sampling of the space, a whole search's
//! determinism and the time budget.

use super::*;

#[test]
fn halving_keeps_a_third_and_gives_the_last_rung_the_full_budget() {
    let rungs = halving_schedule(16, 100);
    assert_eq!(
        rungs,
        vec![
            Rung {
                trials: 16,
                epochs: 12
            },
            Rung {
                trials: 6,
                epochs: 34
            },
            Rung {
                trials: 2,
                epochs: 100
            },
        ]
    );
    assert_eq!(search_epochs(16, 100), 16 * 12 + 6 * 34 + 2 * 100);
    assert_eq!(
        halving_schedule(1, 30),
        vec![Rung {
            trials: 1,
            epochs: 30
        }]
    );
    assert_eq!(
        halving_schedule(3, 30),
        vec![Rung {
            trials: 3,
            epochs: 30
        }]
    );
    assert_eq!(
        halving_schedule(4, 2),
        vec![
            Rung {
                trials: 4,
                epochs: 1
            },
            Rung {
                trials: 2,
                epochs: 2
            }
        ]
    );
    // Every rung is no larger than the one before, and the budgets grow.
    let long = halving_schedule(256, 200);
    assert_eq!(long.len(), 6);
    assert!(long
        .windows(2)
        .all(|w| w[1].trials < w[0].trials && w[1].epochs > w[0].epochs));
    assert_eq!(long.last().map(|r| r.epochs), Some(200));
}

fn base() -> TrialParams {
    TrialParams {
        hidden_layers: vec![128, 64],
        dropout: 0.0,
        learning_rate: 1e-3,
        weight_decay: 1e-4,
        numeric_bins: 16,
    }
}

#[test]
fn sampling_is_deterministic_for_a_seed_and_starts_with_the_defaults() {
    let none = BTreeSet::new();
    let a = sample_trials(16, 42, &base(), &none);
    assert_eq!(a, sample_trials(16, 42, &base(), &none));
    assert_ne!(a, sample_trials(16, 43, &base(), &none));
    assert_eq!(a.len(), 16);
    assert_eq!(a[0], base());
    for t in &a[1..] {
        assert!(DEPTHS.contains(&t.hidden_layers.len()));
        assert!(t.hidden_layers.iter().all(|w| WIDTHS.contains(w)));
        assert!(DROPOUTS.contains(&t.dropout));
        assert!(WEIGHT_DECAYS.contains(&t.weight_decay));
        assert!(NUMERIC_BINS.contains(&t.numeric_bins));
        assert!(
            (2.9e-4..=3.1e-3).contains(&t.learning_rate),
            "{}",
            t.learning_rate
        );
    }
    // Not all alike: the space is explored.
    let distinct: BTreeSet<String> = a.iter().map(|t| format!("{t:?}")).collect();
    assert!(distinct.len() > 8);
}

#[test]
fn settings_the_request_fixed_are_not_searched() {
    let fixed: BTreeSet<&str> = ["hidden_layers", "learning_rate"].into_iter().collect();
    for t in sample_trials(10, 1, &base(), &fixed) {
        assert_eq!(t.hidden_layers, vec![128, 64]);
        assert_eq!(t.learning_rate, 1e-3);
    }
}

/// A search of `trials` on a small synthetic regression table, fixed width.
fn searched(trials: usize, max_seconds: f64) -> crate::tabular::TrainedModel {
    use std::sync::atomic::AtomicBool;

    use crate::data::table_from_records;
    use crate::tabular::explain_tests::{limits, synthetic_rows};

    let rows = synthetic_rows(200, 3, true);
    let table = table_from_records(&rows, &limits()).unwrap();
    let spec = TrainSpec {
        target: "target".into(),
        params: TrainParams {
            hidden_layers: vec![8],
            epochs: 6,
            early_stopping_patience: None,
            ..TrainParams::default()
        },
        explicit: ["hidden_layers", "epochs", "early_stopping_patience"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        validation: crate::tabular::Validation::Holdout,
        search: Some(SearchOptions {
            max_trials: trials,
            max_seconds,
        }),
        ..TrainSpec::default()
    };
    let cancel = AtomicBool::new(false);
    crate::tabular::train(&table, &spec, &Caps::default(), Control::none(&cancel)).unwrap()
}

fn untimed(report: &SearchReport) -> Vec<TrialResult> {
    report
        .leaderboard
        .iter()
        .map(|t| TrialResult {
            seconds: 0.0,
            ..t.clone()
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_leaderboard_and_the_best_is_trained() {
    let a = searched(5, 600.0);
    let b = searched(5, 600.0);
    let (ra, rb) = (
        a.metrics.search.as_ref().unwrap(),
        b.metrics.search.as_ref().unwrap(),
    );
    assert_eq!(untimed(ra), untimed(rb));
    assert!(!ra.cut_by_time);
    // 5 trials: rungs of 5 × 2 epochs and 2 × 6 epochs.
    assert_eq!(ra.fits, 7);
    assert_eq!(ra.leaderboard.len(), 5);
    let best = &ra.leaderboard[0];
    assert_eq!(best.trial, ra.best_trial);
    assert_eq!(best.rung, 2);
    assert_eq!(a.params.learning_rate, best.params.learning_rate as f32);
    assert_eq!(a.params.dropout, best.params.dropout as f32);
    assert_eq!(a.params.weight_decay, best.params.weight_decay as f32);
    assert_eq!(a.model.mlp.architecture().hidden, vec![8]);
    assert_eq!(a.history.len(), 6);
}

#[test]
fn the_time_budget_cuts_the_search_and_says_so() {
    let cut = searched(5, 1e-9);
    let report = cut.metrics.search.as_ref().unwrap();
    assert!(report.cut_by_time);
    assert!(report.leaderboard.is_empty());
    // Nothing ranked: the default recipe is trained.
    assert_eq!(report.best_trial, 1);
    assert_eq!(cut.history.len(), 6);
}

#[test]
fn options_are_checked_naming_the_field() {
    let err = |o: SearchOptions| o.check().unwrap_err().to_string();
    assert!(err(SearchOptions {
        max_trials: 0,
        ..SearchOptions::default()
    })
    .contains("search.max_trials"));
    assert!(err(SearchOptions {
        max_trials: 257,
        ..SearchOptions::default()
    })
    .contains("search.max_trials"));
    assert!(err(SearchOptions {
        max_seconds: 0.0,
        ..SearchOptions::default()
    })
    .contains("search.max_seconds"));
    assert!(SearchOptions::default().check().is_ok());
    assert_eq!(two_digits(0.0012345), 0.0012);
    assert_eq!(shortest(1e-3), 0.001);
}
