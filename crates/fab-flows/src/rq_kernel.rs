//! The rational-quadratic spline inside its bin as one fused dfdx operation: bin search, gather and
//! the RQ formula run in a single host loop over the rows, and the backward pass scatters the
//! partial derivatives into the knot tensors. Composing the same math from ~60 dfdx element-wise
//! ops allocated and zeroed a tensor per op and dominated the flow's run time.
//!
//! The partial derivatives come from evaluating the one scalar formula on dual numbers with seven
//! tangents (x, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}), so forward values and gradients cannot
//! drift apart; finite-difference tests in tests/spline.rs check them.

use std::ops::{Add, Div, Mul, Neg, Sub};

use dfdx::prelude::*;

use crate::real::{host, Real, M, V};
use crate::spline::Direction;

/// Number of inputs of one row's formula.
const N: usize = 7;

/// A number with N forward-mode tangents.
#[derive(Debug, Clone, Copy)]
struct Dual<E> {
    v: E,
    d: [E; N],
}

impl<E: Real> Dual<E> {
    fn constant(v: E) -> Self {
        Self {
            v,
            d: [E::zero(); N],
        }
    }
    fn input(v: E, i: usize) -> Self {
        let mut d = [E::zero(); N];
        d[i] = E::one();
        Self { v, d }
    }
    /// f(self) with f' = `slope`.
    fn chain(self, v: E, slope: E) -> Self {
        Self {
            v,
            d: self.d.map(|t| t * slope),
        }
    }
}

/// The arithmetic the RQ formula needs, on plain numbers (values only: sampling and log q
/// without a gradient) or on dual numbers (values with their seven partial derivatives).
trait Num:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    /// max(self, 0).
    fn relu(self) -> Self;
    /// self · c for a plain number c.
    fn scale(self, c: f64) -> Self;
    /// self + c for a plain number c.
    fn shift(self, c: f64) -> Self;
}

impl<E: Real> Num for E {
    fn ln(self) -> Self {
        num_traits::Float::ln(self)
    }
    fn sqrt(self) -> Self {
        num_traits::Float::sqrt(self)
    }
    fn relu(self) -> Self {
        num_traits::Float::max(self, E::zero())
    }
    fn scale(self, c: f64) -> Self {
        self * E::of(c)
    }
    fn shift(self, c: f64) -> Self {
        self + E::of(c)
    }
}

impl<E: Real> Num for Dual<E> {
    fn ln(self) -> Self {
        self.chain(self.v.ln(), self.v.recip())
    }
    fn sqrt(self) -> Self {
        let s = self.v.sqrt();
        self.chain(s, E::of(0.5) / s)
    }
    fn relu(self) -> Self {
        if self.v > E::zero() {
            self
        } else {
            Self::constant(E::zero())
        }
    }
    fn scale(self, c: f64) -> Self {
        let c = E::of(c);
        Self {
            v: self.v * c,
            d: self.d.map(|t| t * c),
        }
    }
    fn shift(self, c: f64) -> Self {
        Self {
            v: self.v + E::of(c),
            d: self.d,
        }
    }
}

impl<E: Real> Add for Dual<E> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            d: std::array::from_fn(|i| self.d[i] + o.d[i]),
        }
    }
}
impl<E: Real> Sub for Dual<E> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            d: std::array::from_fn(|i| self.d[i] - o.d[i]),
        }
    }
}
#[allow(clippy::suspicious_arithmetic_impl)] // product rule: v·o.d + d·o.v
impl<E: Real> Mul for Dual<E> {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self {
            v: self.v * o.v,
            d: std::array::from_fn(|i| self.d[i] * o.v + self.v * o.d[i]),
        }
    }
}
#[allow(clippy::suspicious_arithmetic_impl)] // quotient rule: (d − q·o.d)/o.v
impl<E: Real> Div for Dual<E> {
    type Output = Self;
    fn div(self, o: Self) -> Self {
        // The value as a plain division, so plain and dual evaluation agree bit for bit.
        let q = self.v / o.v;
        let inv = o.v.recip();
        Self {
            v: q,
            d: std::array::from_fn(|i| (self.d[i] - q * o.d[i]) * inv),
        }
    }
}
impl<E: Real> Neg for Dual<E> {
    type Output = Self;
    fn neg(self) -> Self {
        self.scale(-1.0)
    }
}

/// log y'(ξ) = 2 ln s + ln(d₁ξ² + 2sξ(1−ξ) + d₀(1−ξ)²) − 2 ln(s + (d₁ + d₀ − 2s)ξ(1−ξ)),
/// taken as one logarithm of s²·numerator/denominator² (all three factors are positive).
fn log_slope<X: Num>(s: X, d0: X, d1: X, xi: X) -> X {
    let om = (-xi).shift(1.0);
    let t = xi * om;
    let numerator = d1 * xi * xi + (s * t).scale(2.0) + d0 * om * om;
    let denominator = s + (d1 + d0 - s.scale(2.0)) * t;
    let ratio = s / denominator;
    (ratio * ratio * numerator).ln()
}

/// One row inside its bin: inputs [u, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}] where u is x
/// (forward) or y (inverse); returns (output, log|derivative| in that direction).
fn rq<X: Num>(inp: [X; N], direction: Direction) -> (X, X) {
    let [u, xk, xk1, yk, yk1, dk, dk1] = inp;
    let (wk, hk) = (xk1 - xk, yk1 - yk);
    let s = hk / wk;
    match direction {
        Direction::Forward => {
            let xi = (u - xk) / wk;
            let t = xi * (-xi).shift(1.0);
            let numerator = hk * (s * xi * xi + dk * t);
            let denominator = s + (dk1 + dk - s.scale(2.0)) * t;
            (yk + numerator / denominator, log_slope(s, dk, dk1, xi))
        }
        Direction::Inverse => {
            // a ξ² + b ξ + c = 0, a = h(s − d₀) + Δy·σ, b = h d₀ − Δy·σ, c = −s Δy, σ = d₁ + d₀ − 2s;
            // the stable root 2c/(−b − √(b² − 4ac)).
            let dy = u - yk;
            let sd = dk1 + dk - s.scale(2.0);
            let a = hk * (s - dk) + dy * sd;
            let b = hk * dk - dy * sd;
            let c = -(s * dy);
            let disc = (b * b - (a * c).scale(4.0)).relu();
            let xi = c.scale(2.0) / (-b - disc.sqrt());
            (xi * wk + xk, -log_slope(s, dk, dk1, xi))
        }
    }
}

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
/// bound, as in [`crate::rq_knots::knots`], so the backward pass can index gradient storage.)
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
