//! The rational-quadratic spline inside its bin as one fused dfdx operation: bin search, gather and
//! the RQ formula run in a single host loop over the rows, and the backward pass scatters the
//! partial derivatives into the knot tensors. Composing the same math from ~60 dfdx element-wise
//! ops allocated and zeroed a tensor per op and dominated the flow's run time.
//!
//! The partial derivatives come from evaluating the one scalar formula on dual numbers with seven
//! tangents (x, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}), so forward values and gradients cannot
//! drift apart; finite-difference tests in tests/spline.rs check them.

use dfdx::prelude::*;

use crate::real::{host, Real, M, V};
use crate::spline::config::Direction;
use crate::spline::rq_formula::{rq, Dual, N};

/// What the backward pass needs of one row.
#[derive(Clone, Copy)]
struct RowGrad<E> {
    /// Bin index (the row uses knots k and k+1); `usize::MAX` for rows in the identity tails.
    k: usize,
    /// ∂output/∂inputs and ∂log-det/∂inputs.
    d_out: [E; N],
    d_ld: [E; N],
}

/// Applies the spline to each row: `u` (R,) with the row's knots `kx`, `ky` and knot derivatives
/// `d` (R, K+1). Rows outside [−bound, bound] pass through with log-det 0 (linear tails; circular
/// inputs are always inside). Returns (output, log|det|) in `direction`. (No `Cpu: Device<E>`
/// bound, as in [`crate::spline::rq_knots::knots`], so the backward pass can index gradient storage.)
pub fn rq_spline<E: Real, T: Tape<E, Cpu>>(
    u: V<E, T>,
    kx: M<E, T>,
    ky: M<E, T>,
    d: M<E, T>,
    bound: f64,
    direction: Direction,
) -> (V<E, T>, V<E, T>) {
    let bound = E::of(bound);
    let (u, t0) = u.split_tape();
    let (kx, t1) = kx.split_tape();
    let (ky, t2) = ky.split_tape();
    let (d, t3) = d.split_tape();
    let mut tape = t0.merge(t1).merge(t2).merge(t3);
    let r = u.shape().0;
    let k1 = kx.shape().1; // K + 1
    let (uv, kxv, kyv, dv) = (host(&u), host(&kx), host(&ky), host(&d));
    let mut out = vec![E::zero(); r];
    let mut ld = vec![E::zero(); r];
    let mut rows = Vec::with_capacity(if T::OWNS_TAPE { r } else { 0 });
    for i in 0..r {
        let v = uv[i];
        if !(v >= -bound && v <= bound) {
            out[i] = v;
            if T::OWNS_TAPE {
                rows.push(RowGrad {
                    k: usize::MAX,
                    d_out: [E::zero(); N],
                    d_ld: [E::zero(); N],
                });
            }
            continue;
        }
        let (xs, ys, ds) = (
            &kxv[i * k1..(i + 1) * k1],
            &kyv[i * k1..(i + 1) * k1],
            &dv[i * k1..(i + 1) * k1],
        );
        let search = match direction {
            Direction::Forward => xs,
            Direction::Inverse => ys,
        };
        let k = search[1..k1 - 1].iter().filter(|&&kn| kn <= v).count();
        let vals = [v, xs[k], xs[k + 1], ys[k], ys[k + 1], ds[k], ds[k + 1]];
        if T::OWNS_TAPE {
            let (o, l) = rq(std::array::from_fn(|j| Dual::input(vals[j], j)), direction);
            out[i] = o.v;
            ld[i] = l.v;
            rows.push(RowGrad {
                k,
                d_out: o.d,
                d_ld: l.d,
            });
        } else {
            let (o, l) = rq(vals, direction);
            out[i] = o;
            ld[i] = l;
        }
    }
    let dev = u.device().clone();
    let out = dev.tensor_from_vec(out, (r,));
    let ld = dev.tensor_from_vec(ld, (r,));
    let (g_out, g_ld) = (out.ghost(), ld.ghost());
    let (g_u, g_kx, g_ky, g_d) = (u.ghost(), kx.ghost(), ky.ghost(), d.ghost());
    tape.add_backward_op(move |grads| {
        let go: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_out)?);
        let gl: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_ld)?);
        // Upstream-weighted partials of every row.
        let w = |i: usize, j: usize| go[i] * rows[i].d_out[j] + gl[i] * rows[i].d_ld[j];
        {
            let gu = grads.get_or_alloc_mut(&g_u)?;
            for i in 0..r {
                gu[i] += if rows[i].k == usize::MAX {
                    go[i]
                } else {
                    w(i, 0)
                };
            }
        }
        for (ghost, first) in [(&g_kx, 1), (&g_ky, 3), (&g_d, 5)] {
            let g = grads.get_or_alloc_mut(ghost)?;
            for i in 0..r {
                let k = rows[i].k;
                if k != usize::MAX {
                    g[i * k1 + k] += w(i, first);
                    g[i * k1 + k + 1] += w(i, first + 1);
                }
            }
        }
        Ok(())
    });
    (out.put_tape(tape), ld.put_tape(T::default()))
}
