//! Uploaded datasets: `_datasets/<id>.<format>` with `<id>.json` metadata,
//! in the store (a directory on local disk, objects in a bucket). Uploads
//! stream to a staged local file, are validated there (only a sample is
//! parsed in memory), then published: the data first, the metadata last,
//! so a listed dataset is always complete. A dataset another replica
//! uploaded is found in the store on first use. With a coordination
//! database the metadata is a row there instead of `<id>.json`, and
//! deleting a dataset a job of any replica reads is refused.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::{self, DataError, ReadLimits, Schema, Table};
use crate::storage::db::Database;
pub use crate::storage::db::DatasetRemoval;
use crate::storage::{StagedFile, Store, StoreError};

/// Rows parsed in memory for schema inference and request checks.
pub const SAMPLE_ROWS: usize = 10_000;

/// Prefix of datasets in the store.
pub const DATASETS_PREFIX: &str = "_datasets";

/// A stored dataset.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetMeta {
    /// Dataset id (UUID v7).
    pub id: String,
    /// `csv` or `ndjson`.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Data rows (header excluded).
    pub rows: usize,
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Schema inferred from the first rows.
    #[schema(value_type = Object)]
    pub schema: Schema,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// The first rows (at most 5) as records, text cut to 120 characters;
    /// empty for datasets stored before it was recorded.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub head: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Rows shown in [`DatasetMeta::head`].
