//! In-memory caches: loaded model versions (bounded, least recently used
//! dropped) and the serving resolution of each model name.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{LoadedModel, RegistryError, PRODUCTION_ALIAS};

type Slot = Arc<Mutex<Option<Arc<LoadedModel>>>>;

struct Entry {
    slot: Slot,
    last_used: AtomicU64,
}

/// Loaded versions keyed by (name, version).
pub(super) struct ModelCache {
    capacity: usize,
    clock: AtomicU64,
    entries: Mutex<HashMap<(String, u32), Entry>>,
}

impl ModelCache {
    pub(super) fn new(capacity: usize) -> ModelCache {
        ModelCache {
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn get(&self, name: &str, version: u32) -> Option<Arc<LoadedModel>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(&(name.to_string(), version))?;
        entry.last_used.store(self.tick(), Ordering::Relaxed);
        let slot = entry.slot.try_lock().ok()?;
        slot.clone()
    }

    pub(super) fn get_or_load<F>(
        &self,
        name: &str,
        version: u32,
        load: F,
    ) -> Result<Arc<LoadedModel>, RegistryError>
    where
        F: FnOnce() -> Result<LoadedModel, RegistryError>,
    {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let key = (name.to_string(), version);
            let now = self.tick();
            if !entries.contains_key(&key) && entries.len() >= self.capacity {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
            let entry = entries.entry(key).or_insert_with(|| Entry {
                slot: Arc::new(Mutex::new(None)),
                last_used: AtomicU64::new(now),
            });
            entry.last_used.store(now, Ordering::Relaxed);
            entry.slot.clone()
        };
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(model) = guard.as_ref() {
            return Ok(model.clone());
        }
        let model = Arc::new(load()?);
        *guard = Some(model.clone());
        Ok(model)
    }

    pub(super) fn evict(&self, name: &str, version: u32) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&(name.to_string(), version));
    }

    pub(super) fn len(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .values()
            .filter(|e| e.slot.try_lock().map(|s| s.is_some()).unwrap_or(true))
            .count()
    }
}

/// What serving needs to pick a version of one model.
#[derive(Debug)]
pub(super) struct Resolution {
    pub(super) versions: Vec<u32>,
    pub(super) aliases: BTreeMap<String, u32>,
    dir_mtime: Option<SystemTime>,
    checked: Instant,
}

impl Resolution {
    /// `production` alias if set, else the latest version.
    pub(super) fn serving_version(&self) -> u32 {
        self.aliases
            .get(PRODUCTION_ALIAS)
            .copied()
            .or_else(|| self.versions.last().copied())
            .unwrap_or(0)
    }
}

/// Serving resolutions by model name, re-read when the model directory
/// changes (checked at most every `RECHECK`).
#[derive(Default)]
pub(super) struct ResolutionCache {
    entries: Mutex<HashMap<String, Resolution>>,
}

const RECHECK: Duration = Duration::from_millis(500);

impl ResolutionCache {
    /// Applies `pick` to the model's resolution, re-reading it with `read`
    /// when it is missing or the model directory changed.
    pub(super) fn with_resolution<F, T>(
        &self,
        dir: &Path,
        name: &str,
        read: F,
        pick: impl FnOnce(&Resolution) -> T,
    ) -> Result<T, RegistryError>
    where
        F: FnOnce() -> Result<(Vec<u32>, BTreeMap<String, u32>), RegistryError>,
    {
        let now = Instant::now();
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = entries.get_mut(name) {
                if now.duration_since(r.checked) < RECHECK {
                    return Ok(pick(r));
                }
                let mtime = dir_mtime(dir);
                if mtime.is_some() && mtime == r.dir_mtime {
                    r.checked = now;
                    return Ok(pick(r));
                }
            }
        }
        let mtime = dir_mtime(dir);
        let (versions, aliases) = read()?;
        let resolution = Resolution {
            versions,
            aliases,
            dir_mtime: mtime,
            checked: now,
        };
        let picked = pick(&resolution);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(name.to_string(), resolution);
        Ok(picked)
    }

    pub(super) fn invalidate(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(name);
    }
}

fn dir_mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}
