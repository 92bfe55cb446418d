//! The interface of annealed samplers (AIS / SMC) as the training loop sees them.
//!
//! Implementations live in fab-ais; the trainer only needs "run a batch of chains from the flow
//! toward a goal density and give me points and log weights" plus the tunable step sizes, which are
//! saved in checkpoints.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::{FabRng, Flow, LogDensity, Result};

/// The density the annealing ends at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AnnealTarget {
    /// g ∝ p^α q^(1−α), the minimum-variance target of the α-divergence (training; α = 2 → p²/q).
    Fab {
        /// The α of the divergence (2 in FAB).
        alpha: f64,
    },
    /// The target p itself (evaluation).
    P,
}

impl AnnealTarget {
    /// Coefficients (a_q, a_p) with log f_β = a_q log q + a_p log p at inverse temperature β:
    /// (1 − αβ, αβ) for the FAB target and (1 − β, β) for p (fab-spec §2.1).
    pub fn mix(&self, beta: f64) -> (f64, f64) {
        let a = match *self {
            AnnealTarget::Fab { alpha } => alpha * beta,
            AnnealTarget::P => beta,
        };
        (1.0 - a, a)
    }
}

/// Output of one batch of annealing chains.
#[derive(Debug, Clone)]
pub struct AisBatch {
    /// Final points, shape `(n, d)`.
    pub x: Array2<f64>,
    /// AIS log weights toward the goal density (unnormalised).
    pub log_w: Array1<f64>,
    /// log q at the final points.
    pub log_q: Array1<f64>,
    /// log p at the final points.
    pub log_p: Array1<f64>,
    /// Initial flow samples x₀ ∼ q (before invalid-point replacement).
    pub x0: Array2<f64>,
    /// Flow importance log weights log p(x₀) − log q(x₀) of the initial samples (NaN-free: invalid → −inf).
    pub flow_log_w: Array1<f64>,
    /// Mean acceptance probability per intermediate distribution.
    pub acceptance: Vec<f64>,
    /// Number of initial points that were invalid and replaced.
    pub n_invalid: usize,
}

impl AisBatch {
    /// A batch of no chains in dimension `dim` (what asking for 0 samples gives).
    pub fn empty(dim: usize, n_intermediate: usize) -> Self {
        Self {
            x: Array2::zeros((0, dim)),
            log_w: Array1::zeros(0),
            log_q: Array1::zeros(0),
            log_p: Array1::zeros(0),
            x0: Array2::zeros((0, dim)),
            flow_log_w: Array1::zeros(0),
            acceptance: vec![f64::NAN; n_intermediate],
            n_invalid: 0,
        }
    }
}

/// An annealed importance sampler driven by the training loop.
pub trait AnnealedSampler: Send {
    /// Runs `n` chains starting from fresh flow samples toward `goal`. When `tune` is true the step
    /// sizes adapt toward the target acceptance; evaluation passes `false` (frozen step sizes).
    fn run(
        &mut self,
        flow: &dyn Flow,
        target: &dyn LogDensity,
        n: usize,
        goal: AnnealTarget,
        tune: bool,
        rng: &mut FabRng,
    ) -> Result<AisBatch>;

    /// Current step sizes, one per intermediate distribution (saved in checkpoints).
    fn step_sizes(&self) -> Vec<f64>;

    /// Restores step sizes saved by [`AnnealedSampler::step_sizes`].
    fn set_step_sizes(&mut self, step_sizes: &[f64]) -> Result<()>;

    /// Flow evaluations per sample of one pass (fab-torch's budget unit: n_inner · n + 1).
    fn flow_evals_per_sample(&self) -> usize;
}
