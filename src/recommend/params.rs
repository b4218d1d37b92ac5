//! Recommender parameters, hard caps, and their validation.

use serde::{Deserialize, Serialize};

use crate::nn::ParamError;

use crate::nn::invalid_param as invalid;

/// Which scorer(s) the model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// `blend` when the catalog has at most `caps.max_ease_items` items, else `dae`.
    Auto,
    /// The Mult-DAE autoencoder alone.
    Dae,
    /// The closed-form item-item model alone.
    Ease,
    /// Both, mixed per user by the `blend` weight.
    Blend,
}

/// How the validation split used at fit time is drawn (per user), i.e. what the chosen
/// configuration is optimised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldoutKind {
    /// Without timestamps, `random`. With timestamps, each user's most recent interaction
    /// and a random `holdout_fraction` of the others are held out together (the latest
    /// ranked from everything before it, the random ones from everything else); the
    /// recency-weighted (next-item) configuration is kept only when it beats the
    /// timestamp-free one on the latest interactions by more than the standard error and
    /// loses no more than the standard error on the random ones, else the
    /// timestamp-free configuration is kept.
    Auto,
    /// Each user's most recent interaction (next-item setting); `last` is accepted too.
    #[serde(alias = "last")]
    Temporal,
    /// A seeded random `holdout_fraction` of each user's items.
    Random,
    /// No validation: no metrics, no epoch or blend selection.
    None,
}

/// Training parameters. Every field has a default, so `{}` deserialises to
/// [`RecommenderParams::default`]; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommenderParams {
    /// Default `auto`.
    pub component: Component,
    /// Autoencoder hidden width, `1..=caps.max_hidden`. Default 300.
    pub hidden: usize,
    /// Dropout on the input history during training, in `[0, 1)`. Default 0.5.
    pub input_dropout: f32,
    /// Maximum autoencoder epochs, `1..=caps.max_epochs`. Default 100.
    pub epochs: usize,
    /// Users per mini-batch, `1..=4096`. Default 128.
    pub batch_size: usize,
    /// Adam step size, `> 0`. Default `1e-3`.
    pub learning_rate: f32,
    /// Decoupled weight decay on the autoencoder weights, `>= 0`. Default 0.
    pub weight_decay: f32,
    /// Ridge strength of the item-item model, `> 0`. Default 200.
    pub ease_lambda: f32,
    /// Dropout emphasis `p` of the item-item model in `[0, 0.9]`: `0` is EASE (zero
    /// diagonal, uniform ridge); `p > 0` adds `p/(1−p)·G_jj` to item `j`'s ridge and
    /// drops the diagonal constraint (DLAE). Default 0.5.
    pub ease_dropout: f32,
    /// Strength of item attributes in the item-item model, in `[0, 10]`: each attribute
    /// value counts as a pseudo-user who interacted with every item having it, weighted
    /// `attribute_weight ×` the mean interactions per item. Used only when item attributes
    /// are given at training. `None` (default) picks it from `{0, 0.05, 0.2}` on the
    /// validation split (0.05 without one).
    pub attribute_weight: Option<f32>,
    /// Input weight of user attributes in the item-item model, in `[0, 10]`: each
    /// attribute value of a training user (the 256 most common values shared by at least
    /// two users) is an extra input next to the user's items, which count 1 each. Used
    /// only when user attributes are given at training; only training users have them at
    /// serving. `None` (default) picks it from `{0, 1}` on the validation split (1
    /// without one).
    pub user_attribute_weight: Option<f32>,
    /// Weight of the autoencoder in `[0, 1]` when blending; `None` picks it on the
    /// validation split (0.5 without one). Default `None`.
    pub blend: Option<f32>,
    /// History weight `value · (1 + r)^-recency_power` where `r` is the interaction's
    /// recency rank in the user's history (0 = most recent); needs timestamps, `0` turns it
    /// off. In `[0, 4]`. `None` (default) picks it from `{0, 0.25, 0.5, 1, 1.5}` on a
    /// `temporal` or `auto` validation split (timestamps needed) and uses 0 otherwise.
    pub recency_power: Option<f32>,
    /// Weight floor of the recency weighting, in `[0, 1]`: the history weight becomes
    /// `value · (floor + (1 − floor) · (1 + r)^-recency_power)`, so with a floor above 0
    /// older interactions keep part of their weight while the latest count more. `None`
    /// (default) picks it together with `recency_power` on the validation split (0 when
    /// `recency_power` is fixed or there is no validation).
    pub recency_floor: Option<f32>,
    /// Use `value` as the interaction weight (repeated pairs add up); otherwise every
    /// interaction counts 1. Default `false`.
    pub use_values: bool,
    /// Half-life in days of the popularity fallback when timestamps (Unix seconds) exist;
    /// `None` counts all interactions equally. `> 0`. Default 30.
    pub popularity_half_life_days: Option<f32>,
    /// Default `auto`.
    pub holdout: HoldoutKind,
    /// Share of each user's items held out by `random`, in `(0, 0.5]`. Default 0.2.
    pub holdout_fraction: f32,
    /// Users evaluated on the validation split (seeded sample), `>= 1`. Default 2000.
    pub holdout_max_users: usize,
    /// After validation, fit the item-item model again on all interactions and continue
    /// the selected autoencoder on all of them for a quarter of its selected epochs (at
    /// least 2). Default `true`.
    pub refit: bool,
    /// Stop the autoencoder after this many epochs without a better validation NDCG@10.
    /// Default `Some(10)`.
    pub early_stopping_patience: Option<usize>,
    /// Seeds initialisation, shuffling, dropout and the validation split. Default 42.
    pub seed: u64,
}

