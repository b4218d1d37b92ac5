//! Local-disk specifics of the store: fsync after writes, compare-and-swap
//! under a file lock, publish by renaming a staged directory, removal by
//! renaming away first, and cleanup of interrupted writes.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::local::LocalFileSystem;

use super::fsops::{create_dir_durable, parent, sync_dir, write_atomic};
use super::{Backend, StoreError, Written, LOCK_FILE};

pub(super) fn open(root: &Path, cache_dir: &Path) -> Result<super::Store, StoreError> {
    create_dir_durable(root).map_err(StoreError::io(root))?;
    let inner = LocalFileSystem::new_with_prefix(root).map_err(|e| StoreError::Unavailable {
        op: "open",
        key: root.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(super::Store {
        inner: Arc::new(inner),
        backend: Arc::new(Backend::Local(root.to_path_buf())),
        url: root.display().to_string().into(),
        cache_dir: cache_dir.into(),
        healthy: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        reads: Arc::new(std::sync::atomic::AtomicU64::new(0)),
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> object_store::Result<T> {
    let result = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(e.to_string()))
        .and_then(|r| r);
    result.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => object_store::Error::NotFound {
            path: String::new(),
            source: Box::new(e),
        },
        _ => object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        },
    })
}

/// Fsyncs a freshly written file and its directory.
pub(super) async fn sync(root: &Path, key: &str) -> Result<(), StoreError> {
    let path = root.join(key);
    let result = blocking({
        let path = path.clone();
        move || {
            File::open(&path)?.sync_all()?;
            sync_dir(parent(&path)?)
        }
    })
    .await;
    result.map_err(|e| StoreError::Io {
        path: path.display().to_string(),
        source: io::Error::other(e.to_string()),
    })
}

pub(super) async fn compare_and_swap(
    root: &Path,
    key: &str,
    previous: Option<Bytes>,
    bytes: Bytes,
) -> object_store::Result<Written> {
    let path = root.join(key);
    blocking(move || {
        let dir = parent(&path)?.to_path_buf();
        create_dir_durable(&dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        lock.lock()?;
        let current = match fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if current.as_deref() != previous.as_deref() {
            return Ok(Written::Refused);
        }
        write_atomic(&path, &bytes)?;
        Ok(Written::Done)
    })
    .await
}

pub(super) async fn publish_dir(
    root: &Path,
    staged: &Path,
    prefix: &str,
) -> object_store::Result<Written> {
    let dest = root.join(prefix);
    let staged = staged.to_path_buf();
    blocking(move || {
        sync_dir(&staged)?;
        // rename(2) replaces an empty directory: a leftover empty one is
        // not a version, so that is fine; a non-empty one refuses.
        match fs::rename(&staged, &dest) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
                ) =>
            {
                return Ok(Written::Refused)
            }
            Err(e) => return Err(e),
        }
        sync_dir(parent(&dest)?)?;
        Ok(Written::Done)
    })
    .await
}

pub(super) async fn remove_dir(root: &Path, prefix: &str) -> object_store::Result<()> {
    let dir = root.join(prefix);
    blocking(move || {
        let parent = parent(&dir)?;
        let hidden = parent.join(format!(".tmp-del-{}", uuid::Uuid::now_v7().simple()));
        fs::rename(&dir, &hidden)?;
        sync_dir(parent)?;
        fs::remove_dir_all(&hidden)
    })
    .await
}

/// A staging directory `.tmp-<id>` and its writer's lock `.tmp-<id>.lock`
/// (held until drop); both are removed on drop.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    lock: PathBuf,
    _held: File,
}

impl Staging {
    pub(super) fn create(base: &Path) -> Result<Staging, StoreError> {
        create_dir_durable(base).map_err(StoreError::io(base))?;
        let id = uuid::Uuid::now_v7().simple();
        let dir = base.join(format!(".tmp-{id}"));
        let lock = base.join(format!(".tmp-{id}.lock"));
        let held = File::create(&lock).map_err(StoreError::io(&lock))?;
        held.lock().map_err(StoreError::io(&lock))?;
        fs::create_dir(&dir).map_err(StoreError::io(&dir))?;
        Ok(Staging {
            dir,
            lock,
            _held: held,
        })
    }

    /// The directory to write into.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = fs::remove_dir_all(&self.dir);
        }
        let _ = fs::remove_file(&self.lock);
    }
}

fn lock_is_free(path: &Path) -> bool {
    File::options()
        .write(true)
        .open(path)
        .is_ok_and(|f| f.try_lock().is_ok())
}

fn remove(path: &Path) {
    let _ = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
}

/// Removes `.tmp-*` entries of `dir` left by interrupted writes (see
/// [`super::Store::clean_temporaries`]).
pub(super) fn clean_temporaries(dir: &Path, older_than: Duration) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let dir_lock_free = !dir.join(LOCK_FILE).exists() || lock_is_free(&dir.join(LOCK_FILE));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(".tmp-") {
            continue;
        }
        let path = entry.path();
        if let Some(stem) = name.strip_suffix(".lock") {
            if lock_is_free(&path) {
                remove(&dir.join(stem));
                remove(&path);
            }
            continue;
        }
        if dir.join(format!("{name}.lock")).exists() {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= older_than);
        if old || dir_lock_free {
            remove(&path);
        }
    }
}
