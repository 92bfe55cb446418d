//! Log-Gaussian Cox process on the Finnish pines (fab-jax's `cox` benchmark, after Møller et al.
//! 1998 and Heng et al. 2017): the unit square cut into an N × N grid (N = 40: 1,600 dimensions),
//! a latent log-intensity f per cell with a Gaussian-process prior, and the 126 tree positions
//! (`data/cox/df_pines.csv`) counted per cell.
//!
//!   log p(f) = log N(f; μ₀·1, K) + Σᵢ (fᵢ nᵢ − a e^{fᵢ}),   a = 1/N² (cell area)
//!   K(m, m') = σ² exp(−|m − m'| / (N β)) over integer cell coordinates m = (row, col),
//!   σ² = 1.91, β = 1/33, μ₀ = ln 126 − σ²/2
//!   ∇ log p = −K⁻¹ (f − μ₀) + n − a e^{f}
//!
//! The prior is factorised once (Cholesky, for log det K) and inverted once; a batch then costs
//! one GEMM with K⁻¹ per row chunk. The normaliser is not known in closed form: fab-jax's reference
//! log Z = 501.806 comes from long SMC runs. There are no exact samples.
//!
//! **Whitened coordinates** ([`CoxProcess::pines_whitened`]; annealed flow transport's
//! `use_whitened`, Arbel et al. 2021, G.4): the same posterior written in w with f = μ₀ + L w,
//! K = L Lᵀ, so the prior becomes N(0, I):
//!
//!   log p(w) = −½|w|² − (d/2) ln 2π + Σᵢ (fᵢ nᵢ − a e^{fᵢ}),   ∇_w log p = −w + Lᵀ (n − a e^{f})
//!
//! The change of variables' Jacobian det L cancels the prior's normaliser (2π)^{−d/2} det K^{−½},
//! so log Z is the same 501.806. The flow then starts near the posterior (a standard normal
//! distorted only by the likelihood) instead of 1,600 correlated dimensions away from it.
//! fab-jax's published error is for the unwhitened form.

use nalgebra::DMatrix;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use fab_core::density::{check_dim, check_dim_and_grad};
use fab_core::{FabError, LogDensity, Result, Target};

/// The shipped pines data (fab-jax, MIT; see `data/cox/README.md`).
pub const PINES_CSV: &str = include_str!("../data/cox/df_pines.csv");

/// Signal variance σ² of the prior.
const SIGNAL_VARIANCE: f64 = 1.91;
/// Length-scale parameter β of the prior (in units of the square's side).
const BETA: f64 = 1.0 / 33.0;
/// fab-jax's reference log Z of the 40 × 40 target (long SMC runs).
pub const REFERENCE_LOG_Z_40: f64 = 501.806;
/// Rows per GEMM chunk of a batch.
const CHUNK_ROWS: usize = 64;
/// ln 2π.
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The log-Gaussian Cox process target on an N × N grid.
#[derive(Debug, Clone)]
pub struct CoxProcess {
    n_per_dim: usize,
    /// Points per cell, flattened row-major (cell (i, j) at i·N + j, i from the x coordinate).
    counts: Array1<f64>,
    mean: f64,
    area: f64,
    prior: Prior,
}

/// How the prior enters: in the latent log-intensities f, or in whitened coordinates w.
#[derive(Debug, Clone)]
enum Prior {
    /// Coordinates f: log N(f; μ₀, K) with K⁻¹ (row-major) and −½ log det(2πK).
    Latent {
        precision: Array2<f64>,
        log_norm: f64,
    },
    /// Coordinates w with f = μ₀ + L w: log N(w; 0, I); `chol` is L (lower triangular).
    Whitened { chol: Array2<f64> },
}

impl CoxProcess {
    /// The benchmark: the shipped pines on a 40 × 40 grid.
    pub fn pines() -> Result<Self> {
        Self::new(&parse_points(PINES_CSV, "df_pines.csv")?, 40)
    }

