//! Append-only logs (the recommender's interaction logs).
//!
//! Appending is not an object-store primitive, so a log has two layouts:
//! - **local disk**: one file at the key, appended in place and fsynced per
//!   append (the layout older releases wrote);
//! - **remote**: one segment object per append under the key's stem
//!   (`shop/interactions.ndjson` → `shop/interactions/<uuid v7>.ndjson`),
//!   read back in key order. A plain object at the key itself (a log copied
//!   from a disk store) is read first.
//!
//! Compaction ([`Store::replace_log`]) writes the kept bytes and removes what
//! was read: a rename on disk; on a remote store one new segment named to
//! sort just before the newest segment read, after which the segments read
//! are deleted, so segments appended meanwhile by another writer survive.

use bytes::Bytes;

use super::{fsops, Backend, Store, StoreError};

/// What [`Store::read_log`] found.
#[derive(Clone, Debug, Default)]
pub struct LogContents {
    /// Every record, in append order, each ending in a newline.
    pub bytes: Vec<u8>,
    /// Objects read (segments on a remote store), for [`Store::replace_log`].
    pub parts: Vec<String>,
}

fn segment_prefix(key: &str) -> &str {
    key.rsplit_once('.')
        .filter(|(stem, _)| !stem.ends_with('/') && !stem.is_empty())
        .map_or(key, |(stem, _)| stem)
}

fn extension(key: &str) -> &str {
    key.rsplit_once('.').map_or("", |(_, ext)| ext)
}

fn push_record(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
}

impl Store {
    /// Appends `bytes` (whole newline-terminated records) to the log `key`,
    /// durably: fsynced on disk, one segment object elsewhere.
    pub async fn append_log(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Local(root) => {
                let path = root.join(key);
                let result = tokio::task::spawn_blocking(move || append_file(&path, &bytes))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|r| r)
                    .map_err(|e| object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: Box::new(e),
                    });
                self.record("append", key, result)
            }
            Backend::Remote => {
                let segment = format!(
                    "{}/{}.{}",
                    segment_prefix(key),
                    uuid::Uuid::now_v7().simple(),
                    extension(key)
                );
                self.put(&segment, bytes).await
            }
        }
    }

    /// The whole log `key` (empty when it does not exist).
    pub async fn read_log(&self, key: &str) -> Result<LogContents, StoreError> {
        let mut contents = LogContents::default();
        if let Some(object) = self.get(key).await? {
            push_record(&mut contents.bytes, &object.bytes);
            contents.parts.push(key.to_string());
        }
        if let Backend::Remote = &*self.backend {
            let mut segments: Vec<String> = self
                .list(segment_prefix(key))
                .await?
                .into_iter()
                .map(|e| e.key)
                .collect();
            segments.sort();
            for segment in segments {
                // A segment deleted by a concurrent compaction is in the compacted one.
                if let Some(object) = self.get(&segment).await? {
                    push_record(&mut contents.bytes, &object.bytes);
                    contents.parts.push(segment);
                }
            }
        }
        Ok(contents)
    }

    /// Replaces what `read` (from [`Store::read_log`]) held with `bytes`;
    /// records appended since are kept.
    pub async fn replace_log(
        &self,
        key: &str,
        read: &LogContents,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Local(_) => self.put(key, bytes).await,
            Backend::Remote => {
                let newest = read
                    .parts
                    .iter()
                    .filter(|p| p.as_str() != key)
                    .max()
                    .and_then(|p| p.rsplit_once('/'))
                    .map(|(_, name)| name.split('.').next().unwrap_or(name).to_string())
                    .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
                // `<newest>-c.<ext>` sorts after every older segment and before `<newest>.<ext>`.
                let compacted = format!("{}/{newest}-c.{}", segment_prefix(key), extension(key));
                self.put(&compacted, bytes).await?;
                for part in read.parts.iter().filter(|p| **p != compacted) {
                    self.delete(part).await?;
                }
                Ok(())
            }
        }
    }
}

fn append_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    fsops::create_dir_durable(dir)?;
    let created = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    if created {
        fsops::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<&str> {
        std::str::from_utf8(bytes).unwrap().lines().collect()
    }

    async fn appends_read_back_in_order_and_compaction_keeps_later_appends(store: Store) {
        let key = "shop/interactions.ndjson";
        assert!(store.read_log(key).await.unwrap().bytes.is_empty());
        for i in 0..5 {
            store
                .append_log(key, Bytes::from(format!("{{\"n\":{i}}}\n")))
                .await
                .unwrap();
        }
        let read = store.read_log(key).await.unwrap();
        assert_eq!(lines(&read.bytes).len(), 5);
        assert_eq!(lines(&read.bytes)[4], "{\"n\":4}");
        // Another writer appends between the read and the compaction.
        store
            .append_log(key, Bytes::from_static(b"{\"n\":5}\n"))
            .await
            .unwrap();
        store
            .replace_log(key, &read, Bytes::from_static(b"{\"n\":3}\n{\"n\":4}\n"))
            .await
            .unwrap();
        let after = store.read_log(key).await.unwrap();
        match store.local_root() {
            // On disk the file is rewritten under the caller's lock: the append is the caller's to keep.
            Some(_) => assert_eq!(lines(&after.bytes), ["{\"n\":3}", "{\"n\":4}"]),
            None => {
                assert_eq!(lines(&after.bytes), ["{\"n\":3}", "{\"n\":4}", "{\"n\":5}"]);
                assert_eq!(after.parts.len(), 2);
            }
        }
    }

    #[tokio::test]
    async fn a_remote_log_is_segments_read_in_order_and_compaction_keeps_concurrent_appends() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::in_memory(cache.path());
        appends_read_back_in_order_and_compaction_keeps_later_appends(store.clone()).await;
        let keys: Vec<String> = store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert!(
            keys.iter().all(|k| k.starts_with("shop/interactions/")),
            "{keys:?}"
        );
    }

    #[tokio::test]
    async fn a_disk_log_is_one_file_appended_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &super::super::Location::Local(dir.path().into()),
            dir.path(),
        )
        .unwrap();
        appends_read_back_in_order_and_compaction_keeps_later_appends(store).await;
        let text = std::fs::read_to_string(dir.path().join("shop/interactions.ndjson")).unwrap();
        assert_eq!(text, "{\"n\":3}\n{\"n\":4}\n");
    }
}
