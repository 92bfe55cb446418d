//! Random-walk Metropolis (fab-torch `Metropolis`, used for the GMM): x' = x + ε·N(0, I),
//! accepted with probability min(1, f(x')/f(x)), repeated `n_steps` times per transition.
//! Unlike fab-torch, log f of the current state is refreshed after every accepted move.

use ndarray::Array2;
use rand_distr::{Distribution, StandardNormal};

use fab_core::{FabRng, LogDensity, Result};

use crate::kernel::{metropolis_accept, Kernel};
use crate::point::Points;

/// Random-walk Metropolis kernel.
#[derive(Debug, Clone, Copy)]
pub struct Metropolis {
    /// Proposals per transition.
    pub n_steps: usize,
}

impl Kernel for Metropolis {
    fn step(
        &self,
        points: &mut Points,
        mix: (f64, f64),
        step_size: f64,
        flow: &dyn LogDensity,
        target: &dyn LogDensity,
        rng: &mut FabRng,
    ) -> Result<f64> {
        let mut mean_accept = 0.0;
        for _ in 0..self.n_steps {
            let noise = Array2::from_shape_simple_fn(points.x.dim(), || {
                let e: f64 = StandardNormal.sample(rng);
                step_size * e
            });
            let proposal = Points::evaluate(&points.x + &noise, flow, target, false)?;
            let log_ratio = proposal.log_f(mix) - points.log_f(mix);
            let (accept, mean) = metropolis_accept(&log_ratio, rng);
            points.accept(&proposal, accept.view());
            mean_accept += mean;
        }
        Ok(mean_accept / self.n_steps.max(1) as f64)
    }

    fn needs_grad(&self) -> bool {
        false
    }

    fn evals_per_step(&self) -> usize {
        self.n_steps
    }
}