    /// The benchmark in whitened coordinates (same posterior and log Z; see the module docs).
    pub fn pines_whitened() -> Result<Self> {
        Self::new_whitened(&parse_points(PINES_CSV, "df_pines.csv")?, 40)
    }

    /// The process for `points` in the unit square on an `n_per_dim` × `n_per_dim` grid, in
    /// the latent log-intensities f.
    pub fn new(points: &[[f64; 2]], n_per_dim: usize) -> Result<Self> {
        Self::build(points, n_per_dim, false)
    }

    /// As [`CoxProcess::new`], in whitened coordinates w (f = μ₀ + L w).
    pub fn new_whitened(points: &[[f64; 2]], n_per_dim: usize) -> Result<Self> {
        Self::build(points, n_per_dim, true)
    }

    fn build(points: &[[f64; 2]], n_per_dim: usize, whitened: bool) -> Result<Self> {
        if n_per_dim == 0 {
            return Err(FabError::invalid(
                "cox grid",
                "needs at least one cell per side",
            ));
        }
        let d = n_per_dim * n_per_dim;
        let counts = bin_counts(points, n_per_dim)?;
        let cell = |k: usize| ((k / n_per_dim) as f64, (k % n_per_dim) as f64);
        let k = DMatrix::from_fn(d, d, |p, q| {
            let ((a, b), (c, e)) = (cell(p), cell(q));
            let dist = ((a - c).powi(2) + (b - e).powi(2)).sqrt();
            SIGNAL_VARIANCE * (-dist / (n_per_dim as f64 * BETA)).exp()
        });
        let chol = k.cholesky().ok_or_else(|| {
            FabError::Backend("the Cox prior covariance is not positive definite".into())
        })?;
        let prior = if whitened {
            let l = chol.l();
            Prior::Whitened {
                chol: Array2::from_shape_fn((d, d), |(p, q)| l[(p, q)]),
            }
        } else {
            let log_det: f64 = 2.0
                * chol
                    .l_dirty()
                    .diagonal()
                    .iter()
                    .map(|v| v.ln())
                    .sum::<f64>();
            let inv = chol.inverse();
            Prior::Latent {
                precision: Array2::from_shape_fn((d, d), |(p, q)| inv[(p, q)]),
                log_norm: -0.5 * (log_det + d as f64 * LN_2PI),
            }
        };
        Ok(Self {
            n_per_dim,
            counts,
            mean: (points.len() as f64).ln() - 0.5 * SIGNAL_VARIANCE,
            area: 1.0 / d as f64,
            prior,
        })
    }

    /// Whether the coordinates are the whitened w rather than the log-intensities f.
    pub fn is_whitened(&self) -> bool {
        matches!(self.prior, Prior::Whitened { .. })
    }

    /// The log-intensities f of rows `x` in this target's coordinates (f = x unless whitened).
    pub fn log_intensities(&self, x: ArrayView2<f64>) -> Array2<f64> {
        match &self.prior {
            Prior::Latent { .. } => x.to_owned(),
            // Rows: f = μ₀ + w Lᵀ.
            Prior::Whitened { chol } => x.dot(&chol.t()).mapv(|v| v + self.mean),
        }
    }

    /// Points per cell, flattened row-major.
    pub fn counts(&self) -> &Array1<f64> {
        &self.counts
    }

    /// The prior mean μ₀ (every cell).
    pub fn prior_mean(&self) -> f64 {
        self.mean
    }

