//! Following the store: a background poll that re-reads the catalog with
//! one listing, loads the versions that start serving before switching to
//! them (so requests never wait on a load and never see a gap), drops
//! versions that disappeared, and removes interrupted remote uploads.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Registry, RegistryError};

/// What one poll did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Versions loaded because they started serving.
    pub reloaded: usize,
    /// Versions dropped from memory because they changed or disappeared.
    pub evicted: usize,
}

impl Registry {
    /// Re-reads the catalog and brings loaded models in line with it.
    /// Before the new catalog is visible, the version each loaded model will
    /// serve is loaded; in-flight requests finish on the version they hold.
    pub fn poll(&self) -> Result<PollReport, RegistryError> {
        let mut report = PollReport::default();
        let old = self.catalog.load_full();
        let (_, next) = self.refresh_preloading(&old, &mut report)?;
        for (name, before) in old.iter() {
            let after = next.get(name);
            for (version, tag) in &before.versions {
                let same = after.and_then(|a| a.versions.get(version)) == Some(tag);
                if !same && self.models.get(name, *version).is_some() {
                    self.models.evict(name, *version);
                    report.evicted += 1;
                }
            }
            let (was, now) = (
                before.serving_version(),
                after.and_then(|a| a.serving_version()),
            );
            if let (Some(was), Some(now)) = (was, now) {
                if was != now && self.models.get(name, was).is_some() {
                    self.models.evict(name, was);
                    report.evicted += 1;
                }
            }
        }
        self.remove_orphans(&next);
        metrics::counter!("myelin_store_reloads_total").increment(report.reloaded as u64);
        Ok(report)
    }

    fn refresh_preloading(
        &self,
        old: &super::Catalog,
        report: &mut PollReport,
    ) -> Result<(Arc<super::Catalog>, Arc<super::Catalog>), RegistryError> {
        // Read without publishing, preload, then publish.
        let listing = self
            .store
            .block(|s| async move { s.list_models().await })??;
        let mut upcoming = Vec::new();
        for (name, listed) in super::catalog::group(&listing) {
            let entry = self.with_aliases(&name, listed, old.get(&name).map(|e| &**e))?;
            upcoming.push((name, entry));
        }
        for (name, entry) in &upcoming {
            let Some(before) = old.get(name) else {
                continue;
            };
            let (was, now) = (before.serving_version(), entry.serving_version());
            let Some(now) = now else { continue };
            let changed = was != Some(now) || before.versions.get(&now) != entry.versions.get(&now);
            let serving_loaded = was.is_some_and(|w| self.models.get(name, w).is_some());
            if changed && serving_loaded {
                if before.versions.get(&now) != entry.versions.get(&now) {
                    self.models.evict(name, now);
                }
                let prefix = format!("{name}/{now}");
                let dir = self
                    .store
                    .block(|s| async move { s.local_copy(&prefix).await })??;
                match super::load_dir(&dir) {
                    Ok(model) => {
                        self.models.insert(name, now, Arc::new(model));
                        report.reloaded += 1;
                    }
                    Err(e) => {
                        tracing::warn!(model = %name, version = now, error = %e, "cannot load the new serving version")
                    }
                }
            }
        }
        self.refresh()
    }

    /// Deletes remote uploads that claimed a version but never published
    /// it, once they are older than `ORPHAN_GRACE`.
    fn remove_orphans(&self, catalog: &super::Catalog) {
        let now = chrono::Utc::now();
        for (name, entry) in catalog.iter() {
            for (version, claimed_at) in &entry.claims {
                let age = (now - *claimed_at).to_std().unwrap_or_default();
                if age < self.orphan_grace {
                    continue;
                }
                let prefix = format!("{name}/{version}");
                let removed = self
                    .store
                    .block(|s| async move { s.delete_prefix(&prefix, super::CARD_FILE).await });
                if matches!(removed, Ok(Ok(()))) {
                    tracing::info!(model = %name, version, "removed an interrupted upload");
                }
            }
        }
    }

    /// Seconds since the last successful refresh of the whole catalog.
    pub fn seconds_since_refresh(&self) -> f64 {
        let at = self.last_refresh_ms.load(Ordering::Relaxed);
        (chrono::Utc::now().timestamp_millis() - at).max(0) as f64 / 1000.0
    }

    /// Starts polling the store every `interval` on the current tokio
    /// runtime; the task ends when the registry is dropped.
    pub fn follow(self: &Arc<Self>, interval: Duration) {
        let weak: Weak<Registry> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(interval).await;
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                let result = tokio::task::spawn_blocking(move || registry.poll()).await;
                match result {
                    Ok(Ok(report)) => {
                        if failing {
                            tracing::info!("model store reachable again");
                        }
                        failing = false;
                        if report != PollReport::default() {
                            tracing::info!(
                                reloaded = report.reloaded,
                                evicted = report.evicted,
                                "followed the model store"
                            );
                        }
                    }
                    Ok(Err(e)) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "polling the model store failed; serving the loaded models");
                    }
                    Ok(Err(_)) => {}
                    Err(e) => tracing::error!(error = %e, "polling the model store panicked"),
                }
            }
        });
    }
}
