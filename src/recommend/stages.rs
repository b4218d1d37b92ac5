//! Wall and CPU time of each stage of a recommender fit.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::cooperative::thread_cpu_seconds;

/// One stage of a fit: what ran and how long it took on the fitting thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitStage {
    /// e.g. `autoencoder (validation)`, `item-item (refit)`, `selection`.
    pub stage: String,
    pub wall_secs: f64,
    /// CPU time of the fitting thread during the stage.
    pub cpu_secs: f64,
}

/// Records consecutive stages: each [`Stages::lap`] closes the stage that began at the
/// previous lap (or at [`Stages::start`]).
pub(crate) struct Stages {
    pub list: Vec<FitStage>,
    wall: Instant,
    cpu: f64,
}

impl Stages {
    pub fn start() -> Stages {
        Stages {
            list: Vec::new(),
            wall: Instant::now(),
            cpu: thread_cpu_seconds(),
        }
    }

    /// Ends the current stage under `name`.
    pub fn lap(&mut self, name: impl Into<String>) {
        let cpu = thread_cpu_seconds();
        self.list.push(FitStage {
            stage: name.into(),
            wall_secs: self.wall.elapsed().as_secs_f64(),
            cpu_secs: (cpu - self.cpu).max(0.0),
        });
        self.wall = Instant::now();
        self.cpu = cpu;
    }
}
