//! Hamiltonian Monte Carlo with identity mass (fab-spec §3.1–3.2): momentum p ∼ N(0, I), L
//! leapfrog steps of size ε on U = −log f, accept with probability min(1, exp(H₀ − H₁)),
//! H = U + ½|p|². The gradient of log f is clamped elementwise to ±`max_grad` and NaN → 0, as in
//! fab-torch, so one wild point cannot blow up a trajectory; a non-finite H rejects.

use ndarray::{Array1, Array2, Axis};
use ndarray_rand::RandomExt;
use rand_distr::StandardNormal;

use fab_core::{FabRng, LogDensity, Result};

use crate::kernel::{metropolis_accept, Kernel};
use crate::point::Points;

/// HMC kernel.
#[derive(Debug, Clone, Copy)]
pub struct Hmc {
    /// Leapfrog steps per transition.
    pub n_leapfrog: usize,
    /// Elementwise clamp of ∇ log f.
    pub max_grad: f64,
}

fn kinetic(p: &Array2<f64>) -> Array1<f64> {
    p.map_axis(Axis(1), |r| 0.5 * r.dot(&r))
}

impl Kernel for Hmc {
    fn step(
        &self,
        points: &mut Points,
        mix: (f64, f64),
        step_size: f64,
        flow: &dyn LogDensity,
        target: &dyn LogDensity,
        rng: &mut FabRng,
    ) -> Result<f64> {
        let eps = step_size;
        let p0 = Array2::random_using(points.x.dim(), StandardNormal, rng);
        let h0 = kinetic(&p0) - points.log_f(mix);
        // Leapfrog: half kick, (drift, full kick)×(L−1), drift, half kick.
        let mut p = &p0 + &(points.grad_log_f(mix, self.max_grad) * (0.5 * eps));
        let mut x = points.x.clone();
        let mut proposal = None;
        for l in 0..self.n_leapfrog {
            x.scaled_add(eps, &p);
            let pt = Points::evaluate(x.clone(), flow, target, true)?;
            let kick = if l + 1 == self.n_leapfrog {
                0.5 * eps
            } else {
                eps
            };
            p.scaled_add(kick, &pt.grad_log_f(mix, self.max_grad));
            proposal = Some(pt);
        }
        let Some(proposal) = proposal else {
            return Ok(0.0);
        };
        let h1 = kinetic(&p) - proposal.log_f(mix);
        let log_ratio = &h0 - &h1;
        let (accept, mean) = metropolis_accept(&log_ratio, rng);
        points.accept(&proposal, accept.view());
        Ok(mean)
    }

    fn needs_grad(&self) -> bool {
        true
    }

    fn evals_per_step(&self) -> usize {
        self.n_leapfrog
    }
}
