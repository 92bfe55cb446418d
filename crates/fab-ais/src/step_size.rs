//! Multiplicative step-size adaptation toward a target acceptance probability (fab-spec §3):
//! after each transition, ε ← ε·f if the mean acceptance exceeds the target, else ε ← ε/f.
//! One step size per intermediate distribution; frozen during evaluation.

use serde::{Deserialize, Serialize};

/// Adaptation rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepSizeAdaptation {
    /// Whether to adapt at all during training.
    pub enabled: bool,
    /// Target mean acceptance probability (0.65 in both reference codes).
    pub target_accept: f64,
    /// Multiplicative factor f > 1 (fab-jax 1.02, fab-torch 1.05 for the per-distribution part).
    pub factor: f64,
}

impl Default for StepSizeAdaptation {
    fn default() -> Self {
        Self {
            enabled: true,
            target_accept: 0.65,
            factor: 1.02,
        }
    }
}

impl StepSizeAdaptation {
    /// The next step size after a transition with mean acceptance `accept`.
    pub fn update(&self, step_size: f64, accept: f64) -> f64 {
        if !self.enabled {
            step_size
        } else if accept > self.target_accept {
            step_size * self.factor
        } else {
            step_size / self.factor
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_above_and_shrinks_below_the_target_and_converges_to_it() {
        let a = StepSizeAdaptation::default();
        assert_eq!(a.update(1.0, 0.9), 1.02);
        assert_eq!(a.update(1.02, 0.1), 1.0);
        assert_eq!(
            StepSizeAdaptation {
                enabled: false,
                ..a
            }
            .update(1.0, 0.9),
            1.0
        );
        // Toy sampler whose acceptance is exp(−ε): the adapted ε oscillates around −ln 0.65.
        let mut eps = 5.0;
        for _ in 0..500 {
            eps = a.update(eps, (-eps).exp());
        }
        assert!((eps - -(0.65f64.ln())).abs() < 0.05, "{eps}");
    }
}
