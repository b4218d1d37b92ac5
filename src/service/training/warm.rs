//! A warm start's stored version: resolved (as `/predict` resolves: the given
//! version, else the `production` alias, else the latest) and loaded, at submit
//! and again by the runner.

use super::error::SubmitTrainError;
use crate::registry::{Registry, ServingModel};
use crate::service::ErrorCode;
use crate::tabular::{InitFrom, TrainSpec, WarmStart};

/// Loads the version `init` names and fits `spec` to it ([`WarmStart::apply`]).
/// Returns `init` with its version resolved.
///
/// # Errors
/// The model or version does not exist (`InitFrom`, answered 404), it is a
/// recommender (`InitFromKind`), or the request contradicts it (`Tabular`
/// naming the field).
pub(super) fn attach(
    registry: &Registry,
    init: &InitFrom,
    spec: &mut TrainSpec,
) -> Result<InitFrom, SubmitTrainError> {
    let version = registry
        .resolve(&init.model, init.version)
        .map_err(SubmitTrainError::InitFrom)?;
    let loaded = registry
        .load(&init.model, version)
        .map_err(SubmitTrainError::InitFrom)?;
    let warm = match &loaded.model {
        ServingModel::Tabular(model) => WarmStart::of(&init.model, version, model),
        ServingModel::Recommender(_) => {
            return Err(SubmitTrainError::InitFromKind {
                code: ErrorCode::WrongModelKind,
                message: format!(
                    "`init_from`: version {version} of `{}` is a recommender; a warm start continues a classification or regression model",
                    init.model
                ),
            })
        }
    };
    warm.apply(spec)?;
    let from = warm.from.clone();
    spec.init = Some(std::sync::Arc::new(warm));
    Ok(from)
}
