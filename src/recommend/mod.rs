//! Item recommendation from implicit interactions (user, item, optional value and
//! timestamp).
//!
//! The model ([`Recommender`]) maps one user's history — a sparse list of
//! `(item_index, weight)` — to a score for every item of the catalog in one pass, and
//! serves the top `k` with an `O(n_items)` partial selection. It blends two components,
//! both trained here on the CPU:
//!
//! * a multinomial denoising autoencoder (Mult-DAE, Liang et al. 2018): input dropout on
//!   the L2-normalised multi-hot history, a `tanh` hidden layer, and a softmax over all
//!   items trained with the multinomial log-likelihood. The first layer is a sum of
//!   weight rows over the history (never a dense multi-hot product); the decoder is one
//!   GEMV of `hidden × n_items`;
//! * an item-item linear model solved in closed form (EASE, Steck 2019; by default its
//!   dropout-emphasised variant DLAE, Steck 2020), when the catalog is small enough for
//!   its `n_items²` matrix; scoring sums one row per history item.
//!
//! Scores of both components are standardised per user and mixed with a weight chosen on
//! a validation split at fit time. For next-item use (timestamps, `last` validation
//! split) the history is recency-weighted, `w · (floor + (1 − floor) / (1 + rank from
//! most recent)^power)`, with `power` and `floor` chosen on validation. Users unknown at training are served from a posted
//! history alone. Popularity (time-decayed when timestamps exist) is the fallback for
//! empty histories.
//!
//! Serving cost per user: `O(|h|·hidden + hidden·n_items)` (autoencoder) +
//! `O(|h|·n_items)` (item-item) + `O(n_items + k log k)` (standardise, top-k).
//!
//! Synchronous; the only I/O is [`Recommender::load`], which reads one version
//! directory ([`Recommender::artifact_files`] returns the files to store).

mod approx;
mod attributes;
mod dae;
mod data;
mod ease;
mod error;
mod fit;
mod holdout;
mod ivf;
mod kernels;
mod metrics;
mod model;
mod params;
mod persist;
pub(crate) mod quant;
mod select;
mod side;
mod stages;
mod topk;

pub use attributes::{AttributeColumns, Attributes, ItemFilter, COLD_NEIGHBOURS};
pub use data::{recency_weights, InteractionColumns, Interactions, Recency};
pub use error::RecommendError;
pub use fit::{fit, fit_with_attributes, FitReport};
pub use metrics::{HoldoutMetrics, RankingAccumulator, RankingMetrics};
pub use model::{ItemSet, Recommender, RecommenderSpec, ScoreScratch};
pub use params::{Component, HoldoutKind, RecommendCaps, RecommenderParams};
pub use persist::{ATTRIBUTES_FILE, VOCAB_FILE, WEIGHTS_FILE};
pub use stages::FitStage;
pub use topk::top_k;

#[cfg(test)]
mod attributes_tests;
#[cfg(test)]
mod recency_tests;
#[cfg(test)]
mod tests;
