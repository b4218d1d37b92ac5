//! Typed settings: defaults embedded from `config/default.toml`, an optional
//! file, then `MYELIN_*` environment variables (`MYELIN_SERVER__PORT=9000`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::nn::Caps;
use crate::recommend::RecommendCaps;

/// The defaults, every key with a one-line comment.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// All settings. Unknown keys anywhere are an error.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub database: DatabaseSettings,
    pub jobs: JobSettings,
    pub limits: LimitSettings,
    pub training: Caps,
    pub log: LogSettings,
    pub http: HttpSettings,
    pub grpc: GrpcSettings,
    pub auth: AuthSettings,
    /// Compressed serving of tabular models.
    pub serving: ServingSettings,
    /// Caps on recommendation training and serving.
    pub recommend: RecommendCaps,
    pub interactions: InteractionLogSettings,
    /// Caps on the audio clips accepted for decoding.
    pub audio: crate::data::AudioLimits,
}

/// Which weights tabular models are served with.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServingSettings {
    /// The default precision.
    pub precision: crate::tabular::Precision,
    /// Largest accuracy a compressed copy may lose; above it the model is served in f32.
    pub max_accuracy_drop: f64,
    /// Precision per model name, over `precision`.
    pub models: std::collections::BTreeMap<String, crate::tabular::Precision>,
}

/// The per-model interaction logs of `POST /interactions`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionLogSettings {
    /// Events kept per model; older ones are dropped when the log is compacted.
    pub max_events_per_model: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub request_timeout_secs: u64,
    pub upload_timeout_secs: u64,
    pub header_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Where everything is stored (versions, aliases, job records,
    /// datasets, interaction logs): a path, `file:///path` or
    /// `s3://bucket/prefix`; `""` uses `path`.
    pub url: String,
    /// The local directory: the whole store when `url` is `""` (the old
    /// setting, kept as an alias), else only the default parent of
    /// `cache_dir`.
    pub path: PathBuf,
    pub retain_versions: usize,
    pub cache_capacity: usize,
    /// Seconds between polls of the store for versions and aliases written
    /// by other processes: `"auto"` (5 on S3, 2 on disk) or a number; 0 disables.
    pub poll_interval_secs: PollInterval,
    /// Local copies of artifacts downloaded from a remote store; `""`:
    /// `<path>/.cache`.
    pub cache_dir: PathBuf,
}

/// `store.poll_interval_secs`: `"auto"` or seconds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PollInterval {
    Secs(u64),
    Auto(AutoWord),
}

/// The word `auto`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AutoWord {
    Auto,
}

impl StoreSettings {
    /// The parsed store location (`url`, else `path`).
    pub fn location(&self) -> Result<crate::storage::Location, crate::storage::UrlError> {
        if self.url.is_empty() {
            Ok(crate::storage::Location::Local(self.path.clone()))
        } else {
            crate::storage::Location::parse(&self.url)
        }
    }

    /// The poll interval for `location`; `None` when polling is off.
    pub fn poll_interval(
        &self,
        location: &crate::storage::Location,
    ) -> Option<std::time::Duration> {
        let secs = match self.poll_interval_secs {
            PollInterval::Secs(0) => return None,
            PollInterval::Secs(s) => s,
            PollInterval::Auto(_) => match location {
                crate::storage::Location::Local(_) => 2,
                crate::storage::Location::S3 { .. } => 5,
            },
        };
        Some(std::time::Duration::from_secs(secs))
    }

    /// The directory for downloaded artifacts.
    pub fn cache_dir(&self) -> PathBuf {
        if self.cache_dir.as_os_str().is_empty() {
            self.path.join(".cache")
        } else {
            self.cache_dir.clone()
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub workers: usize,
    pub queue_capacity: usize,
    pub retry_after_secs: u64,
    pub retain_finished: usize,
    pub max_active_per_model: usize,
    pub training_nice: i32,
    pub lease_secs: u64,
    pub max_attempts: u32,
}

/// The coordination database of a cluster of replicas.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:5432/db`; "" runs without one (single node).
    pub url: String,
    /// Connections each replica keeps.
    pub max_connections: u32,
    /// Seconds to wait for the database at startup and for a connection.
    pub connect_timeout_secs: u64,
}

impl DatabaseSettings {
    /// The URL when a database is configured.
    pub fn url(&self) -> Option<&str> {
        Some(self.url.trim()).filter(|u| !u.is_empty())
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_request_bytes: usize,
    pub max_train_body_bytes: usize,
    pub max_upload_bytes: u64,
    pub max_rows: usize,
    pub max_columns: usize,
    pub max_field_bytes: usize,
    pub max_instances: usize,
    pub inline_predict_instances: usize,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub metrics: bool,
    pub docs: bool,
    /// Serve the web dashboard at /ui (and redirect / there).
    pub dashboard: bool,
}

/// The Open Inference Protocol's gRPC service, served beside HTTP with the
/// same keys and limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcSettings {
    /// Whether to serve it.
    pub enabled: bool,
    /// Its TCP port on `server.host`; 0 picks a free one.
    pub port: u16,
}

/// API keys and which endpoints need one. The keys are secrets: `Debug`
/// redacts them and they are never serialized.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Key entries `"<scopes>:<key>"`, scopes joined by `+` (`admin+read:…`).
    /// A single string of entries separated by commas or whitespace is
    /// accepted too, which suits `MYELIN_AUTH__KEYS`.
    #[serde(deserialize_with = "key_entries", skip_serializing)]
    pub keys: Vec<String>,
    /// A file of key entries, one per line (`#` starts a comment); `""` for none.
    pub keys_file: PathBuf,
    /// Whether `GET /metrics` needs a key with the `read` scope.
    pub protect_metrics: bool,
    /// Whether `/docs` and `/openapi.json` need a key with the `read` scope.
    pub protect_docs: bool,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("keys_file", &self.keys_file)
            .field("protect_metrics", &self.protect_metrics)
            .field("protect_docs", &self.protect_docs)
            .finish()
    }
}

