//! API key checks: which scope each route needs, and the middleware that
//! answers 401 (no or unknown key) or 403 (key without the scope) before a
//! handler or body extractor runs.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::config::AuthSettings;
use crate::service::auth::{Identity, Scope};
use crate::service::{AppState, ErrorCode};

/// What a request needs to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: liveness, readiness, and metrics or docs when unprotected.
    Open,
    /// A key holding this scope.
    Scope(Scope),
    /// Any configured key (paths that match no route).
    AnyKey,
}

/// The access rule for `method` on the route template `route` (`None` when
/// no route matched) at the request path `path`. Routes missing from the
/// table need `admin`, so a new route is closed until it is listed.
pub fn required_access(
    method: &Method,
    route: Option<&str>,
    path: &str,
    auth: &AuthSettings,
) -> Access {
    use Scope::{Admin, Inference, Read};
    let protected = |on: bool| {
        if on {
            Access::Scope(Read)
        } else {
            Access::Open
        }
    };
    if is_docs(path) {
        return protected(auth.protect_docs);
    }
    let Some(route) = route else {
        return Access::AnyKey;
    };
    let read = *method == Method::GET || *method == Method::HEAD;
    match route {
        "/healthz" | "/readyz" | "/v2" | "/v2/health/live" | "/v2/health/ready" => Access::Open,
        // The dashboard's page and assets hold no data; its API calls carry the key.
        "/" | "/ui" | "/ui/assets/{build}/{file}" => Access::Open,
        "/metrics" => protected(auth.protect_metrics),
        "/predict"
        | "/models/{name}/predict"
        | "/explain"
        | "/models/{name}/explain"
        | "/recommend"
        | "/interactions"
        | "/models/{name}/items/{item}/similar"
        | "/v2/models/{name}"
        | "/v2/models/{name}/versions/{version}"
        | "/v2/models/{name}/ready"
        | "/v2/models/{name}/versions/{version}/ready"
        | "/v2/models/{name}/infer"
        | "/v2/models/{name}/versions/{version}/infer" => Access::Scope(Inference),
        "/jobs"
        | "/jobs/{id}"
        | "/jobs/{id}/events"
        | "/datasets"
        | "/datasets/{id}"
        | "/models"
        | "/models/{name}"
        | "/models/{name}/versions/{version}"
        | "/models/{name}/versions/{version}/export"
        | "/models/{name}/users"
            if read =>
        {
            Access::Scope(Read)
        }
        _ => Access::Scope(Admin),
    }
}

/// Whether `path` is the API documentation (Swagger UI or the spec), which a
/// browser opens directly: there the key may also come as HTTP Basic
/// credentials (any user name, the key as password), so the browser's own
/// login prompt unlocks it.
fn is_docs(path: &str) -> bool {
    path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/")
}

/// The presented key, if the request has `Authorization: Bearer <key>` (or,
/// with `basic`, `Authorization: Basic base64(<user>:<key>)`).
fn presented_key(req: &Request, basic: bool) -> Result<Option<Cow<'_, str>>, ()> {
    use base64::Engine;
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, credentials) = value.split_once(' ').ok_or(())?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(Cow::Borrowed(credentials.trim())));
    }
    if !(basic && scheme.eq_ignore_ascii_case("basic")) {
        return Err(());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (_user, key) = decoded.split_once(':').ok_or(())?;
    Ok(Some(Cow::Owned(key.to_string())))
}

fn unauthorized(detail: &str, docs: bool) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, detail).into_response();
    let challenge = if docs {
        "Basic realm=\"myelin docs: any user name, an API key with the read scope as password\", charset=\"UTF-8\""
    } else {
        "Bearer realm=\"myelin\""
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// Middleware: lets the request through if its key may use the route.
pub async fn check_key(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if state.keys.is_empty() {
        return next.run(req).await;
    }
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
    let access = required_access(req.method(), route, req.uri().path(), &state.settings.auth);
    if access == Access::Open {
        return next.run(req).await;
    }
    let docs = is_docs(req.uri().path());
    let Ok(presented) = presented_key(&req, docs) else {
        return unauthorized("the Authorization header must be `Bearer <key>`", docs);
    };
    let scopes = match state.keys.identify(presented.as_deref()) {
        Identity::Open => return next.run(req).await,
        Identity::Key(scopes) => scopes,
        Identity::Unknown if presented.is_none() => {
            return unauthorized(
                "this endpoint needs an API key: `Authorization: Bearer <key>`",
                docs,
            )
        }
        Identity::Unknown => return unauthorized("the API key is not valid", docs),
    };
    match access {
        Access::Scope(scope) if !scopes.contains(scope) => ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "this API key lacks the `{}` scope that {} {} needs",
                scope.as_str(),
                req.method(),
                route.unwrap_or(req.uri().path())
            ),
        )
        .with("scope", scope.as_str())
        .into_response(),
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AuthSettings {
        AuthSettings {
            keys: Vec::new(),
            keys_file: Default::default(),
            protect_metrics: true,
            protect_docs: false,
        }
    }

    #[test]
    fn every_route_has_the_documented_scope() {
        use Scope::*;
        let a = auth();
        let rule = |m: Method, route: &str| required_access(&m, Some(route), route, &a);
        assert_eq!(rule(Method::POST, "/train"), Access::Scope(Admin));
        assert_eq!(rule(Method::POST, "/datasets"), Access::Scope(Admin));
        assert_eq!(rule(Method::GET, "/datasets"), Access::Scope(Read));
        assert_eq!(rule(Method::DELETE, "/datasets/{id}"), Access::Scope(Admin));
        assert_eq!(rule(Method::GET, "/jobs/{id}/events"), Access::Scope(Read));
        assert_eq!(rule(Method::DELETE, "/jobs/{id}"), Access::Scope(Admin));
        assert_eq!(
            rule(Method::DELETE, "/models/{name}/versions/{version}"),
            Access::Scope(Admin)
        );
        assert_eq!(
            rule(Method::PUT, "/models/{name}/aliases/{alias}"),
            Access::Scope(Admin)
        );
        assert_eq!(rule(Method::POST, "/predict"), Access::Scope(Inference));
        assert_eq!(rule(Method::POST, "/explain"), Access::Scope(Inference));
        assert_eq!(
            rule(Method::POST, "/models/{name}/explain"),
            Access::Scope(Inference)
        );
        assert_eq!(rule(Method::GET, "/recommend"), Access::Scope(Inference));
        assert_eq!(
            rule(Method::POST, "/interactions"),
            Access::Scope(Inference)
        );
        assert_eq!(rule(Method::GET, "/healthz"), Access::Open);
        assert_eq!(rule(Method::GET, "/v2/health/ready"), Access::Open);
        assert_eq!(
            rule(Method::POST, "/v2/models/{name}/infer"),
            Access::Scope(Inference)
        );
        assert_eq!(
            rule(Method::GET, "/v2/models/{name}"),
            Access::Scope(Inference)
        );
        assert_eq!(rule(Method::GET, "/metrics"), Access::Scope(Read));
        assert_eq!(rule(Method::GET, "/docs/"), Access::Open);
        assert_eq!(rule(Method::GET, "/some/new/route"), Access::Scope(Admin));
        assert_eq!(
            required_access(&Method::GET, None, "/nowhere", &a),
            Access::AnyKey
        );
    }
}
