//! Rational-quadratic (RQ) splines (Durkan et al. 2019), element-wise on rows, with linear tails
//! outside [−B, B] or circular on [−π, π] (Rezende et al. 2020), differentiable in dfdx.
//!
//! Each of the R rows (batch × transformed coordinates) has K bins with unnormalised widths and
//! heights (softmax, then at least `min_bin`) and knot derivatives (softplus, at least `min_slope`,
//! shifted so zero parameters give slope 1). Linear tails: K − 1 free interior derivatives and
//! slope 1 at ±B, identity outside. Circular: K free derivatives with d_K = d_0, so value and slope
//! match at −π and π. Cumulative sums use a matmul with a 0/1 matrix; the bin index is found on the
//! host (no gradient flows through an index) and values are gathered with `select`.
//!
//! In bin k with ξ = (x − x_k)/w_k, s = h_k/w_k:
//!   y = y_k + h_k(sξ² + d_kξ(1−ξ)) / (s + (d_{k+1} + d_k − 2s)ξ(1−ξ))
//!   log y' = 2 ln s + ln(d_{k+1}ξ² + 2sξ(1−ξ) + d_k(1−ξ)²) − 2 ln(s + (d_{k+1} + d_k − 2s)ξ(1−ξ))
//! and the inverse solves the quadratic for ξ with the numerically stable root 2c/(−b − √(b²−4ac)).

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::tape::dupn;

type M<T = NoneTape> = Tensor<(usize, usize), f64, Cpu, T>;
type V<T = NoneTape> = Tensor<(usize,), f64, Cpu, T>;

/// Shape and bounds of a spline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplineConfig {
    /// Number of bins K.
    pub bins: usize,
    /// Half-width B of the spline interval [−B, B] (ignored for circular splines: π).
    pub bound: f64,
    /// Minimum bin width and height as a fraction of the interval.
    pub min_bin: f64,
    /// Minimum knot derivative.
    pub min_slope: f64,
}

impl Default for SplineConfig {
    fn default() -> Self {
        Self {
            bins: 8,
            bound: 5.0,
            min_bin: 1e-3,
            min_slope: 1e-3,
        }
    }
}

/// Which way to evaluate the spline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// x → y = f(x).
    Forward,
    /// y → x = f⁻¹(y).
    Inverse,
}

/// Parameters per row: `K` width logits, `K` height logits and the derivative parameters
/// (`K − 1` for linear tails, `K` for circular splines).
pub fn n_params(bins: usize, circular: bool) -> usize {
    if circular {
        3 * bins
    } else {
        3 * bins - 1
    }
}

/// Constant matrices of one spline shape.
#[derive(Debug, Clone)]
pub struct SplineConsts {
    config: SplineConfig,
    circular: bool,
    /// (K, K+1) upper-triangular ones: [0, cumsum] in one matmul.
    cumsum: M,
    /// (P, K) selectors of the width, height and derivative parameters out of P per row.
    pick_w: M,
    pick_h: M,
    pick_d: M,
    /// Derivative placement into the K+1 knots: (K−1, K+1) interior or (K, K+1) periodic.
    place_d: M,
    /// (1, K+1) ones at the two ends (linear tails: boundary slope 1), zero otherwise.
    ends: M,
}

