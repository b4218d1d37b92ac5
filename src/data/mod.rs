//! Datasets and the fitted feature pipeline.
