//! Whole files through the store: a large upload is streamed to a local
//! staged file (validated there), then published under a key in one step;
//! immutable objects are read back through a local copy.
//!
//! On local disk the staged file sits beside its destination
//! (`<root>/<dir>/.tmp-<id>`) and publishing is a rename, so the on-disk
//! layout is the plain file. On a remote store it sits in the cache's
//! staging directory, is uploaded (multipart when large) and then kept as
//! the cached copy of the key.

use std::path::{Path, PathBuf};

use object_store::buffered::BufWriter as ObjectWriter;
use tokio::io::AsyncWriteExt;

use super::{fsops, Backend, Store, StoreError};

/// A local file being written before it is published with
/// [`Store::publish_file`]; removed on drop unless published.
pub struct StagedFile {
    path: PathBuf,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
}

impl std::fmt::Debug for StagedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedFile")
            .field("path", &self.path)
            .finish()
    }
}

impl StagedFile {
    /// Appends bytes.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let Some(file) = self.file.as_mut() else {
            return Err(StoreError::io(&self.path)(std::io::Error::other(
                "the staged file is closed",
            )));
        };
        file.write_all(chunk)
            .await
            .map_err(StoreError::io(&self.path))
    }

    /// Flushes and fsyncs the file; it can be read and published afterwards.
    pub async fn close(&mut self) -> Result<(), StoreError> {
        if let Some(mut file) = self.file.take() {
            file.flush().await.map_err(StoreError::io(&self.path))?;
            file.get_ref()
                .sync_all()
                .await
                .map_err(StoreError::io(&self.path))?;
        }
        Ok(())
    }

    /// Opens the (closed) file for reading.
    pub fn reader(&self) -> Result<std::fs::File, StoreError> {
        fsops::open(&self.path).map_err(StoreError::io(&self.path))
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Store {
    /// A new staged file for a later [`Store::publish_file`] under `dir`
    /// (a key prefix such as `_datasets`).
    pub async fn stage_file(&self, dir: &str) -> Result<StagedFile, StoreError> {
        let base = match &*self.backend {
            Backend::Local(root) => root.join(dir),
            Backend::Remote => self.cache_dir.join(".staging"),
        };
        tokio::fs::create_dir_all(&base)
            .await
            .map_err(StoreError::io(&base))?;
        let path = base.join(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(StoreError::io(&path))?;
        Ok(StagedFile {
            path,
            file: Some(tokio::io::BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Publishes a closed staged file as `key` (replacing any object there).
    pub async fn publish_file(&self, mut staged: StagedFile, key: &str) -> Result<(), StoreError> {
        staged.close().await?;
        let source = std::mem::take(&mut staged.path);
        match &*self.backend {
            Backend::Local(root) => {
                let dest = root.join(key);
                let result = tokio::fs::rename(&source, &dest).await;
                if let Err(e) = result {
                    let _ = tokio::fs::remove_file(&source).await;
                    return Err(StoreError::io(&dest)(e));
                }
                if let Some(parent) = dest.parent() {
                    let parent = parent.to_path_buf();
                    tokio::task::spawn_blocking(move || fsops::sync_dir(&parent))
                        .await
                        .map_err(|e| StoreError::io(&dest)(std::io::Error::other(e)))?
                        .map_err(StoreError::io(&dest))?;
                }
                metrics::counter!("myelin_store_operations_total", "op" => "publish").increment(1);
                Ok(())
            }
            Backend::Remote => {
                let result = self.upload(&source, key).await;
                match result {
                    Ok(()) => {
                        // Keep the file as the local copy: reading the key does not download it.
                        let cached = self.cache_dir.join(key);
                        if let Some(parent) = cached.parent() {
                            let _ = tokio::fs::create_dir_all(parent).await;
                        }
                        if tokio::fs::rename(&source, &cached).await.is_err() {
                            let _ = tokio::fs::remove_file(&source).await;
                        }
                        Ok(())
                    }
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&source).await;
                        Err(e)
                    }
                }
            }
        }
    }

    async fn upload(&self, source: &Path, key: &str) -> Result<(), StoreError> {
        let path = Store::key(key)?;
        let mut file = tokio::fs::File::open(source)
            .await
            .map_err(StoreError::io(source))?;
        let mut writer = ObjectWriter::new(self.inner.clone(), path);
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        let result = match copied {
            Ok(len) => match writer.shutdown().await {
                Ok(()) => Ok(len),
                Err(e) => Err(e),
            },
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        };
        let result = result.map_err(|e| object_store::Error::Generic {
            store: "upload",
            source: Box::new(e),
        });
        let len = self.record("put", key, result)?;
        metrics::counter!("myelin_store_written_bytes_total").increment(len);
        Ok(())
    }

    /// A local path holding the object `key`, which must never change once
    /// written (a dataset file): the store's own file on local disk, else a
    /// copy in the cache directory, downloaded when absent.
    pub async fn local_file(&self, key: &str) -> Result<PathBuf, StoreError> {
        if let Backend::Local(root) = &*self.backend {
            return Ok(root.join(key));
        }
        let path = self.cache_dir.join(key);
        if tokio::fs::metadata(&path).await.is_ok() {
            metrics::counter!("myelin_store_cache_hits_total").increment(1);
            return Ok(path);
        }
        let Some(object) = self.get(key).await? else {
            return Err(StoreError::NotFound { key: key.into() });
        };
        let dir = path.parent().unwrap_or(&self.cache_dir).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(StoreError::io(&dir))?;
        super::cache_file(&dir, &path, &object.bytes).await?;
        Ok(path)
    }

    /// Drops the local copy of `key` (after the object was deleted).
    pub async fn forget_local_copy(&self, key: &str) {
        if let Backend::Remote = &*self.backend {
            let _ = tokio::fs::remove_file(self.cache_dir.join(key)).await;
        }
    }
}
