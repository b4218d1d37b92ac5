//! Generates the Open Inference Protocol gRPC types and service from the
//! vendored `proto/grpc_predict_v2.proto`, and the ONNX model types from the
//! vendored `proto/onnx/onnx-ml.proto`. `protox` parses the files in Rust, so
//! building needs neither `protoc` nor network access.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        // prost's codec with small per-call buffers (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::SmallBufferCodec")
        .compile_fds(descriptors)?;

    let onnx = "proto/onnx/onnx-ml.proto";
    println!("cargo:rerun-if-changed={onnx}");
    let descriptors = protox::compile([onnx], ["proto/onnx"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
