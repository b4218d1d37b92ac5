//! The storage seam: every byte the service persists (model versions and
//! aliases, job records and inputs, datasets, interaction logs) goes
//! through [`Store`], a thin layer over an [`object_store::ObjectStore`]
//! (local disk, S3, or in memory for tests) with the few operations its
//! users need: get, put, put-if-absent, compare-and-swap, list, delete, a
//! local copy of a prefix for loaders that read files, staged uploads of
//! large files ([`StagedFile`]) and append-only logs ([`LogContents`]).
//! Nothing above this module touches the file system; [`fsops`] is the
//! synced write path for local staging and cache files.
//!
//! The operations are `async`; [`Store::block`] runs one from synchronous
//! code (the registry runs on blocking threads and in the CLI) on a small
//! runtime of its own, so it works from any thread, inside a runtime or not.
//! Every operation is counted in `myelin_store_operations_total{op}` and
//! failures in `myelin_store_errors_total{op,kind}`.

pub mod db;
mod files;
pub mod fsops;
mod listing;
mod local;
mod log;
mod url;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

pub use files::StagedFile;
pub use listing::RESERVED_PREFIX;
pub use local::Staging;
pub use log::LogContents;
pub use url::{Location, UrlError};

/// Name of the per-directory lock file taken by compare-and-swap on local disk.
pub const LOCK_FILE: &str = ".lock";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`{key}` does not exist in the store")]
    NotFound { key: String },
    #[error("`{key}` is not a valid store key: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("the store is unavailable ({op} `{key}`): {reason}")]
    Unavailable {
        op: &'static str,
        key: String,
        reason: String,
    },
    #[error("I/O error at `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    /// The label used in metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "not_found",
            StoreError::InvalidKey { .. } => "invalid_key",
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::Io { .. } => "io",
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// An object read from the store with what a later compare-and-swap needs.
#[derive(Clone, Debug)]
pub struct Object {
    pub bytes: Bytes,
    version: UpdateVersion,
}

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key, relative to the store root (`churn/3/model.json`).
    pub key: String,
    pub size: u64,
    /// ETag or another change marker; changes whenever the object does.
    pub tag: String,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// Outcome of a conditional write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The key existed (put-if-absent) or changed since it was read (CAS).
    Refused,
}

enum Backend {
    /// `LocalFileSystem` rooted here; writes are fsynced and compare-and-swap
    /// holds a file lock, as `PutMode::Update` is not supported on disk.
    Local(PathBuf),
    Remote,
}

/// The model store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    backend: Arc<Backend>,
    url: Arc<str>,
    cache_dir: Arc<Path>,
    healthy: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, StoreError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("myelin-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| StoreError::Unavailable {
            op: "start",
            key: String::new(),
            reason: reason.clone(),
        })
}

/// Runs `fut` on the store's runtime and waits for it: the bridge for
/// synchronous callers. Works on any thread, inside a runtime or not.
fn run<Fut, T>(fut: Fut) -> Result<T, StoreError>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| StoreError::Unavailable {
        op: "run",
        key: String::new(),
        reason: "the store runtime stopped".into(),
    })
}

impl Store {
    /// Opens the store at `location`; for a remote store, downloaded
    /// artifacts are kept under `cache_dir`. A remote store is probed with
    /// one listing so a wrong bucket or endpoint fails here, not later.
    pub fn open(location: &Location, cache_dir: &Path) -> Result<Store, StoreError> {
        let store = match location {
            Location::Local(root) => local::open(root, cache_dir)?,
            Location::S3 { .. } => {
                let store = Store::remote(url::s3(location)?, &location.to_string(), cache_dir);
                store.block(|s| async move { s.probe().await })??;
                store
            }
        };
        Ok(store)
    }

    /// An in-memory store (tests).
    pub fn in_memory(cache_dir: &Path) -> Store {
        Store::remote(Arc::new(InMemory::new()), "memory://", cache_dir)
    }

