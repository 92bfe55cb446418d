//! The affine coupling transform as one fused dfdx operation with a hand-written backward pass.
//!
//! From the conditioner's shift t and raw scale a (both n × k), the log-scale is bounded as
//! ls = c·tanh(a/c) with c = ln 10 (scales in (0.1, 10), s = 1 at a = 0), and
//!   forward (sampling):  y = h ⊙ e^{ls} + t,        log-det = Σⱼ lsⱼ;
//!   inverse (density):   y = (h − t) ⊙ e^{−ls},     log-det = −Σⱼ lsⱼ.
//! Backward, with ∂ls/∂a = 1 − tanh²(a/c):
//!   forward:  ∂h = ∂y e^{ls},  ∂t = ∂y,         ∂ls = ∂y·h e^{ls} + ∂ld;
//!   inverse:  ∂h = ∂y e^{−ls}, ∂t = −∂y e^{−ls}, ∂ls = −∂y·y − ∂ld.

use dfdx::prelude::*;

use crate::real::{host, Real, M, V};
use crate::spline::config::Direction;

/// Bound c on |log s|: scales stay in (0.1, 10), as fab-jax's restricted RealNVP scale.
pub(crate) const LOG_SCALE_BOUND: f64 = std::f64::consts::LN_10;

/// Applies the affine transform to `h` (n × k) with `shift` and raw `scale` (n × k) in
/// `direction`; returns (y, log-det per row).
pub(crate) fn affine<E: Real, T: Tape<E, Cpu>>(
    h: M<E, T>,
    shift: M<E, T>,
    scale: M<E, T>,
    direction: Direction,
) -> (M<E, T>, V<E, T>) {
    let (h, t0) = h.split_tape();
    let (shift, t1) = shift.split_tape();
    let (scale, t2) = scale.split_tape();
    let mut tape = t0.merge(t1).merge(t2);
    let (n, k) = *h.shape();
    let c = E::of(LOG_SCALE_BOUND);
    let inv_c = E::of(1.0 / LOG_SCALE_BOUND);
    let (hv, tv, av) = (host(&h), host(&shift), host(&scale));
    let sign = match direction {
        Direction::Forward => E::one(),
        Direction::Inverse => -E::one(),
    };
    // Per element, kept for the backward pass: tanh(a/c) (for ∂ls/∂a) and the factor e^{±ls}
    // applied to h; both on SIMD lanes over the whole block (simd_math.rs).
    let mut th: Vec<E> = av.iter().map(|&a| a * inv_c).collect();
    E::tanh_slice(&mut th);
    let mut factor: Vec<E> = th.iter().map(|&t| sign * c * t).collect();
    E::exp_slice(&mut factor);
    let y: Vec<E> = match direction {
        Direction::Forward => hv
            .iter()
            .zip(&factor)
            .zip(&tv)
            .map(|((&h, &f), &t)| h * f + t)
            .collect(),
        Direction::Inverse => hv
            .iter()
            .zip(&tv)
            .zip(&factor)
            .map(|((&h, &t), &f)| (h - t) * f)
            .collect(),
    };
    let ld: Vec<E> = th
        .chunks_exact(k.max(1))
        .map(|row| sign * c * row.iter().fold(E::zero(), |acc, &t| acc + t))
        .collect();
    let dev = h.device().clone();
    let y_t = dev.tensor_from_vec(y, (n, k));
    let ld_t = dev.tensor_from_vec(ld, (n,));
    if T::OWNS_TAPE {
        let (g_y, g_ld) = (y_t.ghost(), ld_t.ghost());
        let (g_h, g_t, g_a) = (h.ghost(), shift.ghost(), scale.ghost());
        tape.add_backward_op(move |grads| {
            let gy: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_y)?);
            let gl: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_ld)?);
            {
                let gh = grads.get_or_alloc_mut(&g_h)?;
                for j in 0..n * k {
                    gh[j] += gy[j] * factor[j];
                }
            }
            {
                let gt = grads.get_or_alloc_mut(&g_t)?;
                for j in 0..n * k {
                    gt[j] += match direction {
                        Direction::Forward => gy[j],
                        Direction::Inverse => -gy[j] * factor[j],
                    };
                }
            }
            let ga = grads.get_or_alloc_mut(&g_a)?;
            for (i, &g_ld) in gl.iter().enumerate() {
                for j in i * k..(i + 1) * k {
                    let g_ls = match direction {
                        Direction::Forward => gy[j] * hv[j] * factor[j] + g_ld,
                        // y = (h − t) e^{−ls}, recomputed rather than kept.
                        Direction::Inverse => -gy[j] * (hv[j] - tv[j]) * factor[j] - g_ld,
                    };
                    ga[j] += g_ls * (E::one() - th[j] * th[j]);
                }
            }
            Ok(())
        });
    }
    (y_t.put_tape(tape), ld_t.put_tape(T::default()))
}
