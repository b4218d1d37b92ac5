//! The recommender's description without tensors: what `model.json` stores.

use serde::{Deserialize, Serialize};

use crate::recommend::data::Recency;
use crate::recommend::metrics::HoldoutMetrics;
use crate::recommend::params::{Component, HoldoutKind, RecommenderParams};

/// Version of the [`RecommenderSpec`] layout.
pub const SPEC_FORMAT: u32 = 1;

/// Everything about a trained recommender except its tensors and vocabularies; small,
/// stored in `model.json` by the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommenderSpec {
    pub format: u32,
    /// The component actually trained (`dae`, `ease` or `blend`).
    pub component: Component,
    pub n_items: usize,
    pub n_users: usize,
    /// Autoencoder hidden width (0 without an autoencoder).
    pub hidden: usize,
    /// Autoencoder weight in the blend (1 for `dae`, 0 for `ease`).
    pub blend: f32,
    /// Strength of item attributes in the item-item model (0: none; see
    /// [`RecommenderParams::attribute_weight`]).
    #[serde(default)]
    pub attribute_weight: f32,
    /// Input weight of user attributes in the item-item model (0: none).
    #[serde(default)]
    pub user_attribute_weight: f32,
    /// User features (rows after the items in the item-item weights).
    #[serde(default)]
    pub user_features: usize,
    /// Recency exponent applied to stored histories (see
    /// [`RecommenderParams::recency_power`]); callers posting timestamped histories should
    /// weight them the same way with [`crate::recommend::recency_weights`] and
    /// [`RecommenderSpec::recency`].
    pub recency_power: f32,
    /// Weight floor of the recency weighting (see [`RecommenderParams::recency_floor`]);
    /// 0 (the plain power law) in models stored before it existed.
    #[serde(default)]
    pub recency_floor: f32,
    /// The validation protocol whose choice the model keeps (`temporal` or `random`;
    /// see [`RecommenderParams::holdout`]); `None` without validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_used: Option<HoldoutKind>,
    /// Whether the training interactions had timestamps.
    pub timestamps: bool,
    /// Lists of the inverted-file index used for approximate top-k (0: exact scoring).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index_lists: usize,
    /// Lists probed per request when `index_lists > 0`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index_probes: usize,
    /// Largest `k` served.
    pub max_k: usize,
    /// Autoencoder epochs trained in the final model.
    pub epochs_trained: usize,
    /// Distinct (user, item) pairs trained on.
    pub interactions: usize,
    pub params: RecommenderParams,
    pub metrics: Option<HoldoutMetrics>,
    /// Items known only from the item attributes (indices `n_items..`), scored from their
    /// content neighbours.
    #[serde(default)]
    pub cold_items: usize,
    /// Names of the item attributes (filters, `include_attributes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_attributes: Vec<String>,
    /// Names of the user attributes (segment popularity for users without history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_attributes: Vec<String>,
}

impl RecommenderSpec {
    /// The recency weighting of stored histories.
    pub fn recency(&self) -> Recency {
        Recency {
            power: self.recency_power,
            floor: self.recency_floor,
        }
    }
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}
