//! HTTP only: routes, extractors, request and response types (some are the
//! service's own, which derive their schema there: the training request, the
//! prediction answer), the OpenAPI document, and errors as problem+json
//! (`convert.rs` maps every service error). No ML and no file I/O here.

pub mod auth;
pub mod convert;
pub mod datasets;
pub mod error;
pub mod explain;
pub mod export;
pub mod extract;
pub mod health;
pub mod jobs;
pub mod models;
pub mod oip;
pub mod predict;
pub mod recommend;
pub mod train;
pub mod ui;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::service::{AppState, ErrorCode};
use error::ApiError;

/// The OpenAPI document of every route.
#[derive(OpenApi)]
#[openapi(
    info(title = "Myelin", description = "Train small neural networks over HTTP and serve predictions on raw records.", license(name = "Apache-2.0")),
    paths(
        train::train,
        jobs::list_jobs, jobs::get_job, jobs::cancel_job, jobs::job_events,
        datasets::upload, datasets::list, datasets::get, datasets::delete,
        models::list_models, models::get_model, models::get_version, models::delete_version,
        models::put_alias, models::delete_alias,
        predict::predict, predict::predict_named,
        explain::explain, explain::explain_named, export::export,
        recommend::recommend_get, recommend::recommend_post, recommend::log_interactions,
        recommend::similar, recommend::users,
        health::healthz, health::readyz, health::metrics,
        oip::server_metadata, oip::live, oip::ready, oip::model_metadata, oip::version_metadata,
        oip::model_ready, oip::version_ready, oip::infer, oip::infer_version,
    ),
    modifiers(&BearerAuth, &CommonResponses),
    security(("bearer" = [])),
    tags(
        (name = "training", description = "Start training jobs"),
        (name = "jobs", description = "Follow and cancel training jobs"),
        (name = "datasets", description = "Upload datasets for training"),
        (name = "models", description = "The versioned model registry"),
        (name = "prediction", description = "Predictions on raw records"),
        (name = "recommendation", description = "Item recommendations and logged interactions"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "inference-protocol", description = "The Open Inference Protocol (V2) of Triton, KServe and MLServer: health, metadata and inference with tensors"),
    )
)]
pub struct ApiDoc;

/// Declares the `Authorization: Bearer <key>` scheme the API uses when keys
/// are configured.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key with the scope the operation needs: `admin` (train, datasets, \
                         deletes, aliases, cancel), `inference` (predict, recommend, interactions, /v2 models) \
                         or `read` (GET on jobs, models, datasets). Not needed when the service \
                         runs without keys; /healthz and /readyz never need one.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Documents the problem answers any operation can give besides its own:
/// 400 (malformed path, query or body), 401 and 403 (keys), 408 (timeout),
/// 413 and 415 for operations with a body, and 422 for operations with a
/// body or parameters.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let open = operation.security.as_ref().is_some_and(|s| {
                    s.iter()
                        .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
                });
                let has_body = operation.request_body.is_some();
                let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut common = vec![
                    ("400", "Malformed path, query or body"),
                    ("408", "The request took longer than the configured timeout"),
                ];
                if !open {
                    common.push(("401", "No API key, or one that is not configured"));
                    common.push(("403", "The API key lacks the scope this operation needs"));
                }
                if has_body {
                    common.push(("413", "The body exceeds the configured limit"));
                    common.push(("415", "Unsupported Content-Type"));
                }
                if has_body || has_parameters {
                    common.push(("422", "A parameter or the body is well-formed but invalid"));
                }
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| problem(description).into());
                }
            }
        }
    }
}

