//! One coupling layer: the split into conditioning and transformed coordinates, the conditioner
//! MLP, and its affine or spline transform, in either engine.

use std::f64::consts::PI;

use dfdx::prelude::*;

use super::engine::Engine;
use crate::activation::Activation;
use crate::kernels::affine::{affine, LOG_SCALE_BOUND};
use crate::kernels::columns::{gather_columns, scatter_columns};
use crate::kernels::conditioner::{conditioner, ParamGrads};
use crate::kernels::split::{Split, Subset};
use crate::kernels::tape::dup2;
use crate::linear::Linear;
use crate::real::{Real, M, V};
use crate::spline::{Direction, SplineConsts};

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

/// The same elementwise affine map on every row: h ⊙ eˢ + μ (`Forward`, log-det +Σ s) or
/// (h − μ) ⊙ e⁻ˢ (`Inverse`, log-det −Σ s), added to `log_det`. The trainable base of RealNVP and
/// the ActNorm layers.
pub(super) fn elementwise_affine<E: Real, T: Tape<E, Cpu>>(
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
pub(super) fn wrap(v: f64) -> f64 {
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
    pub(super) fn apply<T: Tape<E, Cpu>>(
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
    pub(super) fn transform<T: Tape<E, Cpu>>(
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
