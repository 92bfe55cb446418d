//! The AIS section of a run configuration.

use serde::{Deserialize, Serialize};

use fab_core::{FabError, Result};

use crate::schedule::BetaSchedule;
use crate::step_size::StepSizeAdaptation;

/// Transition kernel and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum KernelConfig {
    /// Random-walk Metropolis with `n_steps` proposals per intermediate distribution.
    Metropolis {
        /// Metropolis steps per intermediate distribution.
        n_steps: usize,
    },
    /// HMC with `n_leapfrog` leapfrog steps and ∇ log f clamped to ±`max_grad`.
    Hmc {
        /// Leapfrog steps per HMC transition.
        n_leapfrog: usize,
        /// Elementwise clamp of ∇ log f (fab-torch's guard against one wild point).
        max_grad: f64,
    },
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

impl AisConfig {
    /// Checks every setting against its allowed range; the error names the field (`ais.…`).
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN must fail the check
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &str, reason: &str| Err(FabError::invalid(format!("ais.{field}"), reason));
        if !(self.init_step_size.is_finite() && self.init_step_size > 0.0) {
            return bad("init_step_size", "must be a positive number");
        }
        match self.kernel {
            KernelConfig::Metropolis { n_steps: 0 } => {
                return bad("kernel.n_steps", "must be positive");
            }
            KernelConfig::Hmc {
                n_leapfrog,
                max_grad,
            } if n_leapfrog == 0 || !(max_grad > 0.0) => {
                return bad("kernel", "n_leapfrog and max_grad must be positive");
            }
            _ => {}
        }
        let a = &self.adaptation;
        if !(a.factor.is_finite() && a.factor > 1.0) {
            return bad("adaptation.factor", "must be a number above 1");
        }
        if !(a.target_accept > 0.0 && a.target_accept < 1.0) {
            return bad(
                "adaptation.target_accept",
                "must lie strictly between 0 and 1",
            );
        }
        if let Some(t) = self.resample_below_ess {
            // Above 1 is allowed: the normalised ESS never exceeds 1, so it resamples every time.
            if !(t.is_finite() && t > 0.0) {
                return bad("resample_below_ess", "must be a positive number");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_out_of_range_setting_is_named() {
        assert!(AisConfig::default().validate().is_ok());
        type Case = (&'static str, fn(&mut AisConfig));
        let cases: [Case; 6] = [
            ("ais.init_step_size", |c| c.init_step_size = f64::NAN),
            ("ais.kernel.n_steps", |c| {
                c.kernel = KernelConfig::Metropolis { n_steps: 0 }
            }),
            ("ais.adaptation.factor", |c| c.adaptation.factor = f64::NAN),
            ("ais.adaptation.factor", |c| c.adaptation.factor = 0.5),
            ("ais.adaptation.target_accept", |c| {
                c.adaptation.target_accept = 2.0
            }),
            ("ais.resample_below_ess", |c| {
                c.resample_below_ess = Some(0.0)
            }),
        ];
        for (field, spoil) in cases {
            let mut c = AisConfig::default();
            spoil(&mut c);
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains(field), "{field}: {msg}");
        }
    }
}
