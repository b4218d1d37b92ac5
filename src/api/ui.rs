//! The web dashboard: static assets compiled into the binary from `ui/`.
//!
//! `GET /ui` answers the page (revalidated on every load through its ETag);
//! assets live under `/ui/assets/<build>/…`, where `<build>` is a hash of
//! every asset, so they are cached for a year and a new binary changes
//! their URLs. Every answer carries a Content-Security-Policy that allows
//! only this server's own scripts, styles and API.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::ApiPath;
use crate::service::ErrorCode;

/// The page; `{{build}}` is replaced by the asset hash.
const INDEX: &str = include_str!("../../ui/index.html");

/// Asset file name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/dom.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/chart.js"),
    ),
    (
        "models.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/models.js"),
    ),
    (
        "version.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/version.js"),
    ),
    (
        "jobs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/jobs.js"),
    ),
    (
        "train.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/train.js"),
    ),
    (
        "try.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/try.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../ui/favicon.svg"),
    ),
];

/// The policy sent with the page and every asset: nothing from other hosts,
/// no inline scripts or styles, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Cache header of hashed assets.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The asset hash (16 hex digits) and the page with its asset URLs filled in.
struct Built {
    build: String,
    page: String,
    etag: String,
}

static BUILT: LazyLock<Built> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    hasher.update(INDEX.as_bytes());
    for (name, _, bytes) in ASSETS {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    let build = hex::encode(&hasher.finalize()[..8]);
    let page = INDEX.replace("{{build}}", &build);
    let etag = format!("\"{build}\"");
    Built { build, page, etag }
});

fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /ui`: the dashboard page. Answers 304 when `If-None-Match` holds its ETag.
pub async fn page(headers: HeaderMap) -> Response {
    let built = &*BUILT;
    let etag = HeaderValue::from_str(&built.etag).unwrap_or(HeaderValue::from_static("\"ui\""));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == built.etag || t.trim() == "*")
        });
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag),
    ];
    if fresh {
        return secured((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    secured(
        (
            cache,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            built.page.clone(),
        )
            .into_response(),
    )
}

/// `GET /ui/assets/{build}/{file}`: a script, stylesheet or icon. An old
/// build hash is answered 404, so a stale page never mixes asset versions.
pub async fn asset(ApiPath((build, file)): ApiPath<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|(name, _, _)| *name == file);
    match found {
        Some((_, content_type, bytes)) if build == BUILT.build => secured(
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                    (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
                ],
                *bytes,
            )
                .into_response(),
        ),
        _ => ApiError::not_found(
            ErrorCode::AssetNotFound,
            format!("no dashboard asset `{build}/{file}`; reload /ui"),
        )
        .into_response(),
    }
}

/// `GET /`: to the dashboard.
pub async fn root() -> Redirect {
    Redirect::temporary("/ui")
}