impl Default for RecommenderParams {
    fn default() -> Self {
        RecommenderParams {
            component: Component::Auto,
            hidden: 300,
            input_dropout: 0.5,
            epochs: 100,
            batch_size: 128,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            ease_lambda: 200.0,
            ease_dropout: 0.5,
            attribute_weight: None,
            user_attribute_weight: None,
            blend: None,
            recency_power: None,
            recency_floor: None,
            use_values: false,
            popularity_half_life_days: Some(30.0),
            holdout: HoldoutKind::Auto,
            holdout_fraction: 0.2,
            holdout_max_users: 2000,
            refit: true,
            early_stopping_patience: Some(10),
            seed: 42,
        }
    }
}

/// Hard caps so no request can allocate unbounded memory or time. Missing fields take
/// their defaults; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommendCaps {
    /// Distinct items. Default 1,000,000.
    pub max_items: usize,
    /// Distinct users. Default 5,000,000.
    pub max_users: usize,
    /// Interaction rows. Default 50,000,000.
    pub max_interactions: usize,
    /// Largest catalog for the `n_items²` item-item model. Default 10,000.
    pub max_ease_items: usize,
    /// Autoencoder hidden width. Default 2048.
    pub max_hidden: usize,
    /// Autoencoder weights (`2 · hidden · n_items`). Default 100,000,000.
    pub max_parameters: usize,
    /// Default 1000.
    pub max_epochs: usize,
    /// Largest `k` served. Default 1000.
    pub max_k: usize,
    /// Largest catalog scored exactly: an autoencoder-only model trained on more items
    /// gets an inverted-file index at training and serves an approximate top-k through
    /// it. Default 50,000.
    pub exact_max_items: usize,
    /// Index lists probed per request (at least; more when exclusions leave fewer than
    /// `k` items). Default 32.
    pub index_probes: usize,
}

impl Default for RecommendCaps {
    fn default() -> Self {
        RecommendCaps {
            max_items: 1_000_000,
            max_users: 5_000_000,
            max_interactions: 50_000_000,
            max_ease_items: 10_000,
            max_hidden: 2048,
            max_parameters: 100_000_000,
            max_epochs: 1000,
            max_k: 1000,
            exact_max_items: 50_000,
            index_probes: 32,
        }
    }
}

