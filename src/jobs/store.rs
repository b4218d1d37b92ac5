//! Job records and job input files in the store: `_jobs/<id>.json` (the
//! record, replaced whole on every save) and `_jobs/<id>-<part>.<format>`
//! (the request's data), on local disk or in the bucket alike.
//!
//! Callers see records and inputs, never keys or paths: a database backend
//! for records can replace the object layout behind these same methods,
//! with inputs staying objects.

use bytes::Bytes;

use super::record::JobRecord;
use crate::storage::{Store, StoreError};

/// Prefix of job records and inputs.
pub const JOBS_PREFIX: &str = "_jobs";

/// Job records and inputs.
#[derive(Clone, Debug)]
pub struct JobStore {
    store: Store,
}

fn is_record_key(key: &str) -> bool {
    key.strip_prefix(JOBS_PREFIX)
        .and_then(|k| k.strip_prefix('/'))
        .is_some_and(|name| {
            !name.contains('/') && !name.starts_with('.') && name.ends_with(".json")
        })
}

impl JobStore {
    /// Job records and inputs kept in `store`.
    pub fn new(store: Store) -> JobStore {
        JobStore { store }
    }

    /// The store the records live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn record_key(id: &str) -> String {
        format!("{JOBS_PREFIX}/{id}.json")
    }

    /// The key of a job input part (`_jobs/<id>-<part>.<format>`).
    pub fn input_key(id: &str, part: &str, format: &str) -> String {
        format!("{JOBS_PREFIX}/{id}-{part}.{format}")
    }

    /// Writes a record atomically (readers see the previous one or this one).
    pub fn save(&self, record: &JobRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| StoreError::InvalidKey {
            key: Self::record_key(&record.id),
            reason: e.to_string(),
        })?;
        let key = Self::record_key(&record.id);
        self.store
            .block(|s| async move { s.put(&key, bytes.into()).await })?
    }

    /// One record; `None` when there is none or it is unreadable.
    pub fn load(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let key = Self::record_key(id);
        let object = self.store.block(|s| async move { s.get(&key).await })??;
        Ok(object.and_then(|o| parse(&Self::record_key(id), &o.bytes)))
    }

    /// Every readable record, oldest first. Unreadable ones are skipped with a warning.
    pub fn load_all(&self) -> Result<Vec<JobRecord>, StoreError> {
        let records = self.store.block(|s| async move {
            let mut keys: Vec<String> = s
                .list(JOBS_PREFIX)
                .await?
                .into_iter()
                .map(|e| e.key)
                .filter(|k| is_record_key(k))
                .collect();
            keys.sort();
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(object) = s.get(&key).await? {
                    out.extend(parse(&key, &object.bytes));
                }
            }
            Ok::<_, StoreError>(out)
        })??;
        let mut records = records;
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }

    /// Stores a job input part.
    pub fn put_input(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let key = key.to_string();
        self.store
            .block(|s| async move { s.put(&key, bytes.into()).await })?
    }

    /// Reads an input (a job's own part or an uploaded dataset) by key.
    pub fn read_input(&self, key: &str) -> Result<Bytes, StoreError> {
        let owned = key.to_string();
        let object = self.store.block(|s| async move { s.get(&owned).await })??;
        object
            .map(|o| o.bytes)
            .ok_or_else(|| StoreError::NotFound { key: key.into() })
    }

    /// Deletes input parts; failures are logged, never raised.
    pub fn remove_inputs<'a>(&self, keys: impl IntoIterator<Item = &'a String>) {
        let keys: Vec<String> = keys.into_iter().cloned().collect();
        let result = self.store.block(|s| async move {
            for key in keys {
                s.delete(&key).await?;
            }
            Ok::<_, StoreError>(())
        });
        if let Err(e) | Ok(Err(e)) = result {
            tracing::warn!(error = %e, "could not delete a job input");
        }
    }

    /// Deletes a record and the input files it owns.
    pub fn remove(&self, record: &JobRecord) {
        let mut keys = vec![Self::record_key(&record.id)];
        if record.input.owned {
            keys.push(record.input.path.clone());
        }
        keys.extend(record.input.extra.iter().cloned());
        self.remove_inputs(&keys);
    }
}

fn parse(key: &str, bytes: &[u8]) -> Option<JobRecord> {
    match serde_json::from_slice::<JobRecord>(bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(key, error = %e, "skipping unreadable job record");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobStatus;

    #[test]
    fn records_and_inputs_round_trip_through_an_in_memory_store() {
        let cache = tempfile::tempdir().unwrap();
        let jobs = JobStore::new(Store::in_memory(cache.path()));
        assert!(jobs.load_all().unwrap().is_empty());
        let input = JobStore::input_key("j2", "input", "csv");
        jobs.put_input(&input, b"a,b\n1,2\n".to_vec()).unwrap();
        let mut second = JobRecord::placeholder("j2");
        second.input.path = input.clone();
        second.input.owned = true;
        jobs.save(&JobRecord::placeholder("j1")).unwrap();
        jobs.save(&second).unwrap();
        second.status = JobStatus::Succeeded;
        jobs.save(&second).unwrap();

        let all = jobs.load_all().unwrap();
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["j1", "j2"], "inputs are not records");
        assert_eq!(all[1].status, JobStatus::Succeeded);
        assert_eq!(&jobs.read_input(&input).unwrap()[..], b"a,b\n1,2\n");
        assert_eq!(
            jobs.load("j2").unwrap().map(|r| r.status),
            Some(JobStatus::Succeeded)
        );

        jobs.remove(&second);
        assert!(jobs.load("j2").unwrap().is_none());
        assert!(matches!(
            jobs.read_input(&input),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(jobs.load_all().unwrap().len(), 1);
    }

    #[test]
    fn an_unreadable_record_is_skipped() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::in_memory(cache.path());
        store
            .block(|s| async move { s.put("_jobs/bad.json", "{nope".into()).await })
            .unwrap()
            .unwrap();
        let jobs = JobStore::new(store);
        jobs.save(&JobRecord::placeholder("good")).unwrap();
        let all = jobs.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, "good");
    }
}
