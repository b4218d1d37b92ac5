//! The explanation use case: resolve and load the version as for a
//! prediction, then explain each instance off the request task.

use serde_json::{Map, Value};

use super::predict::{check_count, resolve_and_load, PredictError, VersionSelector};
use super::{AppState, ErrorCode};
use crate::registry::ServingModel;
use crate::tabular::{ExplainError, ExplainOptions, Explanation, STEPS_RANGE};

/// An explanation answer.
#[derive(Debug)]
pub struct ExplainOutput {
    pub model: String,
    pub version: u32,
    pub explanations: Vec<Explanation>,
}

/// Explains `instances` with the resolved version of `model`; the limits of
/// prediction apply.
pub async fn explain(
    state: &AppState,
    model: &str,
    selector: &VersionSelector,
    instances: Vec<Map<String, Value>>,
    options: ExplainOptions,
) -> Result<ExplainOutput, PredictError> {
    check_count(state, instances.len())?;
    if !STEPS_RANGE.contains(&options.steps) {
        return Err(PredictError::InvalidRequest {
            code: ErrorCode::InvalidParameter,
            field: "steps",
            message: format!(
                "`steps` is {}; it must be within {}..={}",
                options.steps,
                STEPS_RANGE.start(),
                STEPS_RANGE.end()
            ),
        });
    }
    let loaded = resolve_and_load(state, model, selector).await?;
    let version = loaded.card.version;
    let name = loaded.card.name.clone();
    let explanations = tokio::task::spawn_blocking(move || match &loaded.model {
        ServingModel::Tabular(model) => {
            model
                .explain_records(&instances, &options)
                .map_err(|e| match e {
                    ExplainError::Instance(i) => PredictError::Instance(i),
                    e @ (ExplainError::UnknownClass { .. } | ExplainError::ClassOnRegression) => {
                        PredictError::InvalidRequest {
                            code: ErrorCode::InvalidClass,
                            field: "class",
                            message: e.to_string(),
                        }
                    }
                    e @ ExplainError::Baseline(_) => PredictError::Internal(e.to_string()),
                })
        }
        ServingModel::Recommender(_) => Err(PredictError::WrongModelKind {
            model: loaded.card.name.clone(),
            kind: "recommender",
            hint: "explanations are for tabular models",
        }),
    })
    .await
    .map_err(|e| PredictError::Internal(e.to_string()))??;
    metrics::counter!("myelin_explanations_total", "model" => name.clone(), "version" => version.to_string())
        .increment(explanations.len() as u64);
    Ok(ExplainOutput {
        model: name,
        version,
        explanations,
    })
}
