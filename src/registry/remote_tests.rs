//! The registry over a remote-style store (object_store's `InMemory`):
//! card-last publishing with claims, interrupted uploads, aliases by
//! compare-and-swap, and a second registry following the first.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::tests::{records, trained_card};
use super::*;

fn shared() -> (Store, tempfile::TempDir, tempfile::TempDir) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    (Store::in_memory(a.path()), a, b)
}

fn replica(store: &Store, cache: &Path) -> Registry {
    // Same objects, its own local cache directory.
    let store = store.with_cache_dir(cache);
    Registry::with_store(store, 0, 4).unwrap()
}

fn put(store: &Store, key: &str, bytes: &'static [u8]) {
    let key = key.to_string();
    store
        .block(|s| async move { s.put(&key, Bytes::from_static(bytes)).await })
        .unwrap()
        .unwrap();
}

#[test]
fn an_interrupted_upload_is_never_listed_and_its_number_is_not_reused() {
    let (store, cache, _) = shared();
    let registry = Registry::with_store(store.clone(), 0, 4)
        .unwrap()
        .with_orphan_grace(Duration::ZERO);
    let (card, weights, _) = trained_card("churn");
    assert_eq!(registry.save(&card, &weights).unwrap(), 1);
    // A writer claimed 2 and uploaded its weights, then died before the card.
    put(&store, "churn/2/.claim", b"2026-01-01T00:00:00Z");
    put(&store, "churn/2/weights.safetensors", b"partial");
    assert_eq!(registry.versions("churn").unwrap(), vec![1]);
    assert!(matches!(
        registry.load("churn", 2),
        Err(RegistryError::VersionNotFound { .. })
    ));
    assert_eq!(registry.save(&card, &weights).unwrap(), 3);
    assert_eq!(registry.versions("churn").unwrap(), vec![1, 3]);
    assert_eq!(registry.card("churn", 3).unwrap().version, 3);
    // Past the grace period, the next poll removes the orphan.
    registry.poll().unwrap();
    let left = store
        .block(|s| async move { s.list("churn/2").await })
        .unwrap()
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    drop(cache);
}

#[test]
fn two_writers_never_publish_the_same_version() {
    let (store, _a, b) = shared();
    let first = Arc::new(Registry::with_store(store.clone(), 0, 4).unwrap());
    let second = Arc::new(replica(&store, b.path()));
    let (card, weights, _) = trained_card("churn");
    let handles: Vec<_> = [first.clone(), second.clone(), first.clone(), second.clone()]
        .into_iter()
        .map(|r| {
            let (card, weights) = (card.clone(), weights.clone());
            std::thread::spawn(move || r.save(&card, &weights).unwrap())
        })
        .collect();
    let mut versions: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    for v in 1..=4 {
        assert_eq!(first.card("churn", v).unwrap().version, v);
    }
}

#[test]
fn concurrent_alias_moves_from_two_replicas_lose_no_update() {
    let (store, _a, b) = shared();
    let first = Arc::new(Registry::with_store(store.clone(), 0, 4).unwrap());
    let second = Arc::new(replica(&store, b.path()));
    let (card, weights, _) = trained_card("churn");
    first.save(&card, &weights).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let r = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            std::thread::spawn(move || r.set_alias("churn", &format!("a{i}"), 1).unwrap())
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(first.aliases("churn").unwrap().len(), 8);
}

#[test]
fn a_follower_serves_a_new_version_and_an_alias_move_after_one_poll() {
    let (store, _a, b) = shared();
    let writer = Registry::with_store(store.clone(), 0, 4).unwrap();
    let follower = replica(&store, b.path());
    let (card, weights, _) = trained_card("churn");
    writer.save(&card, &weights).unwrap();
    follower.poll().unwrap();
    assert_eq!(follower.resolve("churn", None).unwrap(), 1);
    let loaded = follower.load("churn", 1).unwrap();
    writer.save(&card, &weights).unwrap();
    let report = follower.poll().unwrap();
    assert_eq!(
        report.reloaded, 1,
        "the new serving version is loaded before the switch"
    );
    assert_eq!(follower.resolve("churn", None).unwrap(), 2);
    assert!(follower.cached("churn", 2).is_some());
    // A request holding version 1 finishes on it.
    assert!(loaded.card.version == 1);
    writer.set_alias("churn", PRODUCTION_ALIAS, 1).unwrap();
    follower.poll().unwrap();
    assert_eq!(follower.resolve("churn", None).unwrap(), 1);
}

#[test]
fn an_idle_poll_lists_once_and_downloads_nothing() {
    let (store, _a, b) = shared();
    let writer = Registry::with_store(store.clone(), 0, 4).unwrap();
    let (card, weights, _) = trained_card("churn");
    writer.save(&card, &weights).unwrap();
    writer.set_alias("churn", PRODUCTION_ALIAS, 1).unwrap();
    let follower = replica(&store, b.path());
    let loaded = follower.load("churn", 1).unwrap();
    let before = loaded.model.kind();
    let reads = store.reads();
    for _ in 0..3 {
        assert_eq!(follower.poll().unwrap(), follow::PollReport::default());
    }
    assert_eq!(store.reads(), reads, "no GET while nothing changed");
    assert_eq!(before, "tabular");
    let predictions = match &follower.load("churn", 1).unwrap().model {
        ServingModel::Tabular(m) => m.predict_records(&records()).unwrap().predictions.len(),
        ServingModel::Recommender(_) => 0,
    };
    assert_eq!(predictions, 2);
}
