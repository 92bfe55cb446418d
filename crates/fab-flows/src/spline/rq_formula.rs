//! The rational-quadratic formula of one spline bin, written once over a [`Num`] type so the
//! same code gives plain values (sampling, log q without a gradient), values with their partial
//! derivatives ([`Dual`] numbers with seven tangents), and either of them on eight rows at once
//! ([`Lanes`], which the compiler keeps in SIMD registers). Both spline kernels use it:
//! `rq_kernel.rs` one row at a time, `rq_fused.rs` eight rows at a time.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::real::Real;
use crate::spline::config::Direction;

/// Number of inputs of one row's formula: u, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}.
pub(crate) const N: usize = 7;

/// Rows evaluated together by [`Lanes`].
pub(crate) const LANES: usize = 8;

/// [f(0), …, f(K − 1)] by a plain loop: core's `array::from_fn` stayed a function call per
/// element in these loops (a tenth of the spline's time), a loop over a filled array inlines.
#[inline(always)]
pub(crate) fn build<T: Copy, const K: usize>(fill: T, mut f: impl FnMut(usize) -> T) -> [T; K] {
    let mut out = [fill; K];
    for (i, o) in out.iter_mut().enumerate() {
        *o = f(i);
    }
    out
}

/// The arithmetic the RQ formula needs.
pub(crate) trait Num:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// The constant c.
    fn splat(c: f64) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    /// max(self, 0).
    fn relu(self) -> Self;
    /// 1 where self > 0, else 0 (the derivative of `relu`).
    fn step(self) -> Self;
    /// self · c for a plain number c.
    fn scale(self, c: f64) -> Self {
        self * Self::splat(c)
    }
    /// self + c for a plain number c.
    fn shift(self, c: f64) -> Self {
        self + Self::splat(c)
    }
}

impl<E: Real> Num for E {
    fn splat(c: f64) -> Self {
        E::of(c)
    }
    fn ln(self) -> Self {
        num_traits::Float::ln(self)
    }
    fn sqrt(self) -> Self {
        num_traits::Float::sqrt(self)
    }
    fn relu(self) -> Self {
        num_traits::Float::max(self, E::zero())
    }
    fn step(self) -> Self {
        if self > E::zero() {
            E::one()
        } else {
            E::zero()
        }
    }
}

/// Eight values, one per row, operated on lane by lane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lanes<E>(pub [E; LANES]);

impl<E: Real> Lanes<E> {
    /// `f` applied lane by lane.
    #[inline(always)]
    pub fn map(self, f: impl Fn(E) -> E) -> Self {
        Self(build(E::zero(), |l| f(self.0[l])))
    }
    /// `f` applied to pairs of lanes.
    #[inline(always)]
    pub fn zip(self, o: Self, f: impl Fn(E, E) -> E) -> Self {
        Self(build(E::zero(), |l| f(self.0[l], o.0[l])))
    }
}

impl<E: Real> Num for Lanes<E> {
    #[inline(always)]
    fn splat(c: f64) -> Self {
        Self([E::of(c); LANES])
    }
    #[inline(always)]
    fn ln(self) -> Self {
        Self(E::ln8(self.0))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        self.map(num_traits::Float::sqrt)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        self.map(|v| if v > E::zero() { v } else { E::zero() })
    }
    #[inline(always)]
    fn step(self) -> Self {
        self.map(|v| if v > E::zero() { E::one() } else { E::zero() })
    }
}

macro_rules! lane_op {
    ($tr:ident, $f:ident, $op:tt) => {
        impl<E: Real> $tr for Lanes<E> {
            type Output = Self;
            #[inline(always)]
            fn $f(self, o: Self) -> Self {
                self.zip(o, |a, b| a $op b)
            }
        }
    };
}
lane_op!(Add, add, +);
lane_op!(Sub, sub, -);
lane_op!(Mul, mul, *);
lane_op!(Div, div, /);

impl<E: Real> Neg for Lanes<E> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.map(|v| -v)
    }
}

/// A number with N forward-mode tangents: ∂(value)/∂(input i) for the formula's seven inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dual<X> {
    pub v: X,
    pub d: [X; N],
}

impl<X: Num> Dual<X> {
    /// Input number `i` of the formula (tangent e_i).
    pub fn input(v: X, i: usize) -> Self {
        let mut d = [X::splat(0.0); N];
        d[i] = X::splat(1.0);
        Self { v, d }
    }
    /// f(self) with f' = `slope`.
    #[inline(always)]
    fn chain(self, v: X, slope: X) -> Self {
        Self {
            v,
            d: build(X::splat(0.0), |i| self.d[i] * slope),
        }
    }
}

impl<X: Num> Num for Dual<X> {
    fn splat(c: f64) -> Self {
        Self {
            v: X::splat(c),
            d: [X::splat(0.0); N],
        }
    }
    #[inline(always)]
    fn ln(self) -> Self {
        self.chain(self.v.ln(), X::splat(1.0) / self.v)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        let s = self.v.sqrt();
        self.chain(s, X::splat(0.5) / s)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        self.chain(self.v.relu(), self.v.step())
    }
    #[inline(always)]
    fn step(self) -> Self {
        Self {
            v: self.v.step(),
            d: [X::splat(0.0); N],
        }
    }
    #[inline(always)]
    fn scale(self, c: f64) -> Self {
        let c = X::splat(c);
        Self {
            v: self.v * c,
            d: build(X::splat(0.0), |i| self.d[i] * c),
        }
    }
    #[inline(always)]
    fn shift(self, c: f64) -> Self {
        Self {
            v: self.v + X::splat(c),
            d: self.d,
        }
    }
}

impl<X: Num> Add for Dual<X> {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            d: build(X::splat(0.0), |i| self.d[i] + o.d[i]),
        }
    }
}
impl<X: Num> Sub for Dual<X> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            d: build(X::splat(0.0), |i| self.d[i] - o.d[i]),
        }
    }
}
#[allow(clippy::suspicious_arithmetic_impl)] // product rule: v·o.d + d·o.v
impl<X: Num> Mul for Dual<X> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self {
            v: self.v * o.v,
            d: build(X::splat(0.0), |i| self.d[i] * o.v + self.v * o.d[i]),
        }
    }
}
#[allow(clippy::suspicious_arithmetic_impl)] // quotient rule: (d − q·o.d)/o.v
impl<X: Num> Div for Dual<X> {
    type Output = Self;
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        // The value as a plain division, so plain and dual evaluation agree bit for bit.
        let q = self.v / o.v;
        let inv = X::splat(1.0) / o.v;
        Self {
            v: q,
            d: build(X::splat(0.0), |i| (self.d[i] - q * o.d[i]) * inv),
        }
    }
}
impl<X: Num> Neg for Dual<X> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.scale(-1.0)
    }
}

/// log y'(ξ) = 2 ln s + ln(d₁ξ² + 2sξ(1−ξ) + d₀(1−ξ)²) − 2 ln(s + (d₁ + d₀ − 2s)ξ(1−ξ)),
/// taken as one logarithm of s²·numerator/denominator² (all three factors are positive).
#[inline(always)]
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
#[inline(always)]
pub(crate) fn rq<X: Num>(inp: [X; N], direction: Direction) -> (X, X) {
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
