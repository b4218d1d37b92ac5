//! The CPU multilayer-perceptron engine: architecture, deterministic training (`fit`),
//! inference, tensor import/export and evaluation metrics.
//!
//! Synchronous, with no I/O, no threads and no state of its own: a caller's cancel flag
//! and epoch callback are the only channels out of a running `fit`. `fit` passes a
//! [`crate::cooperative::yield_point`] before every batch and every validation chunk
//! (on a thread marked as background it may yield the CPU or briefly sleep); that is
//! the engine's only call outside `nn`. Model numbers are `f32`; losses and metrics are
//! reported as `f64`.

mod activation;
mod dense;
mod evaluate;
mod gradient;
mod loss;
pub mod metrics;
mod mlp;
mod optim;
mod params;
mod set;
mod sparse;
mod tensors;
mod train;
mod trainer;
mod workspace;

pub use activation::{Activation, LEAKY_RELU_SLOPE};
pub use dense::Dense;
pub use loss::{Head, RegressionLoss};
pub use mlp::{Architecture, InferenceScratch, Init, Mlp};
pub use optim::{OptimizerKind, Schedule};
pub use params::{invalid_param, Caps, ParamError, RegressionLossKind, TrainParams};
pub use set::{TrainError, TrainSet};
pub use sparse::CsrMatrix;
pub use tensors::{NamedTensor, NnError};
pub use train::{fit, fit_from, should_stop, Control, EpochReport, FitOutcome};
pub use trainer::Trainer;
