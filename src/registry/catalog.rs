//! The catalog: which versions and aliases each model has, read from one
//! listing of the store. Serving resolves versions from the catalog held in
//! memory, never from the store; the catalog is refreshed by this process's
//! own writes, by the follower's poll, and on a miss (at most once a second
//! per name).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{check_name, parse_version, ALIASES_FILE, CARD_FILE, PRODUCTION_ALIAS};
use crate::storage::{Entry, CLAIM_FILE};

/// What the store holds for one model.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ModelEntry {
    /// Published versions (those with a card) and the card's change tag.
    pub(super) versions: BTreeMap<u32, String>,
    pub(super) aliases: BTreeMap<String, u32>,
    /// Change tag of `aliases.json`, if it exists.
    pub(super) aliases_tag: Option<String>,
    /// Claimed version numbers without a card yet (uploads in progress or
    /// interrupted), with the claim's time.
    pub(super) claims: BTreeMap<u32, DateTime<Utc>>,
}

impl ModelEntry {
    /// `production` alias if set, else the latest version.
    pub(super) fn serving_version(&self) -> Option<u32> {
        self.aliases
            .get(PRODUCTION_ALIAS)
            .copied()
            .or_else(|| self.versions.keys().next_back().copied())
    }

    pub(super) fn version_list(&self) -> Vec<u32> {
        self.versions.keys().copied().collect()
    }

    /// The next version number: above every published or claimed one.
    pub(super) fn next_version(&self) -> u32 {
        let published = self.versions.keys().next_back().copied().unwrap_or(0);
        let claimed = self.claims.keys().next_back().copied().unwrap_or(0);
        published.max(claimed) + 1
    }
}

/// Every model, by name.
pub(super) type Catalog = HashMap<String, Arc<ModelEntry>>;

/// What one listing says about each model, before aliases are read.
#[derive(Default)]
pub(super) struct Listed {
    pub(super) entry: ModelEntry,
    pub(super) has_aliases: bool,
}

/// Groups listed objects by model: `<name>/<version>/model.json` publishes a
/// version, `<name>/<version>/.claim` claims one, `<name>/aliases.json`
/// holds the aliases; anything else is ignored.
pub(super) fn group(entries: &[Entry]) -> BTreeMap<String, Listed> {
    let mut out: BTreeMap<String, Listed> = BTreeMap::new();
    for entry in entries {
        let parts: Vec<&str> = entry.key.split('/').collect();
        let Some(name) = parts
            .first()
            .filter(|n| check_name("model name", n).is_ok())
        else {
            continue;
        };
        match parts[1..] {
            [ALIASES_FILE] => {
                let listed = out.entry((*name).to_string()).or_default();
                listed.has_aliases = true;
                listed.entry.aliases_tag = Some(entry.tag.clone());
            }
            [version, file] => {
                let Some(version) = parse_version(version) else {
                    continue;
                };
                if file == CARD_FILE {
                    let listed = out.entry((*name).to_string()).or_default();
                    listed.entry.versions.insert(version, entry.tag.clone());
                } else if file == CLAIM_FILE {
                    let listed = out.entry((*name).to_string()).or_default();
                    listed.entry.claims.insert(version, entry.last_modified);
                }
            }
            _ => {}
        }
    }
    for listed in out.values_mut() {
        let published: Vec<u32> = listed.entry.versions.keys().copied().collect();
        for v in published {
            listed.entry.claims.remove(&v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, tag: &str) -> Entry {
        Entry {
            key: key.into(),
            size: 1,
            tag: tag.into(),
            last_modified: Utc::now(),
        }
    }

    #[test]
    fn a_version_is_listed_only_with_its_card_and_claims_count_for_the_next_number() {
        let listed = group(&[
            entry("churn/1/weights.safetensors", "w1"),
            entry("churn/1/model.json", "c1"),
            entry("churn/2/.claim", "x"),
            entry("churn/2/weights.safetensors", "w2"),
            entry("churn/3/.claim", "x"),
            entry("churn/3/model.json", "c3"),
            entry("churn/aliases.json", "a"),
            entry("churn/.tmp-1/model.json", "t"),
            entry("_jobs/abc.json", "j"),
            entry("churn/07/model.json", "z"),
        ]);
        assert_eq!(listed.len(), 1);
        let churn = &listed["churn"];
        assert_eq!(churn.entry.version_list(), vec![1, 3]);
        assert_eq!(
            churn.entry.claims.keys().copied().collect::<Vec<_>>(),
            vec![2]
        );
        assert!(churn.has_aliases);
        assert_eq!(churn.entry.next_version(), 4);
    }
}