/// Accepts a list of entries or one string of entries separated by commas
/// or whitespace.
fn key_entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entries {
        One(String),
        Many(Vec<String>),
    }
    let entries = match Entries::deserialize(d)? {
        Entries::One(s) => vec![s],
        Entries::Many(v) => v,
    };
    Ok(entries
        .iter()
        .flat_map(|e| e.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect())
}

/// A settings error: the message names the key and the bad value.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings: {0}")]
pub struct SettingsError(String);

impl Settings {
    /// Defaults, then `file` if given, then `MYELIN_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        // `MYELIN_TEST_*` tells the test suite where its services are; not settings.
        figment = figment.merge(
            Env::prefixed("MYELIN_")
                .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_"))
                .split("__"),
        );
        let settings: Settings = figment
            .extract()
            .map_err(|e| SettingsError(tidy_message(&e.to_string())))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The embedded defaults alone (no file, no environment).
    pub fn defaults() -> Settings {
        match Figment::from(Toml::string(DEFAULT_TOML)).extract() {
            Ok(settings) => settings,
            Err(e) => unreachable!("config/default.toml is embedded and tested: {e}"),
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let positive = [
            ("jobs.workers", self.jobs.workers),
            ("jobs.queue_capacity", self.jobs.queue_capacity),
            ("jobs.lease_secs", self.jobs.lease_secs as usize),
            ("jobs.max_attempts", self.jobs.max_attempts as usize),
            (
                "database.max_connections",
                self.database.max_connections as usize,
            ),
            (
                "database.connect_timeout_secs",
                self.database.connect_timeout_secs as usize,
            ),
            ("limits.max_request_bytes", self.limits.max_request_bytes),
            (
                "limits.max_train_body_bytes",
                self.limits.max_train_body_bytes,
            ),
            ("limits.max_rows", self.limits.max_rows),
            ("limits.max_columns", self.limits.max_columns),
            ("limits.max_field_bytes", self.limits.max_field_bytes),
            ("limits.max_instances", self.limits.max_instances),
            ("training.max_categories", self.training.max_categories),
            ("store.cache_capacity", self.store.cache_capacity),
            ("recommend.max_k", self.recommend.max_k),
            ("recommend.max_items", self.recommend.max_items),
            ("recommend.index_probes", self.recommend.index_probes),
            (
                "interactions.max_events_per_model",
                self.interactions.max_events_per_model,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(SettingsError(format!("`{key}` must be at least 1, got 0")));
            }
        }
        if let Err(e) = self.store.location() {
            return Err(SettingsError(e.to_string()));
        }
        if let Some(url) = self.database.url() {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(SettingsError(format!(
                    "`database.url` must be a postgres:// URL, got `{}`",
                    crate::storage::db::redact(url)
                )));
            }
        }
        for (key, value) in [
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
            (
                "server.header_timeout_secs",
                self.server.header_timeout_secs,
            ),
        ] {
            if value == 0 {
                return Err(SettingsError(format!("`{key}` must be at least 1, got 0")));
            }
        }
        let drop = self.serving.max_accuracy_drop;
        if !(drop.is_finite() && drop >= 0.0) {
            return Err(SettingsError(format!(
                "`serving.max_accuracy_drop` must be a number at least 0, got {drop}"
            )));
        }
        let clip = self.audio.max_clip_secs;
        if !(clip.is_finite() && clip > 0.0) {
            return Err(SettingsError(format!(
                "`audio.max_clip_secs` must be a positive number of seconds, got {clip}"
            )));
        }
        if self.audio.max_sample_rate < 1000 {
            return Err(SettingsError(format!(
                "`audio.max_sample_rate` must be at least 1000 Hz, got {}",
                self.audio.max_sample_rate
            )));
        }
        Ok(())
    }

