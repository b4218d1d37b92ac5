//! The versioned model store: `<name>/<version>/{weights.safetensors,
//! model.json}` and `<name>/aliases.json` in a [`Store`] (local disk or S3),
//! versions published card-last, aliases by compare-and-swap, a catalog in
//! memory that serving resolves from, and a cache of loaded versions that
//! readers never wait on while a new one is loaded. Model cards are made here
//! too, one constructor per kind of model ([`ModelCard::tabular`],
//! [`ModelCard::recommender`]); weights go through [`crate::codec`].

mod artifact;
mod cache;
mod card;
mod catalog;
mod follow;
mod names;
mod publish;

pub use artifact::{
    load_dir, read_card, tensors_from_bytes, weights_bytes, ArtifactError, LoadedModel,
    ServingModel, CARD_FILE, WEIGHTS_FILE,
};
pub use card::{ModelCard, ModelSpec, FORMAT_VERSION};
pub use follow::PollReport;
pub use names::{check_name, NameError};
pub use publish::write_file;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::storage::{Location, Store, StoreError, Written};
use cache::ModelCache;
use catalog::{Catalog, ModelEntry};

/// The alias serving prefers when no version is asked for.
pub const PRODUCTION_ALIAS: &str = "production";
const ALIASES_FILE: &str = "aliases.json";
/// Interrupted writes older than this are removed (local staging
/// directories at open, remote claims without a card when polling).
const ORPHAN_GRACE: Duration = Duration::from_secs(15 * 60);
/// A miss (unknown model or version) re-reads the store at most this often per name.
const MISS_RECHECK: Duration = Duration::from_secs(1);
/// Waits between attempts to publish while the store is unavailable.
const PUBLISH_BACKOFF: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Registry errors; each maps to one HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("model `{0}` does not exist")]
    ModelNotFound(String),
    #[error("model `{name}` has no version {version}")]
    VersionNotFound { name: String, version: u32 },
    #[error("model `{name}` has no alias `{alias}`")]
    AliasNotFound { name: String, alias: String },
    #[error("version {version} of model `{name}` is referenced by alias(es) {aliases}; move or delete them first")]
    VersionAliased {
        name: String,
        version: u32,
        aliases: String,
    },
    #[error("stored model is unreadable: {0}")]
    Corrupt(#[from] ArtifactError),
    #[error("model store I/O error at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The store could not be reached (or answered an error) after retries.
    #[error("model store unavailable: {0}")]
    Unavailable(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> RegistryError {
        match e {
            StoreError::NotFound { key } => RegistryError::Corrupt(ArtifactError {
                file: key,
                reason: "missing".into(),
            }),
            StoreError::Io { path, source } => RegistryError::Io { path, source },
            other => RegistryError::Unavailable(other),
        }
    }
}

fn corrupt(file: &str, reason: impl ToString) -> RegistryError {
    RegistryError::Corrupt(ArtifactError {
        file: file.into(),
        reason: reason.to_string(),
    })
}

/// A summary of one model for listings.
#[derive(Clone, Debug)]
pub struct ModelSummary {
    pub name: String,
    pub versions: Vec<u32>,
    pub aliases: BTreeMap<String, u32>,
    /// The card of the latest version.
    pub latest: Option<ModelCard>,
}

/// The model store: versions and aliases in a [`Store`], the catalog and
/// the loaded versions in memory.
pub struct Registry {
    store: Store,
    retain_versions: usize,
    models: ModelCache,
    catalog: ArcSwap<Catalog>,
    /// Serializes catalog refreshes so a slow one never overwrites a newer one.
    refreshing: Mutex<()>,
    misses: Mutex<HashMap<String, Instant>>,
    /// Unix milliseconds of the last successful full refresh.
    last_refresh_ms: AtomicI64,
    /// Age after which an interrupted write is removed.
    orphan_grace: Duration,
}

impl Registry {
    /// Opens (creating) a store on local disk at `root`. `retain_versions` =
    /// 0 keeps all versions.
    pub fn open(
        root: impl Into<PathBuf>,
        retain_versions: usize,
        cache_capacity: usize,
    ) -> Result<Registry, RegistryError> {
        let root = root.into();
        let store = Store::open(&Location::Local(root.clone()), &root.join(".cache"))
            .map_err(RegistryError::from)?;
        Registry::with_store(store, retain_versions, cache_capacity)
    }

    /// Opens the registry over `store`: removes old interrupted writes and
    /// reads the catalog (an unreachable store is an error here).
    pub fn with_store(
        store: Store,
        retain_versions: usize,
        cache_capacity: usize,
    ) -> Result<Registry, RegistryError> {
        let registry = Registry {
            store,
            retain_versions,
            models: ModelCache::new(cache_capacity),
            catalog: ArcSwap::from_pointee(Catalog::new()),
            refreshing: Mutex::new(()),
            misses: Mutex::new(HashMap::new()),
            last_refresh_ms: AtomicI64::new(0),
            orphan_grace: ORPHAN_GRACE,
        };
        registry.refresh()?;
        for name in registry.model_names()? {
            registry.store.clean_temporaries(&name, ORPHAN_GRACE);
        }
        registry.store.clean_temporaries("", ORPHAN_GRACE);
        Ok(registry)
    }

    /// Sets the age after which interrupted writes are removed (default 15 minutes).
    pub fn with_orphan_grace(mut self, grace: Duration) -> Registry {
        self.orphan_grace = grace;
        self
    }

    /// The storage seam under the registry.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn entry(&self, name: &str) -> Option<Arc<ModelEntry>> {
        self.catalog.load().get(name).cloned()
    }

    /// Re-reads the whole catalog from one listing; aliases files are read
    /// only when their tag changed. Returns the catalog before and after.
    fn refresh(&self) -> Result<(Arc<Catalog>, Arc<Catalog>), RegistryError> {
        let _guard = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        let listing = self
            .store
            .block(|s| async move { s.list_models().await })??;
        let old = self.catalog.load_full();
        let mut next = Catalog::new();
        for (name, listed) in catalog::group(&listing) {
            let entry = self.with_aliases(&name, listed, old.get(&name).map(|e| &**e))?;
            if !entry.versions.is_empty() || !entry.claims.is_empty() {
                next.insert(name, Arc::new(entry));
            }
        }
        let next = Arc::new(next);
        self.catalog.store(next.clone());
        self.last_refresh_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        Ok((old, next))
    }

    /// Re-reads one model from a listing of its prefix.
    fn refresh_model(&self, name: &str) -> Result<Option<Arc<ModelEntry>>, RegistryError> {
        let _guard = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = name.to_string();
        let listing = self
            .store
            .block(|s| async move { s.list(&prefix).await })??;
        let old = self.entry(name);
        let listed = catalog::group(&listing).remove(name).unwrap_or_default();
        let entry = self.with_aliases(name, listed, old.as_deref())?;
        let mut next = (**self.catalog.load()).clone();
        let entry = if entry.versions.is_empty() && entry.claims.is_empty() {
            next.remove(name);
            None
        } else {
            let entry = Arc::new(entry);
            next.insert(name.to_string(), entry.clone());
            Some(entry)
        };
        self.catalog.store(Arc::new(next));
        Ok(entry)
    }

    fn with_aliases(
        &self,
        name: &str,
        listed: catalog::Listed,
        old: Option<&ModelEntry>,
    ) -> Result<ModelEntry, RegistryError> {
        let mut entry = listed.entry;
        if !listed.has_aliases {
            return Ok(entry);
        }
        if let Some(old) = old.filter(|o| o.aliases_tag == entry.aliases_tag) {
            entry.aliases = old.aliases.clone();
            return Ok(entry);
        }
        let (aliases, _) = self.read_aliases(name)?;
        entry.aliases = aliases;
        Ok(entry)
    }

    fn read_aliases(
        &self,
        name: &str,
    ) -> Result<(BTreeMap<String, u32>, Option<crate::storage::Object>), RegistryError> {
        let key = format!("{name}/{ALIASES_FILE}");
        let object = self.store.block({
            let key = key.clone();
            |s| async move { s.get(&key).await }
        })??;
        match object {
            None => Ok((BTreeMap::new(), None)),
            Some(object) => {
                let aliases =
                    serde_json::from_slice(&object.bytes).map_err(|e| corrupt(&key, e))?;
                Ok((aliases, Some(object)))
            }
        }
    }

    /// The model's entry, re-read from the store: for management calls,
    /// which must see other processes' writes at once.
    fn fresh(&self, name: &str) -> Result<Arc<ModelEntry>, RegistryError> {
        check_name("model name", name)?;
        match self.refresh_model(name)? {
            Some(entry) if !entry.versions.is_empty() => Ok(entry),
            _ => Err(RegistryError::ModelNotFound(name.into())),
        }
    }

    /// The model's entry from memory, re-read from the store on a miss
    /// (at most once per `MISS_RECHECK` per name, so unknown names cannot
    /// drive traffic to the store).
    fn known(&self, name: &str, wanted: Option<u32>) -> Result<Arc<ModelEntry>, RegistryError> {
        let hit = self
            .entry(name)
            .filter(|e| !e.versions.is_empty())
            .filter(|e| wanted.is_none_or(|v| e.versions.contains_key(&v)));
        if let Some(entry) = hit {
            return Ok(entry);
        }
        let recheck = {
            let mut misses = self.misses.lock().unwrap_or_else(|p| p.into_inner());
            if misses.len() > 10_000 {
                misses.clear();
            }
            let now = Instant::now();
            match misses.get(name) {
                Some(at) if now.duration_since(*at) < MISS_RECHECK => false,
                _ => {
                    misses.insert(name.to_string(), now);
                    true
                }
            }
        };
        let entry = if recheck {
            self.refresh_model(name)?
        } else {
            self.entry(name)
        };
        let entry = entry
            .filter(|e| !e.versions.is_empty())
            .ok_or_else(|| RegistryError::ModelNotFound(name.into()))?;
        match wanted {
            Some(v) if !entry.versions.contains_key(&v) => Err(RegistryError::VersionNotFound {
                name: name.into(),
                version: v,
            }),
            _ => Ok(entry),
        }
    }

    /// Names of stored models with at least one version, sorted.
    pub fn model_names(&self) -> Result<Vec<String>, RegistryError> {
        let mut names: Vec<String> = self
            .catalog
            .load()
            .iter()
            .filter(|(_, e)| !e.versions.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Complete versions of a model, ascending. A model without versions is
    /// reported as not found.
    pub fn versions(&self, name: &str) -> Result<Vec<u32>, RegistryError> {
        Ok(self.fresh(name)?.version_list())
    }

    /// The model's aliases (alias → version).
    pub fn aliases(&self, name: &str) -> Result<BTreeMap<String, u32>, RegistryError> {
        check_name("model name", name)?;
        Ok(self.read_aliases(name)?.0)
    }

    /// Points `alias` at an existing `version`. Concurrent updates from any
    /// process never lose one: the aliases file is replaced by
    /// compare-and-swap and re-read when another writer got there first.
    pub fn set_alias(&self, name: &str, alias: &str, version: u32) -> Result<(), RegistryError> {
        check_name("alias", alias)?;
        if !self.fresh(name)?.versions.contains_key(&version) {
            return Err(RegistryError::VersionNotFound {
                name: name.into(),
                version,
            });
        }
        self.update_aliases(name, |aliases| {
            aliases.insert(alias.to_string(), version);
            Ok(())
        })
    }

    /// Removes `alias`.
    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        check_name("alias", alias)?;
        self.fresh(name)?;
        self.update_aliases(name, |aliases| match aliases.remove(alias) {
            Some(_) => Ok(()),
            None => Err(RegistryError::AliasNotFound {
                name: name.into(),
                alias: alias.into(),
            }),
        })
    }

    fn update_aliases(
        &self,
        name: &str,
        mut change: impl FnMut(&mut BTreeMap<String, u32>) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let key = format!("{name}/{ALIASES_FILE}");
        loop {
            let (mut aliases, previous) = self.read_aliases(name)?;
            change(&mut aliases)?;
            let bytes = Bytes::from(serde_json::to_vec_pretty(&aliases).unwrap_or_default());
            let key = key.clone();
            let written = self.store.block(|s| async move {
                s.compare_and_swap(&key, previous.as_ref(), bytes).await
            })??;
            if written == Written::Done {
                break;
            }
            metrics::counter!("myelin_store_cas_retries_total").increment(1);
        }
        self.refresh_model(name)?;
        Ok(())
    }

    /// Deletes a version; refused while an alias points at it.
    pub fn delete_version(&self, name: &str, version: u32) -> Result<(), RegistryError> {
        let entry = self.fresh(name)?;
        if !entry.versions.contains_key(&version) {
            return Err(RegistryError::VersionNotFound {
                name: name.into(),
                version,
            });
        }
        let aliased: Vec<String> = self
            .aliases(name)?
            .into_iter()
            .filter(|(_, v)| *v == version)
            .map(|(a, _)| a)
            .collect();
        if !aliased.is_empty() {
            return Err(RegistryError::VersionAliased {
                name: name.into(),
                version,
                aliases: aliased.join(", "),
            });
        }
        self.remove_version(name, version)?;
        self.refresh_model(name)?;
        Ok(())
    }

    fn remove_version(&self, name: &str, version: u32) -> Result<(), RegistryError> {
        let prefix = format!("{name}/{version}");
        self.store
            .block(|s| async move { s.delete_prefix(&prefix, CARD_FILE).await })??;
        self.models.evict(name, version);
        Ok(())
    }

    fn read_card_of(&self, name: &str, version: u32) -> Result<ModelCard, RegistryError> {
        let key = format!("{name}/{version}/{CARD_FILE}");
        let object = self.store.block({
            let key = key.clone();
            |s| async move { s.get(&key).await }
        })??;
        let object = object.ok_or_else(|| RegistryError::VersionNotFound {
            name: name.into(),
            version,
        })?;
        serde_json::from_slice(&object.bytes).map_err(|e| corrupt(&key, e))
    }

    /// Reads a version's card without loading weights.
    pub fn card(&self, name: &str, version: u32) -> Result<ModelCard, RegistryError> {
        if !self.fresh(name)?.versions.contains_key(&version) {
            return Err(RegistryError::VersionNotFound {
                name: name.into(),
                version,
            });
        }
        self.read_card_of(name, version)
    }

    /// A summary of every model, from a fresh listing of the store.
    pub fn list(&self) -> Result<Vec<ModelSummary>, RegistryError> {
        let (_, catalog) = self.refresh()?;
        let mut names: Vec<&String> = catalog
            .iter()
            .filter(|(_, e)| !e.versions.is_empty())
            .map(|(n, _)| n)
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| self.summary_of(name, &catalog[name]))
            .collect()
    }

    /// A summary of one model.
    pub fn summary(&self, name: &str) -> Result<ModelSummary, RegistryError> {
        let entry = self.fresh(name)?;
        self.summary_of(name, &entry)
    }

    fn summary_of(&self, name: &str, entry: &ModelEntry) -> Result<ModelSummary, RegistryError> {
        let latest = match entry.versions.keys().next_back() {
            Some(&v) => self.read_card_of(name, v).ok(),
            None => None,
        };
        Ok(ModelSummary {
            name: name.to_string(),
            aliases: entry.aliases.clone(),
            versions: entry.version_list(),
            latest,
        })
    }

    /// The version serving uses: `version` if given (it must exist), else the
    /// `production` alias if set, else the latest. Answered from memory;
    /// changes by this process are seen at once, by other processes within
    /// a poll interval (or a second, for a version or model not known yet).
    pub fn resolve(&self, name: &str, version: Option<u32>) -> Result<u32, RegistryError> {
        check_name("model name", name)?;
        let entry = self.known(name, version)?;
        match version {
            Some(v) => Ok(v),
            None => entry
                .serving_version()
                .ok_or_else(|| RegistryError::ModelNotFound(name.into())),
        }
    }

    /// Resolves an alias to its version.
    pub fn resolve_alias(&self, name: &str, alias: &str) -> Result<u32, RegistryError> {
        check_name("alias", alias)?;
        check_name("model name", name)?;
        let entry = self.known(name, None)?;
        entry
            .aliases
            .get(alias)
            .copied()
            .ok_or_else(|| RegistryError::AliasNotFound {
                name: name.into(),
                alias: alias.into(),
            })
    }

    /// The loaded version, from memory or the store. Concurrent callers for
    /// the same version wait for one load; other versions are not blocked.
    /// Blocking: call from a blocking context when the version may be cold.
    pub fn load(&self, name: &str, version: u32) -> Result<Arc<LoadedModel>, RegistryError> {
        check_name("model name", name)?;
        self.models.get_or_load(name, version, || {
            self.known(name, Some(version))?;
            let prefix = format!("{name}/{version}");
            let dir = self
                .store
                .block(|s| async move { s.local_copy(&prefix).await })??;
            Ok(load_dir(&dir)?)
        })
    }

    /// The cached version if loaded, without touching the store.
    pub fn cached(&self, name: &str, version: u32) -> Option<Arc<LoadedModel>> {
        self.models.get(name, version)
    }

    /// Number of loaded versions in memory.
    pub fn loaded_count(&self) -> usize {
        self.models.len()
    }

    /// Checks the store answers and accepts writes (for readiness).
    pub fn check_writable(&self) -> Result<(), RegistryError> {
        self.store
            .block(|s| async move { s.check_writable().await })??;
        Ok(())
    }
}

/// A version's file is a plain name in the version directory, not the card.
fn check_file_name(file: &str) -> Result<(), RegistryError> {
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && !file.contains(['/', '\\'])
        && file != CARD_FILE;
    if plain {
        Ok(())
    } else {
        Err(RegistryError::Io {
            path: file.to_string(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a version file name"),
        })
    }
}

fn parse_version(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod remote_tests;
#[cfg(test)]
mod tests;
