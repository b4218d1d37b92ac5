use std::sync::atomic::AtomicBool;

use serde_json::{json, Map, Value};

use super::*;
use crate::data::{fingerprint, read_csv, ReadLimits};
use crate::nn::{Caps, Control};
use crate::tabular::{self, TrainSpec};

fn churn_csv() -> String {
    let mut csv = String::from("tenure,plan,monthly,churned\n");
    for i in 0..120 {
        let tenure = (i * 7) % 60;
        let plan = ["basic", "pro", "team"][i % 3];
        let monthly = 20.0 + (i % 9) as f64 * 10.0;
        let churned = if tenure < 20 && plan == "basic" {
            "yes"
        } else {
            "no"
        };
        csv.push_str(&format!("{tenure},{plan},{monthly},{churned}\n"));
    }
    csv
}

pub(super) fn trained_card(name: &str) -> (ModelCard, Vec<u8>, crate::tabular::TabularModel) {
    let csv = churn_csv();
    let table = read_csv(csv.as_bytes(), &ReadLimits::default()).unwrap();
    let mut spec = TrainSpec {
        target: "churned".into(),
        ..TrainSpec::default()
    };
    spec.params.epochs = 5;
    spec.params.hidden_layers = vec![8];
    let cancel = AtomicBool::new(false);
    let trained = tabular::train(&table, &spec, &Caps::default(), Control::none(&cancel)).unwrap();
    let fp = fingerprint(csv.as_bytes(), table.rows(), table.columns.len());
    let card = ModelCard::tabular(name, &trained, fp, None);
    let weights = weights_bytes(&trained.model.mlp).unwrap();
    (card, weights, trained.model)
}

pub(super) fn records() -> Vec<Map<String, Value>> {
    [
        json!({"tenure": 3, "plan": "basic", "monthly": 30}),
        json!({"tenure": 50, "plan": "team", "monthly": 90}),
    ]
    .into_iter()
    .map(|v| v.as_object().cloned().unwrap())
    .collect()
}

#[test]
fn a_saved_version_loads_and_predicts_exactly_as_before_saving() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), 0, 4).unwrap();
    let (card, weights, model) = trained_card("churn");
    let before = model.predict_records(&records()).unwrap().predictions;
    let version = registry.save(&card, &weights).unwrap();
    assert_eq!(version, 1);
    let loaded = registry.load("churn", 1).unwrap();
    let ServingModel::Tabular(reloaded) = &loaded.model else {
        panic!("expected a tabular model");
    };
    assert_eq!(
        reloaded.predict_records(&records()).unwrap().predictions,
        before
    );
    assert_eq!(loaded.card.version, 1);
    assert_eq!(loaded.card.fingerprint.sha256.len(), 64);
}

#[test]
fn versions_count_from_one_and_serving_prefers_production_over_latest() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), 0, 4).unwrap();
    let (card, weights, _) = trained_card("churn");
    assert_eq!(registry.save(&card, &weights).unwrap(), 1);
    assert_eq!(registry.save(&card, &weights).unwrap(), 2);
    assert_eq!(registry.resolve("churn", None).unwrap(), 2);
    registry.set_alias("churn", "production", 1).unwrap();
    assert_eq!(registry.resolve("churn", None).unwrap(), 1);
    assert_eq!(registry.resolve("churn", Some(2)).unwrap(), 2);
    assert!(matches!(
        registry.delete_version("churn", 1),
        Err(RegistryError::VersionAliased { .. })
    ));
    registry.delete_alias("churn", "production").unwrap();
    registry.delete_version("churn", 1).unwrap();
    assert_eq!(registry.versions("churn").unwrap(), vec![2]);
    assert!(matches!(
        registry.resolve("churn", Some(1)),
        Err(RegistryError::VersionNotFound { .. })
    ));
}

#[test]
fn retention_keeps_the_newest_unaliased_versions_and_every_aliased_one() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), 2, 4).unwrap();
    let (card, weights, _) = trained_card("churn");
    registry.save(&card, &weights).unwrap();
    registry.set_alias("churn", "production", 1).unwrap();
    for _ in 0..3 {
        registry.save(&card, &weights).unwrap();
    }
    assert_eq!(registry.versions("churn").unwrap(), vec![1, 3, 4]);
}

