//! The CPU multilayer-perceptron engine.
