//! The versioned model store: `<root>/<name>/<version>/{weights.safetensors,
//! model.json}`, aliases per model, atomic writes, and an in-memory cache of
//! loaded versions that readers never wait on while a new one is loaded.

mod artifact;
mod cache;
pub mod fsops;
mod names;

pub use artifact::{
    load_dir, read_card, tensors_from_bytes, weights_bytes, ArtifactError, LoadedModel, ModelCard,
    ModelSpec, ServingModel, CARD_FILE, FORMAT_VERSION, WEIGHTS_FILE,
};
pub use names::{check_name, NameError};

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cache::{ModelCache, ResolutionCache};

/// The alias serving prefers when no version is asked for.
pub const PRODUCTION_ALIAS: &str = "production";
const ALIASES_FILE: &str = "aliases.json";
const LOCK_FILE: &str = ".lock";

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
    Io { path: String, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.display().to_string(),
        source,
    }
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

/// The model store.
pub struct Registry {
    root: PathBuf,
    retain_versions: usize,
    models: ModelCache,
    resolutions: ResolutionCache,
}

impl Registry {
    /// Opens (creating) the store at `root` and removes temporary directories
    /// left by interrupted writes. `retain_versions` = 0 keeps all versions.
    pub fn open(
        root: impl Into<PathBuf>,
        retain_versions: usize,
        cache_capacity: usize,
    ) -> Result<Registry, RegistryError> {
        let root = root.into();
        fsops::create_dir_durable(&root).map_err(io_err(&root))?;
        let registry = Registry {
            root,
            retain_versions,
            models: ModelCache::new(cache_capacity),
            resolutions: ResolutionCache::default(),
        };
        for name in registry.model_names()? {
            registry.clean_temporaries(&name)?;
        }
        Ok(registry)
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Names of stored models (directories with a valid name), sorted.
    pub fn model_names(&self) -> Result<Vec<String>, RegistryError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let entry = entry.map_err(io_err(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_name("model name", &name).is_ok() && entry.path().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Complete versions of a model, ascending. A model without versions is
    /// reported as not found.
    pub fn versions(&self, name: &str) -> Result<Vec<u32>, RegistryError> {
        check_name("model name", name)?;
        let dir = self.model_dir(name);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::ModelNotFound(name.into()))
            }
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let file_name = entry.file_name();
            let Some(v) = file_name.to_str().and_then(parse_version) else {
                continue;
            };
            if entry.path().join(CARD_FILE).is_file() {
                versions.push(v);
            }
        }
        if versions.is_empty() {
            return Err(RegistryError::ModelNotFound(name.into()));
        }
        versions.sort_unstable();
        Ok(versions)
    }

