//! The coupling flow: its layers, base distribution and engine, and the passes through it in
//! both directions.

use std::f64::consts::PI;

use dfdx::prelude::*;
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use fab_core::{FabError, FabRng, Result};

use super::engine::Engine;
use super::layer::{elementwise_affine, wrap, Coupling};
use crate::kernels::conditioner::ParamGrads;
use crate::real::{host, widen, Real, M, V};
use crate::relative_angles::RelativeAngles;
use crate::spline::Direction;

/// ½ ln 2π.
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

/// A coupling flow on R^d (with some circular coordinates), computing in float type `E` (f64 by
/// default, or f32) behind the f64 [`fab_core::Flow`] API.
#[derive(Debug, Clone)]
pub struct CouplingFlow<E: Real = f64> {
    pub(crate) dev: Cpu,
    pub(crate) dim: usize,
    /// Trainable base location and log-scale (RealNVP), absent for spline flows.
    pub(crate) base_affine: Option<(V<E>, V<E>)>,
    /// Which coordinates live on the circle [−π, π).
    pub(crate) circular: Vec<bool>,
    pub(crate) layers: Vec<Coupling<E>>,
    /// Angles modelled relative to another angle, applied after the last layer (sampling
    /// direction); see [`crate::relative_angles`].
    pub(crate) relative_angles: Option<RelativeAngles<E>>,
    /// How the layers are computed.
    pub(crate) engine: Engine,
    /// Rows per chunk of the parameter gradient (see [`super::chunks::grad_chunk_count`]).
    pub(crate) gradient_chunk_rows: usize,
}

