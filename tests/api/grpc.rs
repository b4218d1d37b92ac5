//! The Open Inference Protocol over gRPC: health, metadata, inference with
//! raw and typed contents equal to `/predict`, errors, keys and metrics.

use std::collections::HashMap;

use myelin::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use myelin::grpc::proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use myelin::grpc::proto::*;
use tonic::transport::Channel;
use tonic::Code;

use crate::helpers::*;
use crate::oip::{expected, ROWS};

async fn client(app: &TestApp) -> GrpcInferenceServiceClient<Channel> {
    let addr = app.grpc_addr.expect("gRPC is enabled in tests");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("cannot connect to the gRPC port");
    GrpcInferenceServiceClient::new(channel)
}

fn input(name: &str, datatype: &str, contents: Option<InferTensorContents>) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape: vec![ROWS.len() as i64],
        parameters: HashMap::new(),
        contents,
    }
}

fn typed_request() -> ModelInferRequest {
    ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![
            input(
                "tenure",
                "INT64",
                Some(InferTensorContents {
                    int64_contents: ROWS.iter().map(|r| r.0 as i64).collect(),
                    ..Default::default()
                }),
            ),
            input(
                "plan",
                "BYTES",
                Some(InferTensorContents {
                    bytes_contents: ROWS.iter().map(|r| r.1.as_bytes().to_vec()).collect(),
                    ..Default::default()
                }),
            ),
            input(
                "autopay",
                "BOOL",
                Some(InferTensorContents {
                    bool_contents: ROWS.iter().map(|r| r.2).collect(),
                    ..Default::default()
                }),
            ),
            input(
                "monthly",
                "FP64",
                Some(InferTensorContents {
                    fp64_contents: ROWS.iter().map(|r| r.3).collect(),
                    ..Default::default()
                }),
            ),
        ],
        ..Default::default()
    }
}

fn raw_request() -> ModelInferRequest {
    let mut request = typed_request();
    for input in &mut request.inputs {
        input.contents = None;
    }
    request.raw_input_contents = vec![
        ROWS.iter()
            .flat_map(|r| (r.0 as i64).to_le_bytes())
            .collect(),
        ROWS.iter()
            .flat_map(|r| {
                let mut b = (r.1.len() as u32).to_le_bytes().to_vec();
                b.extend_from_slice(r.1.as_bytes());
                b
            })
            .collect(),
        ROWS.iter().map(|r| u8::from(r.2)).collect(),
        ROWS.iter().flat_map(|r| r.3.to_le_bytes()).collect(),
    ];
    request
}

