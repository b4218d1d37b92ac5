//! Benchmark fixture, not a serving path: untrained recommenders with
//! deterministic pseudo-random weights, to measure scoring cost at any catalog
//! size. `benchmark_model` serves `examples/recommend_eval.rs`;
//! `benchmark_parts` also backs `Recommender::benchmark_clustered` (`approx.rs`).

use ndarray::Array2;

use super::{Parts, Recommender, RecommenderSpec, SPEC_FORMAT};
use crate::recommend::dae::Dae;
use crate::recommend::ease::Ease;
use crate::recommend::params::{Component, RecommenderParams};

impl Recommender {
    /// A model with cheap deterministic pseudo-random weights and no training, to measure
    /// scoring cost at arbitrary catalog sizes (autoencoder with `hidden` units, plus the
    /// item-item matrix when `item_item`). Not meant for serving.
    #[doc(hidden)]
    pub fn benchmark_model(n_items: usize, hidden: usize, item_item: bool) -> Recommender {
        let pseudo =
            |i: usize| ((i.wrapping_mul(2_654_435_761) % 20_011) as f32 / 20_011.0 - 0.5) * 0.1;
        let dae = (hidden > 0).then(|| Dae {
            encoder: Array2::from_shape_fn((n_items, hidden), |(i, j)| pseudo(i * hidden + j)),
            encoder_bias: ndarray::Array1::zeros(hidden),
            decoder: Array2::from_shape_fn((hidden, n_items), |(i, j)| pseudo(i * n_items + j + 7)),
            decoder_bias: ndarray::Array1::from_shape_fn(n_items, pseudo),
        });
        let ease = item_item.then(|| Ease {
            user_features: Default::default(),
            weights: Array2::from_shape_fn((n_items, n_items), |(i, j)| {
                pseudo(i * n_items + j + 3)
            }),
        });
        Recommender::benchmark_parts(n_items, dae, ease)
    }

    /// An untrained model of `n_items` items around the given components (see
    /// [`Recommender::benchmark_model`]).
    pub(crate) fn benchmark_parts(
        n_items: usize,
        dae: Option<Dae>,
        ease: Option<Ease>,
    ) -> Recommender {
        let pseudo =
            |i: usize| ((i.wrapping_mul(2_654_435_761) % 20_011) as f32 / 20_011.0 - 0.5) * 0.1;
        let hidden = dae.as_ref().map_or(0, Dae::hidden);
        let component = match (dae.is_some(), ease.is_some()) {
            (true, true) => Component::Blend,
            (false, true) => Component::Ease,
            _ => Component::Dae,
        };
        let spec = RecommenderSpec {
            format: SPEC_FORMAT,
            component,
            n_items,
            n_users: 0,
            hidden,
            blend: 0.5,
            attribute_weight: 0.0,
            user_attribute_weight: 0.0,
            user_features: 0,
            recency_power: 0.0,
            recency_floor: 0.0,
            holdout_used: None,
            timestamps: false,
            index_lists: 0,
            index_probes: 0,
            max_k: 1000,
            epochs_trained: 0,
            interactions: 0,
            params: RecommenderParams::default(),
            metrics: None,
            cold_items: 0,
            item_attributes: Vec::new(),
            user_attributes: Vec::new(),
        };
        Recommender::from_parts(Parts {
            spec,
            item_ids: (0..n_items).map(|i| i.to_string()).collect(),
            user_ids: Vec::new(),
            history_offsets: vec![0],
            history_items: Vec::new(),
            history_weights: Vec::new(),
            popularity: (0..n_items).map(pseudo).collect(),
            dae,
            ease,
        })
        .expect("consistent benchmark parts")
    }
}
