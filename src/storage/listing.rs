//! The listing the registry polls: every object of the model namespace,
//! skipping the service's own top-level prefixes (`_jobs/`, `_datasets/`),
//! so a poll costs the same however many jobs ran or datasets were uploaded.
//!
//! On a remote store this is one delimited listing of the top level (a few
//! names) and one listing starting after `_~` (model names starting with a
//! letter sort after every `_` prefix, so S3 skips those server-side), plus
//! one listing per model whose name starts with a digit.

use futures_util::TryStreamExt;
use object_store::path::Path as Key;
use object_store::ObjectMeta;

use super::{Backend, Entry, Store, StoreError};

/// Top-level prefixes starting with this are the service's, not models.
pub const RESERVED_PREFIX: char = '_';

/// Sorts after every `_<letter>` key and before every lowercase letter.
const AFTER_RESERVED: &str = "_~";

pub(super) fn entry(m: ObjectMeta) -> Entry {
    Entry {
        key: m.location.to_string(),
        size: m.size,
        tag: m
            .e_tag
            .or(m.version)
            .unwrap_or_else(|| format!("{}-{}", m.last_modified.timestamp_micros(), m.size)),
        last_modified: m.last_modified,
    }
}

fn reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

impl Store {
    /// Every object outside the reserved `_` top-level prefixes, in no set order.
    pub async fn list_models(&self) -> Result<Vec<Entry>, StoreError> {
        if let Backend::Local(_) = &*self.backend {
            let mut all = self.list("").await?;
            all.retain(|e| !reserved(&e.key));
            return Ok(all);
        }
        let top = self.inner.list_with_delimiter(None).await;
        let top = self.record("list", "", top)?;
        let mut out = Vec::new();
        for prefix in &top.common_prefixes {
            let name = prefix.to_string();
            // Names sorting before the reserved prefix (digits) are listed one by one.
            if name.as_str() < "_" {
                out.extend(self.list(&name).await?);
            }
        }
        // After every reserved key, before every name starting with a letter.
        let after = Key::from(AFTER_RESERVED);
        let rest: object_store::Result<Vec<_>> = self
            .inner
            .list_with_offset(None, &after)
            .try_collect()
            .await;
        let rest = self.record("list", "", rest)?;
        metrics::counter!("myelin_store_listed_objects_total").increment(rest.len() as u64);
        out.extend(
            rest.into_iter()
                .map(entry)
                .filter(|e| e.key.as_str() > AFTER_RESERVED),
        );
        out.retain(|e| !reserved(&e.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn the_model_listing_skips_jobs_and_datasets() {
        let cache = tempfile::tempdir().unwrap();
        let disk = tempfile::tempdir().unwrap();
        let remote = Store::in_memory(cache.path());
        let local = Store::open(
            &super::super::Location::Local(disk.path().into()),
            cache.path(),
        )
        .unwrap();
        for store in [remote, local] {
            for key in [
                "churn/1/model.json",
                "3d/2/model.json",
                "_jobs/a.json",
                "_datasets/b.csv",
                "shop/aliases.json",
            ] {
                store.put(key, Bytes::from_static(b"{}")).await.unwrap();
            }
            let mut keys: Vec<String> = store
                .list_models()
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.key)
                .filter(|k| !k.ends_with(".lock"))
                .collect();
            keys.sort();
            assert_eq!(
                keys,
                ["3d/2/model.json", "churn/1/model.json", "shop/aliases.json"],
                "{}",
                store.url()
            );
        }
    }
}