    fn remote(inner: Arc<dyn ObjectStore>, url: &str, cache_dir: &Path) -> Store {
        Store {
            inner,
            backend: Arc::new(Backend::Remote),
            url: url.into(),
            cache_dir: cache_dir.into(),
            healthy: Arc::new(AtomicBool::new(true)),
            reads: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same store with another local cache directory (a second
    /// replica on the same objects, in tests).
    pub fn with_cache_dir(&self, cache_dir: &Path) -> Store {
        Store {
            cache_dir: cache_dir.into(),
            ..self.clone()
        }
    }

    /// Objects read (GET) through this store and its clones.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The store's URL or directory, for logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The root directory when the store is on local disk.
    pub fn local_root(&self) -> Option<&Path> {
        match &*self.backend {
            Backend::Local(root) => Some(root),
            Backend::Remote => None,
        }
    }

    /// Whether the last operation reached the store.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Runs `op` on the store's runtime and waits for it: the bridge for
    /// synchronous callers. Works on any thread, inside a runtime or not.
    pub fn block<F, Fut, T>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        run(op(self.clone()))
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let op = "probe";
        let result = self.inner.list_with_delimiter(None).await;
        self.record(op, "", result.map(|_| ()))
    }

    /// Checks the store answers and, on local disk, accepts writes.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Local(_) => {
                let key = format!(".tmp-ready-{}", uuid::Uuid::now_v7().simple());
                self.put(&key, Bytes::from_static(b"ok")).await?;
                self.delete(&key).await
            }
            Backend::Remote => self.probe().await,
        }
    }

    fn key(key: &str) -> Result<Key, StoreError> {
        Key::parse(key).map_err(|e| StoreError::InvalidKey {
            key: key.into(),
            reason: e.to_string(),
        })
    }

    /// Counts the operation and maps its error; marks the store healthy or not.
    fn record<T>(
        &self,
        op: &'static str,
        key: &str,
        result: object_store::Result<T>,
    ) -> Result<T, StoreError> {
        metrics::counter!("myelin_store_operations_total", "op" => op).increment(1);
        let error = match result {
            Ok(v) => {
                self.healthy.store(true, Ordering::Relaxed);
                return Ok(v);
            }
            Err(object_store::Error::NotFound { .. }) => StoreError::NotFound { key: key.into() },
            Err(object_store::Error::InvalidPath { source }) => StoreError::InvalidKey {
                key: key.into(),
                reason: source.to_string(),
            },
            // Local disk answered: a full disk, a file-size limit or a denied
            // write fails this operation, it is not an outage of the store.
            Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source,
            }) => StoreError::Io {
                path: key.into(),
                source: std::io::Error::other(source.to_string()),
            },
            Err(e) => {
                self.healthy.store(false, Ordering::Relaxed);
                StoreError::Unavailable {
                    op,
                    key: key.into(),
                    reason: e.to_string(),
                }
            }
        };
        metrics::counter!("myelin_store_errors_total", "op" => op, "kind" => error.kind())
            .increment(1);
        Err(error)
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let path = Store::key(key)?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let got = self.inner.get(&path).await?;
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            Ok(Object {
                bytes: got.bytes().await?,
                version,
            })
        }
        .await;
        match self.record("get", key, result) {
            Ok(object) => {
                metrics::counter!("myelin_store_read_bytes_total")
                    .increment(object.bytes.len() as u64);
                Ok(Some(object))
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes an object atomically, replacing any previous one.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.put_mode(key, bytes, PutMode::Overwrite, "put")
            .await
            .map(|_| ())
    }

    /// Writes an object only if the key does not exist (`PutMode::Create`).
    pub async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<Written, StoreError> {
        self.put_mode(key, bytes, PutMode::Create, "put_if_absent")
            .await
    }

    /// Replaces `previous` (as read by [`Store::get`]; `None`: the key must
    /// not exist) with `bytes`, refused if the object changed meanwhile.
    /// S3 and memory use `PutMode::Update` on the ETag; local disk compares
    /// the content under an exclusive lock on the directory's `.lock` file.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        previous: Option<&Object>,
        bytes: Bytes,
    ) -> Result<Written, StoreError> {
        if let Backend::Local(root) = &*self.backend {
            let result =
                local::compare_and_swap(root, key, previous.map(|o| o.bytes.clone()), bytes).await;
            return self.record("compare_and_swap", key, result);
        }
        let mode = match previous {
            Some(object) => PutMode::Update(object.version.clone()),
            None => PutMode::Create,
        };
        self.put_mode(key, bytes, mode, "compare_and_swap").await
    }

    async fn put_mode(
        &self,
        key: &str,
        bytes: Bytes,
        mode: PutMode,
        op: &'static str,
    ) -> Result<Written, StoreError> {
        let path = Store::key(key)?;
        let len = bytes.len() as u64;
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let result = self
            .inner
            .put_opts(&path, PutPayload::from_bytes(bytes), options)
            .await;
        let result = match result {
            Ok(_) => Ok(Written::Done),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Written::Refused),
            Err(e) => Err(e),
        };
        let written = self.record(op, key, result)?;
        if written == Written::Done {
            metrics::counter!("myelin_store_written_bytes_total").increment(len);
            if let Backend::Local(root) = &*self.backend {
                local::sync(root, key).await?;
            }
        }
        Ok(written)
    }

    /// Every object under `prefix` (`""`: the whole store), in no set order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let path = if prefix.is_empty() {
            None
        } else {
            Some(Store::key(prefix)?)
        };
        let mut result: object_store::Result<Vec<_>> =
            self.inner.list(path.as_ref()).try_collect().await;
        // On disk, a file removed during the walk fails the listing: walk again.
        for _ in 0..3 {
            if !matches!(result, Err(object_store::Error::NotFound { .. })) {
                break;
            }
            result = self.inner.list(path.as_ref()).try_collect().await;
        }
        let metas = self.record("list", prefix, result)?;
        metrics::counter!("myelin_store_listed_objects_total").increment(metas.len() as u64);
        Ok(metas.into_iter().map(listing::entry).collect())
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = Store::key(key)?;
        let result = self.inner.delete(&path).await;
        match self.record("delete", key, result) {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes every object under `prefix`, the marker `last` (if present
    /// under it) first so readers stop listing the prefix before its other
    /// objects go; on local disk the directory is renamed away first.
    pub async fn delete_prefix(&self, prefix: &str, first: &str) -> Result<(), StoreError> {
        if let Backend::Local(root) = &*self.backend {
            let result = local::remove_dir(root, prefix).await;
            return self.record("delete", prefix, result);
        }
        let entries = self.list(prefix).await?;
        let marker = format!("{prefix}/{first}");
        if entries.iter().any(|e| e.key == marker) {
            self.delete(&marker).await?;
        }
        for entry in entries.iter().filter(|e| e.key != marker) {
            self.delete(&entry.key).await?;
        }
        Ok(())
    }

    /// Publishes the files of the local directory `staged` under `prefix`,
    /// `marker` last: readers that list markers never see a partial prefix.
    /// Refused when `prefix` is already taken. On local disk the directory
    /// is renamed into place (one atomic step); elsewhere `prefix/.claim` is
    /// created first with `PutMode::Create`, so two writers never share a
    /// prefix, then the files, then the marker, again with `PutMode::Create`.
    pub async fn publish_dir(
        &self,
        staged: &Path,
        prefix: &str,
        marker: &str,
    ) -> Result<Written, StoreError> {
        if let Backend::Local(root) = &*self.backend {
            let result = local::publish_dir(root, staged, prefix).await;
            return self.record("publish", prefix, result);
        }
        let claim = format!("{prefix}/{CLAIM_FILE}");
        let stamp = Bytes::from(chrono::Utc::now().to_rfc3339());
        if self.put_if_absent(&claim, stamp).await? == Written::Refused {
            return Ok(Written::Refused);
        }
        let mut names = Vec::new();
        let mut dir = tokio::fs::read_dir(staged)
            .await
            .map_err(StoreError::io(staged))?;
        while let Some(entry) = dir.next_entry().await.map_err(StoreError::io(staged))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != marker {
                names.push(name);
            }
        }
        names.sort();
        for name in &names {
            let path = staged.join(name);
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(StoreError::io(&path))?;
            self.put(&format!("{prefix}/{name}"), bytes.into()).await?;
        }
        let path = staged.join(marker);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(StoreError::io(&path))?;
        let written = self
            .put_if_absent(&format!("{prefix}/{marker}"), bytes.into())
            .await?;
        if written == Written::Done {
            // Keep the files as the local copy: loading this version does not download it.
            let cached = self.cache_dir.join(prefix);
            if let Some(parent) = cached.parent() {
                let _ = tokio::fs::create_dir_all(parent).await;
            }
            let _ = tokio::fs::rename(staged, &cached).await;
        }
        Ok(written)
    }

    /// A local directory holding the objects under `prefix` (which must not
    /// change once written, like a model version): the store's own
    /// directory on local disk, else a copy under the cache directory where
    /// files already present with the right size are not downloaded again.
    pub async fn local_copy(&self, prefix: &str) -> Result<PathBuf, StoreError> {
        if let Backend::Local(root) = &*self.backend {
            return Ok(root.join(prefix));
        }
        let dir = self.cache_dir.join(prefix);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(StoreError::io(&dir))?;
        for entry in self.list(prefix).await? {
            let Some(name) = entry.key.strip_prefix(&format!("{prefix}/")) else {
                continue;
            };
            if name.contains('/') || name == CLAIM_FILE {
                continue;
            }
            let path = dir.join(name);
            if let Ok(meta) = tokio::fs::metadata(&path).await {
                if meta.len() == entry.size {
                    metrics::counter!("myelin_store_cache_hits_total").increment(1);
                    continue;
                }
            }
            let Some(object) = self.get(&entry.key).await? else {
                continue;
            };
            cache_file(&dir, &path, &object.bytes).await?;
        }
        Ok(dir)
    }

    /// A fresh empty local directory to stage files before [`Store::publish_dir`]:
    /// beside the destination on local disk (so publishing is a rename),
    /// in the cache directory otherwise. The writer holds a lock on it
    /// until the guard is dropped, so cleanup never removes a live one.
    pub fn staging_dir(&self, parent_prefix: &str) -> Result<Staging, StoreError> {
        let base = match &*self.backend {
            Backend::Local(root) => root.join(parent_prefix),
            Backend::Remote => self.cache_dir.join(".staging"),
        };
        local::Staging::create(&base)
    }

    /// Removes staging directories and temporary files that interrupted
    /// writes left under `prefix`: those whose writer's lock is free, and
    /// unlocked ones (older releases) when the directory's `.lock` is free
    /// or they are older than `older_than`. Remote stores keep no
    /// temporaries (only claims, which the registry cleans); their local
    /// staging directory is cleaned instead.
    pub fn clean_temporaries(&self, prefix: &str, older_than: std::time::Duration) {
        let dir = match &*self.backend {
            Backend::Local(root) => root.join(prefix),
            Backend::Remote => self.cache_dir.join(".staging"),
        };
        local::clean_temporaries(&dir, older_than);
    }
}

/// Marker a remote writer creates before uploading a prefix.
pub const CLAIM_FILE: &str = ".claim";

#[cfg(test)]
mod tests;

/// Writes a downloaded object to `path` in the local cache: a temporary file
/// in `dir` renamed into place, so a reader never sees a partial copy. (A cache
/// entry needs no fsync: a lost one is downloaded again.)
async fn cache_file(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(StoreError::io(&tmp))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(StoreError::io(path))
}