    /// Limits for the dataset readers.
    pub fn read_limits(&self) -> crate::data::ReadLimits {
        crate::data::ReadLimits {
            max_rows: self.limits.max_rows,
            max_columns: self.limits.max_columns,
            max_field_bytes: self.limits.max_field_bytes,
        }
    }
}

/// figment quotes an expected-list twice (``expected `one of `a`, `b`` ``) and
/// prefixes keys with its profile (`default.`): say it once, by the key's name.
fn tidy_message(message: &str) -> String {
    message
        .replace("expected `one of ", "expected one of ")
        .replace("`` for key", "` for key")
        .replace("for key \"default.", "for key \"")
}

#[cfg(test)]
// figment's Jail closures return figment::Error, which is large by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse_and_match_the_documented_port() {
        let settings = Settings::defaults();
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.store.path, PathBuf::from("models"));
        assert_eq!(settings.jobs.workers, 1);
        assert_eq!(settings.training, Caps::default());
        assert_eq!(settings.recommend, RecommendCaps::default());
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("my.toml", "[server]\nport = 7000\n[jobs]\nworkers = 2\n")?;
            jail.set_env("MYELIN_SERVER__PORT", "9000");
            let settings = Settings::load(Some(Path::new("my.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(settings.server.port, 9000);
            assert_eq!(settings.jobs.workers, 2);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[server]\nprot = 7000\n")?;
            let err = Settings::load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(err.to_string().contains("prot"), "{err}");
            jail.clear_env();
            jail.set_env("MYELIN_SERVR__PORT", "1");
            let err = Settings::load(None).unwrap_err();
            assert!(err.to_string().contains("servr"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn api_keys_come_from_one_environment_string_or_a_toml_list() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "MYELIN_AUTH__KEYS",
                "admin+read:aaaaaaaaaaaaaaaa1, inference:bbbbbbbbbbbbbbbb2",
            );
            let settings = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                settings.auth.keys,
                vec![
                    "admin+read:aaaaaaaaaaaaaaaa1",
                    "inference:bbbbbbbbbbbbbbbb2"
                ]
            );
            assert!(!format!("{settings:?}").contains("aaaaaaaaaaaaaaaa1"));
            jail.clear_env();
            jail.create_file("k.toml", "[auth]\nkeys = [\"read:cccccccccccccccc3\"]\n")?;
            let settings = Settings::load(Some(Path::new("k.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(settings.auth.keys, vec!["read:cccccccccccccccc3"]);
            Ok(())
        });
    }

    /// `MYELIN_*` settings a deployment file sets: `KEY: value` lines, with
    /// compose's `${VAR:-default}` read as its default.
    fn settings_in(file: &str) -> Vec<(String, String)> {
        file.lines()
            .filter_map(|line| line.trim().split_once(':'))
            .filter(|(key, _)| key.starts_with("MYELIN_"))
            .map(|(key, value)| {
                let value = value.trim().trim_matches('"');
                let value = match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
                    Some(v) => v.split_once(":-").map_or("", |(_, d)| d),
                    None => value,
                };
                (key.to_string(), value.to_string())
            })
            .collect()
    }

    #[test]
    fn the_deployment_files_set_only_settings_that_exist() {
        for (name, file) in [
            (
                "deploy/kubernetes/configmap.yaml",
                include_str!("../deploy/kubernetes/configmap.yaml"),
            ),
            ("compose.yaml", include_str!("../compose.yaml")),
        ] {
            let vars = settings_in(file);
            assert!(vars.len() >= 5, "{name}: {vars:?}");
            figment::Jail::expect_with(|jail| {
                jail.clear_env();
                for (key, value) in &vars {
                    jail.set_env(key, value);
                }
                let settings = Settings::load(None).map_err(|e| format!("{name}: {e}"))?;
                assert_eq!(settings.jobs.lease_secs, 30, "{name}");
                Ok(())
            });
        }
    }

    #[test]
    fn a_database_url_must_be_postgres() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MYELIN_DATABASE__URL", "mysql://root:secret@db/x");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(
                err.contains("database.url") && !err.contains("secret"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn zero_workers_is_rejected_with_the_key_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MYELIN_JOBS__WORKERS", "0");
            let err = Settings::load(None).unwrap_err();
            assert!(err.to_string().contains("jobs.workers"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_named_once_without_doubled_quotes() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("bad.toml", "[server]\nprot = 1\n")?;
            let message = Settings::load(Some(Path::new("bad.toml")))
                .unwrap_err()
                .to_string();
            assert!(message.contains("unknown field: found `prot`"), "{message}");
            assert!(
                message.contains("expected one of `host`, `port`"),
                "{message}"
            );
            assert!(!message.contains("``"), "{message}");
            assert!(message.contains("for key \"server.prot\""), "{message}");
            Ok(())
        });
    }
}
