//! Myelin: train small neural networks over HTTP and serve predictions and
//! recommendations from one binary.

pub mod data;
pub mod nn;
