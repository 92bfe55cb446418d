//! The flow section of a run configuration.

use serde::{Deserialize, Serialize};

use crate::realnvp::RealNvpConfig;
use crate::spline_flow::SplineFlowConfig;

/// Which flow to build, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FlowConfig {
    /// RealNVP affine coupling flow.
    RealNvp(RealNvpConfig),
    /// Rational-quadratic spline coupling flow, circular splines on the listed coordinates.
    SplineCoupling(SplineFlowConfig),
}
