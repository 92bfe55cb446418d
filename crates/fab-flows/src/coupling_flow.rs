//! Coupling flows on dfdx, in f64 or f32: a stack of coupling layers over a base distribution.
//!
//! Each layer keeps its conditioning coordinates h_c and transforms the others elementwise with
//! parameters from an MLP of h_c (ReLU or GELU hidden layers, zero-initialised output heads, so
//! every layer starts as the identity map), optionally after an ActNorm layer. Two transforms:
//! * affine (RealNVP, [`crate::realnvp`]): h_t ← h_t ⊙ s + t with log s = k·tanh(a/k), k = ln 10;
//! * rational-quadratic splines ([`crate::spline`], [`crate::spline_flow`]): linear-tail splines on
//!   ordinary coordinates and circular splines on angles, optionally followed by a fixed circular
//!   shift of the angles, x ← wrap(x + c).
//!
//! After the last layer (sampling direction) an optional fixed shear makes some angles relative to
//! another one, x_j ← wrap(x_j + x_i) ([`crate::relative_angles`], log-det 0).
//!
//! The base is N(0, I) on ordinary coordinates (optionally with a trainable location and log-scale,
//! as fab-torch's RealNVP base) and uniform on [−π, π) on circular ones.
//! Density direction (x → z): inverse layers in reverse order, accumulating the log-dets, then
//! log q(x) = log base(z) + log|det ∂z/∂x|.

use std::f64::consts::PI;

use dfdx::prelude::*;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use fab_core::flow::{ReparamCoefficients, ReparamGrad, WeightedGrad};
use fab_core::{FabError, FabRng, Flow, LogDensity, Result};

use crate::activation::Activation;
use crate::affine_kernel::{affine, LOG_SCALE_BOUND};
use crate::columns::{gather_columns, scatter_columns};
use crate::conditioner::{conditioner, ParamGrads};
use crate::linear::Linear;
use crate::real::{host, Real, M, V};
use crate::relative_angles::RelativeAngles;
use crate::spline::{Direction, SplineConsts};
use crate::split::{Split, Subset};
use crate::tape::dup2;

/// ½ ln 2π.
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

/// How a flow's layers are computed. Both give the same numbers (tests/engines.rs checks them
/// against each other to 1e-10 in f64); `Fused` is the fast one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// One fused dfdx operation per stage of a coupling layer (column gathers, the conditioner
    /// MLP, the affine or spline transform), each with a hand-written backward pass; HMC's input
    /// gradient skips the parameter gradients.
    #[default]
    Fused,
    /// Composed from dfdx's own tensor operations (0/1 matmuls for coordinate selection): the
    /// reference the fused engine is tested against.
    Reference,
}

/// A spline applied to one subset of a layer's transformed coordinates.
#[derive(Debug, Clone)]
pub(crate) struct SplinePart<E: Real> {
    /// Picks the subset out of the transformed coordinates (and puts it back).
    pub(crate) subset: Subset<E>,
    pub(crate) consts: SplineConsts,
    pub(crate) head: Linear<E>,
    pub(crate) width: usize,
    pub(crate) n_params: usize,
}

/// The elementwise transform of a coupling layer.
#[derive(Debug, Clone)]
pub(crate) enum Transform<E: Real> {
    /// Affine: shift and log-scale heads.
    Affine { shift: Linear<E>, scale: Linear<E> },
    /// Splines: up to two parts (linear-tail and circular) of the transformed coordinates.
    Spline { parts: Vec<(String, SplinePart<E>)> },
}

/// One coupling layer.
#[derive(Debug, Clone)]
pub(crate) struct Coupling<E: Real> {
    pub(crate) split: Split<E>,
    pub(crate) hidden: Vec<Linear<E>>,
    /// The hidden layers' activation.
    pub(crate) activation: Activation,
    pub(crate) transform: Transform<E>,
    /// Fixed circular shift applied after the layer (sampling direction) to circular coordinates.
    pub(crate) shift_after: Option<f64>,
    /// Trainable elementwise affine (location, log-scale) applied before the layer in the
    /// sampling direction, h ← h ⊙ eˢ + μ (fab-jax's ActNorm; zeros, i.e. identity, at start).
    pub(crate) act_norm: Option<(V<E>, V<E>)>,
}

