//! The command line as a user runs it: configuration, error messages, file rows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn churn_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/churn.csv")
}

/// Runs `myelin` in `cwd` with only the given `MYELIN_*` variables set.
fn myelin(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_myelin"));
    command.current_dir(cwd).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("MYELIN_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn train_args(data: &Path) -> Vec<String> {
    [
        "train",
        "--data",
        &data.display().to_string(),
        "--target",
        "churned",
        "--name",
        "churn",
        "--param",
        "epochs=3",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn cli_train_writes_to_the_store_the_environment_configures() {
    let cwd = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let args = train_args(&churn_csv());
    let out = myelin(
        cwd.path(),
        &[("MYELIN_STORE__PATH", store.path())],
        &strs(&args),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(store.path().join("churn/1/model.json").is_file());
    assert!(!cwd.path().join("models").exists(), "./models was written");
}

#[test]
fn cli_train_and_predict_use_the_store_of_a_config_file() {
    let cwd = tempfile::tempdir().unwrap();
    let store = cwd.path().join("elsewhere");
    let config = cwd.path().join("my.toml");
    std::fs::write(
        &config,
        format!("[store]\npath = {:?}\n", store.display().to_string()),
    )
    .unwrap();
    let mut args = train_args(&churn_csv());
    args.extend(["--config".to_string(), config.display().to_string()]);
    let out = myelin(cwd.path(), &[], &strs(&args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(store.join("churn/1/model.json").is_file());
    let data = churn_csv().display().to_string();
    let config = config.display().to_string();
    let predict = [
        "predict", "--name", "churn", "--data", &data, "--config", &config,
    ];
    let out = myelin(cwd.path(), &[], &predict);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("label,p_no,p_yes\n"));
}

#[test]
fn cli_errors_say_each_cause_once() {
    let cwd = tempfile::tempdir().unwrap();
    let mut args = train_args(&churn_csv());
    args[4] = "nope".to_string();
    let out = myelin(
        cwd.path(),
        &[("MYELIN_STORE__PATH", cwd.path())],
        &strs(&args),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("nope").count(), 1, "{stderr}");
}

#[test]
fn cli_predict_names_the_row_of_the_file_not_an_instance() {
    let cwd = tempfile::tempdir().unwrap();
    let env = [("MYELIN_STORE__PATH", cwd.path())];
    let out = myelin(cwd.path(), &env, &strs(&train_args(&churn_csv())));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = cwd.path().join("rows.json");
    std::fs::write(
        &rows,
        r#"[{"tenure": 3, "plan": "basic", "monthly": 31.0, "support_calls": 4},
            {"tenure": 3, "plan": "basic", "monthly": 31.0, "support_calls": "many"}]"#,
    )
    .unwrap();
    let data = rows.display().to_string();
    let out = myelin(
        cwd.path(),
        &env,
        &["predict", "--name", "churn", "--data", &data],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rows.json row 2: "), "{stderr}");
    assert!(stderr.contains("support_calls"), "{stderr}");
    assert!(!stderr.contains("instance"), "{stderr}");
}