fn positive(name: &'static str, value: f32) -> Result<(), ParamError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "must be finite and > 0"))
    }
}

fn within(
    name: &'static str,
    value: f32,
    low: f32,
    high: f32,
    text: &str,
) -> Result<(), ParamError> {
    if value.is_finite() && value >= low && value <= high {
        Ok(())
    } else {
        Err(invalid(name, value, format!("must be in {text}")))
    }
}

fn count(name: &'static str, value: usize, max: usize, cap: &str) -> Result<(), ParamError> {
    if value == 0 {
        Err(invalid(name, value, "must be at least 1"))
    } else if value > max {
        Err(invalid(
            name,
            value,
            format!("exceeds the limit `recommend.{cap}` = {max}"),
        ))
    } else {
        Ok(())
    }
}

impl RecommenderParams {
    /// Validates every field against its documented range and against `caps`.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] for the first offending field, naming it and its value.
    pub fn check(&self, caps: &RecommendCaps) -> Result<(), ParamError> {
        count("hidden", self.hidden, caps.max_hidden, "max_hidden")?;
        if !(self.input_dropout.is_finite() && (0.0..1.0).contains(&self.input_dropout)) {
            return Err(invalid(
                "input_dropout",
                self.input_dropout,
                "must be in [0, 1)",
            ));
        }
        count("epochs", self.epochs, caps.max_epochs, "max_epochs")?;
        count("batch_size", self.batch_size, 4096, "4096")?;
        positive("learning_rate", self.learning_rate)?;
        within("weight_decay", self.weight_decay, 0.0, 1.0, "[0, 1]")?;
        positive("ease_lambda", self.ease_lambda)?;
        within("ease_dropout", self.ease_dropout, 0.0, 0.9, "[0, 0.9]")?;
        if let Some(weight) = self.attribute_weight {
            within("attribute_weight", weight, 0.0, 10.0, "[0, 10]")?;
        }
        if let Some(weight) = self.user_attribute_weight {
            within("user_attribute_weight", weight, 0.0, 10.0, "[0, 10]")?;
        }
        if let Some(blend) = self.blend {
            within("blend", blend, 0.0, 1.0, "[0, 1]")?;
        }
        if let Some(power) = self.recency_power {
            within("recency_power", power, 0.0, 4.0, "[0, 4]")?;
        }
        if let Some(floor) = self.recency_floor {
            within("recency_floor", floor, 0.0, 1.0, "[0, 1]")?;
        }
        if let Some(days) = self.popularity_half_life_days {
            positive("popularity_half_life_days", days)?;
        }
        if !(self.holdout_fraction.is_finite()
            && self.holdout_fraction > 0.0
            && self.holdout_fraction <= 0.5)
        {
            return Err(invalid(
                "holdout_fraction",
                self.holdout_fraction,
                "must be in (0, 0.5]",
            ));
        }
        count(
            "holdout_max_users",
            self.holdout_max_users,
            usize::MAX,
            "usize::MAX",
        )?;
        if self.early_stopping_patience == Some(0) {
            return Err(invalid(
                "early_stopping_patience",
                0,
                "must be at least 1 or null",
            ));
        }
        Ok(())
    }

