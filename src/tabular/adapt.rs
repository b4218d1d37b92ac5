//! Defaults sized from the data: batch size, epoch budget and patience follow
//! the number of training rows unless the request sets them, and small tables
//! choose their stopping epoch by cross-validation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::nn::{invalid_param, ParamError, TrainParams};

/// Below this many labelled rows, `auto` validation cross-validates.
pub const SMALL_TABLE_ROWS: usize = 2_000;
/// Folds of the automatic cross-validation on small tables.
pub const AUTO_FOLDS: usize = 5;
/// Optimizer steps the adapted epoch budget aims for.
pub const TARGET_STEPS: usize = 3_000;
/// Most epochs the adaptation chooses (an explicit `epochs` may go further).
pub const MAX_ADAPTED_EPOCHS: usize = 200;
/// Dropout on hidden layers of a network trained on fewer than
/// [`SMALL_TABLE_ROWS`] rows when the request does not set it.
pub const SMALL_TABLE_DROPOUT: f32 = 0.1;
/// Most folds of a k-fold validation.
pub const MAX_FOLDS: usize = 20;

/// How a training run is validated: what picks the stopping epoch and what the
/// reported metrics are measured on.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Validation {
    /// A holdout of `params.validation_fraction`, or 5-fold cross-validation
    /// when fewer than 2,000 labelled rows (and `validation_fraction` is not set).
    #[default]
    Auto,
    /// Always one seeded holdout of `params.validation_fraction`.
    Holdout,
    /// `folds`-fold cross-validation: metrics per fold and their mean ± std,
    /// the stopping epoch from the mean validation-loss curve, and the served
    /// model refit on all rows for that many epochs.
    Kfold {
        /// `2..=20`, at most the number of labelled rows. Default 5.
        #[serde(default = "default_folds")]
        folds: usize,
        /// Folds keep the class mix (classification only). Default true.
        #[serde(default = "default_true")]
        stratified: bool,
    },
}

fn default_folds() -> usize {
    AUTO_FOLDS
}

fn default_true() -> bool {
    true
}

impl Validation {
    /// Checks the fold count.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] naming `validation.folds`.
    pub fn check(&self) -> Result<(), ParamError> {
        if let Validation::Kfold { folds, .. } = self {
            if !(2..=MAX_FOLDS).contains(folds) {
                return Err(invalid_param(
                    "validation.folds",
                    folds,
                    format!("must be in 2..={MAX_FOLDS}"),
                ));
            }
        }
        Ok(())
    }

    /// The cross-validation to run on `rows` labelled rows: `Some((folds,
    /// stratified))`, or `None` for a holdout. `auto` keeps the holdout when the
    /// request set `validation_fraction` (named in `explicit` or not the default).
    pub fn folds_for(
        &self,
        rows: usize,
        params: &TrainParams,
        explicit: &BTreeSet<String>,
    ) -> Option<(usize, bool)> {
        match self {
            Validation::Kfold { folds, stratified } => Some((*folds, *stratified)),
            Validation::Holdout => None,
            Validation::Auto => ((2 * AUTO_FOLDS..SMALL_TABLE_ROWS).contains(&rows)
                && !explicit.contains("validation_fraction")
                && params.validation_fraction == TrainParams::default().validation_fraction)
                .then_some((AUTO_FOLDS, true)),
        }
    }
}

