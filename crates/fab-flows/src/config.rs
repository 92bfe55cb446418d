//! The flow section of a run configuration.

use serde::{Deserialize, Serialize};

use crate::realnvp::RealNvpConfig;
use crate::spline::flow::SplineFlowConfig;

/// Which flow to build, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FlowConfig {
    /// RealNVP affine coupling flow.
    RealNvp(RealNvpConfig),
    /// Rational-quadratic spline coupling flow, circular splines on the listed coordinates.
    SplineCoupling(SplineFlowConfig),
}

impl FlowConfig {
    /// Sets the seed of the flow's initial parameters (and random circular shifts), so runs of
    /// several seeds differ in their initialisation as well as in their training randomness.
    pub fn set_init_seed(&mut self, seed: u64) {
        match self {
            FlowConfig::RealNvp(c) => c.init_seed = seed,
            FlowConfig::SplineCoupling(c) => c.init_seed = seed,
        }
    }
}
