//! Training: validation split, component fits, epoch and blend selection, refit.

use std::time::Instant;

use crate::nn::{Control, EpochReport};

use super::attributes::Attributes;
use super::dae::{Dae, DaeConfig, DaeTrainer};
use super::data::{Dataset, Interactions, Recency};
use super::ease::{Ease, UserFeatures, UserInputs};
use super::error::RecommendError;
use super::holdout::{popularity_metrics, split, validate, Holdout, Scorers};
use super::ivf::{default_lists, IvfIndex};
use super::metrics::HoldoutMetrics;
use super::model::{Parts, Recommender, RecommenderSpec, SPEC_FORMAT};
use super::params::{Component, HoldoutKind, RecommendCaps, RecommenderParams};
use super::select::{choose, Candidate};
use super::side::{side_info, user_features, value_postings};
use super::stages::{FitStage, Stages};

/// Blend weights tried on the validation split.
const BLEND_GRID: [f32; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/// Recency exponents tried on a `temporal` or `auto` validation split when
/// `recency_power` is `None` (besides no recency weighting).
const RECENCY_GRID: [f32; 4] = [0.25, 0.5, 1.0, 1.5];
/// Recency weight floors tried with each exponent when `recency_floor` is `None`.
const FLOOR_GRID: [f32; 3] = [0.0, 0.5, 0.8];
/// Item attribute strengths tried on the validation split when `attribute_weight` is
/// `None` and item attributes are given.
const ATTRIBUTE_GRID: [f32; 2] = [0.0, 0.2];
/// `attribute_weight` used when it is `None` and there is no validation split.
const DEFAULT_ATTRIBUTE_WEIGHT: f32 = 0.2;
/// User-feature input weights tried on the validation split when `user_attribute_weight`
/// is `None` and user attributes are given.
const USER_ATTRIBUTE_GRID: [f32; 2] = [0.0, 1.0];
/// `user_attribute_weight` used when it is `None` and there is no validation split.
const DEFAULT_USER_ATTRIBUTE_WEIGHT: f32 = 1.0;
/// Most user-attribute values used as item-item inputs (the most common ones); each adds
/// a row and a column to the item-item system.
pub const MAX_USER_FEATURES: usize = 256;
/// Name of the validation metric in epoch reports.
const METRIC: &str = "ndcg@10";

/// Result of a successful [`fit`].
#[derive(Clone, Debug)]
pub struct FitReport {
    pub model: Recommender,
    /// Validation metrics of the model selected on the split (before the refit on all
    /// interactions) next to popularity; `None` with `holdout = none` or when no user has
    /// two interactions.
    pub metrics: Option<HoldoutMetrics>,
    /// One report per autoencoder epoch: validation epochs first (with NDCG@10 as
    /// `valid_metric`), then refit epochs numbered after them (no metric).
    pub history: Vec<EpochReport>,
    /// Wall and CPU time of every stage, in order.
    pub stages: Vec<FitStage>,
}

impl Recommender {
    /// See [`fit`].
    pub fn fit(
        data: &Interactions,
        params: &RecommenderParams,
        caps: &RecommendCaps,
        control: Control,
    ) -> Result<FitReport, RecommendError> {
        fit(data, params, caps, control)
    }
}

/// Epochs the refit continues the validated autoencoder on all interactions: a quarter
/// of the epochs it was selected at, at least 2.
fn refit_epochs(selected: usize) -> usize {
    selected.div_ceil(4).max(2)
}

/// Recency used while selecting autoencoder epochs: the fixed value, else power 1 on a
/// `temporal` split and none otherwise.
fn provisional_recency(params: &RecommenderParams, holdout: &Holdout) -> Recency {
    let power = params.recency_power.unwrap_or(
        if holdout.kind == HoldoutKind::Temporal && holdout.train.times.is_some() {
            1.0
        } else {
            0.0
        },
    );
    Recency {
        power,
        floor: params.recency_floor.unwrap_or(0.0),
    }
}

/// The recency weightings tried on the validation split: the fixed one, else (with
/// timestamps on a `temporal` or `auto` split) none and every exponent of
/// [`RECENCY_GRID`] with every floor of [`FLOOR_GRID`] (or the fixed floor).
fn recency_grid(params: &RecommenderParams, holdout: &Holdout, timestamps: bool) -> Vec<Recency> {
    let floors: Vec<f32> = match params.recency_floor {
        Some(floor) => vec![floor],
        None => FLOOR_GRID.to_vec(),
    };
    match params.recency_power {
        Some(power) => vec![Recency {
            power,
            floor: params.recency_floor.unwrap_or(0.0),
        }],
        None if holdout.kind != HoldoutKind::Random && timestamps => std::iter::once(Recency::NONE)
            .chain(
                RECENCY_GRID
                    .iter()
                    .flat_map(|&power| floors.iter().map(move |&floor| Recency { power, floor })),
            )
            .filter(|r| *r == Recency::NONE || !r.is_off())
            .collect(),
        None => vec![Recency::NONE],
    }
}

struct DaeRun {
    model: Dae,
    epochs: usize,
}

/// Trains the autoencoder (from `start` when given, else from a seeded initialisation)
/// for up to `epochs`; with a holdout, keeps the weights of the epoch with the best
/// validation NDCG@10 and stops after `patience` epochs without one.
#[allow(clippy::too_many_arguments)]
fn train_dae(
    data: &Dataset,
    params: &RecommenderParams,
    start: Option<Dae>,
    epochs: usize,
    holdout: Option<(&Dataset, &Holdout)>,
    first_epoch: usize,
    started: Instant,
    control: &mut Control,
    history: &mut Vec<EpochReport>,
) -> Result<DaeRun, RecommendError> {
    let config = DaeConfig {
        hidden: params.hidden,
        input_dropout: params.input_dropout,
        batch_size: params.batch_size,
        learning_rate: params.learning_rate,
        weight_decay: params.weight_decay,
        seed: params.seed,
    };
    let mut trainer = match start {
        Some(model) => DaeTrainer::with_model(model, config),
        None => DaeTrainer::new(data.n_items(), config),
    };
    let cancel = control.cancel;
    let cancelled = || crate::nn::should_stop(cancel);
    let mut best: Option<(f64, usize, Dae)> = None;
    for epoch in 1..=epochs {
        let loss = trainer
            .epoch(data, &cancelled)
            .ok_or(RecommendError::Cancelled)?;
        if !loss.is_finite() || !trainer.is_finite() {
            return Err(RecommendError::NonFinite { epoch });
        }
        let metric = holdout.map(|(data_full, h)| {
            let scorers = Scorers {
                dae: Some(&trainer.model),
                ease: None,
            };
            validate(
                data_full,
                h,
                &scorers,
                provisional_recency(params, h),
                &[1.0],
            )[0]
            .ndcg()
        });
        let report = EpochReport {
            epoch: first_epoch + epoch,
            train_loss: loss,
            valid_loss: None,
            valid_metric: metric,
            metric: METRIC.to_owned(),
            learning_rate: f64::from(params.learning_rate),
            elapsed_secs: started.elapsed().as_secs_f64(),
            trial: None,
        };
        (control.on_epoch)(&report);
        history.push(report);
        if cancelled() {
            return Err(RecommendError::Cancelled);
        }
        if let Some(metric) = metric {
            match &mut best {
                Some((score, at, model)) if metric <= *score => {
                    if params
                        .early_stopping_patience
                        .is_some_and(|p| epoch - *at >= p)
                    {
                        return Ok(DaeRun {
                            model: std::mem::replace(model, Dae::new(0, 0, 0)),
                            epochs: *at,
                        });
                    }
                }
                _ => best = Some((metric, epoch, trainer.model.clone())),
            }
        }
    }
    Ok(match best {
        Some((_, at, model)) => DaeRun { model, epochs: at },
        None => DaeRun {
            model: trainer.model,
            epochs,
        },
    })
}

/// Trains a [`Recommender`] on `data`.
///
/// With a validation split (`params.holdout` not `none`): the components are trained on
/// the interactions minus the held-out ones, the autoencoder's epoch count is chosen by
/// validation NDCG@10 (early stopping), the blend weight (unless fixed, from 0, 0.1, …, 1)
/// and, on a `last` split with `recency_power = None`, the recency exponent (from 0, 0.5,
/// 1, 1.5) jointly by validation NDCG@10 + Recall@20, metrics are recorded for the model and for popularity, and with
/// `params.refit` the selected configuration is trained again on all interactions.
/// Deterministic for a given seed.
///
/// # Errors
/// [`RecommendError::Params`] for invalid parameters or sizes over `caps`;
/// [`RecommendError::Data`] for unusable interactions; [`RecommendError::Cancelled`];
/// [`RecommendError::NonFinite`] if the autoencoder diverges.
pub fn fit(
    data: &Interactions,
    params: &RecommenderParams,
    caps: &RecommendCaps,
    control: Control,
) -> Result<FitReport, RecommendError> {
    fit_with_attributes(data, None, None, params, caps, control)
}

/// [`fit`] with item and user attributes as side information for the item-item model
/// (see [`RecommenderParams::attribute_weight`] and
/// [`RecommenderParams::user_attribute_weight`]); strengths left `None` are chosen on the
/// validation split together with the blend weight and recency.
///
/// # Errors
/// As [`fit`].
pub fn fit_with_attributes(
    data: &Interactions,
    item_attributes: Option<&Attributes>,
    user_attributes: Option<&Attributes>,
    params: &RecommenderParams,
    caps: &RecommendCaps,
    mut control: Control,
) -> Result<FitReport, RecommendError> {
    let started = Instant::now();
    let mut stages = Stages::start();
    params.check(caps)?;
    let full = Dataset::from_interactions(data, params.use_values, caps)?;
    let n_items = full.n_items();
    params.check_catalog(n_items, caps)?;
    let component = params.resolved_component(n_items, caps);
    let uses_dae = matches!(component, Component::Dae | Component::Blend);
    let uses_ease = matches!(component, Component::Ease | Component::Blend);
    let cancel = control.cancel;
    let cancelled = || crate::nn::should_stop(cancel);
    let mut history = Vec::new();

    let holdout = split(&full, params);
    stages.lap("prepare");
    let mut blend = match component {
        Component::Dae => 1.0,
        Component::Ease => 0.0,
        _ => params.blend.unwrap_or(0.5),
    };
    let mut epochs = params.epochs;
    let mut recency = Recency {
        power: params.recency_power.unwrap_or(0.0),
        floor: params.recency_floor.unwrap_or(0.0),
    };
    let mut metrics = None;
    let mut holdout_used = None;
    // The autoencoder selected on validation, continued on all interactions by the refit.
    let mut warm = None;
    let mut trained: Option<(Option<Dae>, Option<Ease>)> = None;
    let postings = match item_attributes {
        Some(attributes) if uses_ease => value_postings(attributes, &full.item_ids),
        _ => Vec::new(),
    };
    let mut attribute_weight = match params.attribute_weight {
        _ if postings.is_empty() => 0.0,
        Some(weight) => weight,
        None => DEFAULT_ATTRIBUTE_WEIGHT,
    };
    let features = match user_attributes {
        Some(attributes) if uses_ease => user_features(attributes, &full.user_ids),
        _ => UserFeatures::default(),
    };
    let mut user_weight = match params.user_attribute_weight {
        _ if features.count == 0 => 0.0,
        Some(weight) => weight,
        None => DEFAULT_USER_ATTRIBUTE_WEIGHT,
    };
    // The item-item model (when the component uses one) with the given side-information
    // strengths.
    let fit_item_item = |data: &Dataset, strength: f32, user_strength: f32| {
        if !uses_ease {
            return Ok(None);
        }
        let side = side_info(&postings, data, strength);
        let users = (user_strength > 0.0 && features.count > 0).then_some(UserInputs {
            features: &features,
            weight: f64::from(user_strength),
        });
        Ease::fit(
            data,
            params.ease_lambda,
            params.ease_dropout,
            side.as_ref(),
            users.as_ref(),
            &cancelled,
        )
        .map(Some)
        .ok_or(RecommendError::Cancelled)
    };
    if let Some(holdout) = &holdout {
        let dae = if uses_dae {
            let run = train_dae(
                &holdout.train,
                params,
                None,
                params.epochs,
                Some((&full, holdout)),
                0,
                started,
                &mut control,
                &mut history,
            )?;
            epochs = run.epochs;
            stages.lap(format!(
                "autoencoder (validation, {} epochs)",
                history.len()
            ));
            Some(run.model)
        } else {
            None
        };
        let alphas: &[f32] = if component == Component::Blend && params.blend.is_none() {
            &BLEND_GRID
        } else {
            &[blend]
        };
        let recencies = recency_grid(params, holdout, full.times.is_some());
        let strengths: &[f32] = match params.attribute_weight {
            None if !postings.is_empty() => &ATTRIBUTE_GRID,
            _ => &[attribute_weight],
        };
        let user_weights: &[f32] = match params.user_attribute_weight {
            None if features.count > 0 => &USER_ATTRIBUTE_GRID,
            _ => &[user_weight],
        };
        let side_choices: Vec<(f32, f32)> = strengths
            .iter()
            .flat_map(|&s| user_weights.iter().map(move |&u| (s, u)))
            .collect();
        // Joint choice of attribute strengths, recency and blend weight by validation
        // NDCG@10 + Recall@20 (see `choose`). One item-item model is alive at a time.
        let mut candidates = Vec::new();
        let mut last_ease = None;
        for &(strength, user_strength) in &side_choices {
            let ease = fit_item_item(&holdout.train, strength, user_strength)?;
            if uses_ease {
                stages.lap("item-item (validation)");
            }
            let scorers = Scorers {
                dae: dae.as_ref(),
                ease: ease.as_ref(),
            };
            for &recency in &recencies {
                let results = validate(&full, holdout, &scorers, recency, alphas);
                for (&alpha, evaluation) in alphas.iter().zip(results) {
                    candidates.push(Candidate {
                        strength,
                        user_strength,
                        recency,
                        alpha,
                        evaluation,
                    });
                }
            }
            last_ease = Some((strength, user_strength, ease));
            stages.lap("selection");
        }
        let (choice, used) = choose(&candidates, holdout.kind)
            .ok_or_else(|| RecommendError::Data("no validation user could be scored".into()))?;
        attribute_weight = choice.strength;
        user_weight = choice.user_strength;
        recency = choice.recency;
        blend = choice.alpha;
        holdout_used = Some(used);
        let latest = used == HoldoutKind::Temporal;
        let chosen = if latest {
            choice.evaluation.latest
        } else {
            choice.evaluation.random
        };
        metrics = chosen.map(|scored| HoldoutMetrics {
            holdout: used,
            model: scored.metrics,
            popularity: popularity_metrics(&full, holdout, latest),
        });
        if !params.refit {
            let ease = match last_ease {
                Some((s, u, ease)) if s == choice.strength && u == choice.user_strength => ease,
                _ => fit_item_item(&holdout.train, choice.strength, choice.user_strength)?,
            };
            trained = Some((dae, ease));
        } else {
            warm = dae;
        }
    }
    // Final components: on all interactions (or the validation models without refit).
    let (dae, ease) = match trained {
        Some(parts) => parts,
        None => {
            let ease = fit_item_item(&full, attribute_weight, user_weight)?;
            if uses_ease {
                stages.lap("item-item (refit)");
            }
            let dae = if uses_dae {
                let first = history.len();
                let more = if warm.is_some() {
                    refit_epochs(epochs)
                } else {
                    epochs
                };
                let dae = Some(
                    train_dae(
                        &full,
                        params,
                        warm.take(),
                        more,
                        None,
                        first,
                        started,
                        &mut control,
                        &mut history,
                    )?
                    .model,
                );
                stages.lap(format!("autoencoder (refit, {more} epochs)"));
                if holdout.is_some() {
                    epochs += more;
                }
                dae
            } else {
                None
            };
            (dae, ease)
        }
    };
    let mut offsets = Vec::with_capacity(full.n_users() + 1);
    offsets.push(0);
    let mut items = Vec::with_capacity(full.items.len());
    let mut weights = Vec::with_capacity(full.items.len());
    let mut buf = Vec::new();
    for user in 0..full.n_users() {
        full.weighted_history(user, recency, &mut buf);
        for &(i, w) in &buf {
            items.push(i);
            weights.push(w);
        }
        offsets.push(items.len());
    }
    let spec = RecommenderSpec {
        format: SPEC_FORMAT,
        component,
        n_items,
        n_users: full.n_users(),
        hidden: if uses_dae { params.hidden } else { 0 },
        blend,
        attribute_weight,
        user_attribute_weight: user_weight,
        user_features: ease.as_ref().map_or(0, |e| e.user_features.count),
        recency_power: recency.power,
        recency_floor: recency.floor,
        holdout_used,
        timestamps: full.times.is_some(),
        index_lists: 0,
        index_probes: 0,
        max_k: caps.max_k,
        epochs_trained: if uses_dae { epochs } else { 0 },
        interactions: full.items.len(),
        params: params.clone(),
        metrics: metrics.clone(),
        cold_items: 0,
        item_attributes: Vec::new(),
        user_attributes: Vec::new(),
    };
    let model = Recommender::from_parts(Parts {
        spec,
        popularity: full.popularity(params.popularity_half_life_days),
        item_ids: full.item_ids,
        user_ids: full.user_ids,
        history_offsets: offsets,
        history_items: items,
        history_weights: weights,
        dae,
        ease,
    })?;
    stages.lap("assemble");
    let model = match &model.dae {
        Some(dae) if component == Component::Dae && n_items > caps.exact_max_items => {
            let index = IvfIndex::build(
                dae.decoder.view(),
                dae.decoder_bias.as_slice().expect("contiguous"),
                default_lists(n_items),
                params.seed,
                &cancelled,
            )
            .ok_or(RecommendError::Cancelled)?;
            let model = model.with_index(index, caps.index_probes);
            stages.lap(format!("index ({} lists)", model.spec.index_lists));
            model
        }
        _ => model,
    };
    Ok(FitReport {
        model,
        metrics,
        history,
        stages: stages.list,
    })
}
