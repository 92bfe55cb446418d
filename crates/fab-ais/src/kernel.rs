//! The transition-kernel interface: one MCMC transition of a whole batch, leaving
//! f(x) ∝ q(x)^{a_q} p(x)^{a_p} invariant, with a given step size. The kernel reports the mean
//! acceptance probability as diagnostics; adapting the step size is the caller's job.

use fab_core::{FabRng, LogDensity, Result};

use crate::point::Points;

/// One MCMC transition for a batch of chains.
pub trait Kernel: Send + Sync {
    /// Moves `points` by one transition targeting log f = a_q log q + a_p log p.
    /// Non-finite proposals are always rejected. Returns the mean acceptance probability.
    fn step(
        &self,
        points: &mut Points,
        mix: (f64, f64),
        step_size: f64,
        flow: &dyn LogDensity,
        target: &dyn LogDensity,
        rng: &mut FabRng,
    ) -> Result<f64>;

    /// Whether the points must carry gradients.
    fn needs_grad(&self) -> bool;

    /// Density evaluations per transition (for the flow-evaluation budget).
    fn evals_per_step(&self) -> usize;
}

/// Decides acceptance from log acceptance ratios: accept iff log u < log a (u ∼ U(0,1)); a
/// non-finite ratio (NaN, or ±inf from a non-finite density) is a rejection with probability 0.
/// Returns the decisions and the mean acceptance probability mean(min(1, a)).
pub fn metropolis_accept(
    log_ratio: &ndarray::Array1<f64>,
    rng: &mut FabRng,
) -> (ndarray::Array1<bool>, f64) {
    use rand::Rng;
    let mut sum = 0.0;
    let accept = log_ratio.mapv(|lr| {
        let u: f64 = rng.gen();
        if !lr.is_finite() {
            return false;
        }
        sum += lr.min(0.0).exp();
        u.ln() < lr
    });
    (accept, sum / log_ratio.len().max(1) as f64)
}
