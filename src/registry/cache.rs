//! The in-memory cache of loaded model versions (bounded, least recently
//! used dropped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{LoadedModel, RegistryError};

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

    /// Puts an already loaded version in the cache (replacing any).
    pub(super) fn insert(&self, name: &str, version: u32, model: Arc<LoadedModel>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.tick();
        entries.insert(
            (name.to_string(), version),
            Entry {
                slot: Arc::new(Mutex::new(Some(model))),
                last_used: AtomicU64::new(now),
            },
        );
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
