//! Training: validation split, component fits, epoch and blend selection, refit.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::nn::{Control, EpochReport};

use super::attributes::Attributes;
use super::dae::{Dae, DaeConfig, DaeTrainer};
use super::data::{Dataset, Interactions};
use super::ease::{Ease, SideInfo, UserFeatures, UserInputs};
use super::error::RecommendError;
use super::metrics::{HoldoutMetrics, RankingAccumulator, RankingMetrics};
use super::model::{blend_into, Parts, Recommender, RecommenderSpec, SPEC_FORMAT};
use super::params::{Component, HoldoutKind, RecommendCaps, RecommenderParams};
use super::topk::top_k;

/// ChaCha stream of the validation split.
const SPLIT_STREAM: u64 = 20;
/// Blend weights tried on the validation split.
const BLEND_GRID: [f32; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/// Recency exponents tried on a `last` validation split when `recency_power` is `None`.
const RECENCY_GRID: [f32; 4] = [0.0, 0.5, 1.0, 1.5];
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

/// Where each attribute's values start in one numbering of all values, and the total.
fn value_offsets(attributes: &Attributes) -> (Vec<usize>, usize) {
    let mut first = Vec::with_capacity(attributes.vocab.len());
    let mut total = 0usize;
    for values in &attributes.vocab {
        first.push(total);
        total += values.len();
    }
    (first, total)
}

/// For each attribute value shared by at least two warm items, those items (indices of
/// `item_ids`, ascending).
fn value_postings(attributes: &Attributes, item_ids: &[String]) -> Vec<Vec<u32>> {
    let aligned = attributes.aligned(item_ids);
    let (first, total) = value_offsets(&aligned);
    let mut postings = vec![Vec::new(); total];
    for item in 0..item_ids.len() {
        for &(attribute, value) in aligned.row(item) {
            postings[first[attribute as usize] + value as usize].push(item as u32);
        }
    }
    // Attribute rows hold each value once, so an item appears once per posting.
    postings.retain(|items| items.len() >= 2);
    postings
}

/// Each user's features: the user-attribute values shared by at least two users, at most
/// [`MAX_USER_FEATURES`] of them (the most common), numbered densely.
fn user_features(attributes: &Attributes, user_ids: &[String]) -> UserFeatures {
    let aligned = attributes.aligned(user_ids);
    let (first, total) = value_offsets(&aligned);
    let global = |&(attribute, value): &(u32, u32)| first[attribute as usize] + value as usize;
    let mut counts = vec![0usize; total];
    for user in 0..user_ids.len() {
        for entry in aligned.row(user) {
            counts[global(entry)] += 1;
        }
    }
    let mut ranked: Vec<usize> = (0..total).filter(|&v| counts[v] >= 2).collect();
    ranked.sort_by_key(|&v| (std::cmp::Reverse(counts[v]), v));
    ranked.truncate(MAX_USER_FEATURES);
    let mut dense = vec![u32::MAX; total];
    for (f, &v) in ranked.iter().enumerate() {
        dense[v] = f as u32;
    }
    let mut out = UserFeatures {
        count: ranked.len(),
        offsets: Vec::with_capacity(user_ids.len() + 1),
        ids: Vec::new(),
    };
    out.offsets.push(0);
    for user in 0..user_ids.len() {
        // Attribute rows hold each value once, and `dense` is one-to-one.
        out.ids.extend(
            aligned
                .row(user)
                .iter()
                .map(|e| dense[global(e)])
                .filter(|&f| f != u32::MAX),
        );
        out.offsets.push(out.ids.len());
    }
    out
}

/// Side information of strength `weight` for `data`: one value counts `weight ×` the mean
/// squared interaction weight per item (the mean diagonal of the Gram matrix).
fn side_info<'a>(postings: &'a [Vec<u32>], data: &Dataset, weight: f32) -> Option<SideInfo<'a>> {
    if weight <= 0.0 || postings.is_empty() {
        return None;
    }
    let mass: f64 = data
        .values
        .iter()
        .map(|&w| f64::from(w) * f64::from(w))
        .sum();
    Some(SideInfo {
        postings,
        weight: f64::from(weight) * mass / data.n_items().max(1) as f64,
    })
}

/// Held-out items of sampled users, and the training data without them.
struct Holdout {
    kind: HoldoutKind,
    train: Dataset,
    users: Vec<u32>,
    targets: Vec<Vec<u32>>,
}

