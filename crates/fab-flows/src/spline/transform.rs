//! Rational-quadratic (RQ) splines (Durkan et al. 2019), element-wise on rows, with linear tails
//! outside [−B, B] or circular on [−π, π] (Rezende et al. 2020), differentiable in dfdx.
//!
//! Each of the R rows (batch × transformed coordinates) has K bins with unnormalised widths and
//! heights (softmax, then at least `min_bin`) and knot derivatives (softplus, at least `min_slope`,
//! shifted so zero parameters give slope 1). Linear tails: K − 1 free interior derivatives and
//! slope 1 at ±B, identity outside. Circular: K free derivatives with d_K = d_0, so value and slope
//! match at −π and π. [`SplineConsts::apply`] runs two fused dfdx operations with hand-written
//! backward passes (parameters → knots in `spline/rq_knots.rs`, bin search + RQ formula in
//! `spline/rq_kernel.rs`); [`SplineConsts::apply_fused`] does all of it in one, eight rows at a
//! time (`spline/rq_fused.rs`), and is what the fused engine uses.
//!
//! In bin k with ξ = (x − x_k)/w_k, s = h_k/w_k:
//!   y = y_k + h_k(sξ² + d_kξ(1−ξ)) / (s + (d_{k+1} + d_k − 2s)ξ(1−ξ))
//!   log y' = 2 ln s + ln(d_{k+1}ξ² + 2sξ(1−ξ) + d_k(1−ξ)²) − 2 ln(s + (d_{k+1} + d_k − 2s)ξ(1−ξ))
//! and the inverse solves the quadratic for ξ with the numerically stable root 2c/(−b − √(b²−4ac)).

use crate::spline::config::{Direction, SplineConfig};
use dfdx::prelude::*;

use crate::real::{Real, M, V};
use crate::spline::rq_fused::rq_fused;
use crate::spline::rq_kernel::rq_spline;
use crate::spline::rq_knots::knots;

/// The shape of one spline (bins, interval, minimum sizes; linear tails or circular).
#[derive(Debug, Clone)]
pub struct SplineConsts {
    config: SplineConfig,
    circular: bool,
}

impl SplineConsts {
    /// The spline of `config`; `circular` selects the periodic spline on [−π, π].
    pub fn new(config: SplineConfig, circular: bool) -> Self {
        Self { config, circular }
    }

    /// Half-width of the interval.
    pub fn bound(&self) -> f64 {
        if self.circular {
            std::f64::consts::PI
        } else {
            self.config.bound
        }
    }

    /// Applies the spline to each row: `x` (R,), `params` (R, P). Returns (y, log|dy/dx|) in the
    /// requested direction (for `Inverse`, the log-det of the inverse map).
    pub fn apply<E: Real, T: Tape<E, Cpu>>(
        &self,
        x: V<E, T>,
        params: M<E, T>,
        direction: Direction,
    ) -> (V<E, T>, V<E, T>)
    where
        Cpu: Device<E>,
    {
        let c = &self.config;
        let b = self.bound();
        // Softmax widths and heights, cumulative knots and softplus slopes (rq_knots.rs).
        let (knots_x, knots_y, derivs) = knots(params, *c, self.circular, b);
        // Bin search, gather and the RQ formula in one fused operation (rq_kernel.rs).
        rq_spline(x, knots_x, knots_y, derivs, b, direction)
    }

    /// [`Self::apply`] as one fused operation, eight rows at a time (rq_fused.rs): the fused
    /// engine's path; equal to `apply` up to rounding.
    pub fn apply_fused<E: Real, T: Tape<E, Cpu>>(
        &self,
        x: V<E, T>,
        params: M<E, T>,
        direction: Direction,
    ) -> (V<E, T>, V<E, T>)
    where
        Cpu: Device<E>,
    {
        rq_fused(
            x,
            params,
            self.config,
            self.circular,
            self.bound(),
            direction,
        )
    }
}
