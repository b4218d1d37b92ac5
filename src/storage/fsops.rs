//! Durable file-system operations on local files (staging directories,
//! the download cache, local copies of artifacts): write to a temporary
//! sibling, fsync, rename, fsync the directory; and plain reads, so that no
//! code above the storage layer touches the file system itself.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: readers see the old file or the new
/// one, never a partial one, and the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        file_name.to_string_lossy(),
        uuid::Uuid::now_v7().simple()
    ));
    let result = (|| {
        write_synced(&tmp, bytes)?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole local file (a staged or cached artifact).
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    fs::read(path)
}

/// Opens a local file for reading (a staged or cached artifact).
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Creates `path` with `bytes` and fsyncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Fsyncs a directory so renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (and parents) and fsyncs its parent.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    sync_dir(parent(dir)?)
}

/// Removes a directory tree so that no reader ever lists it half-deleted:
/// it is first renamed to a hidden sibling, then deleted.
pub fn remove_dir_atomic(dir: &Path) -> io::Result<()> {
    let parent = parent(dir)?;
    let hidden = parent.join(format!(".tmp-del-{}", uuid::Uuid::now_v7().simple()));
    fs::rename(dir, &hidden)?;
    sync_dir(parent)?;
    fs::remove_dir_all(&hidden)
}

/// The directory holding `path` (`.` for a bare file name).
pub(super) fn parent(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        Some(_) => Ok(Path::new(".")),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no parent",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn remove_dir_atomic_deletes_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("3");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("x"), b"x").unwrap();
        remove_dir_atomic(&victim).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