    /// log p of the rows of `x` (a chunk), with ∇ log p written into `grad` when asked.
    fn chunk(&self, x: ArrayView2<f64>, grad: Option<ArrayViewMut2<f64>>) -> Array1<f64> {
        // The prior's log density and gradient in this target's coordinates; f of the rows.
        let (prior, prior_grad, f) = match &self.prior {
            Prior::Latent {
                precision,
                log_norm,
            } => {
                let centred = x.mapv(|v| v - self.mean);
                // Rows of (f − μ₀) K⁻¹ (K⁻¹ is symmetric): minus the prior's gradient.
                let solved = centred.dot(precision);
                let prior: Array1<f64> = (&centred * &solved)
                    .sum_axis(Axis(1))
                    .mapv(|q| log_norm - 0.5 * q);
                (prior, -solved, x.to_owned())
            }
            Prior::Whitened { .. } => {
                let prior = x
                    .rows()
                    .into_iter()
                    .map(|w| -0.5 * (w.dot(&w) + w.len() as f64 * LN_2PI))
                    .collect();
                (prior, x.mapv(|v| -v), self.log_intensities(x))
            }
        };
        let mut out = prior;
        for (o, row) in out.iter_mut().zip(f.rows()) {
            let lik: f64 = row
                .iter()
                .zip(&self.counts)
                .map(|(&v, &c)| v * c - self.area * v.exp())
                .sum();
            *o += lik;
        }
        if let Some(mut g) = grad {
            // ∇_f of the likelihood, n − a e^f; mapped to w by Lᵀ (rows: · L) when whitened.
            let lik_grad = Array2::from_shape_fn(f.dim(), |(i, j)| {
                self.counts[j] - self.area * f[[i, j]].exp()
            });
            let lik_grad = match &self.prior {
                Prior::Latent { .. } => lik_grad,
                Prior::Whitened { chol } => lik_grad.dot(chol),
            };
            for (i, mut row) in g.rows_mut().into_iter().enumerate() {
                let valid = out[i].is_finite();
                for (j, gv) in row.iter_mut().enumerate() {
                    *gv = if valid {
                        prior_grad[[i, j]] + lik_grad[[i, j]]
                    } else {
                        0.0
                    };
                }
            }
        }
        out.mapv_inplace(|v| if v.is_finite() { v } else { f64::NEG_INFINITY });
        out
    }

    fn batch(&self, f: ArrayView2<f64>, grad: Option<ArrayViewMut2<f64>>) -> Array1<f64> {
        let chunks: Vec<ArrayView2<f64>> = f.axis_chunks_iter(Axis(0), CHUNK_ROWS).collect();
        let parts: Vec<Array1<f64>> = match grad {
            None => chunks
                .into_par_iter()
                .map(|c| self.chunk(c, None))
                .collect(),
            Some(mut g) => {
                let grads: Vec<ArrayViewMut2<f64>> =
                    g.axis_chunks_iter_mut(Axis(0), CHUNK_ROWS).collect();
                chunks
                    .into_par_iter()
                    .zip(grads)
                    .map(|(c, g)| self.chunk(c, Some(g)))
                    .collect()
            }
        };
        parts.into_iter().flatten().collect()
    }
}

/// Parses the pines CSV (a header, then `"row", x, y` per point).
pub fn parse_points(text: &str, origin: &str) -> Result<Vec<[f64; 2]>> {
    let bad = |line: usize, reason: &str| {
        FabError::invalid(format!("{origin} line {line}"), reason.to_string())
    };
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let fields: Vec<&str> = l.split(',').collect();
            if fields.len() != 3 {
                return Err(bad(i + 1, "expected 3 comma-separated fields"));
            }
            let num = |s: &str| {
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| bad(i + 1, "coordinate is not a number"))
            };
            Ok([num(fields[1])?, num(fields[2])?])
        })
        .collect()
}

/// Points per cell of an `n` × `n` grid over the unit square, flattened row-major with the row
/// from the first coordinate; a point on the upper edge (coordinate 1) goes into the last cell.
pub fn bin_counts(points: &[[f64; 2]], n: usize) -> Result<Array1<f64>> {
    let mut counts = Array1::zeros(n * n);
    for (k, p) in points.iter().enumerate() {
        if !p.iter().all(|v| (0.0..=1.0).contains(v)) {
            return Err(FabError::invalid(
                "cox points",
                format!("point {k} = {p:?} lies outside the unit square"),
            ));
        }
        let cell = |v: f64| ((v * n as f64).floor() as usize).min(n - 1);
        counts[cell(p[0]) * n + cell(p[1])] += 1.0;
    }
    Ok(counts)
}

