//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`,
//! generated from `proto/grpc_predict_v2.proto`): transport only. It shares
//! the HTTP API's state, keys (`authorization: Bearer <key>` metadata, scope
//! `inference`; liveness, readiness and server metadata are open), request
//! timeout, size limits and Prometheus metrics, and calls `service::oip`.

pub mod codec;
mod convert;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use crate::service::auth::{Identity, Scope};
use crate::service::oip::{self, OipError, OipErrorKind};
use crate::service::AppState;

/// Types and service generated from the vendored `.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use proto::*;

/// The gRPC service as an axum router, ready for the HTTP/2 server loop.
pub fn router(state: Arc<AppState>) -> axum::Router {
    let limit = state.settings.limits.max_request_bytes;
    let infer_ok = CallMetrics::new("ModelInfer", "OK");
    let service = GrpcInferenceServiceServer::new(InferenceService { state, infer_ok })
        .max_decoding_message_size(limit);
    tonic::service::Routes::new(service).into_axum_router()
}

/// The implementation of `inference.GRPCInferenceService`.
pub struct InferenceService {
    state: Arc<AppState>,
    /// Successful `ModelInfer` calls, the hot path, registered once.
    infer_ok: CallMetrics,
}

/// The metric handles of one method and status code.
struct CallMetrics {
    calls: metrics::Counter,
    seconds: metrics::Histogram,
}

impl CallMetrics {
    fn new(method: &'static str, code: &'static str) -> CallMetrics {
        let labels = [("method", method), ("code", code)];
        CallMetrics {
            calls: metrics::counter!("myelin_grpc_requests_total", &labels),
            seconds: metrics::histogram!("myelin_grpc_request_duration_seconds", &labels),
        }
    }

    fn record(&self, elapsed: Duration) {
        self.calls.increment(1);
        self.seconds.record(elapsed.as_secs_f64());
    }
}

fn status(error: OipError) -> Status {
    let message = format!("{} ({})", error.message, error.code);
    match error.kind {
        OipErrorKind::Invalid => Status::invalid_argument(message),
        OipErrorKind::NotFound => Status::not_found(message),
        OipErrorKind::TooLarge => Status::resource_exhausted(message),
        OipErrorKind::Unavailable => Status::unavailable(message),
        OipErrorKind::Internal => Status::internal(message),
    }
}

impl InferenceService {
    /// Lets the request through if its key holds the `inference` scope (or
    /// no keys are configured).
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if self.state.keys.is_empty() {
            return Ok(());
        }
        let presented = match request.metadata().get("authorization") {
            None => None,
            Some(value) => {
                let malformed =
                    || Status::unauthenticated("`authorization` must be `Bearer <key>`");
                let value = value.to_str().map_err(|_| malformed())?;
                let (scheme, key) = value.split_once(' ').ok_or_else(malformed)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(malformed());
                }
                Some(key.trim())
            }
        };
        match self.state.keys.identify(presented) {
            Identity::Open => Ok(()),
            Identity::Key(scopes) if scopes.contains(Scope::Inference) => Ok(()),
            Identity::Key(_) => Err(Status::permission_denied(
                "this API key lacks the `inference` scope",
            )),
            Identity::Unknown if presented.is_none() => Err(Status::unauthenticated(
                "this method needs an API key: metadata `authorization: Bearer <key>`",
            )),
            Identity::Unknown => Err(Status::unauthenticated("the API key is not valid")),
        }
    }

    /// Runs one call under the request timeout and records its metrics.
    async fn call<T, F>(&self, method: &'static str, work: F) -> Result<Response<T>, Status>
    where
        F: Future<Output = Result<T, Status>>,
    {
        crate::cooperative::note_foreground_activity();
        let start = Instant::now();
        let timeout = Duration::from_secs(self.state.settings.server.request_timeout_secs);
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Status::deadline_exceeded(
                "the request took longer than the configured timeout",
            )),
        };
        let code = match &result {
            Ok(_) => "OK",
            Err(status) => code_name(status.code()),
        };
        if method == "ModelInfer" && code == "OK" {
            self.infer_ok.record(start.elapsed());
        } else {
            CallMetrics::new(method, code).record(start.elapsed());
        }
        result.map(Response::new)
    }
}

/// The name of a status code, as its `Debug` form spells it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

fn version(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        self.call("ServerLive", async {
            Ok(ServerLiveResponse { live: true })
        })
        .await
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        self.call("ServerReady", async {
            Ok(ServerReadyResponse {
                ready: oip::server_ready(&self.state).await,
            })
        })
        .await
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        self.call("ModelReady", async {
            self.authorize(&request)?;
            let request = request.into_inner();
            oip::load(&self.state, &request.name, version(&request.version))
                .await
                .map_err(status)?;
            Ok(ModelReadyResponse { ready: true })
        })
        .await
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        self.call("ServerMetadata", async {
            Ok(ServerMetadataResponse {
                name: oip::SERVER_NAME.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                extensions: oip::EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            })
        })
        .await
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        self.call("ModelMetadata", async {
            self.authorize(&request)?;
            let request = request.into_inner();
            let meta = oip::model_metadata(&self.state, &request.name, version(&request.version))
                .await
                .map_err(status)?;
            Ok(convert::metadata(meta))
        })
        .await
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        self.call("ModelInfer", async {
            self.authorize(&request)?;
            let request = convert::infer_request(request.into_inner()).map_err(status)?;
            let answer = oip::infer(&self.state, request).await.map_err(status)?;
            Ok(convert::infer_response(answer))
        })
        .await
    }
}
