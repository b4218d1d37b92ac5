//! Exporting trained models to other runtimes: the fitted pipeline and the
//! network as one ONNX model. Pure: models in, bytes out.

mod onnx;
#[cfg(test)]
mod tests;
mod proto {
    //! Types generated from the vendored `proto/onnx/onnx-ml.proto`.
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use onnx::{to_onnx, OnnxError, ONNX_ML_OPSET, ONNX_OPSET};