fn split(data: &Dataset, params: &RecommenderParams) -> Option<Holdout> {
    let kind = match params.holdout {
        HoldoutKind::None => return None,
        HoldoutKind::Auto if data.times.is_some() => HoldoutKind::Last,
        HoldoutKind::Auto => HoldoutKind::Random,
        other => other,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream(SPLIT_STREAM);
    let mut users: Vec<u32> = (0..data.n_users() as u32)
        .filter(|&u| data.range(u as usize).len() >= 2)
        .collect();
    if users.is_empty() {
        return None;
    }
    users.shuffle(&mut rng);
    users.truncate(params.holdout_max_users);
    users.sort_unstable();
    let mut held = vec![false; data.items.len()];
    let mut targets = Vec::with_capacity(users.len());
    for &user in &users {
        let range = data.range(user as usize);
        let len = range.len();
        let chosen: Vec<usize> = match kind {
            HoldoutKind::Last => vec![range.end - 1],
            _ => {
                let count =
                    ((len as f32 * params.holdout_fraction).round() as usize).clamp(1, len - 1);
                let mut positions: Vec<usize> = range.collect();
                positions.shuffle(&mut rng);
                positions.truncate(count);
                positions
            }
        };
        targets.push(chosen.iter().map(|&j| data.items[j]).collect());
        for j in chosen {
            held[j] = true;
        }
    }
    Some(Holdout {
        kind,
        train: data.filter(|j| !held[j]),
        users,
        targets,
    })
}

/// Recency used while selecting autoencoder epochs: the fixed value, else 1 on a `last`
/// split and 0 on a `random` one.
fn provisional_recency(params: &RecommenderParams, holdout: &Holdout) -> f32 {
    params.recency_power.unwrap_or(
        if holdout.kind == HoldoutKind::Last && holdout.train.times.is_some() {
            1.0
        } else {
            0.0
        },
    )
}

/// The scorers being validated.
struct Scorers<'a> {
    dae: Option<&'a Dae>,
    ease: Option<&'a Ease>,
}