#[test]
fn a_failed_write_leaves_no_version_and_no_temporary_directory() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), 0, 4).unwrap();
    let result = registry.save_with("churn", |tmp, _| {
        std::fs::write(tmp.join(WEIGHTS_FILE), b"partial").unwrap();
        Err(RegistryError::Io {
            path: "disk".into(),
            source: std::io::Error::other("disk full"),
        })
    });
    assert!(result.is_err());
    assert!(matches!(
        registry.versions("churn"),
        Err(RegistryError::ModelNotFound(_))
    ));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("churn"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn temporary_directories_of_interrupted_writes_are_never_listed_and_are_cleaned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), 0, 4).unwrap();
    let (card, weights, _) = trained_card("churn");
    registry.save(&card, &weights).unwrap();
    let stale = dir.path().join("churn").join(".tmp-crashed");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join(CARD_FILE), b"{").unwrap();
    std::fs::create_dir(dir.path().join("churn").join("7")).unwrap();
    assert_eq!(registry.versions("churn").unwrap(), vec![1]);
    drop(registry);
    let _reopened = Registry::open(dir.path(), 0, 4).unwrap();
    assert!(!stale.exists());
}

#[test]
fn a_corrupt_weights_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), 0, 4).unwrap();
    let (card, weights, _) = trained_card("churn");
    registry.save(&card, &weights).unwrap();
    std::fs::write(dir.path().join("churn/1").join(WEIGHTS_FILE), b"garbage").unwrap();
    assert!(matches!(
        registry.load("churn", 1),
        Err(RegistryError::Corrupt(_))
    ));
}

#[test]
fn weights_are_stored_by_layer_name_in_pytorch_layout() {
    let (_, weights, model) = trained_card("churn");
    let tensors = tensors_from_bytes(&weights, std::path::Path::new("w")).unwrap();
    let first = tensors
        .iter()
        .find(|t| t.name == "layers.0.weight")
        .unwrap();
    assert_eq!(first.shape, vec![8, model.pipeline.width()]);
    assert!(tensors.iter().any(|t| t.name == "layers.1.bias"));
}

#[test]
fn concurrent_requests_for_a_cold_version_load_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(Registry::open(dir.path(), 0, 4).unwrap());
    let (card, weights, _) = trained_card("churn");
    registry.save(&card, &weights).unwrap();
    let loads_before = registry.loaded_count();
    assert_eq!(loads_before, 0);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let registry = registry.clone();
            std::thread::spawn(move || registry.load("churn", 1).unwrap())
        })
        .collect();
    let loaded: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(loaded.iter().all(|m| std::sync::Arc::ptr_eq(m, &loaded[0])));
    assert_eq!(registry.loaded_count(), 1);
}

#[test]
fn save_files_publishes_every_file_of_a_version_and_refuses_paths() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), 0, 4).unwrap();
    let (card, weights, _) = trained_card("shop");
    let version = registry
        .save_files(&card, &[(WEIGHTS_FILE, &weights), ("vocab.json", b"{}")])
        .unwrap();
    let version_dir = dir.path().join("shop").join(version.to_string());
    assert_eq!(
        std::fs::read(version_dir.join("vocab.json")).unwrap(),
        b"{}"
    );
    assert_eq!(
        std::fs::read(version_dir.join(WEIGHTS_FILE)).unwrap(),
        weights
    );
    for bad in ["../escape", ".hidden", CARD_FILE, ""] {
        let err = registry.save_files(&card, &[(bad, b"x")]).unwrap_err();
        assert!(
            err.to_string().contains("not a version file name"),
            "{bad}: {err}"
        );
    }
    assert_eq!(registry.versions("shop").unwrap(), vec![version]);
}

/// Every byte the service persists (versions, aliases, job records and
/// inputs, datasets, interaction logs) goes through the storage seam: no
/// production code outside `src/storage/` touches the file system, except
/// for files that are no part of the store.
#[test]
fn nothing_above_the_storage_seam_touches_the_file_system() {
    const FILE_SYSTEM: [&str; 11] = [
        "std::fs",
        "tokio::fs",
        "fs::write(",
        "fs::read",
        "fs::remove",
        "fs::rename",
        "fs::copy(",
        "File::create(",
        "File::open(",
        "OpenOptions::new(",
        "registry::fsops",
    ];
    // Files outside the seam that use the file system, and for what: none of it is stored data.
    const OTHER_USERS: [&str; 3] = [
        "cli.rs",          // the data, report and prediction files a user names
        "fuzz.rs",         // fuzz harness scratch directories
        "service/auth.rs", // the API keys file named in the configuration
    ];
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let is_test = rel.ends_with("tests.rs") || rel.ends_with("_tests.rs");
            let below_seam = rel.starts_with("storage/");
            if !rel.ends_with(".rs") || is_test || below_seam || OTHER_USERS.contains(&rel.as_str())
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let production = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in production.lines().enumerate() {
                if FILE_SYSTEM.iter().any(|w| line.contains(w)) {
                    offenders.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "file system use above the storage seam: {offenders:#?}"
    );
}