/// `params` with the fields the request did not set (`explicit` names the ones it
/// did; a value other than the default counts as set) sized for `rows` training rows:
///
/// - `batch_size`: the power of two nearest below `rows / 16`, within `16..=256`
///   (at least 16 steps per epoch on a small table; 256 from 4,096 rows on);
/// - `epochs`: enough for about 3,000 optimizer steps, never below the default 30
///   nor above 200;
/// - `early_stopping_patience`: an eighth of the epochs, at least the default 5;
/// - `dropout`: 0.1 below 2,000 rows.
///
/// On tables of 4,096 rows or more with 30 epochs the defaults stay as they are
/// except `epochs` when one epoch has fewer than 100 steps.
pub fn adapt(params: &TrainParams, explicit: &BTreeSet<String>, rows: usize) -> TrainParams {
    let mut out = params.clone();
    let defaults = TrainParams::default();
    let set = |name: &str| explicit.contains(name);
    if !set("batch_size") && params.batch_size == defaults.batch_size {
        let target = (rows / 16).max(1);
        let below = 1usize << (usize::BITS - 1 - target.leading_zeros());
        out.batch_size = below.clamp(16, params.batch_size.max(16));
    }
    if !set("epochs") && params.epochs == defaults.epochs {
        let steps_per_epoch = rows.div_ceil(out.batch_size.max(1)).max(1);
        out.epochs = TARGET_STEPS
            .div_ceil(steps_per_epoch)
            .clamp(params.epochs, MAX_ADAPTED_EPOCHS.max(params.epochs));
    }
    if !set("early_stopping_patience")
        && params.early_stopping_patience == defaults.early_stopping_patience
    {
        if let Some(patience) = params.early_stopping_patience {
            out.early_stopping_patience = Some((out.epochs / 8).max(patience));
        }
    }
    // Small tables overfit: a little dropout, unless the request chose its own.
    if rows < SMALL_TABLE_ROWS && !set("dropout") && params.dropout == defaults.dropout {
        out.dropout = SMALL_TABLE_DROPOUT;
    }
    out
}

/// The names of the keys of a JSON `params` object (none for anything else).
pub fn explicit_keys(params: &serde_json::Value) -> BTreeSet<String> {
    params
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn small_tables_get_small_batches_more_epochs_and_patience() {
        let p = adapt(&TrainParams::default(), &BTreeSet::new(), 486);
        assert_eq!(p.batch_size, 16);
        assert_eq!(p.epochs, 97);
        assert_eq!(p.early_stopping_patience, Some(12));
        assert_eq!(p.dropout, SMALL_TABLE_DROPOUT);
        let tiny = adapt(&TrainParams::default(), &BTreeSet::new(), 40);
        assert_eq!(tiny.batch_size, 16);
        assert_eq!(tiny.epochs, 200);
    }

    #[test]
    fn large_tables_keep_the_defaults() {
        let p = adapt(&TrainParams::default(), &BTreeSet::new(), 48_842);
        assert_eq!(p, TrainParams::default());
    }

    #[test]
    fn explicit_fields_are_kept() {
        let given = TrainParams {
            batch_size: 64,
            epochs: 10,
            early_stopping_patience: Some(2),
            dropout: 0.3,
            ..TrainParams::default()
        };
        let p = adapt(
            &given,
            &names(&["batch_size", "epochs", "early_stopping_patience", "dropout"]),
            300,
        );
        assert_eq!(p, given);
        assert_eq!(adapt(&given, &BTreeSet::new(), 300), given);
    }

    #[test]
    fn auto_validation_cross_validates_small_tables_only() {
        let none = BTreeSet::new();
        let p = TrainParams::default();
        assert_eq!(Validation::Auto.folds_for(486, &p, &none), Some((5, true)));
        assert_eq!(Validation::Auto.folds_for(5_000, &p, &none), None);
        assert_eq!(Validation::Auto.folds_for(8, &p, &none), None);
        let named = names(&["validation_fraction"]);
        assert_eq!(Validation::Auto.folds_for(486, &p, &named), None);
        let fraction = TrainParams {
            validation_fraction: 0.2,
            ..TrainParams::default()
        };
        assert_eq!(Validation::Auto.folds_for(486, &fraction, &none), None);
        assert_eq!(Validation::Holdout.folds_for(486, &p, &none), None);
        let k = Validation::Kfold {
            folds: 3,
            stratified: false,
        };
        assert_eq!(k.folds_for(50_000, &p, &none), Some((3, false)));
    }

    #[test]
    fn fold_counts_are_checked() {
        let bad = Validation::Kfold {
            folds: 1,
            stratified: true,
        };
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("validation.folds"));
        assert!(Validation::Kfold {
            folds: 5,
            stratified: true
        }
        .check()
        .is_ok());
    }
}
