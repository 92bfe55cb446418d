//! The target section of a run configuration.

use serde::{Deserialize, Serialize};

/// Which target to train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TargetConfig {
    /// The paper's 40-mode 2-D Gaussian mixture (fab-torch GMM, σ = softplus(1)).
    Gmm40,
}