impl SplineConsts {
    /// Constants for `config`; `circular` selects the periodic spline on [−π, π].
    pub fn new(dev: &Cpu, config: SplineConfig, circular: bool) -> Self {
        let k = config.bins;
        let p = n_params(k, circular);
        let nd = p - 2 * k;
        let mat = |rows: usize, cols: usize, f: &dyn Fn(usize, usize) -> bool| {
            let v = (0..rows * cols)
                .map(|i| if f(i / cols, i % cols) { 1.0 } else { 0.0 })
                .collect();
            dev.tensor_from_vec(v, (rows, cols))
        };
        Self {
            cumsum: mat(k, k + 1, &|i, j| j > i),
            pick_w: mat(p, k, &|i, j| i == j),
            pick_h: mat(p, k, &|i, j| i == k + j),
            pick_d: mat(p, nd, &|i, j| i == 2 * k + j),
            place_d: if circular {
                mat(k, k + 1, &|i, j| j == i || (i == 0 && j == k))
            } else {
                mat(k - 1, k + 1, &|i, j| j == i + 1)
            },
            ends: mat(1, k + 1, &|_, j| !circular && (j == 0 || j == k)),
            config,
            circular,
        }
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
    pub fn apply<T: Tape<f64, Cpu>>(
        &self,
        x: V<T>,
        params: M<T>,
        direction: Direction,
    ) -> (V<T>, V<T>) {
        let c = &self.config;
        let k = c.bins;
        let r = x.shape().0;
        let b = self.bound();
        let [p1, p2, p3] = dupn(params);
        // Bin widths and heights, scaled to the interval, each at least min_bin·2B.
        let scale = |u: M<T>| {
            (u.softmax::<Axis<1>>() * (1.0 - k as f64 * c.min_bin) + c.min_bin) * (2.0 * b)
        };
        let widths = scale(p1.matmul(self.pick_w.clone()));
        let heights = scale(p2.matmul(self.pick_h.clone()));
        // Knot derivatives: softplus shifted so a zero parameter gives exactly-ish slope 1.
        let shift = ((1.0 - c.min_slope).exp() - 1.0).ln();
        let ud = p3.matmul(self.pick_d.clone()) + shift;
        let [ud1, ud2] = dupn(ud);
        // softplus(u) = max(u, 0) + ln(1 + e^{−|u|})
        let softplus = ud1.relu() + (ud2.abs().negate().exp() + 1.0).ln();
        let free = softplus + c.min_slope;
        let ones: M = self.dev().tensor_from_vec(vec![1.0; r], (r, 1));
        let derivs = free.matmul(self.place_d.clone()) + ones.matmul(self.ends.clone());
        // Knot positions [−B, …, B] as cumulative sums.
        let knots_x = widths.matmul(self.cumsum.clone()) - b;
        let knots_y = heights.matmul(self.cumsum.clone()) - b;

        // Bin index from the input's own knots (x knots forward, y knots inverse), on the host.
        let xv = x.as_vec();
        let search = match direction {
            Direction::Forward => knots_x.as_vec(),
            Direction::Inverse => knots_y.as_vec(),
        };
        let idx: Vec<usize> = (0..r)
            .map(|i| {
                let row = &search[i * (k + 1)..(i + 1) * (k + 1)];
                row[1..k].iter().filter(|&&kn| kn <= xv[i]).count()
            })
            .collect();
        let inside: Vec<bool> = xv.iter().map(|v| *v >= -b && *v <= b).collect();
        let dev = self.dev();
        let idx0 = dev.tensor_from_vec(idx.clone(), (r,));
        let idx1 = dev.tensor_from_vec(idx.iter().map(|i| i + 1).collect(), (r,));
        let inside = dev.tensor_from_vec(inside, (r,));

        let [kx0, kx1] = dupn(knots_x);
        let [ky0, ky1] = dupn(knots_y);
        let [d0, d1] = dupn(derivs);
        let [xk_a, xk_b] = dupn(kx0.select(idx0.clone()));
        let wk = kx1.select(idx1.clone()) - xk_a;
        let [yk_a, yk_b] = dupn(ky0.select(idx0.clone()));
        let hk = ky1.select(idx1.clone()) - yk_a;
        let bin = Bin {
            xk: xk_b,
            wk,
            yk: yk_b,
            hk,
            dk: d0.select(idx0),
            dk1: d1.select(idx1),
        };

        // Clamp into the interval so the unused branch of `choose` stays finite; outside the
        // interval (linear tails) the map is the identity with log-det 0.
        let [x_in, x_out] = dupn(x);
        let (y, log_det) = match direction {
            Direction::Forward => bin.forward(x_in.clamp(-b, b)),
            Direction::Inverse => bin.inverse(x_in.clamp(-b, b)),
        };
        let zeros: V = dev.tensor_from_vec(vec![0.0; r], (r,));
        (
            inside.clone().choose(y, x_out),
            inside.choose(log_det, zeros),
        )
    }

    fn dev(&self) -> Cpu {
        self.cumsum.device().clone()
    }
}

/// The knot values of the bin each row falls in.
struct Bin<T> {
    xk: V<T>,
    wk: V<T>,
    yk: V<T>,
    hk: V<T>,
    dk: V<T>,
    dk1: V<T>,
}

/// log y'(ξ) = 2 ln s + ln(d₁ξ² + 2sξ(1−ξ) + d₀(1−ξ)²) − 2 ln(s + (d₁ + d₀ − 2s)ξ(1−ξ)).
fn log_slope<T: Tape<f64, Cpu>>(s: V<T>, d0: V<T>, d1: V<T>, xi: V<T>) -> V<T> {
    let [s1, s2, s3, s4] = dupn(s);
    let [d0a, d0b] = dupn(d0);
    let [d1a, d1b] = dupn(d1);
    let [xi1, xi2, xi3] = dupn(xi);
    let one_minus = xi2.negate() + 1.0;
    let [om1, om2] = dupn(one_minus);
    let [t1, t2] = dupn(xi1 * om1); // ξ(1−ξ)
    let numerator = d1a * xi3.square() + s1 * t1 * 2.0 + d0a * om2.square();
    let denominator = s2 + (d1b + d0b - s3 * 2.0) * t2;
    s4.ln() * 2.0 + numerator.ln() - denominator.ln() * 2.0
}

impl<T: Tape<f64, Cpu>> Bin<T> {
    /// y = f(x) and log f'(x) for x inside the bin.
    fn forward(self, x: V<T>) -> (V<T>, V<T>) {
        let [wk1, wk2] = dupn(self.wk);
        let [hk1, hk2] = dupn(self.hk);
        let [s1, s2, s3, s4] = dupn(hk1 / wk1);
        let [dk1, dk2, dk3] = dupn(self.dk);
        let [dn1, dn2] = dupn(self.dk1);
        let [xi1, xi2, xi3, xi4] = dupn((x - self.xk) / wk2);
        let t = xi1 * (xi2.negate() + 1.0);
        let [t1, t2] = dupn(t);
        let numerator = hk2 * (s1 * xi3.square() + dk1 * t1);
        let denominator = s2 + (dn1 + dk2 - s3 * 2.0) * t2;
        let y = self.yk + numerator / denominator;
        (y, log_slope(s4, dk3, dn2, xi4))
    }

