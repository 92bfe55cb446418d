//! Spline parameters → knots as one fused dfdx operation: per row, K width logits and K height
//! logits go through softmax, a minimum bin size and a cumulative sum to knot positions on
//! [−B, B], and the derivative parameters through a shifted softplus to knot slopes (slope 1 at
//! ±B for linear tails; d_K = d_0 for circular splines). The backward pass is written out below.
//! Doing this with 0/1 matmuls on (batch × coordinates) rows cost more than the conditioner.

use dfdx::prelude::*;

use crate::real::{host, Real, M};
use crate::spline::config::SplineConfig;

/// (knots_x, knots_y, knot derivatives), each (R, K+1), from `params` (R, P) with P = 3K − 1
/// (linear tails) or 3K (circular), on the interval [−bound, bound].
///
/// No `Cpu: Device<E>` bound here, on purpose: with it, the compiler no longer sees that the
/// gradient storage of `Cpu` is a plain vector, which the backward pass indexes.
pub fn knots<E: Real, T: Tape<E, Cpu>>(
    params: M<E, T>,
    config: SplineConfig,
    circular: bool,
    bound: f64,
) -> (M<E, T>, M<E, T>, M<E, T>) {
    let (params, mut tape) = params.split_tape();
    let (r, p) = *params.shape();
    let k = config.bins;
    let k1 = k + 1;
    let m = E::of(config.min_bin);
    let span = E::of(2.0 * bound);
    let shrink = E::of(1.0 - k as f64 * config.min_bin);
    let shift = E::of(((1.0 - config.min_slope).exp() - 1.0).ln());
    let (lo, min_slope) = (E::of(-bound), E::of(config.min_slope));
    let pv = host(&params);
    let zeros = || vec![E::zero(); r * k1];
    let (mut kx, mut ky, mut d) = (zeros(), zeros(), zeros());
    let n_free = p - 2 * k;
    // The transcendental functions run over whole buffers on SIMD lanes (simd_math.rs):
    // first the shifted softmax logits u − max(u) and the softplus arguments v = u + shift with
    // e^{−|v|}, then per row the normalisation, cumulative knots and slopes.
    // Kept for the backward pass: the softmax outputs and the softplus slopes σ(v).
    let mut probs = Vec::with_capacity(r * 2 * k);
    let mut vs = Vec::with_capacity(r * n_free);
    for row in pv.chunks_exact(p) {
        for part in row[..2 * k].chunks_exact(k) {
            let max = part.iter().copied().fold(E::neg_infinity(), E::max);
            probs.extend(part.iter().map(|&u| u - max));
        }
        vs.extend(row[2 * k..].iter().map(|&u| u + shift));
    }
    E::exp_slice(&mut probs);
    let mut e: Vec<E> = vs.iter().map(|v| -v.abs()).collect();
    E::exp_slice(&mut e);
    // ln(1 + e) as ln(u)·e/(u − 1) with u = 1 + e, exact where u rounds to 1.
    let mut ln_u: Vec<E> = e.iter().map(|&x| E::one() + x).collect();
    E::ln_slice(&mut ln_u);
    let mut slopes = Vec::with_capacity(r * n_free);
    for i in 0..r {
        for (part, knots) in [(0, &mut kx), (1, &mut ky)] {
            let a = &mut probs[(i * 2 + part) * k..(i * 2 + part + 1) * k];
            let sum = a.iter().fold(E::zero(), |acc, &v| acc + v);
            a.iter_mut().for_each(|v| *v /= sum);
            let out = &mut knots[i * k1..(i + 1) * k1];
            out[0] = lo;
            for j in 0..k {
                out[j + 1] = out[j] + (a[j] * shrink + m) * span;
            }
        }
        let out = &mut d[i * k1..(i + 1) * k1];
        for j in 0..n_free {
            let at = i * n_free + j;
            let (v, e, ln_u) = (vs[at], e[at], ln_u[at]);
            let u = E::one() + e;
            let log1p = if u == E::one() {
                e
            } else {
                ln_u * e / (u - E::one())
            };
            // softplus(v) = max(v, 0) + ln(1 + e^{−|v|}), its derivative σ(v).
            let value = v.max(E::zero()) + log1p;
            slopes.push(if v >= E::zero() { E::one() / u } else { e / u });
            let slope = value + min_slope;
            if circular {
                out[j] = slope;
            } else {
                out[j + 1] = slope;
            }
        }
        if circular {
            out[k] = out[0];
        } else {
            out[0] = E::one();
            out[k] = E::one();
        }
    }
    let dev = params.device().clone();
    let kx = dev.tensor_from_vec(kx, (r, k1));
    let ky = dev.tensor_from_vec(ky, (r, k1));
    let d = dev.tensor_from_vec(d, (r, k1));
    let (g_kx, g_ky, g_d, g_p) = (kx.ghost(), ky.ghost(), d.ghost(), params.ghost());
    tape.add_backward_op(move |grads| {
        let gkx: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_kx)?);
        let gky: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_ky)?);
        let gd: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_d)?);
        let gp = grads.get_or_alloc_mut(&g_p)?;
        let n_free = p - 2 * k;
        let mut g_a = vec![E::zero(); k];
        for i in 0..r {
            for (part, g_knots) in [(0, &gkx), (1, &gky)] {
                let a = &probs[(i * 2 + part) * k..(i * 2 + part + 1) * k];
                let gk = &g_knots[i * k1..(i + 1) * k1];
                // knot j+1 = −B + Σ_{i ≤ j} widthᵢ: ∂/∂width_j = Σ_{l > j} g_knot_l.
                let mut tail = E::zero();
                for j in (0..k).rev() {
                    tail += gk[j + 1];
                    g_a[j] = tail * shrink * span;
                }
                // Softmax backward: g_u = a ⊙ (g_a − a·g_a).
                let dot = a
                    .iter()
                    .zip(&g_a)
                    .fold(E::zero(), |acc, (&x, &y)| acc + x * y);
                for j in 0..k {
                    gp[i * p + part * k + j] += a[j] * (g_a[j] - dot);
                }
            }
            let g = &gd[i * k1..(i + 1) * k1];
            for j in 0..n_free {
                let g_slope = if circular {
                    g[j] + if j == 0 { g[k] } else { E::zero() }
                } else {
                    g[j + 1]
                };
                gp[i * p + 2 * k + j] += g_slope * slopes[i * n_free + j];
            }
        }
        Ok(())
    });
    (
        kx.put_tape(tape),
        ky.put_tape(T::default()),
        d.put_tape(T::default()),
    )
}
