//! Choosing the configuration to serve from the candidates scored on the
//! validation split, by the protocol the holdout asks for.

use super::data::Recency;
use super::holdout::Evaluation;
use super::params::HoldoutKind;

/// A configuration scored on the validation split.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    pub(super) strength: f32,
    pub(super) user_strength: f32,
    pub(super) recency: Recency,
    pub(super) alpha: f32,
    pub(super) evaluation: Evaluation,
}

/// The protocol a candidate is judged on and its selection score there.
fn score_on(c: &Candidate, latest: bool) -> Option<(f64, f64)> {
    let scored = if latest {
        c.evaluation.latest.as_ref()
    } else {
        c.evaluation.random.as_ref()
    };
    scored.map(|s| (s.score, s.error))
}

/// The best candidate on one protocol, among those `allowed`.
fn best_on(
    candidates: &[Candidate],
    latest: bool,
    allowed: impl Fn(&Candidate) -> bool,
) -> Option<&Candidate> {
    let mut best: Option<(&Candidate, f64)> = None;
    for c in candidates.iter().filter(|c| allowed(c)) {
        if let Some((score, _)) = score_on(c, latest) {
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((c, score));
            }
        }
    }
    best.map(|(c, _)| c)
}

/// The candidate kept and the protocol it was judged on (`temporal` or `random`).
///
/// `temporal` and `random` splits take the best score on their targets. `auto` (both
/// target sets) starts from the best timestamp-free candidate (recency 0) on the random
/// targets and switches to the best recency-weighted candidate on the latest targets
/// only if that one beats it there by more than the standard error while staying within
/// the standard error of it on the random targets.
pub(super) fn choose(
    candidates: &[Candidate],
    kind: HoldoutKind,
) -> Option<(Candidate, HoldoutKind)> {
    match kind {
        HoldoutKind::Temporal => {
            best_on(candidates, true, |_| true).map(|c| (c.clone(), HoldoutKind::Temporal))
        }
        HoldoutKind::Auto => {
            let base = best_on(candidates, false, |c| c.recency.is_off())
                .or_else(|| best_on(candidates, false, |_| true))?;
            let Some((base_random, random_error)) = score_on(base, false) else {
                return Some((base.clone(), HoldoutKind::Random));
            };
            let Some((base_latest, latest_error)) = score_on(base, true) else {
                return Some((base.clone(), HoldoutKind::Random));
            };
            let next = best_on(candidates, true, |c| {
                !c.recency.is_off()
                    && score_on(c, false).is_some_and(|(s, _)| s >= base_random - random_error)
            });
            match next {
                Some(next)
                    if score_on(next, true)
                        .is_some_and(|(s, _)| s > base_latest + latest_error) =>
                {
                    Some((next.clone(), HoldoutKind::Temporal))
                }
                _ => Some((base.clone(), HoldoutKind::Random)),
            }
        }
        _ => best_on(candidates, false, |_| true).map(|c| (c.clone(), HoldoutKind::Random)),
    }
}