/// Ranks held-out users' items with every blend weight in `alphas` (the autoencoder's
/// weight; ignored when only one scorer exists) and returns one metrics set per weight.
fn validate(
    holdout: &Holdout,
    scorers: &Scorers,
    power: f32,
    alphas: &[f32],
) -> Vec<RankingMetrics> {
    let n = holdout.train.n_items();
    let mut accs: Vec<RankingAccumulator> =
        alphas.iter().map(|_| RankingAccumulator::new(n)).collect();
    let mut history = Vec::new();
    let (mut hidden, mut a, mut b, mut blended) =
        (Vec::new(), vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut seen = super::model::ItemSet::new(n);
    let mut buf = Vec::new();
    for (&user, targets) in holdout.users.iter().zip(&holdout.targets) {
        holdout
            .train
            .weighted_history(user as usize, power, &mut history);
        seen.clear();
        history.iter().for_each(|&(i, _)| seen.insert(i));
        if let Some(dae) = scorers.dae {
            hidden.resize(dae.hidden(), 0.0);
            dae.encode_into(&history, &mut hidden);
            dae.decode_into(&hidden, &mut a);
        }
        if let Some(ease) = scorers.ease {
            ease.score_into(&history, Some(user), &mut b);
        }
        for (&alpha, acc) in alphas.iter().zip(accs.iter_mut()) {
            let scores: &[f32] = match (scorers.dae, scorers.ease) {
                (Some(_), Some(_)) => {
                    blend_into(&a, &b, alpha, &mut blended);
                    &blended
                }
                (Some(_), None) => &a,
                _ => &b,
            };
            let ranked = top_k(scores, 20, &|i| seen.contains(i), None, &mut buf);
            let ranked: Vec<u32> = ranked.into_iter().map(|(i, _)| i).collect();
            acc.add(&ranked, targets);
        }
    }
    accs.iter().map(RankingAccumulator::finish).collect()
}

fn popularity_metrics(holdout: &Holdout) -> RankingMetrics {
    let popularity = holdout.train.popularity(None);
    let n = holdout.train.n_items();
    let mut acc = RankingAccumulator::new(n);
    let mut seen = super::model::ItemSet::new(n);
    let mut buf = Vec::new();
    for (&user, targets) in holdout.users.iter().zip(&holdout.targets) {
        seen.clear();
        let range = holdout.train.range(user as usize);
        holdout.train.items[range]
            .iter()
            .for_each(|&i| seen.insert(i));
        let ranked: Vec<u32> = top_k(&popularity, 20, &|i| seen.contains(i), None, &mut buf)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        acc.add(&ranked, targets);
    }
    acc.finish()
}

struct DaeRun {
    model: Dae,
    epochs: usize,
}

/// Trains the autoencoder for up to `epochs`; with a holdout, keeps the weights of the
/// epoch with the best validation NDCG@10 and stops after `patience` epochs without one.
#[allow(clippy::too_many_arguments)]
fn train_dae(
    data: &Dataset,
    params: &RecommenderParams,
    epochs: usize,
    holdout: Option<&Holdout>,
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
    let mut trainer = DaeTrainer::new(data.n_items(), config);
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
        let metric = holdout.map(|h| {
            let scorers = Scorers {
                dae: Some(&trainer.model),
                ease: None,
            };
            validate(h, &scorers, provisional_recency(params, h), &[1.0])[0].ndcg_at_10
        });
        let report = EpochReport {
            epoch: first_epoch + epoch,
            train_loss: loss,
            valid_loss: None,
            valid_metric: metric,
            metric: METRIC.to_owned(),
            learning_rate: f64::from(params.learning_rate),
            elapsed_secs: started.elapsed().as_secs_f64(),
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

/// The configuration chosen on the validation split, with its score and metrics.
struct Choice {
    score: f64,
    strength: f32,
    user_strength: f32,
    power: f32,
    alpha: f32,
    metrics: RankingMetrics,
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
    let mut blend = match component {
        Component::Dae => 1.0,
        Component::Ease => 0.0,
        _ => params.blend.unwrap_or(0.5),
    };
    let mut epochs = params.epochs;
    let mut recency = params.recency_power.unwrap_or(0.0);
    let mut metrics = None;
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
                params.epochs,
                Some(holdout),
                0,
                started,
                &mut control,
                &mut history,
            )?;
            epochs = run.epochs;
            Some(run.model)
        } else {
            None
        };
        let alphas: &[f32] = if component == Component::Blend && params.blend.is_none() {
            &BLEND_GRID
        } else {
            &[blend]
        };
        let recencies: &[f32] = match params.recency_power {
            Some(power) => &[power],
            None if holdout.kind == HoldoutKind::Last && full.times.is_some() => &RECENCY_GRID,
            None => &[0.0],
        };
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
        // NDCG@10 + Recall@20. At most two item-item models are alive at once.
        let mut best: Option<Choice> = None;
        let mut kept_ease = None;
        for &(strength, user_strength) in &side_choices {
            let ease = fit_item_item(&holdout.train, strength, user_strength)?;
            let scorers = Scorers {
                dae: dae.as_ref(),
                ease: ease.as_ref(),
            };
            let mut improved = false;
            for &power in recencies {
                let results = validate(holdout, &scorers, power, alphas);
                for (&alpha, m) in alphas.iter().zip(results) {
                    let score = m.ndcg_at_10 + m.recall_at_20;
                    if best.as_ref().is_none_or(|b| score > b.score) {
                        best = Some(Choice {
                            score,
                            strength,
                            user_strength,
                            power,
                            alpha,
                            metrics: m,
                        });
                        improved = true;
                    }
                }
            }
            if improved {
                kept_ease = ease;
            }
        }
        let choice = best.expect("at least one candidate");
        attribute_weight = choice.strength;
        user_weight = choice.user_strength;
        recency = choice.power;
        blend = choice.alpha;
        metrics = Some(HoldoutMetrics {
            holdout: holdout.kind,
            model: choice.metrics,
            popularity: popularity_metrics(holdout),
        });
        if !params.refit {
            trained = Some((dae, kept_ease));
        }
    }
    // Final components: on all interactions (or the validation models without refit).
    let (dae, ease) = match trained {
        Some(parts) => parts,
        None => {
            let ease = fit_item_item(&full, attribute_weight, user_weight)?;
            let dae = if uses_dae {
                let first = history.len();
                Some(
                    train_dae(
                        &full,
                        params,
                        epochs,
                        None,
                        first,
                        started,
                        &mut control,
                        &mut history,
                    )?
                    .model,
                )
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
        recency_power: recency,
        timestamps: full.times.is_some(),
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
    Ok(FitReport {
        model,
        metrics,
        history,
    })
}
