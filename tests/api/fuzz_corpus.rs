//! The fuzz targets' corpus (`fuzz/corpus/<target>/`), replayed on stable
//! Rust: seeds and every committed crash reproducer must run without a
//! panic. `model.json` is also mutated field by field from a valid card.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

/// Runs `f` on an input, failing with the input's file name on a panic.
fn replay(path: &Path, f: impl FnOnce() + std::panic::UnwindSafe) {
    if std::panic::catch_unwind(f).is_err() {
        panic!("input {} panicked", path.display());
    }
}

#[test]
fn the_dataset_corpus_parses_without_panics() {
    for (path, bytes) in corpus("dataset") {
        replay(&path, || myelin::fuzz::dataset(&bytes));
    }
}

#[test]
fn the_predict_request_corpus_decodes_and_predicts_without_panics() {
    for (path, bytes) in corpus("predict_request") {
        replay(&path, || myelin::fuzz::predict_request(&bytes));
    }
}

#[test]
fn the_audio_corpus_decodes_without_panics() {
    for (path, bytes) in corpus("audio") {
        replay(&path, || myelin::fuzz::audio(&bytes));
    }
}

#[test]
fn the_model_card_corpus_loads_without_panics() {
    let dir = tempfile::tempdir().unwrap();
    myelin::fuzz::write_fixture_version(dir.path()).unwrap();
    for (path, bytes) in corpus("model_card") {
        replay(&path, || myelin::fuzz::model_card(dir.path(), &bytes));
    }
}

/// Every leaf of `value`, as a JSON pointer.
fn leaves(value: &Value, pointer: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                leaves(
                    v,
                    format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate().take(4) {
                leaves(v, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(pointer);
}

#[test]
fn a_valid_model_card_mutated_field_by_field_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    myelin::fuzz::write_fixture_version(dir.path()).unwrap();
    let valid: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model.json")).unwrap()).unwrap();
    let mut pointers = Vec::new();
    leaves(&valid, String::new(), &mut pointers);
    assert!(pointers.len() > 20, "{pointers:?}");
    let replacements = [
        json!(null),
        json!(0),
        json!(-1),
        json!(4294967296u64),
        json!(1e308),
        json!(""),
        json!([]),
        json!({}),
    ];
    for pointer in pointers.iter().filter(|p| !p.is_empty()) {
        for replacement in &replacements {
            let mut card = valid.clone();
            if let Some(slot) = card.pointer_mut(pointer) {
                *slot = replacement.clone();
            }
            let bytes = serde_json::to_vec(&card).unwrap();
            let label = PathBuf::from(format!("{pointer} = {replacement}"));
            replay(&label, || myelin::fuzz::model_card(dir.path(), &bytes));
        }
        // And with the field removed.
        let mut card = valid.clone();
        if let Some((parent, key)) = pointer.rsplit_once('/') {
            if let Some(Value::Object(map)) = card.pointer_mut(parent) {
                map.remove(key);
            }
        }
        let bytes = serde_json::to_vec(&card).unwrap();
        let label = PathBuf::from(format!("{pointer} removed"));
        replay(&label, || myelin::fuzz::model_card(dir.path(), &bytes));
    }
}