    /// x = f⁻¹(y) and log (f⁻¹)'(y) = −log f'(x) for y inside the bin.
    fn inverse(self, y: V<T>) -> (V<T>, V<T>) {
        let [hk1, hk2] = dupn(self.hk);
        let [wk1, wk2] = dupn(self.wk);
        let [s1, s2, s3, s4] = dupn(hk1 / wk1);
        let [dk1, dk2, dk3, dk4] = dupn(self.dk);
        let [dn1, dn2] = dupn(self.dk1);
        let [dy1, dy2, dy3] = dupn(y - self.yk);
        let [sd1, sd2] = dupn(dn1 + dk1 - s1 * 2.0);
        let [hk2a, hk2b] = dupn(hk2);
        // a ξ² + b ξ + c = 0 with a = h(s − d₀) + Δy·σ, b = h d₀ − Δy·σ, c = −s Δy, σ = d₁ + d₀ − 2s.
        let a = hk2a * (s2 - dk2) + dy1 * sd1;
        let bq = hk2b * dk3 - dy2 * sd2;
        let c = s3 * dy3 * -1.0;
        let [b1, b2] = dupn(bq);
        let [c1, c2] = dupn(c);
        let disc = (b1.square() - a * c1 * 4.0).relu(); // ≥ 0 in exact arithmetic
        let xi = c2 * 2.0 / (b2.negate() - disc.sqrt());
        let [xi1, xi2] = dupn(xi);
        let x = xi1 * wk2 + self.xk;
        (x, log_slope(s4, dk4, dn2, xi2).negate())
    }
}