impl<E: Real> CouplingFlow<E>
where
    Cpu: Device<E>,
{
    /// The same flow computed by `engine`.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// How the layers are computed.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Dimension check naming `context`.
    pub(super) fn check(&self, context: &str, x: &ArrayView2<f64>) -> Result<()> {
        fab_core::density::check_dim(context, x, self.dim)
    }

    /// f64 batch → tensor in the flow's float type.
    pub(super) fn to_tensor(&self, x: ArrayView2<f64>) -> M<E> {
        self.dev
            .tensor_from_vec(x.iter().map(|&v| E::of(v)).collect(), x.dim())
    }

    /// Tensor → f64 batch.
    pub(super) fn to_array(&self, t: M<E>) -> Result<Array2<f64>> {
        let shape = *t.shape();
        Array2::from_shape_vec(shape, widen(host(&t)))
            .map_err(|e| FabError::Backend(format!("flow output: {e}")))
    }

    /// Adds the constant that realises x ← wrap(x ± c) on circular coordinates (derivative 1).
    fn circular_shift<T: Tape<E, Cpu>>(&self, h: M<E, T>, c: f64) -> M<E, T> {
        let (n, d) = *h.shape();
        let values = host(&h);
        let offset: Vec<E> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if self.circular[i % d] {
                    E::of(wrap(v.wide() + c) - v.wide())
                } else {
                    E::zero()
                }
            })
            .collect();
        h + self.dev.tensor_from_vec(offset, (n, d))
    }

    /// log base(z) per row: standard normal on ordinary coordinates, uniform on circular ones.
    pub(super) fn log_base(&self, z: ArrayView2<f64>) -> Array1<f64> {
        let n_circ = self.circular.iter().filter(|c| **c).count() as f64;
        z.rows()
            .into_iter()
            .map(|r| {
                let sq: f64 = r
                    .iter()
                    .zip(&self.circular)
                    .filter(|(_, c)| !**c)
                    .map(|(v, _)| v * v)
                    .sum();
                let outside = r
                    .iter()
                    .zip(&self.circular)
                    .any(|(v, c)| *c && !(-PI..=PI).contains(v));
                if outside {
                    f64::NEG_INFINITY
                } else {
                    -0.5 * sq - (self.dim as f64 - n_circ) * HALF_LOG_2PI - n_circ * (2.0 * PI).ln()
                }
            })
            .collect()
    }

    /// Density direction on tape `T`: z = f⁻¹(x) and log|det ∂z/∂x| per row.
    fn inverse_taped<T: Tape<E, Cpu>>(
        &self,
        x: M<E, T>,
        param_grads: ParamGrads,
    ) -> (M<E, T>, V<E, T>) {
        let n = x.shape().0;
        let mut log_det: V<E, T> = self.dev.zeros_like(&(n,)).retaped::<T>();
        let mut h = x;
        if let Some(rel) = &self.relative_angles {
            h = self.circular_shift(rel.inverse(h), 0.0);
        }
        for c in self.layers.iter().rev() {
            if let Some(shift) = c.shift_after {
                h = self.circular_shift(h, -shift);
            }
            let (z, ld) = c.apply(h, Direction::Inverse, self.engine, param_grads);
            log_det = log_det + ld;
            h = z;
            if let Some((loc, log_scale)) = &c.act_norm {
                (h, log_det) = elementwise_affine(h, log_det, loc, log_scale, Direction::Inverse);
            }
        }
        if let Some((loc, log_scale)) = &self.base_affine {
            (h, log_det) = elementwise_affine(h, log_det, loc, log_scale, Direction::Inverse);
        }
        (h, log_det)
    }

    /// Sampling direction on tape `T`: x = f(z) and log|det ∂f/∂z| per row.
    pub(super) fn forward_taped<T: Tape<E, Cpu>>(
        &self,
        z: M<E, T>,
        param_grads: ParamGrads,
    ) -> (M<E, T>, V<E, T>) {
        let n = z.shape().0;
        let mut log_det: V<E, T> = self.dev.zeros_like(&(n,)).retaped::<T>();
        let mut h = z;
        if let Some((loc, log_scale)) = &self.base_affine {
            (h, log_det) = elementwise_affine(h, log_det, loc, log_scale, Direction::Forward);
        }
        for c in &self.layers {
            if let Some((loc, log_scale)) = &c.act_norm {
                (h, log_det) = elementwise_affine(h, log_det, loc, log_scale, Direction::Forward);
            }
            let (y, ld) = c.apply(h, Direction::Forward, self.engine, param_grads);
            log_det = log_det + ld;
            h = y;
            if let Some(shift) = c.shift_after {
                h = self.circular_shift(h, shift);
            }
        }
        if let Some(rel) = &self.relative_angles {
            h = self.circular_shift(rel.forward(h), 0.0);
        }
        (h, log_det)
    }

    /// log q(x) for a batch, on tape `T`.
    pub(super) fn log_q<T: Tape<E, Cpu>>(&self, x: M<E, T>, param_grads: ParamGrads) -> V<E, T> {
        let n = x.shape().0;
        let (z, log_det) = self.inverse_taped(x, param_grads);
        let (n_circ, d) = (self.circular.iter().filter(|c| **c).count(), self.dim);
        let mask: Vec<E> = (0..n * d)
            .map(|i| {
                if self.circular[i % d] {
                    E::zero()
                } else {
                    E::one()
                }
            })
            .collect();
        let mask: M<E> = self.dev.tensor_from_vec(mask, (n, d));
        let constant = -((d - n_circ) as f64) * HALF_LOG_2PI - n_circ as f64 * (2.0 * PI).ln();
        // Circular coordinates of z are inside [−π, π) by construction of the circular layers.
        (z * mask).square().sum::<(usize,), Axis<1>>() * E::of(-0.5) + E::of(constant) + log_det
    }

    /// Density direction: z = f⁻¹(x) and log|det ∂f⁻¹/∂x| for each row.
    pub fn inverse(&self, x: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        self.check("flow inverse", &x)?;
        if x.nrows() == 0 {
            return Ok((x.to_owned(), Array1::zeros(0)));
        }
        let (z, log_det) = self.inverse_taped(self.to_tensor(x), ParamGrads::Skip);
        Ok((self.to_array(z)?, Array1::from(widen(host(&log_det)))))
    }

    /// Sampling direction: x = f(z) and log|det ∂f/∂z| for each row.
    pub fn forward(&self, z: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        self.check("flow forward", &z)?;
        if z.nrows() == 0 {
            return Ok((z.to_owned(), Array1::zeros(0)));
        }
        let (x, log_det) = self.forward_taped(self.to_tensor(z), ParamGrads::Skip);
        Ok((self.to_array(x)?, Array1::from(widen(host(&log_det)))))
    }

    /// Draws base samples: N(0, 1) on ordinary coordinates, U[−π, π) on circular ones.
    pub(super) fn sample_base(&self, n: usize, rng: &mut FabRng) -> Array2<f64> {
        let d = self.dim;
        Array2::from_shape_fn((n, d), |(_, j)| {
            if self.circular[j] {
                rng.gen_range(-PI..PI)
            } else {
                StandardNormal.sample(rng)
            }
        })
    }
}
