//! Tabular models: the fitted feature pipeline, the target encoding and the
//! MLP together — trained from a raw table, predicting on raw records.

mod adapt;
mod compressed;
#[cfg(test)]
mod compressed_tests;
mod cv;
mod evaluate;
mod explain;
#[cfg(test)]
mod explain_tests;
mod fit;
mod importance;
mod predict;
mod search;
mod train;
mod warm;

pub use adapt::{adapt, explicit_keys, Validation, SMALL_TABLE_ROWS};
pub use compressed::{CompressedNet, CompressionReport, Precision, PrecisionCost};
pub use cv::{CrossValidation, FoldMetrics};
pub use evaluate::{evaluate, Metrics};
pub use explain::{
    ColumnAttribution, ExplainError, ExplainOptions, Explanation, TokenAttribution,
    COMPLETENESS_TOLERANCE, DEFAULT_STEPS, MAX_REFINED_STEPS, STEPS_RANGE,
};
pub use importance::{
    permutation_importance, ColumnImportance, PermutationImportance, IMPORTANCE_MAX_ROWS,
};
pub use predict::{InstanceError, Prediction, PredictionBatch};
pub use search::{
    halving_schedule, sample_trials, search_epochs, Rung, SearchOptions, SearchReport, TrialParams,
    TrialResult, ETA, MAX_TRIALS, MIN_SEARCH_ROWS,
};
pub use train::{
    check_spec, check_table, planned_epochs, precheck, train, train_checked, ClassWeight,
    ClassWeightMode, TabularError, TrainSpec, TrainedModel, TrainingTiming,
};
pub use warm::{InitFrom, WarmStart};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::data::{FeaturePipeline, TargetEncoder};
use crate::nn::Mlp;

/// A trained tabular model: raw record -> features -> MLP -> decoded output.
#[derive(Debug)]
pub struct TabularModel {
    /// The target column the model predicts.
    pub target: String,
    /// Fitted on the training split only.
    pub pipeline: FeaturePipeline,
    /// Label vocabulary or regression scaling.
    pub encoder: TargetEncoder,
    /// The network; its inputs equal `pipeline.width()`.
    pub mlp: Mlp,
    /// The reference record explanations start from (one field per pipeline input).
    pub baseline: Map<String, Value>,
    /// Permutation importance measured at the end of training.
    pub importance: Option<PermutationImportance>,
    /// What the `f16` and `int8` copies cost, measured at the end of training.
    pub compression: Option<CompressionReport>,
    /// The compressed copies, built on first use (`Err`: refused, why): `[f16, int8]`.
    pub(crate) copies: [std::sync::OnceLock<Result<CompressedNet, String>>; 2],
}

/// The serializable part of a tabular model (everything but the weights).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TabularSpec {
    pub target: String,
    pub pipeline: FeaturePipeline,
    pub target_encoder: TargetEncoder,
    /// The reference record of explanations: training mean / most frequent value
    /// per column. Absent in models stored before explanations: derived from the
    /// pipeline's statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Map<String, Value>>,
    /// Permutation importance per input column on the validation rows, measured
    /// at the end of training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<Box<PermutationImportance>>,
    /// Size and accuracy cost of `f16` and `int8` serving, on the validation rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Box<CompressionReport>>,
}

impl TabularModel {
    /// The part of the model that goes into `model.json`.
    pub fn spec(&self) -> TabularSpec {
        TabularSpec {
            target: self.target.clone(),
            pipeline: self.pipeline.clone(),
            target_encoder: self.encoder.clone(),
            baseline: Some(self.baseline.clone()),
            importance: self.importance.clone().map(Box::new),
            compression: self.compression.clone().map(Box::new),
        }
    }

    /// Rebuilds a model from its spec and network.
    pub fn from_parts(spec: TabularSpec, mlp: Mlp) -> Result<TabularModel, String> {
        if mlp.inputs() != spec.pipeline.width() {
            return Err(format!(
                "network takes {} inputs but the pipeline produces {}",
                mlp.inputs(),
                spec.pipeline.width()
            ));
        }
        match &spec.target_encoder {
            TargetEncoder::Classes { labels, .. } if labels.len() < 2 => {
                return Err(format!(
                    "the target encoding has {} class labels; a classifier needs at least 2",
                    labels.len()
                ));
            }
            TargetEncoder::Regression { mean, std, .. }
                if !(mean.is_finite() && std.is_finite() && *std > 0.0) =>
            {
                return Err(format!(
                    "the target encoding has mean {mean} and std {std}; both must be finite and std > 0"
                ));
            }
            _ => {}
        }
        let expected = expected_outputs(&spec.target_encoder);
        if mlp.outputs() != expected {
            return Err(format!(
                "network has {} outputs but the target encoding needs {expected}",
                mlp.outputs()
            ));
        }
        let baseline = spec
            .baseline
            .unwrap_or_else(|| spec.pipeline.default_baseline());
        let mut features = vec![0.0; spec.pipeline.width()];
        spec.pipeline
            .transform_record(&baseline, &mut features)
            .map_err(|e| format!("the baseline record cannot be encoded: {e}"))?;
        Ok(TabularModel {
            target: spec.target,
            pipeline: spec.pipeline,
            encoder: spec.target_encoder,
            mlp,
            baseline,
            importance: spec.importance.map(|b| *b),
            compression: spec.compression.map(|b| *b),
            copies: Default::default(),
        })
    }
}

/// Outputs the network needs for a target encoding.
pub(crate) fn expected_outputs(encoder: &TargetEncoder) -> usize {
    match encoder.classes() {
        0 => 1,
        2 => 1,
        k => k,
    }
}