pub const HEAD_ROWS: usize = 5;
/// Characters of a text value kept in [`DatasetMeta::head`].
pub const HEAD_CHARS: usize = 120;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("the upload exceeds the limit `limits.max_upload_bytes` of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("upload interrupted: {0}")]
    Body(String),
    #[error("dataset store error: {0}")]
    Store(#[from] StoreError),
}

/// The datasets of the store, with an index of their metadata in memory.
pub struct DatasetStore {
    store: Store,
    /// Where metadata lives in a cluster.
    db: Option<Database>,
    index: Mutex<BTreeMap<String, DatasetMeta>>,
}

/// An upload in progress: a staged file and a running hash.
pub struct Upload {
    staged: StagedFile,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
    format: String,
}

fn meta_key(id: &str) -> String {
    format!("{DATASETS_PREFIX}/{id}.json")
}

fn data_key(id: &str, format: &str) -> String {
    format!("{DATASETS_PREFIX}/{id}.{format}")
}

fn parse_meta(key: &str, bytes: &[u8]) -> Option<DatasetMeta> {
    match serde_json::from_slice::<DatasetMeta>(bytes) {
        Ok(meta) if uuid::Uuid::parse_str(&meta.id).is_ok() => Some(meta),
        _ => {
            tracing::warn!(key, "skipping unreadable dataset metadata");
            None
        }
    }
}

/// Reads a dataset's metadata from the store; `None` for an id that is
/// not a dataset id or has no readable metadata.
async fn fetch_meta(store: Store, id: String) -> Result<Option<DatasetMeta>, StoreError> {
    if uuid::Uuid::parse_str(&id).is_err() {
        return Ok(None);
    }
    let key = meta_key(&id);
    let Some(object) = store.get(&key).await? else {
        return Ok(None);
    };
    Ok(parse_meta(&key, &object.bytes).filter(|m| m.id == id))
}

fn from_row(value: serde_json::Value) -> Option<DatasetMeta> {
    serde_json::from_value(value)
        .map_err(
            |e| tracing::warn!(error = %e, "skipping unreadable dataset metadata in the database"),
        )
        .ok()
}

impl DatasetStore {
    /// Indexes the datasets of `store`, removing interrupted uploads.
    pub fn open(store: Store, db: Option<Database>) -> Result<DatasetStore, StoreError> {
        store.clean_temporaries(DATASETS_PREFIX, std::time::Duration::from_secs(3600));
        if db.is_some() {
            return Ok(DatasetStore {
                store,
                db,
                index: Mutex::new(BTreeMap::new()),
            });
        }
        let index = store.block(|s| async move {
            let keys: std::collections::HashSet<String> = s
                .list(DATASETS_PREFIX)
                .await?
                .into_iter()
                .map(|e| e.key)
                .collect();
            let mut index = BTreeMap::new();
            for key in keys.iter().filter(|k| k.ends_with(".json")) {
                let Some(object) = s.get(key).await? else {
                    continue;
                };
                if let Some(meta) = parse_meta(key, &object.bytes) {
                    if keys.contains(&data_key(&meta.id, &meta.format)) {
                        index.insert(meta.id.clone(), meta);
                    }
                }
            }
            Ok::<_, StoreError>(index)
        })??;
        Ok(DatasetStore {
            store,
            db: None,
            index: Mutex::new(index),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DatasetMeta>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an upload of `format` (`csv` or `ndjson`) limited to `limit` bytes.
    pub async fn begin(&self, format: &str, limit: u64) -> Result<Upload, StoreError> {
        Ok(Upload {
            staged: self.store.stage_file(DATASETS_PREFIX).await?,
            hasher: Sha256::new(),
            bytes: 0,
            limit,
            format: format.to_string(),
        })
    }

    /// Validates a finished upload (every row parsed once, streaming), infers
    /// the schema from the first rows, and stores it. On error nothing is kept.
    /// Runs on a blocking thread.
    pub fn finish(
        &self,
        upload: ClosedUpload,
        limits: &ReadLimits,
    ) -> Result<DatasetMeta, UploadError> {
        let ClosedUpload {
            staged,
            hasher,
            bytes,
            format,
        } = upload;
        let (sample, rows) = scan(staged.reader()?, &format, limits, Scan::Whole)?;
        if rows == 0 {
            return Err(UploadError::Data(DataError::Empty));
        }
        let schema = data::infer_schema(&sample, &BTreeMap::new(), &[])?;
        let id = uuid::Uuid::now_v7().to_string();
        let meta = DatasetMeta {
            id: id.clone(),
            format: format.clone(),
            bytes,
            rows,
            columns: sample.columns.clone(),
            head: sample.head_records(HEAD_ROWS, HEAD_CHARS),
            schema,
            sha256: hex::encode(hasher.finalize()),
            created_at: Utc::now(),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| StoreError::InvalidKey {
            key: meta_key(&id),
            reason: e.to_string(),
        })?;
        let data = data_key(&id, &format);
        let db = self.db.clone();
        let value = serde_json::to_value(&meta).unwrap_or_default();
        self.store.block(|s| async move {
            s.publish_file(staged, &data).await?;
            match db {
                Some(db) => db.insert_dataset(&id, &data, &value).await,
                None => s.put(&meta_key(&id), json.into()).await,
            }
        })??;
        self.lock().insert(meta.id.clone(), meta.clone());
        Ok(meta)
    }

    /// Discards an upload.
    pub async fn abort(&self, upload: Upload) {
        drop(upload);
    }

    /// Every dataset this process knows, oldest first.
    pub async fn list(&self) -> Result<Vec<DatasetMeta>, StoreError> {
        let Some(db) = &self.db else {
            return Ok(self.lock().values().cloned().collect());
        };
        let listed = db
            .call(|db| async move { db.list_datasets().await })
            .await?;
        Ok(listed.into_iter().filter_map(from_row).collect())
    }

    /// One dataset: from the index, else from the store (uploaded by
    /// another replica since this one started).
    pub async fn find(&self, id: &str) -> Result<Option<DatasetMeta>, StoreError> {
        // In a cluster another replica may have deleted it: always ask.
        if let Some(meta) = self.lock().get(id).filter(|_| self.db.is_none()) {
            return Ok(Some(meta.clone()));
        }
        let found = match &self.db {
            Some(db) => {
                let id = id.to_string();
                db.call(|db| async move { db.get_dataset(&id).await })
                    .await?
                    .and_then(from_row)
            }
            None => fetch_meta(self.store.clone(), id.to_string()).await?,
        };
        Ok(found.map(|meta| self.remember(meta)))
    }

    /// [`DatasetStore::find`] from a blocking thread.
    pub fn get(&self, id: &str) -> Result<Option<DatasetMeta>, StoreError> {
        if let Some(meta) = self.lock().get(id).filter(|_| self.db.is_none()) {
            return Ok(Some(meta.clone()));
        }
        let id = id.to_string();
        let found = match &self.db {
            Some(db) => db
                .block(|db| async move { db.get_dataset(&id).await })?
                .and_then(from_row),
            None => self.store.block(|s| fetch_meta(s, id))??,
        };
        Ok(found.map(|meta| self.remember(meta)))
    }

    fn remember(&self, meta: DatasetMeta) -> DatasetMeta {
        self.lock().insert(meta.id.clone(), meta.clone());
        meta
    }

    /// Deletes a dataset (metadata first, so it is never listed without its
    /// data). In a cluster, refused while a job of any replica reads it.
    pub async fn delete(&self, id: &str) -> Result<DatasetRemoval, StoreError> {
        let Some(meta) = self.find(id).await? else {
            return Ok(DatasetRemoval::Missing);
        };
        match &self.db {
            Some(db) => {
                let key = id.to_string();
                let removal = db
                    .call(|db| async move { db.remove_dataset(&key).await })
                    .await?;
                if removal != DatasetRemoval::Removed {
                    return Ok(removal);
                }
            }
            None => self.store.delete(&meta_key(id)).await?,
        }
        self.lock().remove(id);
        let data = data_key(id, &meta.format);
        self.store.delete(&data).await?;
        self.store.forget_local_copy(&data).await;
        Ok(DatasetRemoval::Removed)
    }

    /// The data file's key in the store (`_datasets/<id>.<format>`).
    pub fn relative_path(&self, meta: &DatasetMeta) -> String {
        data_key(&meta.id, &meta.format)
    }

    /// The first rows of a dataset, parsed (from a local copy on a remote
    /// store). Runs on a blocking thread.
    pub fn sample(&self, meta: &DatasetMeta, limits: &ReadLimits) -> Result<Table, DataError> {
        let key = data_key(&meta.id, &meta.format);
        let io = |e: &dyn std::fmt::Display| DataError::Io {
            reason: e.to_string(),
        };
        let path = self
            .store
            .block(|s| async move { s.local_file(&key).await })
            .map_err(|e| io(&e))?
            .map_err(|e| io(&e))?;
        let file = crate::storage::fsops::open(&path).map_err(|e| io(&e))?;
        scan(file, &meta.format, limits, Scan::SampleOnly)
            .map(|(t, _)| t)
            .map_err(|e| match e {
                UploadError::Data(d) => d,
                other => io(&other),
            })
    }
}

/// An upload whose body has been fully written and synced.
pub struct ClosedUpload {
    staged: StagedFile,
    hasher: Sha256,
    bytes: u64,
    format: String,
}

impl Upload {
    /// Appends a chunk; fails once the limit is passed.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.staged.write(chunk).await?;
        Ok(())
    }

    /// Flushes and fsyncs the file.
    pub async fn close(mut self) -> Result<ClosedUpload, UploadError> {
        self.staged.close().await?;
        Ok(ClosedUpload {
            staged: self.staged,
            hasher: self.hasher,
            bytes: self.bytes,
            format: self.format,
        })
    }
}

/// How much of a file [`scan`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Every row: validates and counts the whole file (at upload).
    Whole,
    /// Stops after [`SAMPLE_ROWS`] rows (the file was validated at upload).
    SampleOnly,
}

/// Parses the file, keeping the first [`SAMPLE_ROWS`] rows, and returns them
/// with the number of rows read. Errors name the line.
fn scan(
    file: impl Read,
    format: &str,
    limits: &ReadLimits,
    extent: Scan,
) -> Result<(Table, usize), UploadError> {
    let sample_limits = ReadLimits {
        max_rows: SAMPLE_ROWS,
        ..limits.clone()
    };
    // Uploads are CSV or NDJSON; anything else stored as a dataset format is refused.
    let format = match format.parse::<data::TableFormat>()? {
        data::TableFormat::Json => {
            return Err(DataError::UnknownFormat {
                name: format.to_string(),
            }
            .into())
        }
        known => known,
    };
    match format {
        data::TableFormat::Ndjson => {
            let mut sample = Vec::new();
            let mut rows = 0usize;
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| DataError::Json {
                    line: Some(i as u64 + 1),
                    reason: e.to_string(),
                })?;
                if line.trim().is_empty() {
                    continue;
                }
                rows += 1;
                if rows > limits.max_rows {
                    return Err(DataError::TooManyRows {
                        limit: limits.max_rows,
                    }
                    .into());
                }
                let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line)
                    .map_err(|e| DataError::Json {
                        line: Some(i as u64 + 1),
                        reason: e.to_string(),
                    })?;
                if sample.len() < SAMPLE_ROWS {
                    sample.push(value);
                } else if extent == Scan::SampleOnly {
                    break;
                }
            }
            Ok((data::table_from_records(&sample, &sample_limits)?, rows))
        }
        data::TableFormat::Csv | data::TableFormat::Json => {
            let mut reader =
                csv::ReaderBuilder::new().from_reader(BufReader::with_capacity(1 << 20, file));
            let headers = reader.headers().map_err(|e| csv_error(&e))?.clone();
            if headers.is_empty() {
                // An empty file: no header row at all.
                return Err(DataError::Empty.into());
            }
            let mut head = Vec::new();
            let mut wtr = csv::Writer::from_writer(&mut head);
            wtr.write_record(&headers).map_err(|e| csv_error(&e))?;
            let mut rows = 0usize;
            let mut record = csv::StringRecord::new();
            while reader.read_record(&mut record).map_err(|e| csv_error(&e))? {
                rows += 1;
                if rows > limits.max_rows {
                    return Err(DataError::TooManyRows {
                        limit: limits.max_rows,
                    }
                    .into());
                }
                if rows <= SAMPLE_ROWS {
                    wtr.write_record(&record).map_err(|e| csv_error(&e))?;
                } else if extent == Scan::SampleOnly {
                    break;
                }
            }
            drop(wtr);
            Ok((data::read_csv(&head[..], &sample_limits)?, rows))
        }
    }
}

