//! Annealed importance sampling (fab-spec §2.3).
//!
//! Chains start at x₀ ∼ q; log w = log f_{β₁}(x₀) − log q(x₀); then for j = 1..n: one kernel
//! transition leaving f_{βⱼ} invariant, followed by log w += log f_{βⱼ₊₁}(x) − log f_{βⱼ}(x) at the
//! new point. With log f_β = a_q(β) log q + a_p(β) log p (see [`AnnealTarget::mix`]) each increment
//! reuses the cached log q and log p, so a transition costs only the kernel's own evaluations.
//! Invalid starting points (non-finite x, log q or log p) are replaced by copies of valid ones;
//! kernels never accept non-finite proposals, so log w stays finite.
//! Optional SMC resampling (fab-spec §2.5): before a transition, if the normalised ESS of the
//! running weights is below a threshold, N indices are drawn ∝ w with replacement and every log
//! weight is set to logsumexp(log w) − log N, which keeps the normaliser estimate unbiased.

use fab_core::{
    AisBatch, AnnealTarget, AnnealedSampler, FabError, FabRng, Flow, LogDensity, Result,
};

use crate::config::{AisConfig, KernelConfig};
use crate::hmc::Hmc;
use crate::kernel::Kernel;
use crate::metropolis::Metropolis;
use crate::point::Points;

/// An AIS sampler with one tuned step size per intermediate distribution.
pub struct Ais {
    config: AisConfig,
    kernel: Box<dyn Kernel>,
    betas: Vec<f64>,
    step_sizes: Vec<f64>,
}

impl Ais {
    /// Builds the sampler; errors on settings it cannot run with ([`AisConfig::validate`]).
    pub fn new(config: AisConfig) -> Result<Self> {
        config.validate()?;
        let kernel: Box<dyn Kernel> = match config.kernel {
            KernelConfig::Metropolis { n_steps } => Box::new(Metropolis { n_steps }),
            KernelConfig::Hmc {
                n_leapfrog,
                max_grad,
            } => Box::new(Hmc {
                n_leapfrog,
                max_grad,
            }),
        };
        Ok(Self {
            betas: config.schedule.betas(config.n_intermediate),
            step_sizes: vec![config.init_step_size; config.n_intermediate],
            kernel,
            config,
        })
    }

    /// The inverse temperatures β₀..βₙ₊₁.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// Runs AIS from given start points x₀ (with their flow log weights computed here);
    /// `log_q0` may pass log q(x₀) if already known.
    #[allow(clippy::too_many_arguments)]
    pub fn run_from(
        &mut self,
        x0: ndarray::Array2<f64>,
        log_q0: Option<ndarray::Array1<f64>>,
        flow: &dyn LogDensity,
        target: &dyn LogDensity,
        goal: AnnealTarget,
        tune: bool,
        rng: &mut FabRng,
    ) -> Result<AisBatch> {
        // A user's own density may not check its input's width: compare the dimensions here.
        for (what, d) in [("flow", flow.dim()), ("target", target.dim())] {
            fab_core::density::check_dim(
                &format!("AIS start points for the {what}"),
                &x0.view(),
                d,
            )?;
        }
        if x0.nrows() == 0 {
            // No chains: nothing to anneal and nothing to adapt the step sizes from.
            return Ok(AisBatch::empty(x0.ncols(), self.config.n_intermediate));
        }
        let mut points =
            Points::evaluate_reusing(x0.clone(), log_q0, flow, target, self.kernel.needs_grad())?;
        let flow_log_w =
            (&points.log_p - &points.log_q)
                .mapv(|v| if v.is_finite() { v } else { f64::NEG_INFINITY });
        let n_invalid = points.replace_invalid(rng)?;

        let (a_q1, a_p1) = goal.mix(self.betas[1]);
        let mut log_w = &points.log_q * (a_q1 - 1.0) + &points.log_p * a_p1;
        let mut acceptance = Vec::with_capacity(self.config.n_intermediate);
        for j in 1..=self.config.n_intermediate {
            if let Some(threshold) = self.config.resample_below_ess {
                if fab_core::weights::ess(log_w.view()) < threshold {
                    log_w = resample(&mut points, &log_w, rng);
                }
            }
            let mix = goal.mix(self.betas[j]);
            let accept =
                self.kernel
                    .step(&mut points, mix, self.step_sizes[j - 1], flow, target, rng)?;
            acceptance.push(accept);
            if tune {
                self.step_sizes[j - 1] = self
                    .config
                    .adaptation
                    .update(self.step_sizes[j - 1], accept);
            }
            let next = goal.mix(self.betas[j + 1]);
            let (dq, dp) = (next.0 - mix.0, next.1 - mix.1);
            if dq != 0.0 || dp != 0.0 {
                log_w = log_w + &points.log_q * dq + &points.log_p * dp;
            }
        }
        Ok(AisBatch {
            x: points.x,
            log_w,
            log_q: points.log_q,
            log_p: points.log_p,
            x0,
            flow_log_w,
            acceptance,
            n_invalid,
        })
    }
}

/// Multinomial resampling ∝ exp(log w); returns the equalised log weights.
fn resample(
    points: &mut Points,
    log_w: &ndarray::Array1<f64>,
    rng: &mut FabRng,
) -> ndarray::Array1<f64> {
    use rand::Rng;
    let n = log_w.len();
    let w = fab_core::weights::normalised_weights(log_w.view());
    let mut cumulative = Vec::with_capacity(n);
    let mut acc = 0.0;
    for v in w.iter() {
        acc += v;
        cumulative.push(acc);
    }
    let idx: Vec<usize> = (0..n)
        .map(|_| {
            let u = rng.gen::<f64>() * acc;
            cumulative.partition_point(|&c| c < u).min(n - 1)
        })
        .collect();
    *points = points.select(&idx);
    let mean = fab_core::weights::log_z_estimate(log_w.view());
    ndarray::Array1::from_elem(n, mean)
}

impl AnnealedSampler for Ais {
    fn run(
        &mut self,
        flow: &dyn Flow,
        target: &dyn LogDensity,
        n: usize,
        goal: AnnealTarget,
        tune: bool,
        rng: &mut FabRng,
    ) -> Result<AisBatch> {
        let (x0, log_q0) = flow.sample(n, rng)?;
        let flow_density: &dyn LogDensity = flow;
        self.run_from(x0, Some(log_q0), flow_density, target, goal, tune, rng)
    }

    fn step_sizes(&self) -> Vec<f64> {
        self.step_sizes.clone()
    }

    fn set_step_sizes(&mut self, step_sizes: &[f64]) -> Result<()> {
        if step_sizes.len() != self.step_sizes.len() {
            return Err(FabError::shape(
                "AIS step sizes",
                self.step_sizes.len(),
                step_sizes.len(),
            ));
        }
        if let Some(bad) = step_sizes.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
            return Err(FabError::invalid(
                "AIS step sizes",
                format!("each must be a positive number, got {bad}"),
            ));
        }
        self.step_sizes.copy_from_slice(step_sizes);
        Ok(())
    }

    fn flow_evals_per_sample(&self) -> usize {
        self.kernel.evals_per_step() * self.config.n_intermediate + 1
    }
}