/// A coupling flow on R^d (with some circular coordinates), computing in float type `E` (f64 by
/// default, or f32) behind the f64 [`Flow`] API.
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
}

/// Borrowed parameter tensor of either rank.
enum Param<'a, E: Real> {
    M(&'a M<E>),
    V(&'a V<E>),
}

/// Mutably borrowed parameter tensor.
enum ParamMut<'a, E: Real> {
    M(&'a mut M<E>),
    V(&'a mut V<E>),
}

/// The same elementwise affine map on every row: h ⊙ eˢ + μ (`Forward`, log-det +Σ s) or
/// (h − μ) ⊙ e⁻ˢ (`Inverse`, log-det −Σ s), added to `log_det`. The trainable base of RealNVP and
/// the ActNorm layers.
fn elementwise_affine<E: Real, T: Tape<E, Cpu>>(
    h: M<E, T>,
    log_det: V<E, T>,
    loc: &V<E>,
    log_scale: &V<E>,
    direction: Direction,
) -> (M<E, T>, V<E, T>)
where
    Cpu: Device<E>,
{
    let (n, d) = *h.shape();
    let loc = loc.retaped::<T>().broadcast_like::<_, Axis<0>>(&(n, d));
    let sum_s = log_scale
        .retaped::<T>()
        .sum::<(), _>()
        .broadcast_like(&(n,));
    match direction {
        Direction::Forward => {
            let scale = log_scale
                .retaped::<T>()
                .exp()
                .broadcast_like::<_, Axis<0>>(&(n, d));
            (h * scale + loc, log_det + sum_s)
        }
        Direction::Inverse => {
            let inv_scale = log_scale
                .retaped::<T>()
                .negate()
                .exp()
                .broadcast_like::<_, Axis<0>>(&(n, d));
            ((h - loc) * inv_scale, log_det - sum_s)
        }
    }
}

/// Wraps angles into [−π, π).
fn wrap(v: f64) -> f64 {
    v - 2.0 * PI * ((v + PI) / (2.0 * PI)).floor()
}

impl<E: Real> Coupling<E>
where
    Cpu: Device<E>,
{
    fn hidden_features<T: Tape<E, Cpu>>(&self, h_c: M<E, T>) -> M<E, T> {
        let mut h = h_c;
        for layer in &self.hidden {
            h = match self.activation {
                Activation::Relu => layer.forward(h).relu(),
                Activation::Gelu => layer.forward(h).fast_gelu(),
            };
        }
        h
    }

    /// The layer in `direction` on the full batch h (n, d): (new h, log-det per row).
    fn apply<T: Tape<E, Cpu>>(
        &self,
        h: M<E, T>,
        direction: Direction,
        engine: Engine,
        param_grads: ParamGrads,
    ) -> (M<E, T>, V<E, T>) {
        match engine {
            Engine::Reference => {
                let (h_c, h_t) = self.split.split(h);
                let (h_c1, h_c2) = dup2(h_c);
                let (y_t, ld) = self.transform(self.hidden_features(h_c1), h_t, direction);
                (self.split.merge(h_c2, y_t), ld)
            }
            Engine::Fused => {
                let d = h.shape().1;
                let (cond, trans) = (self.split.cond().indices(), self.split.trans().indices());
                let (h1, h2) = dup2(h);
                let (h_c1, h_c2) = dup2(gather_columns(h1, cond));
                let h_t = gather_columns(h2, trans);
                let (y_t, ld) = self.transform_fused(h_c1, h_t, direction, param_grads);
                (scatter_columns(vec![(h_c2, cond), (y_t, trans)], d), ld)
            }
        }
    }

    /// The fused engine's transform of h_t given the conditioning coordinates h_c.
    fn transform_fused<T: Tape<E, Cpu>>(
        &self,
        h_c: M<E, T>,
        h_t: M<E, T>,
        direction: Direction,
        param_grads: ParamGrads,
    ) -> (M<E, T>, V<E, T>) {
        match &self.transform {
            Transform::Affine { shift, scale } => {
                let mut outs = conditioner(
                    h_c,
                    &self.hidden,
                    &[shift, scale],
                    self.activation,
                    param_grads,
                )
                .into_iter();
                let (Some(t), Some(a)) = (outs.next(), outs.next()) else {
                    unreachable!("the conditioner returns one output per head")
                };
                affine(h_t, t, a, direction)
            }
            Transform::Spline { parts } => {
                let (n, width_t) = *h_t.shape();
                let heads: Vec<&Linear<E>> = parts.iter().map(|(_, p)| &p.head).collect();
                let outs = conditioner(h_c, &self.hidden, &heads, self.activation, param_grads);
                let mut rest = Some(h_t);
                let mut pieces = Vec::with_capacity(parts.len());
                let mut log_det: Option<V<E, T>> = None;
                for (j, ((_, part), params)) in parts.iter().zip(outs).enumerate() {
                    let h_here = if j + 1 == parts.len() {
                        rest.take().expect("h_t")
                    } else {
                        let (h1, h2) = dup2(rest.take().expect("h_t"));
                        rest = Some(h2);
                        h1
                    };
                    let x_flat = gather_columns(h_here, part.subset.indices())
                        .reshape_like(&(n * part.width,));
                    let params = params.reshape_like(&(n * part.width, part.n_params));
                    let (y, ld) = part.consts.apply_fused(x_flat, params, direction);
                    pieces.push((y.reshape_like(&(n, part.width)), part.subset.indices()));
                    let ld = ld.reshape_like(&(n, part.width)).sum::<(usize,), Axis<1>>();
                    log_det = Some(match log_det {
                        None => ld,
                        Some(acc) => acc + ld,
                    });
                }
                (
                    scatter_columns(pieces, width_t),
                    log_det.expect("a spline layer has at least one part"),
                )
            }
        }
    }

    /// Transforms h_t given the conditioning features; returns (new h_t, log-det per row).
    fn transform<T: Tape<E, Cpu>>(
        &self,
        features: M<E, T>,
        h_t: M<E, T>,
        direction: Direction,
    ) -> (M<E, T>, V<E, T>) {
        match &self.transform {
            Transform::Affine { shift, scale } => {
                let (f1, f2) = dup2(features);
                let t = shift.forward(f1);
                let log_s = (scale.forward(f2) * E::of(1.0 / LOG_SCALE_BOUND)).tanh()
                    * E::of(LOG_SCALE_BOUND);
                let (ls1, ls2) = dup2(log_s);
                let ld = ls2.sum::<(usize,), Axis<1>>();
                match direction {
                    Direction::Forward => (h_t * ls1.exp() + t, ld),
                    Direction::Inverse => ((h_t - t) * ls1.negate().exp(), ld.negate()),
                }
            }
            Transform::Spline { parts } => {
                let n = h_t.shape().0;
                let mut features = Some(features);
                let mut rest = Some(h_t);
                let mut outs: Vec<M<E, T>> = Vec::new();
                let mut log_det: Option<V<E, T>> = None;
                for (j, (_, part)) in parts.iter().enumerate() {
                    // Each part takes its own copy of the features and of h_t.
                    let last = j + 1 == parts.len();
                    let (f_here, h_here) = if last {
                        (
                            features.take().expect("features"),
                            rest.take().expect("h_t"),
                        )
                    } else {
                        let (f1, f2) = dup2(features.take().expect("features"));
                        let (h1, h2) = dup2(rest.take().expect("h_t"));
                        features = Some(f2);
                        rest = Some(h2);
                        (f1, h1)
                    };
                    let x_part = part.subset.pick(h_here);
                    let params = part
                        .head
                        .forward(f_here)
                        .reshape_like(&(n * part.width, part.n_params));
                    let x_flat = x_part.reshape_like(&(n * part.width,));
                    let (y, ld) = part.consts.apply(x_flat, params, direction);
                    outs.push(part.subset.put(y.reshape_like(&(n, part.width))));
                    let ld = ld.reshape_like(&(n, part.width)).sum::<(usize,), Axis<1>>();
                    log_det = Some(match log_det {
                        None => ld,
                        Some(acc) => acc + ld,
                    });
                }
                let mut outs = outs.into_iter();
                let first = outs.next().expect("a spline layer has at least one part");
                let y = outs.fold(first, |acc, o| acc + o);
                (y, log_det.expect("at least one part"))
            }
        }
    }
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
    fn check(&self, context: &str, x: &ArrayView2<f64>) -> Result<()> {
        fab_core::density::check_dim(context, x, self.dim)
    }

    /// f64 batch → tensor in the flow's float type.
    fn to_tensor(&self, x: ArrayView2<f64>) -> M<E> {
        self.dev
            .tensor_from_vec(x.iter().map(|&v| E::of(v)).collect(), x.dim())
    }

    /// Tensor → f64 batch.
    fn to_array(&self, t: M<E>) -> Result<Array2<f64>> {
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
    fn log_base(&self, z: ArrayView2<f64>) -> Array1<f64> {
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
    fn forward_taped<T: Tape<E, Cpu>>(
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
    fn log_q<T: Tape<E, Cpu>>(&self, x: M<E, T>, param_grads: ParamGrads) -> V<E, T> {
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
    fn sample_base(&self, n: usize, rng: &mut FabRng) -> Array2<f64> {
        let d = self.dim;
        Array2::from_shape_fn((n, d), |(_, j)| {
            if self.circular[j] {
                rng.gen_range(-PI..PI)
            } else {
                StandardNormal.sample(rng)
            }
        })
    }

    fn named_params(&self) -> Vec<(String, Param<'_, E>)> {
        let mut out = Vec::new();
        if let Some((loc, log_scale)) = &self.base_affine {
            out.push(("base.loc".to_string(), Param::V(loc)));
            out.push(("base.log_scale".to_string(), Param::V(log_scale)));
        }
        for (l, c) in self.layers.iter().enumerate() {
            if let Some((loc, log_scale)) = &c.act_norm {
                out.push((format!("layer{l}.act_norm.loc"), Param::V(loc)));
                out.push((format!("layer{l}.act_norm.log_scale"), Param::V(log_scale)));
            }
            let mut lins: Vec<(String, &Linear<E>)> = c
                .hidden
                .iter()
                .enumerate()
                .map(|(j, lin)| (format!("hidden{j}"), lin))
                .collect();
            match &c.transform {
                Transform::Affine { shift, scale } => {
                    lins.push(("shift".into(), shift));
                    lins.push(("scale".into(), scale));
                }
                Transform::Spline { parts } => {
                    lins.extend(parts.iter().map(|(name, p)| (name.clone(), &p.head)))
                }
            }
            for (name, lin) in lins {
                out.push((format!("layer{l}.{name}.w"), Param::M(&lin.w)));
                out.push((format!("layer{l}.{name}.b"), Param::V(&lin.b)));
            }
        }
        out
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_, E>> {
        let mut out = Vec::new();
        if let Some((loc, log_scale)) = self.base_affine.as_mut() {
            out.push(ParamMut::V(loc));
            out.push(ParamMut::V(log_scale));
        }
        for c in self.layers.iter_mut() {
            if let Some((loc, log_scale)) = c.act_norm.as_mut() {
                out.push(ParamMut::V(loc));
                out.push(ParamMut::V(log_scale));
            }
            let mut lins: Vec<&mut Linear<E>> = c.hidden.iter_mut().collect();
            match &mut c.transform {
                Transform::Affine { shift, scale } => {
                    lins.push(shift);
                    lins.push(scale);
                }
                Transform::Spline { parts } => {
                    lins.extend(parts.iter_mut().map(|(_, p)| &mut p.head))
                }
            }
            for lin in lins {
                out.push(ParamMut::M(&mut lin.w));
                out.push(ParamMut::V(&mut lin.b));
            }
        }
        out
    }

    /// [`Flow::weighted_nll_grad`] over row chunks: the gradient of −Σ c log q / n is summed
    /// over chunks in chunk order. The chunks depend on the batch size alone
    /// ([`grad_chunk_count`]) and both schedules below give the same bits (a taped and an untaped
    /// pass compute log q alike), so training is the same on any number of threads.
    ///
    /// The coefficients need log q of the whole batch first. On one thread each chunk's taped
    /// pass is kept until they are known (dfdx tapes cannot move between threads); on several,
    /// log q is first evaluated without a tape (about a third of a taped pass) and each chunk
    /// then runs its taped pass and backward on its own thread.
    fn weighted_nll_grad_chunked(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad> {
        let n = x.nrows();
        let size = n.div_ceil(grad_chunk_count(n));
        let chunks: Vec<ArrayView2<f64>> = x.axis_chunks_iter(ndarray::Axis(0), size).collect();
        let scale = E::of(-1.0 / n as f64);
        let chunk_loss = |lq: V<E, OwnedTape<E, Cpu>>, c: ArrayView1<f64>| {
            let c: V<E> = self.dev.tensor_from_vec(narrow(c), (c.len(),));
            let loss = (lq * c).sum::<(), _>() * scale;
            (loss.array().wide(), self.flat_grad(&loss.backward()))
        };
        let check = |c: &Array1<f64>| {
            if c.len() == n {
                Ok(())
            } else {
                Err(FabError::shape("loss coefficients", n, c.len()))
            }
        };
        let (log_q, coefficients, parts) = if rayon::current_num_threads() == 1 || chunks.len() == 1
        {
            let taped: Vec<_> = chunks
                .iter()
                .map(|x| self.log_q(self.to_tensor(*x).leaky_trace(), ParamGrads::Accumulate))
                .collect();
            let log_q: Array1<f64> = taped.iter().flat_map(|lq| widen(host(lq))).collect();
            let coefficients = coeff(log_q.view());
            check(&coefficients)?;
            let parts: Vec<(f64, Vec<f64>)> = taped
                .into_iter()
                .zip(coefficients.axis_chunks_iter(ndarray::Axis(0), size))
                .map(|(lq, c)| chunk_loss(lq, c))
                .collect();
            (log_q, coefficients, parts)
        } else {
            let log_q = self.log_prob_chunks(&chunks);
            let coefficients = coeff(log_q.view());
            check(&coefficients)?;
            let c_chunks: Vec<ArrayView1<f64>> = coefficients
                .axis_chunks_iter(ndarray::Axis(0), size)
                .collect();
            let parts: Vec<(f64, Vec<f64>)> = chunks
                .into_par_iter()
                .zip(c_chunks)
                .map(|(x, c)| {
                    chunk_loss(
                        self.log_q(self.to_tensor(x).leaky_trace(), ParamGrads::Accumulate),
                        c,
                    )
                })
                .collect();
            (log_q, coefficients, parts)
        };
        let mut loss = 0.0;
        let mut grad = vec![0.0; parts.first().map_or(0, |(_, g)| g.len())];
        for (l, g) in parts {
            loss += l;
            grad.iter_mut().zip(g).for_each(|(a, b)| *a += b);
        }
        Ok(WeightedGrad {
            log_q,
            coefficients,
            loss,
            grad,
        })
    }

    /// log q of the rows of `chunks`, one untaped pass per chunk on the rayon threads, in order.
    fn log_prob_chunks(&self, chunks: &[ArrayView2<f64>]) -> Array1<f64> {
        let parts: Vec<Vec<f64>> = chunks
            .par_iter()
            .map(|x| widen(host(&self.log_q(self.to_tensor(*x), ParamGrads::Skip))))
            .collect();
        parts.into_iter().flatten().collect()
    }

    /// Flat gradient of all parameters, in [`Flow::params`] order.
    fn flat_grad(&self, grads: &Gradients<E, Cpu>) -> Vec<f64> {
        let mut grad = Vec::new();
        for (_, p) in self.named_params() {
            match p {
                Param::M(t) => grad.extend(widen(host(&grads.get(t)))),
                Param::V(t) => grad.extend(widen(host(&grads.get(t)))),
            }
        }
        grad
    }
}

/// f64 values (loss coefficients, base log-densities) in the flow's float type.
fn narrow<E: Real>(v: ArrayView1<f64>) -> Vec<E> {
    v.iter().map(|&x| E::of(x)).collect()
}

/// Values of a flow tensor as f64.
fn widen<E: Real>(v: Vec<E>) -> Vec<f64> {
    v.into_iter().map(Real::wide).collect()
}

impl<E: Real> LogDensity for CouplingFlow<E>
where
    Cpu: Device<E>,
{
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.check("flow log_prob", &x)?;
        let mut out = Array1::zeros(x.nrows());
        if x.nrows() == 0 {
            return Ok(out);
        }
        par_chunks(x, None, out.view_mut(), &|x, mut lq, _| {
            let q = self.log_q(self.to_tensor(x), ParamGrads::Skip);
            lq.assign(&Array1::from(widen(host(&q))));
        });
        Ok(out)
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        fab_core::density::check_dim_and_grad("flow log_prob_and_grad", &x, &grad, self.dim)?;
        let mut out = Array1::zeros(x.nrows());
        if x.nrows() == 0 {
            return Ok(out);
        }
        par_chunks(x, Some(grad), out.view_mut(), &|x, mut lq, grad| {
            let xt = self.to_tensor(x);
            let q = self.log_q(xt.leaky_trace(), ParamGrads::Skip);
            lq.assign(&Array1::from(widen(host(&q))));
            let grads = q.sum::<(), _>().backward();
            let g = host(&grads.get(&xt));
            if let Some(mut grad) = grad {
                grad.iter_mut().zip(g).for_each(|(dst, v)| *dst = v.wide());
            }
        });
        Ok(out)
    }
}

/// Rows per chunk below which a batch is not split.
const MIN_CHUNK_ROWS: usize = 64;

/// How many row chunks a batch of `n` rows is split into: one per rayon thread, at least
/// [`MIN_CHUNK_ROWS`] rows each.
fn chunk_count(n: usize) -> usize {
    rayon::current_num_threads().min(n / MIN_CHUNK_ROWS).max(1)
}

/// Rows per chunk of a parameter-gradient sum, about.
const GRAD_CHUNK_ROWS: usize = 256;

/// How many chunks the parameter gradient of a batch of `n` rows is summed over: a function of
/// `n` only, because each chunk's gradient (a GEMM over its rows) rounds differently when the
/// rows are split differently. Per-row results (log q, ∇ₓ log q) do not depend on the chunking,
/// so [`chunk_count`] may follow the thread count. One chunk below 256 rows (small flows are
/// overhead-bound: splitting a batch of 200 cost 19 % of a GMM iteration on one thread), then
/// at least two (so two threads share the work), about 256 rows each.
fn grad_chunk_count(n: usize) -> usize {
    if n < GRAD_CHUNK_ROWS {
        1
    } else {
        n.div_ceil(GRAD_CHUNK_ROWS).max(2)
    }
}

/// Work on one row chunk: (rows, their log q, their gradient rows if asked).
type RowChunkFn<'a> =
    dyn Fn(ArrayView2<f64>, ArrayViewMut1<f64>, Option<ArrayViewMut2<f64>>) + Sync + 'a;

/// Runs `f` on row chunks of `x` (with the matching rows of `grad` and `out`) in parallel, one
/// chunk per rayon thread. dfdx runs element-wise ops on one thread, so splitting the batch is
/// what puts a second core to work on the flow; rows are independent, so results do not depend
/// on the chunking beyond GEMM rounding.
fn par_chunks(
    x: ArrayView2<f64>,
    grad: Option<ArrayViewMut2<f64>>,
    out: ArrayViewMut1<f64>,
    f: &RowChunkFn<'_>,
) {
    let n = x.nrows();
    let chunks = chunk_count(n);
    if chunks == 1 {
        return f(x, out, grad);
    }
    let size = n.div_ceil(chunks);
    let xs: Vec<ArrayView2<f64>> = x.axis_chunks_iter(ndarray::Axis(0), size).collect();
    let mut out = out;
    let outs: Vec<ArrayViewMut1<f64>> = out.axis_chunks_iter_mut(ndarray::Axis(0), size).collect();
    let mut grad = grad;
    let grads: Vec<Option<ArrayViewMut2<f64>>> = match grad.as_mut() {
        Some(g) => g
            .axis_chunks_iter_mut(ndarray::Axis(0), size)
            .map(Some)
            .collect(),
        None => (0..xs.len()).map(|_| None).collect(),
    };
    xs.into_par_iter()
        .zip(outs)
        .zip(grads)
        .for_each(|((x, o), g)| f(x, o, g));
}

impl<E: Real> Flow for CouplingFlow<E>
where
    Cpu: Device<E>,
{
    fn sample(&self, n: usize, rng: &mut FabRng) -> Result<(Array2<f64>, Array1<f64>)> {
        let z = self.sample_base(n, rng);
        let (x, log_det) = self.forward(z.view())?;
        Ok((x, self.log_base(z.view()) - log_det))
    }

    fn weighted_nll_grad(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad> {
        self.check("flow training batch", &x)?;
        let n = x.nrows();
        if n == 0 {
            return Err(FabError::invalid(
                "flow training batch",
                "the batch is empty",
            ));
        }
        self.weighted_nll_grad_chunked(x, coeff)
    }

    fn reparam_grad(
        &self,
        n: usize,
        rng: &mut FabRng,
        coeff: &mut dyn FnMut(ArrayView2<f64>, ArrayView1<f64>) -> Result<ReparamCoefficients>,
    ) -> Result<ReparamGrad> {
        if n == 0 {
            return Err(FabError::invalid(
                "reparameterised batch",
                "the batch is empty",
            ));
        }
        let d = self.dim;
        let z = self.sample_base(n, rng);
        let log_base = self.log_base(z.view());
        let (x, log_det) = self.forward_taped(
            self.to_tensor(z.view()).leaky_trace(),
            ParamGrads::Accumulate,
        );
        let base: V<E> = self.dev.tensor_from_vec(narrow(log_base.view()), (n,));
        // log q along the sampling path: log base(z) − log|det ∂f/∂z|, differentiable in θ.
        let log_q = log_det.negate() + base;
        let x_values = self.to_array(x.retaped::<NoneTape>())?;
        let log_q_values = Array1::from(widen(host(&log_q)));
        let k = coeff(x_values.view(), log_q_values.view())?;
        if k.c.len() != n || k.g.dim() != (n, d) {
            return Err(FabError::shape(
                "reparameterised loss coefficients",
                format!("c ({n}), g ({n}, {d})"),
                format!("c ({}), g {:?}", k.c.len(), k.g.dim()),
            ));
        }
        let c: V<E> = self.dev.tensor_from_vec(narrow(k.c.view()), (n,));
        let g: M<E> = self.to_tensor(k.g.view());
        let surrogate =
            (log_q * c).mean::<(), _>() + (x * g).sum::<(usize,), Axis<1>>().mean::<(), _>();
        let grad = self.flat_grad(&surrogate.backward());
        Ok(ReparamGrad {
            x: x_values,
            log_q: log_q_values,
            loss: k.loss,
            grad,
        })
    }

    fn params(&self) -> Vec<f64> {
        let mut out = Vec::new();
        for (_, p) in self.named_params() {
            match p {
                Param::M(t) => out.extend(widen(host(t))),
                Param::V(t) => out.extend(widen(host(t))),
            }
        }
        out
    }

    fn set_params(&mut self, params: &[f64]) -> Result<()> {
        let expected: usize = self
            .param_layout()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        if params.len() != expected {
            return Err(FabError::shape("flow set_params", expected, params.len()));
        }
        let params: Vec<E> = params.iter().map(|&v| E::of(v)).collect();
        let mut offset = 0;
        for p in self.params_mut() {
            let len = match &p {
                ParamMut::M(t) => t.shape().num_elements(),
                ParamMut::V(t) => t.shape().num_elements(),
            };
            match p {
                ParamMut::M(t) => t.copy_from(&params[offset..offset + len]),
                ParamMut::V(t) => t.copy_from(&params[offset..offset + len]),
            }
            offset += len;
        }
        Ok(())
    }

    fn param_layout(&self) -> Vec<(String, Vec<usize>)> {
        self.named_params()
            .into_iter()
            .map(|(name, p)| {
                let shape = match p {
                    Param::M(t) => vec![t.shape().0, t.shape().1],
                    Param::V(t) => vec![t.shape().0],
                };
                (name, shape)
            })
            .collect()
    }
}