fn csv_error(e: &csv::Error) -> UploadError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    UploadError::Data(DataError::Csv {
        line,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn upload(datasets: &DatasetStore, text: &str) -> Result<DatasetMeta, UploadError> {
        let mut upload = datasets.begin("csv", 1 << 20).await?;
        for chunk in text.as_bytes().chunks(7) {
            upload.write(chunk).await?;
        }
        let closed = upload.close().await?;
        let limits = ReadLimits::default();
        tokio::task::block_in_place(|| datasets.finish(closed, &limits))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dataset_uploaded_by_one_replica_is_found_and_sampled_by_another() {
        let cache_a = tempfile::tempdir().unwrap();
        let cache_b = tempfile::tempdir().unwrap();
        let store = Store::in_memory(cache_a.path());
        let a = DatasetStore::open(store.clone(), None).unwrap();
        let b = DatasetStore::open(store.with_cache_dir(cache_b.path()), None).unwrap();

        let meta = upload(&a, "x,y\n1,a\n2,b\n3,c\n").await.unwrap();
        assert_eq!(
            (meta.rows, meta.columns.clone()),
            (3, vec!["x".into(), "y".into()])
        );
        assert!(
            b.list().await.unwrap().is_empty(),
            "b indexed before the upload"
        );
        let found = b
            .find(&meta.id)
            .await
            .unwrap()
            .expect("b finds the dataset");
        assert_eq!(found.sha256, meta.sha256);
        let sample =
            tokio::task::block_in_place(|| b.sample(&found, &ReadLimits::default())).unwrap();
        assert_eq!(sample.rows(), 3);
        assert!(cache_b.path().join(b.relative_path(&meta)).is_file());

        let reopened = DatasetStore::open(store.clone(), None).unwrap();
        assert_eq!(reopened.list().await.unwrap().len(), 1);
        assert_eq!(b.delete(&meta.id).await.unwrap(), DatasetRemoval::Removed);
        assert!(DatasetStore::open(store.clone(), None)
            .unwrap()
            .list()
            .await
            .unwrap()
            .is_empty());
        assert!(b.find("not-a-uuid").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_upload_leaves_nothing_in_the_store() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::in_memory(cache.path());
        let datasets = DatasetStore::open(store.clone(), None).unwrap();
        assert!(upload(&datasets, "x,y\n").await.is_err());
        assert!(store.list("").await.unwrap().is_empty());
        let staged = std::fs::read_dir(cache.path().join(".staging"))
            .unwrap()
            .count();
        assert_eq!(staged, 0, "the staged file is removed");
    }
}
