//! Writing versions: stage locally, publish card-last under a fresh
//! number (renumbering when another writer took it), retry while the store
//! is unavailable, then apply retention.

use std::path::Path;

use super::{
    check_file_name, check_name, corrupt, ModelCard, Registry, RegistryError, CARD_FILE,
    PUBLISH_BACKOFF, WEIGHTS_FILE,
};
use crate::storage::{StoreError, Written};

impl Registry {
    /// Writes a new version and returns its number (from 1).
    ///
    /// `write` fills a local staging directory given the version number and
    /// must write the card (`model.json`) there; the registry publishes the
    /// directory with the card last, so a crash or an error never leaves a
    /// version that would be listed. If another writer took the number
    /// meanwhile, the card is renumbered and the next free number is used.
    /// While the store is unavailable, publishing is retried with backoff,
    /// then [`RegistryError::Unavailable`] is returned.
    pub fn save_with<F>(&self, name: &str, write: F) -> Result<u32, RegistryError>
    where
        F: FnOnce(&Path, u32) -> Result<(), RegistryError>,
    {
        check_name("model name", name)?;
        let staged = self.store.staging_dir(name)?;
        let version = self.publish_staged(name, staged.path(), write)?;
        drop(staged);
        self.refresh_model(name)?;
        self.apply_retention(name)?;
        Ok(version)
    }

    fn publish_staged<F>(&self, name: &str, staged: &Path, write: F) -> Result<u32, RegistryError>
    where
        F: FnOnce(&Path, u32) -> Result<(), RegistryError>,
    {
        let mut failures = 0;
        let mut version = loop {
            match self.next_version(name) {
                Ok(v) => break v,
                Err(RegistryError::Unavailable(e)) => backoff(name, &mut failures, e)?,
                Err(e) => return Err(e),
            }
        };
        write(staged, version)?;
        loop {
            renumber_card(staged, version)?;
            let prefix = format!("{name}/{version}");
            let dir = staged.to_path_buf();
            let published = self
                .store
                .block(|s| async move { s.publish_dir(&dir, &prefix, CARD_FILE).await })?;
            match published {
                Ok(Written::Done) => return Ok(version),
                Ok(Written::Refused) => match self.next_version(name) {
                    Ok(next) => version = next.max(version + 1),
                    Err(RegistryError::Unavailable(e)) => backoff(name, &mut failures, e)?,
                    Err(e) => return Err(e),
                },
                Err(e @ StoreError::Unavailable { .. }) => {
                    backoff(name, &mut failures, e)?;
                    if let Ok(next) = self.next_version(name) {
                        version = next.max(version);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn next_version(&self, name: &str) -> Result<u32, RegistryError> {
        Ok(self
            .refresh_model(name)?
            .map_or(1, |entry| entry.next_version()))
    }

    /// Writes a card and weights as a new version; the card's `version` and
    /// `name` are set to the allocated ones.
    pub fn save(&self, card: &ModelCard, weights: &[u8]) -> Result<u32, RegistryError> {
        let name = card.name.clone();
        self.save_with(&name, |dir, version| {
            let mut card = card.clone();
            card.version = version;
            let json = serde_json::to_vec_pretty(&card).map_err(|e| corrupt(CARD_FILE, e))?;
            write_file(&dir.join(WEIGHTS_FILE), weights)?;
            write_file(&dir.join(CARD_FILE), &json)
        })
    }

    /// Writes a card and the version's other files (`(file name, bytes)`, e.g.
    /// a recommender's [`crate::recommend::Recommender::artifact_files`]) as a
    /// new version: every file is staged and fsynced, then published card-last.
    /// This is the only way artifacts reach the store.
    pub fn save_files(
        &self,
        card: &ModelCard,
        files: &[(&str, &[u8])],
    ) -> Result<u32, RegistryError> {
        let name = card.name.clone();
        self.save_with(&name, |dir, version| {
            let mut card = card.clone();
            card.version = version;
            let json = serde_json::to_vec_pretty(&card).map_err(|e| corrupt(CARD_FILE, e))?;
            for (file, bytes) in files {
                check_file_name(file)?;
                write_file(&dir.join(file), bytes)?;
            }
            write_file(&dir.join(CARD_FILE), &json)
        })
    }

    /// Deletes the oldest versions beyond `retain_versions` that no alias
    /// points at.
    fn apply_retention(&self, name: &str) -> Result<(), RegistryError> {
        if self.retain_versions == 0 {
            return Ok(());
        }
        let Some(entry) = self.entry(name) else {
            return Ok(());
        };
        let mut unaliased: Vec<u32> = entry
            .versions
            .keys()
            .copied()
            .filter(|v| !entry.aliases.values().any(|a| a == v))
            .collect();
        if unaliased.len() <= self.retain_versions {
            return Ok(());
        }
        let excess = unaliased.len() - self.retain_versions;
        for version in unaliased.drain(..excess) {
            self.remove_version(name, version)?;
        }
        self.refresh_model(name)?;
        Ok(())
    }
}

/// Waits before the next attempt to reach the store, or gives up with
/// [`RegistryError::Unavailable`] once the backoff schedule is spent.
fn backoff(name: &str, failures: &mut usize, e: StoreError) -> Result<(), RegistryError> {
    let Some(wait) = PUBLISH_BACKOFF.get(*failures) else {
        return Err(RegistryError::Unavailable(e));
    };
    tracing::warn!(model = name, error = %e, retry_in = ?wait, "the model store is unavailable; retrying");
    *failures += 1;
    std::thread::sleep(*wait);
    Ok(())
}

/// Sets the staged card's version to `version` (a no-op when it is).
fn renumber_card(staged: &Path, version: u32) -> Result<(), RegistryError> {
    let path = staged.join(CARD_FILE);
    let bytes = crate::storage::fsops::read(&path).map_err(|source| RegistryError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut card: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(CARD_FILE, e))?;
    if card.get("version").and_then(|v| v.as_u64()) == Some(u64::from(version)) {
        return Ok(());
    }
    card["version"] = version.into();
    let json = serde_json::to_vec_pretty(&card).map_err(|e| corrupt(CARD_FILE, e))?;
    write_file(&path, &json)
}

/// Writes a staged file and fsyncs it.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    crate::storage::fsops::write_synced(path, bytes).map_err(|source| RegistryError::Io {
        path: path.display().to_string(),
        source,
    })
}
