//! API keys: parsing the configured entries, and checking a presented key in
//! constant time. Only SHA-256 digests of the keys are kept in memory, and
//! no error message ever contains a key.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::AuthSettings;

/// Shortest accepted key, in characters.
pub const MIN_KEY_LEN: usize = 16;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Train, upload and delete datasets, delete versions, set aliases, cancel jobs.
    Admin,
    /// Predict, recommend, log interactions.
    Inference,
    /// Read jobs, models, datasets (and metrics or docs when protected).
    Read,
}

impl Scope {
    /// The scope's name in key entries and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Inference => "inference",
            Scope::Read => "read",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Admin => 1,
            Scope::Inference => 2,
            Scope::Read => 4,
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        match name {
            "admin" => Some(Scope::Admin),
            "inference" => Some(Scope::Inference),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }
}

/// The scopes a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Whether `scope` is among them.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }
}

/// A key entry or keys file that cannot be used. Messages name the entry by
/// position (and file line), never by its key.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("auth key {entry}: {reason}")]
pub struct KeyError {
    /// `entry 2 of auth.keys` or `line 3 of <file>`.
    pub entry: String,
    pub reason: String,
}

struct StoredKey {
    digest: [u8; 32],
    scopes: Scopes,
}

/// The configured keys. Empty means authentication is off.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<StoredKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

/// What a presented key resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No keys are configured: everything is allowed.
    Open,
    /// A configured key with these scopes.
    Key(Scopes),
    /// No key, or one that is not configured.
    Unknown,
}

impl Keyring {
    /// Keys from `settings.keys` and, if set, `settings.keys_file`.
    ///
    /// # Errors
    /// [`KeyError`] for an unreadable file, an entry without `:`, an unknown
    /// or missing scope, a key shorter than [`MIN_KEY_LEN`] or with
    /// characters outside `A-Z a-z 0-9 - . _ ~ + / =`, or a key listed twice.
    pub fn from_settings(settings: &AuthSettings) -> Result<Keyring, KeyError> {
        let mut ring = Keyring::default();
        for (i, entry) in settings.keys.iter().enumerate() {
            ring.add(entry, || format!("entry {} of auth.keys", i + 1))?;
        }
        if !settings.keys_file.as_os_str().is_empty() {
            ring.add_file(&settings.keys_file)?;
        }
        Ok(ring)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError {
            entry: format!("file {}", path.display()),
            reason: format!("cannot be read: {e}"),
        })?;
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            self.add(entry, || format!("line {} of {}", i + 1, path.display()))?;
        }
        Ok(())
    }

    fn add(&mut self, entry: &str, position: impl Fn() -> String) -> Result<(), KeyError> {
        let fail = |reason: String| KeyError {
            entry: position(),
            reason,
        };
        let Some((scope_names, key)) = entry.split_once(':') else {
            return Err(fail(
                "expected `<scopes>:<key>`, e.g. `admin+read:<key>`".into(),
            ));
        };
        let mut scopes = Scopes::default();
        for name in scope_names.split('+') {
            let scope = Scope::parse(name.trim()).ok_or_else(|| {
                fail(format!(
                    "unknown scope `{name}`; scopes are admin, inference and read"
                ))
            })?;
            scopes.0 |= scope.bit();
        }
        if key.chars().count() < MIN_KEY_LEN {
            return Err(fail(format!(
                "the key is shorter than {MIN_KEY_LEN} characters"
            )));
        }
        if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
        {
            return Err(fail(
                "the key has characters outside A-Z a-z 0-9 - . _ ~ + / =".into(),
            ));
        }
        let digest = digest(key);
        if self.keys.iter().any(|k| k.digest == digest) {
            return Err(fail("the key is listed more than once".into()));
        }
        self.keys.push(StoredKey { digest, scopes });
        Ok(())
    }

    /// Whether no keys are configured (authentication off).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Resolves a presented key (`None`: none was presented). Every
    /// configured key is compared, in constant time, whatever matches.
    pub fn identify(&self, presented: Option<&str>) -> Identity {
        if self.keys.is_empty() {
            return Identity::Open;
        }
        let Some(presented) = presented else {
            return Identity::Unknown;
        };
        let wanted = digest(presented);
        let mut found = subtle::Choice::from(0);
        let mut scopes = 0u8;
        for key in &self.keys {
            let hit = key.digest.ct_eq(&wanted);
            scopes = u8::conditional_select(&scopes, &key.scopes.0, hit);
            found |= hit;
        }
        if bool::from(found) {
            Identity::Key(Scopes(scopes))
        } else {
            Identity::Unknown
        }
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(keys: &[&str]) -> AuthSettings {
        AuthSettings {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            keys_file: Default::default(),
            protect_metrics: true,
            protect_docs: false,
        }
    }

    const ADMIN: &str = "admin-key-0123456789";
    const READER: &str = "reader-key-0123456789";

    #[test]
    fn a_key_resolves_to_its_scopes_and_an_unknown_one_to_nothing() {
        let ring = Keyring::from_settings(&settings(&[
            &format!("admin+read:{ADMIN}"),
            &format!("read:{READER}"),
        ]))
        .unwrap();
        let Identity::Key(admin) = ring.identify(Some(ADMIN)) else {
            panic!("admin key not recognised");
        };
        assert!(admin.contains(Scope::Admin) && admin.contains(Scope::Read));
        assert!(!admin.contains(Scope::Inference));
        let Identity::Key(reader) = ring.identify(Some(READER)) else {
            panic!("reader key not recognised");
        };
        assert!(reader.contains(Scope::Read) && !reader.contains(Scope::Admin));
        assert_eq!(
            ring.identify(Some("admin-key-012345678")),
            Identity::Unknown
        );
        assert_eq!(ring.identify(None), Identity::Unknown);
    }

    #[test]
    fn no_keys_means_open() {
        let ring = Keyring::from_settings(&settings(&[])).unwrap();
        assert!(ring.is_empty());
        assert_eq!(ring.identify(None), Identity::Open);
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_the_key() {
        let secret = "s3cret-s3cret-s3cret";
        for (entry, needle) in [
            (secret.to_string(), "expected `<scopes>:<key>`"),
            (format!("root:{secret}"), "unknown scope `root`"),
            ("read:short".to_string(), "shorter than 16"),
            (format!("read:{secret}\u{e9}"), "characters outside"),
        ] {
            let err = Keyring::from_settings(&settings(&[&entry])).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(needle), "{text}");
            assert!(text.contains("entry 1 of auth.keys"), "{text}");
            assert!(!text.contains(secret), "the key leaked: {text}");
        }
        let twice = format!("read:{READER}");
        let err = Keyring::from_settings(&settings(&[&twice, &twice])).unwrap_err();
        assert!(err.to_string().contains("entry 2"), "{err}");
    }

    #[test]
    fn a_keys_file_adds_entries_and_skips_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(
            &path,
            format!("# service keys\n\ninference:{ADMIN} # the app\n"),
        )
        .unwrap();
        let mut s = settings(&[]);
        s.keys_file = path.clone();
        let ring = Keyring::from_settings(&s).unwrap();
        assert_eq!(ring.len(), 1);
        assert!(
            matches!(ring.identify(Some(ADMIN)), Identity::Key(k) if k.contains(Scope::Inference))
        );

        std::fs::write(&path, "inference:tooshort\n").unwrap();
        let err = Keyring::from_settings(&s).unwrap_err();
        assert!(err.to_string().contains("line 1 of"), "{err}");
    }
}