/// The OpenAPI document as pretty JSON (what `openapi/openapi.json` holds).
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application router with every route and middleware.
pub fn router(state: Arc<AppState>) -> Router {
    let limits = &state.settings.limits;
    let server = &state.settings.server;
    let request_timeout = Duration::from_secs(server.request_timeout_secs);
    let upload_timeout = Duration::from_secs(server.upload_timeout_secs);

    let uploads = Router::new()
        .route(
            "/train",
            post(train::train)
                .layer(DefaultBodyLimit::max(limits.max_train_body_bytes))
                .layer(middleware::from_fn_with_state(
                    BodyLimit {
                        setting: "limits.max_train_body_bytes",
                        bytes: limits.max_train_body_bytes,
                    },
                    name_body_limit,
                )),
        )
        .route(
            "/datasets",
            post(datasets::upload)
                .get(datasets::list)
                .layer(DefaultBodyLimit::disable()),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            upload_timeout,
        ));

    let api = Router::new()
        .route(
            "/datasets/{id}",
            get(datasets::get).delete(datasets::delete),
        )
        .route("/jobs", get(jobs::list_jobs))
        .route("/jobs/{id}", get(jobs::get_job).delete(jobs::cancel_job))
        .route("/models", get(models::list_models))
        .route("/models/{name}", get(models::get_model))
        .route(
            "/models/{name}/versions/{version}",
            get(models::get_version).delete(models::delete_version),
        )
        .route(
            "/models/{name}/versions/{version}/export",
            get(export::export),
        )
        .route(
            "/models/{name}/aliases/{alias}",
            put(models::put_alias).delete(models::delete_alias),
        )
        .route("/models/{name}/predict", post(predict::predict_named))
        .route("/predict", post(predict::predict))
        .route("/models/{name}/explain", post(explain::explain_named))
        .route("/explain", post(explain::explain))
        .route(
            "/recommend",
            get(recommend::recommend_get).post(recommend::recommend_post),
        )
        .route("/interactions", post(recommend::log_interactions))
        .route(
            "/models/{name}/items/{item}/similar",
            get(recommend::similar),
        )
        .route("/models/{name}/users", get(recommend::users))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(oip_routes())
        .layer(DefaultBodyLimit::max(limits.max_request_bytes))
        .layer(middleware::from_fn_with_state(
            BodyLimit {
                setting: "limits.max_request_bytes",
                bytes: limits.max_request_bytes,
            },
            name_body_limit,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ));

    // Event streams last as long as the job: no request timeout.
    let streams = Router::new().route("/jobs/{id}/events", get(jobs::job_events));

    let mut app = Router::new().merge(uploads).merge(api).merge(streams);
    if state.settings.http.metrics {
        app = app.route("/metrics", get(health::metrics));
    }
    if state.settings.http.dashboard {
        app = app
            .route("/", get(ui::root))
            .route("/ui", get(ui::page))
            .route("/ui/assets/{build}/{file}", get(ui::asset));
    }
    if state.settings.http.docs {
        app = app.merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()));
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth::check_key))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("handler panicked").into_response()))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %request_id)
                })
                .on_request(())
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        .with_state(state)
}

/// The Open Inference Protocol routes under `/v2`.
fn oip_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(oip::version_metadata),
        )
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(oip::version_ready),
        )
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(oip::infer_version),
        )
}

async fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::RouteNotFound, "no route matches this path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this route does not accept this method",
    )
}

/// The body limit of a group of routes, named in their 413 answers.
#[derive(Clone, Copy)]
struct BodyLimit {
    setting: &'static str,
    bytes: usize,
}

/// Answers a body over the limit with the limit's setting and value, whichever
/// extractor noticed it.
async fn name_body_limit(State(limit): State<BodyLimit>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let code = response.extensions().get::<error::ProblemCode>();
    if code.is_some_and(|c| c.0 != ErrorCode::BodyTooLarge.as_str()) {
        return response;
    }
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BodyTooLarge,
        format!(
            "the request body exceeds the limit `{}` of {} bytes",
            limit.setting, limit.bytes
        ),
    )
    .with_limit(limit.setting, limit.bytes)
    .into_response()
}

/// Turns error answers produced outside handlers (timeouts, body limits)
/// into problem+json.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.extensions().get::<oip::ProtocolError>().is_some() {
        return response;
    }
    let status = response.status();
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.is_success() || is_problem || status.is_redirection() {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::REQUEST_TIMEOUT => (
            ErrorCode::RequestTimeout,
            "the request took longer than the configured timeout",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::BodyTooLarge,
            "the request body exceeds the configured limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::UnsupportedMediaType, "unsupported Content-Type")
        }
        StatusCode::NOT_FOUND => (ErrorCode::RouteNotFound, "no route matches this path"),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this route does not accept this method",
        ),
        s if s.is_server_error() => (
            ErrorCode::InternalError,
            "an internal error occurred; see the server log",
        ),
        _ => (ErrorCode::BadRequest, "the request was refused"),
    };
    let mut problem = ApiError::new(status, code, detail).into_response();
    for (name, value) in response.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

async fn record_metrics(req: Request, next: Next) -> Response {
    crate::cooperative::note_foreground_activity();
    let start = Instant::now();
    if let Some(length) = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        crate::memory::note_body(length);
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let response = next.run(req).await;
    let elapsed = start.elapsed();
    log_access(&method, &route, response.status(), elapsed, &request_id);
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("myelin_http_requests_total", &labels).increment(1);
    metrics::histogram!("myelin_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    response
}

/// One access line per request: at `info`, except probes and scrapes at `debug`.
fn log_access(method: &str, route: &str, status: StatusCode, elapsed: Duration, id: &str) {
    let status = status.as_u16();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if matches!(route, "/healthz" | "/readyz" | "/metrics") {
        tracing::debug!(%method, %route, status, latency_ms, request_id = %id, "request");
    } else {
        tracing::info!(%method, %route, status, latency_ms, request_id = %id, "request");
    }
}
