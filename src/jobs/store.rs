//! Job records on disk: `<store>/_jobs/<id>.json`, written atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::record::JobRecord;
use crate::registry::fsops;

/// The directory of job records.
#[derive(Clone)]
pub struct JobStore {
    dir: PathBuf,
}

impl JobStore {
    /// Opens (creating) `<root>/_jobs`.
    pub fn open(root: &Path) -> io::Result<JobStore> {
        let dir = root.join("_jobs");
        fsops::create_dir_durable(&dir)?;
        Ok(JobStore { dir })
    }

    /// The directory, for job input files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes a record atomically.
    pub fn save(&self, record: &JobRecord) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        fsops::write_atomic(&self.path(&record.id), &bytes)
    }

    /// Every readable record, oldest first. Unreadable files are skipped with a warning.
    pub fn load_all(&self) -> io::Result<Vec<JobRecord>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_record {
                continue;
            }
            match fs::read(&path).map(|b| serde_json::from_slice::<JobRecord>(&b)) {
                Ok(Ok(record)) => out.push(record),
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable job record")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable job record")
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Deletes a record and its owned input.
    pub fn remove(&self, record: &JobRecord, root: &Path) {
        let _ = fs::remove_file(self.path(&record.id));
        if record.input.owned {
            let _ = fs::remove_file(root.join(&record.input.path));
        }
        for extra in &record.input.extra {
            let _ = fs::remove_file(root.join(extra));
        }
    }
}
