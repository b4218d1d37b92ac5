use std::path::Path;

use bytes::Bytes;

use super::*;

fn memory() -> (Store, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    (Store::in_memory(cache.path()), cache)
}

fn local() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &Location::Local(dir.path().join("store")),
        &dir.path().join("cache"),
    )
    .unwrap();
    (store, dir)
}

fn both() -> Vec<(Store, tempfile::TempDir)> {
    vec![memory(), local()]
}

fn run<T: Send + 'static>(
    store: &Store,
    op: impl FnOnce(Store) -> std::pin::Pin<Box<dyn Future<Output = T> + Send>>,
) -> T {
    store.block(op).unwrap()
}

#[test]
fn put_get_list_and_delete_round_trip() {
    for (store, _dir) in both() {
        run(&store, |s| {
            Box::pin(async move {
                s.put("m/1/model.json", Bytes::from_static(b"{}"))
                    .await
                    .unwrap();
                s.put("m/1/weights.safetensors", Bytes::from_static(b"w"))
                    .await
                    .unwrap();
                assert_eq!(
                    &s.get("m/1/model.json").await.unwrap().unwrap().bytes[..],
                    b"{}"
                );
                assert!(s.get("m/2/model.json").await.unwrap().is_none());
                let mut keys: Vec<String> = s
                    .list("m")
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.key)
                    .collect();
                keys.sort();
                assert_eq!(keys, vec!["m/1/model.json", "m/1/weights.safetensors"]);
                s.delete_prefix("m/1", "model.json").await.unwrap();
                assert!(s.list("m").await.unwrap().is_empty());
                s.delete("m/1/model.json").await.unwrap();
            })
        });
    }
}

#[test]
fn put_if_absent_refuses_an_existing_key() {
    for (store, _dir) in both() {
        run(&store, |s| {
            Box::pin(async move {
                assert_eq!(
                    s.put_if_absent("k", Bytes::from_static(b"a"))
                        .await
                        .unwrap(),
                    Written::Done
                );
                assert_eq!(
                    s.put_if_absent("k", Bytes::from_static(b"b"))
                        .await
                        .unwrap(),
                    Written::Refused
                );
                assert_eq!(&s.get("k").await.unwrap().unwrap().bytes[..], b"a");
            })
        });
    }
}

#[test]
fn compare_and_swap_refuses_a_stale_read_so_no_update_is_lost() {
    for (store, _dir) in both() {
        run(&store, |s| {
            Box::pin(async move {
                let key = "m/aliases.json";
                assert_eq!(
                    s.compare_and_swap(key, None, Bytes::from_static(b"1"))
                        .await
                        .unwrap(),
                    Written::Done
                );
                assert_eq!(
                    s.compare_and_swap(key, None, Bytes::from_static(b"x"))
                        .await
                        .unwrap(),
                    Written::Refused
                );
                let first = s.get(key).await.unwrap().unwrap();
                let second = s.get(key).await.unwrap().unwrap();
                assert_eq!(
                    s.compare_and_swap(key, Some(&first), Bytes::from_static(b"2"))
                        .await
                        .unwrap(),
                    Written::Done
                );
                assert_eq!(
                    s.compare_and_swap(key, Some(&second), Bytes::from_static(b"3"))
                        .await
                        .unwrap(),
                    Written::Refused
                );
                assert_eq!(&s.get(key).await.unwrap().unwrap().bytes[..], b"2");
            })
        });
    }
}

#[test]
fn publish_dir_writes_the_marker_last_and_refuses_a_taken_prefix() {
    for (store, dir) in both() {
        let stage = |content: &[u8]| {
            let staged = store.staging_dir("m").unwrap();
            std::fs::write(staged.path().join("weights.safetensors"), content).unwrap();
            std::fs::write(staged.path().join("model.json"), content).unwrap();
            staged
        };
        let (first_guard, second_guard) = (stage(b"first"), stage(b"second"));
        let first = first_guard.path().to_path_buf();
        let second = second_guard.path().to_path_buf();
        let published = run(&store, |s| {
            Box::pin(async move {
                let a = s.publish_dir(&first, "m/1", "model.json").await.unwrap();
                let b = s.publish_dir(&second, "m/1", "model.json").await.unwrap();
                (
                    a,
                    b,
                    s.get("m/1/weights.safetensors")
                        .await
                        .unwrap()
                        .unwrap()
                        .bytes,
                )
            })
        });
        assert_eq!(published.0, Written::Done);
        assert_eq!(published.1, Written::Refused);
        assert_eq!(
            &published.2[..],
            b"first",
            "the refused writer must not overwrite"
        );
        let copy = run(&store, |s| {
            Box::pin(async move { s.local_copy("m/1").await.unwrap() })
        });
        assert_eq!(std::fs::read(copy.join("model.json")).unwrap(), b"first");
        assert!(copy.starts_with(dir.path()));
    }
}

#[test]
fn local_copy_does_not_download_unchanged_files_again() {
    let (store, _dir) = memory();
    let before = run(&store, |s| {
        Box::pin(async move {
            s.put("m/1/model.json", Bytes::from_static(b"{}"))
                .await
                .unwrap();
            let dir = s.local_copy("m/1").await.unwrap();
            std::fs::write(dir.join("model.json"), b"[]").unwrap();
            s.local_copy("m/1").await.unwrap()
        })
    });
    assert_eq!(std::fs::read(before.join("model.json")).unwrap(), b"[]");
}

#[test]
fn a_local_store_keeps_the_directory_layout() {
    let (store, dir) = local();
    run(&store, |s| {
        Box::pin(async move {
            s.put("churn/1/model.json", Bytes::from_static(b"{}"))
                .await
                .unwrap();
        })
    });
    assert!(Path::new(&dir.path().join("store/churn/1/model.json")).is_file());
}

#[test]
fn an_unreachable_bucket_is_an_error_at_open() {
    std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_DEFAULT_REGION", "us-east-1");
    let cache = tempfile::tempdir().unwrap();
    let location = Location::parse("s3://no-such-bucket/models").unwrap();
    let err = Store::open(&location, cache.path()).unwrap_err();
    assert_eq!(err.kind(), "unavailable", "{err}");
}