    /// The model's aliases (alias → version).
    pub fn aliases(&self, name: &str) -> Result<BTreeMap<String, u32>, RegistryError> {
        check_name("model name", name)?;
        let path = self.model_dir(name).join(ALIASES_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Corrupt(ArtifactError {
                    file: path.display().to_string(),
                    reason: e.to_string(),
                })
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Points `alias` at an existing `version`.
    pub fn set_alias(&self, name: &str, alias: &str, version: u32) -> Result<(), RegistryError> {
        check_name("alias", alias)?;
        let _lock = self.lock(name)?;
        if !self.versions(name)?.contains(&version) {
            return Err(RegistryError::VersionNotFound {
                name: name.into(),
                version,
            });
        }
        let mut aliases = self.aliases(name)?;
        aliases.insert(alias.to_string(), version);
        self.write_aliases(name, &aliases)
    }

    /// Removes `alias`.
    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        check_name("alias", alias)?;
        let _lock = self.lock(name)?;
        self.versions(name)?;
        let mut aliases = self.aliases(name)?;
        if aliases.remove(alias).is_none() {
            return Err(RegistryError::AliasNotFound {
                name: name.into(),
                alias: alias.into(),
            });
        }
        self.write_aliases(name, &aliases)
    }

    fn write_aliases(
        &self,
        name: &str,
        aliases: &BTreeMap<String, u32>,
    ) -> Result<(), RegistryError> {
        let path = self.model_dir(name).join(ALIASES_FILE);
        let bytes = serde_json::to_vec_pretty(aliases).unwrap_or_default();
        fsops::write_atomic(&path, &bytes).map_err(io_err(&path))?;
        self.resolutions.invalidate(name);
        Ok(())
    }

    /// Deletes a version; refused while an alias points at it.
    pub fn delete_version(&self, name: &str, version: u32) -> Result<(), RegistryError> {
        let _lock = self.lock(name)?;
        if !self.versions(name)?.contains(&version) {
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
        let dir = self.model_dir(name).join(version.to_string());
        fsops::remove_dir_atomic(&dir).map_err(io_err(&dir))?;
        self.models.evict(name, version);
        self.resolutions.invalidate(name);
        Ok(())
    }

    /// Writes a new version atomically and returns its number (from 1).
    ///
    /// `write` fills a temporary directory given the version number; it is
    /// fsynced and renamed into place only if `write` succeeds, so a crash or
    /// an error never leaves a directory the registry would list.
    fn save_with<F>(&self, name: &str, write: F) -> Result<u32, RegistryError>
    where
        F: FnOnce(&Path, u32) -> Result<(), RegistryError>,
    {
        check_name("model name", name)?;
        let model_dir = self.model_dir(name);
        fsops::create_dir_durable(&model_dir).map_err(io_err(&model_dir))?;
        let _lock = self.lock(name)?;
        let version = match self.versions(name) {
            Ok(v) => v.last().copied().unwrap_or(0) + 1,
            Err(RegistryError::ModelNotFound(_)) => 1,
            Err(e) => return Err(e),
        };
        let tmp = model_dir.join(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
        fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let result = write(&tmp, version).and_then(|()| {
            fsops::sync_dir(&tmp).map_err(io_err(&tmp))?;
            let dest = model_dir.join(version.to_string());
            fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
            fsops::sync_dir(&model_dir).map_err(io_err(&model_dir))
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
            return result.map(|()| version);
        }
        self.resolutions.invalidate(name);
        self.apply_retention(name)?;
        Ok(version)
    }

    /// Writes a card and weights as a new version; the card's `version` and
    /// `name` are set to the allocated ones.
    pub fn save(&self, card: &ModelCard, weights: &[u8]) -> Result<u32, RegistryError> {
        self.save_files(card, &[(WEIGHTS_FILE, weights)])
    }

    /// Writes a card and the version's other files (`(file name, bytes)`, e.g.
    /// a recommender's [`crate::recommend::Recommender::artifact_files`]) as a
    /// new version: every file is fsynced before the version directory is
    /// renamed into place. This is the only way artifacts reach the store.
    pub fn save_files(
        &self,
        card: &ModelCard,
        files: &[(&str, &[u8])],
    ) -> Result<u32, RegistryError> {
        let name = card.name.clone();
        self.save_with(&name, |dir, version| {
            let mut card = card.clone();
            card.version = version;
            let json = serde_json::to_vec_pretty(&card).map_err(|e| {
                RegistryError::Corrupt(ArtifactError {
                    file: CARD_FILE.into(),
                    reason: e.to_string(),
                })
            })?;
            for (file, bytes) in files {
                check_file_name(file)?;
                let path = dir.join(file);
                fsops::write_synced(&path, bytes).map_err(io_err(&path))?;
            }
            let card_path = dir.join(CARD_FILE);
            fsops::write_synced(&card_path, &json).map_err(io_err(&card_path))
        })
    }

    /// Deletes the oldest versions beyond `retain_versions` that no alias
    /// points at. Caller holds the model lock.
    fn apply_retention(&self, name: &str) -> Result<(), RegistryError> {
        if self.retain_versions == 0 {
            return Ok(());
        }
        let aliases = self.aliases(name)?;
        let mut unaliased: Vec<u32> = self
            .versions(name)?
            .into_iter()
            .filter(|v| !aliases.values().any(|a| a == v))
            .collect();
        if unaliased.len() <= self.retain_versions {
            return Ok(());
        }
        let excess = unaliased.len() - self.retain_versions;
        for version in unaliased.drain(..excess) {
            let dir = self.model_dir(name).join(version.to_string());
            fsops::remove_dir_atomic(&dir).map_err(io_err(&dir))?;
            self.models.evict(name, version);
        }
        self.resolutions.invalidate(name);
        Ok(())
    }

    /// Reads a version's card without loading weights.
    pub fn card(&self, name: &str, version: u32) -> Result<ModelCard, RegistryError> {
        if !self.versions(name)?.contains(&version) {
            return Err(RegistryError::VersionNotFound {
                name: name.into(),
                version,
            });
        }
        Ok(read_card(&self.model_dir(name).join(version.to_string()))?)
    }

    /// A summary of every model.
    pub fn list(&self) -> Result<Vec<ModelSummary>, RegistryError> {
        let mut out = Vec::new();
        for name in self.model_names()? {
            let versions = match self.versions(&name) {
                Ok(v) => v,
                Err(RegistryError::ModelNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            out.push(self.summary_with(&name, versions)?);
        }
        Ok(out)
    }

    /// A summary of one model.
    pub fn summary(&self, name: &str) -> Result<ModelSummary, RegistryError> {
        let versions = self.versions(name)?;
        self.summary_with(name, versions)
    }

    fn summary_with(&self, name: &str, versions: Vec<u32>) -> Result<ModelSummary, RegistryError> {
        let latest = match versions.last() {
            Some(&v) => read_card(&self.model_dir(name).join(v.to_string())).ok(),
            None => None,
        };
        Ok(ModelSummary {
            name: name.to_string(),
            aliases: self.aliases(name)?,
            versions,
            latest,
        })
    }

    /// The version serving uses: `version` if given (it must exist), else the
    /// `production` alias if set, else the latest. Cached briefly; changes by
    /// this process are seen at once, by other processes within a second.
    pub fn resolve(&self, name: &str, version: Option<u32>) -> Result<u32, RegistryError> {
        check_name("model name", name)?;
        let (known, serving) = self.resolutions.with_resolution(
            &self.model_dir(name),
            name,
            || {
                let versions = self.versions(name)?;
                let aliases = self.aliases(name)?;
                Ok((versions, aliases))
            },
            |r| {
                let known = version.is_some_and(|v| r.versions.binary_search(&v).is_ok());
                (known, r.serving_version())
            },
        )?;
        match version {
            Some(v) if known => Ok(v),
            Some(v) => {
                // Written by another process since the last refresh?
                if self.versions(name)?.contains(&v) {
                    self.resolutions.invalidate(name);
                    Ok(v)
                } else {
                    Err(RegistryError::VersionNotFound {
                        name: name.into(),
                        version: v,
                    })
                }
            }
            None => Ok(serving),
        }
    }

    /// Resolves an alias to its version.
    pub fn resolve_alias(&self, name: &str, alias: &str) -> Result<u32, RegistryError> {
        check_name("alias", alias)?;
        self.versions(name)?;
        self.aliases(name)?
            .get(alias)
            .copied()
            .ok_or_else(|| RegistryError::AliasNotFound {
                name: name.into(),
                alias: alias.into(),
            })
    }

    /// The loaded version, from the cache or the disk. Concurrent callers for
    /// the same version wait for one load; other versions are not blocked.
    /// Blocking: call from a blocking context when the version may be cold.
    pub fn load(&self, name: &str, version: u32) -> Result<Arc<LoadedModel>, RegistryError> {
        check_name("model name", name)?;
        self.models.get_or_load(name, version, || {
            let dir = self.model_dir(name).join(version.to_string());
            if !dir.join(CARD_FILE).is_file() {
                return Err(RegistryError::VersionNotFound {
                    name: name.into(),
                    version,
                });
            }
            Ok(load_dir(&dir)?)
        })
    }

    /// The cached version if loaded, without touching the disk.
    pub fn cached(&self, name: &str, version: u32) -> Option<Arc<LoadedModel>> {
        self.models.get(name, version)
    }

    /// Number of loaded versions in memory.
    pub fn loaded_count(&self) -> usize {
        self.models.len()
    }

    /// Takes the per-model write lock (also excludes other processes).
    fn lock(&self, name: &str) -> Result<File, RegistryError> {
        check_name("model name", name)?;
        let dir = self.model_dir(name);
        let path = dir.join(LOCK_FILE);
        if !dir.is_dir() {
            return Err(RegistryError::ModelNotFound(name.into()));
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(file)
    }

    /// Removes `.tmp-*` directories of interrupted writes when no other
    /// process is writing the model.
    fn clean_temporaries(&self, name: &str) -> Result<(), RegistryError> {
        let dir = self.model_dir(name);
        let path = dir.join(LOCK_FILE);
        let Ok(file) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        else {
            return Ok(());
        };
        if file.try_lock().is_err() {
            return Ok(());
        }
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let p = entry.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
        Ok(())
    }

    /// Checks the store is writable (for readiness).
    pub fn check_writable(&self) -> Result<(), RegistryError> {
        let probe = self
            .root
            .join(format!(".tmp-ready-{}", uuid::Uuid::now_v7().simple()));
        fs::write(&probe, b"ok").map_err(io_err(&probe))?;
        fs::remove_file(&probe).map_err(io_err(&probe))
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
mod tests;
