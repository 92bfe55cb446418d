//! The target section of a run configuration.

use serde::{Deserialize, Serialize};

/// Which target to train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TargetConfig {
    /// The paper's 40-mode 2-D Gaussian mixture (fab-torch GMM, σ = softplus(1)).
    Gmm40,
    /// Many Well in an even dimension (32 in the paper: 16 double wells, 2^16 modes).
    ManyWell { dim: usize },
}
