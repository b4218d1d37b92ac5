//! Uploaded datasets: `<store>/_datasets/<id>.<format>` with `<id>.json`
//! metadata. Uploads stream to disk; only a sample is parsed in memory.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::{self, DataError, ReadLimits, Schema, Table};
use crate::registry::fsops;

/// Rows parsed in memory for schema inference and request checks.
pub const SAMPLE_ROWS: usize = 10_000;

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
    #[error("dataset store I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The dataset directory.
pub struct DatasetStore {
    dir: PathBuf,
    index: Mutex<BTreeMap<String, DatasetMeta>>,
}

/// An upload in progress: a temporary file and a running hash.
pub struct Upload {
    tmp: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
    format: String,
}

impl DatasetStore {
    /// Opens (creating) `<root>/_datasets`, removing interrupted uploads.
    pub fn open(root: &Path) -> io::Result<DatasetStore> {
        let dir = root.join("_datasets");
        fsops::create_dir_durable(&dir)?;
        let mut index = BTreeMap::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with(".tmp-") {
                let _ = fs::remove_file(&path);
                continue;
            }
            if path.extension().is_some_and(|e| e == "json") {
                match fs::read(&path).map(|b| serde_json::from_slice::<DatasetMeta>(&b)) {
                    Ok(Ok(meta)) if dir.join(format!("{}.{}", meta.id, meta.format)).is_file() => {
                        index.insert(meta.id.clone(), meta);
                    }
                    _ => {
                        tracing::warn!(path = %path.display(), "skipping unreadable dataset metadata")
                    }
                }
            }
        }
        Ok(DatasetStore {
            dir,
            index: Mutex::new(index),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DatasetMeta>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an upload of `format` (`csv` or `ndjson`) limited to `limit` bytes.
    pub async fn begin(&self, format: &str, limit: u64) -> io::Result<Upload> {
        let tmp = self
            .dir
            .join(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
        let file =
            tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(&tmp).await?);
        Ok(Upload {
            tmp,
            file,
            hasher: Sha256::new(),
            bytes: 0,
            limit,
            format: format.to_string(),
        })
    }

    /// Validates a finished upload (every row parsed once, streaming), infers
    /// the schema from the first rows, and stores it. On error nothing is kept.
    pub fn finish(
        &self,
        upload: ClosedUpload,
        limits: &ReadLimits,
    ) -> Result<DatasetMeta, UploadError> {
        let ClosedUpload {
            tmp,
            hasher,
            bytes,
            format,
        } = upload;
        let result = (|| {
            let (sample, rows) = scan(&tmp, &format, limits, Scan::Whole)?;
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
            fs::rename(&tmp, self.dir.join(format!("{id}.{format}")))?;
            let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
            fsops::write_atomic(&self.dir.join(format!("{id}.json")), &json)?;
            Ok(meta)
        })();
        match result {
            Ok(meta) => {
                self.lock().insert(meta.id.clone(), meta.clone());
                Ok(meta)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Discards an upload.
    pub async fn abort(&self, upload: Upload) {
        drop(upload.file);
        let _ = tokio::fs::remove_file(&upload.tmp).await;
    }

    /// Every dataset, oldest first.
    pub fn list(&self) -> Vec<DatasetMeta> {
        self.lock().values().cloned().collect()
    }

    /// One dataset.
    pub fn get(&self, id: &str) -> Option<DatasetMeta> {
        self.lock().get(id).cloned()
    }

    /// Deletes a dataset; false if it did not exist.
    pub fn delete(&self, id: &str) -> io::Result<bool> {
        let Some(meta) = self.lock().remove(id) else {
            return Ok(false);
        };
        fs::remove_file(self.dir.join(format!("{id}.json")))?;
        fs::remove_file(self.dir.join(format!("{id}.{}", meta.format)))?;
        fsops::sync_dir(&self.dir)?;
        Ok(true)
    }

    /// The data file path relative to the store root.
    pub fn relative_path(&self, meta: &DatasetMeta) -> String {
        format!("_datasets/{}.{}", meta.id, meta.format)
    }

    /// The first rows of a dataset, parsed.
    pub fn sample(&self, meta: &DatasetMeta, limits: &ReadLimits) -> Result<Table, DataError> {
        let path = self.dir.join(format!("{}.{}", meta.id, meta.format));
        scan(&path, &meta.format, limits, Scan::SampleOnly)
            .map(|(t, _)| t)
            .map_err(|e| match e {
                UploadError::Data(d) => d,
                other => DataError::Io {
                    reason: other.to_string(),
                },
            })
    }
}

/// An upload whose body has been fully written and synced.
pub struct ClosedUpload {
    tmp: PathBuf,
    hasher: Sha256,
    bytes: u64,
    format: String,
}

impl Upload {
    /// Appends a chunk; fails once the limit is passed.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        use tokio::io::AsyncWriteExt;
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Flushes and fsyncs the file.
    pub async fn close(mut self) -> Result<ClosedUpload, UploadError> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        Ok(ClosedUpload {
            tmp: self.tmp,
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
    path: &Path,
    format: &str,
    limits: &ReadLimits,
    extent: Scan,
) -> Result<(Table, usize), UploadError> {
    let file = fs::File::open(path)?;
    let sample_limits = ReadLimits {
        max_rows: SAMPLE_ROWS,
        ..limits.clone()
    };
    match format {
        "ndjson" => {
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
        _ => {
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
