//! Model and alias names: `[a-z0-9][a-z0-9._-]{0,63}`, safe as directory names.

/// Why a name was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("invalid {what} `{name}`: names are 1 to 64 characters of a-z, 0-9, `.`, `_` or `-`, starting with a letter or digit")]
pub struct NameError {
    pub what: &'static str,
    pub name: String,
}

/// Checks a model or alias name; `what` says which, for the error.
pub fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(NameError {
            what,
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_rejects_paths_and_lookalikes() {
        for good in ["churn", "a", "fraud-v2.1_x", "0abc"] {
            assert!(check_name("model name", good).is_ok(), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "../x",
            "%2e%2e",
            "Abc",
            "a\0b",
            "_jobs",
            "-x",
            "аbc",
            long.as_str(),
        ] {
            assert!(check_name("model name", bad).is_err(), "{bad:?}");
        }
    }
}
