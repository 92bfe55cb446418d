//! The flow section of a run configuration.

use serde::{Deserialize, Serialize};

use crate::realnvp::RealNvpConfig;

/// Which flow to build, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FlowConfig {
    /// RealNVP affine coupling flow.
    RealNvp(RealNvpConfig),
}
