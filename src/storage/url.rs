//! Where the store is: a directory (`models`, `/var/lib/myelin`,
//! `file:///var/lib/myelin`) or an S3 bucket with an optional prefix
//! (`s3://bucket/prefix`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use object_store::{ClientConfigKey, RetryConfig};

use super::StoreError;

/// A parsed `store.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

/// A `store.url` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("store.url `{url}` is not usable: {reason} (expected a path, file:///path or s3://bucket/prefix)")]
pub struct UrlError {
    pub url: String,
    pub reason: String,
}

impl Location {
    /// Parses a path, `file://` URL or `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<Location, UrlError> {
        let err = |reason: &str| UrlError {
            url: url.into(),
            reason: reason.into(),
        };
        if url.trim().is_empty() {
            return Err(err("it is empty"));
        }
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(err("the path is empty"));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = bucket.len() >= 3
                && bucket.len() <= 63
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !valid {
                return Err(err("the bucket name must be 3-63 of a-z 0-9 . -"));
            }
            let prefix = prefix.trim_matches('/').to_string();
            if prefix.split('/').any(|p| p == "." || p == "..") {
                return Err(err("the prefix may not contain `.` or `..`"));
            }
            return Ok(Location::S3 {
                bucket: bucket.into(),
                prefix,
            });
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(err(&format!("scheme `{scheme}` is not supported")));
        }
        Ok(Location::Local(PathBuf::from(url)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The S3 client for `location`, configured from the standard AWS
/// environment variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, `AWS_ALLOW_HTTP`), with
/// conditional writes on ETags (`If-None-Match`, `If-Match`).
pub(super) fn s3(location: &Location) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let Location::S3 { bucket, prefix } = location else {
        return Err(StoreError::InvalidKey {
            key: location.to_string(),
            reason: "not an S3 location".into(),
        });
    };
    // reqwest's rustls is built without a default provider; ring is ours
    // (the default one needs aws-lc-sys, a heavy C build).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Fail fast: publishing retries with its own backoff, and serving never waits on the store.
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(5),
        ..RetryConfig::default()
    };
    let s3 = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(retry)
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            "2s",
        )
        .build()
        .map_err(|e| StoreError::Unavailable {
            op: "open",
            key: location.to_string(),
            reason: e.to_string(),
        })?;
    if prefix.is_empty() {
        Ok(Arc::new(s3))
    } else {
        Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_file_urls_and_s3_urls() {
        assert_eq!(
            Location::parse("models").unwrap(),
            Location::Local("models".into())
        );
        assert_eq!(
            Location::parse("file:///var/lib/m").unwrap(),
            Location::Local("/var/lib/m".into())
        );
        assert_eq!(
            Location::parse("s3://my-bucket/a/b/").unwrap(),
            Location::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse("s3://my-bucket").unwrap().to_string(),
            "s3://my-bucket"
        );
    }

    #[test]
    fn rejects_unknown_schemes_and_bad_buckets() {
        for bad in [
            "",
            "gs://bucket",
            "s3://",
            "s3://Bad_Bucket/x",
            "s3://ok-bucket/../x",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}