/// Asserts the answer (raw outputs) equals `/predict`.
async fn assert_matches_predict(app: &TestApp, answer: &ModelInferResponse) {
    assert_eq!(answer.model_name, "churn");
    let names: Vec<&str> = answer.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["label", "probabilities"]);
    let probabilities = &answer.outputs[1];
    let Some(infer_parameter::ParameterChoice::StringParam(classes)) = probabilities
        .parameters
        .get("classes")
        .and_then(|p| p.parameter_choice.clone())
    else {
        panic!("no classes parameter: {probabilities:?}");
    };
    let classes: Vec<String> = serde_json::from_str(&classes).unwrap();
    assert_eq!(
        probabilities.shape,
        vec![ROWS.len() as i64, classes.len() as i64]
    );
    let mut labels = Vec::new();
    let mut rest = &answer.raw_output_contents[0][..];
    while !rest.is_empty() {
        let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        labels.push(String::from_utf8(rest[4..4 + n].to_vec()).unwrap());
        rest = &rest[4 + n..];
    }
    let probs: Vec<f32> = answer.raw_output_contents[1]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for (i, (label, p)) in expected(app, &classes).await.iter().enumerate() {
        assert_eq!(&labels[i], label);
        for (j, pj) in p.iter().enumerate() {
            assert!((f64::from(probs[i * classes.len() + j]) - pj).abs() < 1e-6);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_and_metadata_answer() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 71).await;
    let mut grpc = client(&app).await;
    assert!(
        grpc.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        grpc.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let server = grpc
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(server.name, "myelin");
    assert_eq!(server.extensions, vec!["binary_tensor_data"]);
    let ready = grpc
        .model_ready(ModelReadyRequest {
            name: "churn".into(),
            version: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ready.ready);
    let meta = grpc
        .model_metadata(ModelMetadataRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.platform, "myelin");
    assert_eq!(meta.versions, vec!["1"]);
    let plan = meta
        .inputs
        .iter()
        .find(|t| t.name == "plan")
        .expect("plan input");
    assert_eq!(
        (plan.datatype.as_str(), plan.shape.as_slice()),
        ("BYTES", &[-1i64][..])
    );
    assert_eq!(meta.outputs[1].shape, vec![-1, 2]);
    let missing = grpc
        .model_metadata(ModelMetadataRequest {
            name: "nope".into(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing.message().contains("`nope`"),
        "{}",
        missing.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_infer_with_raw_and_typed_contents_equals_predict() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 72).await;
    let mut grpc = client(&app).await;
    let raw = grpc.model_infer(raw_request()).await.unwrap().into_inner();
    assert_eq!(raw.model_version, "1");
    assert_matches_predict(&app, &raw).await;
    let typed = grpc
        .model_infer(typed_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(typed.raw_output_contents, raw.raw_output_contents);

    let mut only = raw_request();
    only.id = "abc".into();
    only.outputs = vec![InferRequestedOutputTensor {
        name: "probabilities".into(),
        parameters: HashMap::new(),
    }];
    let answer = grpc.model_infer(only).await.unwrap().into_inner();
    assert_eq!(answer.id, "abc");
    assert_eq!(answer.outputs.len(), 1);
    assert_eq!(answer.raw_output_contents[0], raw.raw_output_contents[1]);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("myelin_grpc_requests_total{method=\"ModelInfer\",code=\"OK\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_errors_name_the_tensor_and_element() {
    let app = spawn_app().await;
    train_churn(&app, "churn", 73).await;
    let mut grpc = client(&app).await;

    let mut unknown = typed_request();
    unknown.inputs[0].name = "age".into();
    let status = grpc.model_infer(unknown).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("unknown input tensor `age`"),
        "{}",
        status.message()
    );

    let mut short = raw_request();
    short.raw_input_contents[3].truncate(12);
    let status = grpc.model_infer(short).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("`monthly`"),
        "{}",
        status.message()
    );

    let mut text = typed_request();
    text.inputs[3] = input(
        "monthly",
        "BYTES",
        Some(InferTensorContents {
            bytes_contents: vec![
                b"1".to_vec(),
                b"2".to_vec(),
                b"lots".to_vec(),
                b"4".to_vec(),
            ],
            ..Default::default()
        }),
    );
    let status = grpc.model_infer(text).await.unwrap_err();
    assert!(
        status.message().contains("`monthly` element 2"),
        "{}",
        status.message()
    );

    let mut overflow = typed_request();
    overflow.inputs[0] = input(
        "tenure",
        "INT8",
        Some(InferTensorContents {
            int_contents: vec![1, 2, 3, 400],
            ..Default::default()
        }),
    );
    let status = grpc.model_infer(overflow).await.unwrap_err();
    assert!(
        status.message().contains("`tenure` element 3"),
        "{}",
        status.message()
    );

    let mut nope = typed_request();
    nope.model_name = "nope".into();
    assert_eq!(
        grpc.model_infer(nope).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_needs_an_inference_key_in_the_authorization_metadata() {
    const KEY: &str = "inference-key-0123456789";
    const ADMIN: &str = "admin-key-0123456789abcd";
    let app = spawn_app_with(|s| {
        s.auth.keys = vec![format!("inference:{KEY}"), format!("admin:{ADMIN}")];
    })
    .await;
    let response = app
        .client
        .post(app.url("/train"))
        .bearer_auth(ADMIN)
        .json(&train_request(
            "churn",
            "churned",
            churn_rows(240, 74),
            tiny_params(4),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let mut grpc = client(&app).await;
    assert!(
        grpc.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    let status = grpc.model_infer(typed_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(typed_request());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    assert_eq!(
        grpc.model_infer(request).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let mut request = tonic::Request::new(ModelReadyRequest {
        name: "nope".into(),
        version: String::new(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    assert_eq!(
        grpc.model_ready(request).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_can_be_turned_off() {
    let app = spawn_app_with(|s| s.grpc.enabled = false).await;
    assert!(app.grpc_addr.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_stops_with_the_application_even_with_a_client_connected() {
    let app = spawn_app().await;
    let mut grpc = client(&app).await;
    assert!(
        grpc.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    let addr = app.grpc_addr.unwrap();
    app.stop_within(std::time::Duration::from_secs(15)).await;
    assert!(grpc.server_live(ServerLiveRequest {}).await.is_err());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