    /// Checks the sizes implied by a catalog of `n_items` items: the autoencoder's
    /// parameter count and, for an explicit `ease`/`blend` component, the item cap.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] naming `parameters` or `component`.
    pub fn check_catalog(&self, n_items: usize, caps: &RecommendCaps) -> Result<(), ParamError> {
        let component = self.resolved_component(n_items, caps);
        if matches!(component, Component::Ease | Component::Blend) && n_items > caps.max_ease_items
        {
            return Err(invalid(
                "component",
                self.component,
                format!(
                    "{n_items} items exceed the limit `recommend.max_ease_items` = {}; use `dae` or `auto`",
                    caps.max_ease_items
                ),
            ));
        }
        if matches!(component, Component::Dae | Component::Blend) {
            let parameters = self
                .hidden
                .saturating_mul(n_items)
                .saturating_mul(2)
                .saturating_add(self.hidden)
                .saturating_add(n_items);
            if parameters > caps.max_parameters {
                return Err(invalid(
                    "parameters",
                    parameters,
                    format!(
                        "2·hidden·n_items exceeds the limit `recommend.max_parameters` = {}; lower hidden",
                        caps.max_parameters
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The component actually trained for a catalog of `n_items`.
    pub fn resolved_component(&self, n_items: usize, caps: &RecommendCaps) -> Component {
        match self.component {
            Component::Auto if n_items <= caps.max_ease_items => Component::Blend,
            Component::Auto => Component::Dae,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(err: ParamError) -> &'static str {
        match err {
            ParamError::Invalid { name, .. } => name,
        }
    }

    #[test]
    fn defaults_pass_and_empty_json_is_default() {
        let caps = RecommendCaps::default();
        RecommenderParams::default().check(&caps).unwrap();
        let parsed: RecommenderParams = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, RecommenderParams::default());
        assert!(serde_json::from_str::<RecommenderParams>(r#"{"hiden": 3}"#).is_err());
    }

    #[test]
    fn check_names_the_parameter_and_value() {
        let caps = RecommendCaps::default();
        let cases: Vec<(RecommenderParams, &str)> = vec![
            (
                RecommenderParams {
                    hidden: 0,
                    ..Default::default()
                },
                "hidden",
            ),
            (
                RecommenderParams {
                    hidden: 5000,
                    ..Default::default()
                },
                "hidden",
            ),
            (
                RecommenderParams {
                    input_dropout: 1.0,
                    ..Default::default()
                },
                "input_dropout",
            ),
            (
                RecommenderParams {
                    epochs: 0,
                    ..Default::default()
                },
                "epochs",
            ),
            (
                RecommenderParams {
                    learning_rate: f32::NAN,
                    ..Default::default()
                },
                "learning_rate",
            ),
            (
                RecommenderParams {
                    ease_lambda: 0.0,
                    ..Default::default()
                },
                "ease_lambda",
            ),
            (
                RecommenderParams {
                    blend: Some(1.5),
                    ..Default::default()
                },
                "blend",
            ),
            (
                RecommenderParams {
                    recency_power: Some(-1.0),
                    ..Default::default()
                },
                "recency_power",
            ),
            (
                RecommenderParams {
                    recency_floor: Some(1.5),
                    ..Default::default()
                },
                "recency_floor",
            ),
            (
                RecommenderParams {
                    holdout_fraction: 0.9,
                    ..Default::default()
                },
                "holdout_fraction",
            ),
            (
                RecommenderParams {
                    early_stopping_patience: Some(0),
                    ..Default::default()
                },
                "early_stopping_patience",
            ),
        ];
        for (params, expected) in cases {
            let err = params.check(&caps).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
            assert_eq!(name_of(err), expected);
        }
        let err = RecommenderParams {
            hidden: 5000,
            ..Default::default()
        }
        .check(&caps)
        .unwrap_err();
        assert!(
            err.to_string().contains("5000") && err.to_string().contains("max_hidden"),
            "{err}"
        );
    }

    #[test]
    fn catalog_caps_bound_memory() {
        let caps = RecommendCaps::default();
        let params = RecommenderParams::default();
        assert_eq!(params.resolved_component(1000, &caps), Component::Blend);
        assert_eq!(params.resolved_component(100_000, &caps), Component::Dae);
        params.check_catalog(50_000, &caps).unwrap();
        let err = params.check_catalog(1_000_000, &caps).unwrap_err();
        assert_eq!(name_of(err), "parameters");
        let ease = RecommenderParams {
            component: Component::Ease,
            ..Default::default()
        };
        assert_eq!(
            name_of(ease.check_catalog(50_000, &caps).unwrap_err()),
            "component"
        );
    }
}
