//! What the FAB training loop needs from a normalizing flow.
//!
//! A flow is a [`LogDensity`] (log q and ∇ₓ log q, the latter for HMC) that can also draw samples
//! and return the parameter gradient of the weighted negative log-likelihood
//! L(θ) = −(1/B) Σᵢ cᵢ log q_θ(xᵢ), with the coefficients cᵢ computed from the (detached)
//! log q values of the same forward pass. Every FAB loss is of that form (see [`crate::loss`]).
//! Parameters are exposed as one flat vector so the optimiser ([`crate::optim`]) and checkpoints
//! ([`crate::checkpoint`]) can live here, independent of the autodiff backend.

use std::ops::Range;

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};

use crate::{Communicator, FabRng, LogDensity, Result};

/// Gradient of the weighted negative log-likelihood at the current parameters.
#[derive(Debug, Clone)]
pub struct WeightedGrad {
    /// log q_θ(xᵢ) before any update (these are the "log q_new" of the buffer adjustment).
    pub log_q: Array1<f64>,
    /// The coefficients cᵢ that were used.
    pub coefficients: Array1<f64>,
    /// L(θ) = −mean(c ⊙ log q).
    pub loss: f64,
    /// ∂L/∂θ, laid out as [`Flow::params`].
    pub grad: Vec<f64>,
}

/// Constants of a reparameterised surrogate loss, computed from the sample values:
/// L(θ) = mean_i[ cᵢ · log q_θ(x_θ(zᵢ)) ] + mean_i[ gᵢ · x_θ(zᵢ) ] (see [`Flow::reparam_grad`]).
#[derive(Debug, Clone)]
pub struct ReparamCoefficients {
    /// cᵢ multiplying log q along the sampling path.
    pub c: Array1<f64>,
    /// gᵢ (rows of shape d) multiplying the sample xᵢ; e.g. −∇ₓ log p(xᵢ) for reverse KL.
    pub g: Array2<f64>,
    /// The loss value to report (the surrogate's value is usually not the loss itself).
    pub loss: f64,
}

/// Result of [`Flow::reparam_grad`].
#[derive(Debug, Clone)]
pub struct ReparamGrad {
    /// The samples x = f_θ(z).
    pub x: Array2<f64>,
    /// log q_θ(x) along the sampling path.
    pub log_q: Array1<f64>,
    /// Reported loss value.
    pub loss: f64,
    /// ∂L/∂θ through the samples, laid out as [`Flow::params`].
    pub grad: Vec<f64>,
}

/// Outcome of one optimiser step, for logging.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepInfo {
    /// Loss value before the step.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// True if the step was skipped (non-finite loss or gradient).
    pub skipped: bool,
}

/// A normalizing flow q_θ trainable by FAB.
pub trait Flow: LogDensity {
    /// Draws `n` samples x ∼ q_θ with their log q(x).
    fn sample(&self, n: usize, rng: &mut FabRng) -> Result<(Array2<f64>, Array1<f64>)>;

    /// Draws `n` samples as [`Flow::sample`] does, advancing `rng` alike, but returns only the
    /// samples `rows` (data-parallel sampling: each rank pushes its share of one batch of base
    /// samples through the flow). The default draws all `n` and slices; flows override it to
    /// transform only the rows asked for.
    fn sample_rows(
        &self,
        n: usize,
        rows: Range<usize>,
        rng: &mut FabRng,
    ) -> Result<(Array2<f64>, Array1<f64>)> {
        let (x, log_q) = self.sample(n, rng)?;
        Ok((
            x.slice(s![rows.clone(), ..]).to_owned(),
            log_q.slice(s![rows]).to_owned(),
        ))
    }

    /// [`Flow::weighted_nll_grad`] with the work split over the ranks of `comm` (every rank
    /// calls it with the same batch and gets the same result). Flows that split it sum the
    /// gradient over row chunks fixed by the batch, in chunk order, so the bits do not depend on
    /// the number of ranks; the default computes the whole gradient on every rank.
    fn weighted_nll_grad_across(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
        _comm: &dyn Communicator,
    ) -> Result<WeightedGrad> {
        self.weighted_nll_grad(x, coeff)
    }

    /// Computes log q(x), the coefficients `coeff(log q)` (held constant) and the gradient of
    /// −mean(c ⊙ log q) with respect to the parameters, in one forward and one backward pass.
    fn weighted_nll_grad(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad>;

    /// Draws `n` samples x = f_θ(z), z ∼ base, asks `coeff(x, log q)` for the constants of the
    /// surrogate L(θ) = mean(c ⊙ log q) + mean(Σⱼ gᵢⱼ xᵢⱼ), and returns ∇θ L with the gradient flowing
    /// through the samples (reparameterisation). Reverse KL uses c = 1, g = −∇ₓ log p; the flow-sample
    /// α = 2 loss uses c = −sg[(p/q)²], g = 0.
    #[allow(clippy::type_complexity)] // the callback's signature is the clearest name for it
    fn reparam_grad(
        &self,
        n: usize,
        rng: &mut FabRng,
        coeff: &mut dyn FnMut(ArrayView2<f64>, ArrayView1<f64>) -> Result<ReparamCoefficients>,
    ) -> Result<ReparamGrad>;

    /// All trainable parameters as one flat vector.
    fn params(&self) -> Vec<f64>;

    /// Overwrites all parameters from a flat vector laid out as [`Flow::params`].
    fn set_params(&mut self, params: &[f64]) -> Result<()>;

    /// Name and shape of each parameter tensor, in the order of [`Flow::params`]; used to name
    /// tensors in checkpoints and to detect a checkpoint from another architecture.
    fn param_layout(&self) -> Vec<(String, Vec<usize>)>;
}
