//! The AIS section of a run configuration.

use serde::{Deserialize, Serialize};

use crate::schedule::BetaSchedule;
use crate::step_size::StepSizeAdaptation;

/// Transition kernel and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum KernelConfig {
    /// Random-walk Metropolis with `n_steps` proposals per intermediate distribution.
    Metropolis { n_steps: usize },
    /// HMC with `n_leapfrog` leapfrog steps and ∇ log f clamped to ±`max_grad`.
    Hmc { n_leapfrog: usize, max_grad: f64 },
}

/// AIS settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AisConfig {
    /// Number of intermediate distributions n (= MCMC transitions per chain).
    pub n_intermediate: usize,
    /// β spacing.
    pub schedule: BetaSchedule,
    /// Kernel.
    pub kernel: KernelConfig,
    /// Initial step size of every intermediate distribution (Metropolis: proposal std).
    pub init_step_size: f64,
    /// Step-size adaptation (training only).
    pub adaptation: StepSizeAdaptation,
    /// SMC: before each transition, resample multinomially when the normalised ESS of the running
    /// weights is below this threshold (fab-jax uses 0.3 when enabled); `None` = plain AIS.
    pub resample_below_ess: Option<f64>,
}

impl Default for AisConfig {
    /// The paper's GMM setting: Metropolis, 1 intermediate distribution, 1 step, σ = 5, not tuned.
    fn default() -> Self {
        Self {
            n_intermediate: 1,
            schedule: BetaSchedule::Linear,
            kernel: KernelConfig::Metropolis { n_steps: 1 },
            init_step_size: 5.0,
            adaptation: StepSizeAdaptation {
                enabled: false,
                ..Default::default()
            },
            resample_below_ess: None,
        }
    }
}
