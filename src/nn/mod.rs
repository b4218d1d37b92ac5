//! The CPU multilayer-perceptron engine: architecture, deterministic training (`fit`),
//! inference, tensor import/export and evaluation metrics.
//!
//! Pure and synchronous: no I/O, no threads, no global state. Model numbers are `f32`;
//! losses and metrics are reported as `f64`.

mod activation;
mod cooperative;
mod dense;
mod evaluate;
mod gradient;
mod loss;
pub mod metrics;
mod mlp;
mod optim;
mod params;
mod sparse;
mod tensors;
mod train;
mod trainer;
mod workspace;

pub use activation::{Activation, LEAKY_RELU_SLOPE};
pub use cooperative::{mark_background_thread, note_foreground_activity, yield_every, yield_point};
pub use dense::Dense;
pub use loss::{Head, RegressionLoss};
pub use mlp::{Architecture, InferenceScratch, Init, Mlp};
pub use optim::{OptimizerKind, Schedule};
pub use params::{invalid_param, Caps, ParamError, RegressionLossKind, TrainParams};
pub use sparse::CsrMatrix;
pub use tensors::{NamedTensor, NnError};
pub use train::{
    fit, should_stop, thread_cpu_seconds, Control, EpochReport, FitOutcome, TrainError, TrainSet,
};
pub use trainer::Trainer;