impl LogDensity for CoxProcess {
    fn dim(&self) -> usize {
        self.n_per_dim * self.n_per_dim
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("cox log_prob", &x, self.dim())?;
        Ok(self.batch(x, None))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim_and_grad("cox log_prob_and_grad", &x, &grad, self.dim())?;
        Ok(self.batch(x, Some(grad)))
    }
}

impl Target for CoxProcess {
    fn name(&self) -> &str {
        if self.is_whitened() {
            "cox-whitened"
        } else {
            "cox"
        }
    }

    /// fab-jax's SMC reference for the 40 × 40 pines (either coordinates); unknown for other
    /// grids.
    fn log_z(&self) -> Option<f64> {
        (self.n_per_dim == 40).then_some(REFERENCE_LOG_Z_40)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fab_core::rng::seeded;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn pines_are_binned_with_edge_points_in_the_last_cell() {
        let points = parse_points(PINES_CSV, "df_pines.csv").unwrap();
        assert_eq!(points.len(), 126);
        let counts = bin_counts(&points, 40).unwrap();
        assert_eq!(counts.sum(), 126.0);
        // (0.3006125, 0.89297642) → row 12, column 35.
        assert!(counts[12 * 40 + 35] >= 1.0);
        let edge = bin_counts(&[[1.0, 0.0], [0.5, 1.0]], 4).unwrap();
        assert_eq!(edge[3 * 4], 1.0);
        assert_eq!(edge[2 * 4 + 3], 1.0);
        assert!(bin_counts(&[[1.5, 0.0]], 4).is_err());
        assert!(parse_points("h\n1,0.5\n", "x.csv")
            .unwrap_err()
            .to_string()
            .contains("x.csv line 2"));
    }

    #[test]
    fn density_matches_the_gaussian_prior_and_poisson_likelihood_on_a_small_grid() {
        // 3 × 3 grid: check log N against nalgebra's determinant and inverse of K, computed apart.
        let points = [[0.1, 0.1], [0.15, 0.2], [0.9, 0.5]];
        let cox = CoxProcess::new(&points, 3).unwrap();
        let d = 9;
        let cell = |k: usize| ((k / 3) as f64, (k % 3) as f64);
        let k = DMatrix::from_fn(d, d, |p, q| {
            let ((a, b), (c, e)) = (cell(p), cell(q));
            1.91 * (-((a - c).powi(2) + (b - e).powi(2)).sqrt() * 33.0 / 3.0).exp()
        });
        let det = k.determinant();
        let inv = k.clone().try_inverse().unwrap();
        let mut rng = seeded(2);
        let f = Array2::from_shape_fn((5, d), |_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            cox.prior_mean() + z
        });
        let lp = cox.log_prob(f.view()).unwrap();
        let counts = [2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        assert_eq!(cox.counts().to_vec(), counts);
        for (i, row) in f.rows().into_iter().enumerate() {
            let c = nalgebra::DVector::from_iterator(d, row.iter().map(|v| v - cox.prior_mean()));
            let quad = (c.transpose() * &inv * &c)[(0, 0)];
            let prior =
                -0.5 * quad - 0.5 * (det.ln() + d as f64 * (2.0 * std::f64::consts::PI).ln());
            let lik: f64 = row
                .iter()
                .zip(counts)
                .map(|(&v, n)| v * n - v.exp() / 9.0)
                .sum();
            assert!(
                (lp[i] - prior - lik).abs() < 1e-9,
                "{} vs {}",
                lp[i],
                prior + lik
            );
        }
        assert!((cox.prior_mean() - (3f64.ln() - 0.955)).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences_on_the_pines() {
        let cox = CoxProcess::pines().unwrap();
        assert_eq!(cox.dim(), 1600);
        assert_eq!(cox.log_z(), Some(501.806));
        let mut rng = seeded(4);
        let f = Array2::from_shape_fn((3, 1600), |_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            cox.prior_mean() + 0.5 * z
        });
        assert_gradient_matches_fd(&cox, &f, &[0, 17, 455, 1599]);
    }

    /// The analytic gradient at the rows of `x` equals central differences in columns `cols`,
    /// and log p from the gradient call equals the plain one.
    fn assert_gradient_matches_fd(cox: &CoxProcess, x: &Array2<f64>, cols: &[usize]) {
        let mut g = Array2::zeros(x.dim());
        let lp = cox.log_prob_and_grad(x.view(), g.view_mut()).unwrap();
        assert_eq!(lp, cox.log_prob(x.view()).unwrap());
        let h = 1e-5;
        for i in 0..x.nrows() {
            for &j in cols {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[[i, j]] += h;
                xm[[i, j]] -= h;
                let fd = (cox.log_prob(xp.view()).unwrap()[i]
                    - cox.log_prob(xm.view()).unwrap()[i])
                    / (2.0 * h);
                assert!(
                    (fd - g[[i, j]]).abs() < 1e-4 * (1.0 + fd.abs()),
                    "{fd} vs {}",
                    g[[i, j]]
                );
            }
        }
    }

    #[test]
    fn whitened_density_is_the_latent_one_times_the_jacobian_and_its_gradient_matches_fd() {
        // log p_w(w) = log p_f(μ₀ + L w) + log det L: the change of variables that keeps log Z.
        let points = [[0.1, 0.1], [0.15, 0.2], [0.9, 0.5], [0.55, 0.52]];
        let (latent, white) = (
            CoxProcess::new(&points, 4).unwrap(),
            CoxProcess::new_whitened(&points, 4).unwrap(),
        );
        assert!(white.is_whitened() && !latent.is_whitened());
        assert_eq!(white.name(), "cox-whitened");
        let d = 16;
        let cell = |k: usize| ((k / 4) as f64, (k % 4) as f64);
        let k = DMatrix::from_fn(d, d, |p, q| {
            let ((a, b), (c, e)) = (cell(p), cell(q));
            1.91 * (-((a - c).powi(2) + (b - e).powi(2)).sqrt() * 33.0 / 4.0).exp()
        });
        let half_log_det_k = 0.5 * k.determinant().ln();
        let mut rng = seeded(9);
        let w = Array2::from_shape_fn((6, d), |_| StandardNormal.sample(&mut rng));
        let f = white.log_intensities(w.view());
        let (lw, lf) = (
            white.log_prob(w.view()).unwrap(),
            latent.log_prob(f.view()).unwrap(),
        );
        for i in 0..6 {
            assert!(
                (lw[i] - lf[i] - half_log_det_k).abs() < 1e-9,
                "{} vs {}",
                lw[i],
                lf[i] + half_log_det_k
            );
        }
        // f − μ₀ = L w has covariance K = L Lᵀ: the rows for w = e₁ … e_d are the columns of L,
        // and Σⱼ (L eⱼ)(L eⱼ)ᵀ = K.
        let columns = white
            .log_intensities(Array2::eye(d).view())
            .mapv(|v| v - white.prior_mean());
        let cov = columns.t().dot(&columns);
        for (p, q) in [(0, 0), (0, 5), (3, 14), (15, 15)] {
            assert!((cov[[p, q]] - k[(p, q)]).abs() < 1e-12, "K[{p}, {q}]");
        }

        let pines = CoxProcess::pines_whitened().unwrap();
        assert_eq!(pines.log_z(), Some(501.806));
        let w = Array2::from_shape_fn((2, 1600), |_| StandardNormal.sample(&mut rng));
        assert_gradient_matches_fd(&pines, &w, &[0, 31, 800, 1599]);
    }
}
