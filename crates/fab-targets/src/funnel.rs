//! Neal's funnel (fab-jax's `funnel` benchmark): x₀ ∼ N(0, 3²) and, given x₀, each of x₁..x_{d−1}
//! ∼ N(0, e^{x₀}). Normalised (log Z = 0), with exact samples.
//!
//!   log p(x) = −x₀²/18 − ln(3√(2π)) + Σᵢ [−½ xᵢ² e^{−x₀} − ½ x₀ − ½ ln 2π]
//!   ∂/∂x₀ = −x₀/9 + Σᵢ (½ xᵢ² e^{−x₀} − ½),   ∂/∂xᵢ = −xᵢ e^{−x₀}.
//!
//! The neck (x₀ ≪ 0) is narrow and the mouth (x₀ ≫ 0) wide, so a sampler with one step size
//! cannot serve both; that is what the benchmark tests.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand_distr::{Distribution, StandardNormal};

use fab_core::density::{check_dim, check_dim_and_grad, par_rows};
use fab_core::{FabError, FabRng, LogDensity, PlotView, Result, Target};

/// ½ ln 2π.
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

/// Standard deviation of x₀.
const SCALE_X0: f64 = 3.0;

/// Neal's funnel in `dim` dimensions (fab-jax: 10).
#[derive(Debug, Clone)]
pub struct Funnel {
    dim: usize,
}

impl Funnel {
    /// The funnel in `dim` ≥ 2 dimensions.
    pub fn new(dim: usize) -> Result<Self> {
        if dim < 2 {
            return Err(FabError::invalid(
                "target.dim",
                format!("the funnel needs at least 2 dimensions, got {dim}"),
            ));
        }
        Ok(Self { dim })
    }

    /// log p and (optionally) ∇ log p at one point.
    fn point(&self, x: ArrayView1<f64>, grad: Option<ArrayViewMut1<f64>>) -> f64 {
        let x0 = x[0];
        let inv_var = (-x0).exp();
        let mut lp = -0.5 * (x0 / SCALE_X0).powi(2) - SCALE_X0.ln() - HALF_LOG_2PI;
        let mut sq = 0.0;
        for &v in x.iter().skip(1) {
            sq += v * v;
        }
        let n = (self.dim - 1) as f64;
        lp += -0.5 * sq * inv_var - n * (0.5 * x0 + HALF_LOG_2PI);
        let valid = lp.is_finite();
        if let Some(mut g) = grad {
            if valid {
                g[0] = -x0 / (SCALE_X0 * SCALE_X0) + 0.5 * sq * inv_var - 0.5 * n;
                for (gi, &v) in g.iter_mut().zip(x.iter()).skip(1) {
                    *gi = -v * inv_var;
                }
            } else {
                g.fill(0.0);
            }
        }
        if valid {
            lp
        } else {
            f64::NEG_INFINITY
        }
    }
}

impl LogDensity for Funnel {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("funnel log_prob", &x, self.dim)?;
        Ok(par_rows(x, None, |r, g| self.point(r, g)))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim_and_grad("funnel log_prob_and_grad", &x, &grad, self.dim)?;
        Ok(par_rows(x, Some(grad), |r, g| self.point(r, g)))
    }
}

impl Target for Funnel {
    fn name(&self) -> &str {
        "funnel"
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }

    fn sample(&self, n: usize, rng: &mut FabRng) -> Option<Array2<f64>> {
        let mut x = Array2::zeros((n, self.dim));
        for mut row in x.rows_mut() {
            let z: f64 = StandardNormal.sample(rng);
            let x0 = SCALE_X0 * z;
            row[0] = x0;
            let sd = (0.5 * x0).exp();
            for v in row.iter_mut().skip(1) {
                let e: f64 = StandardNormal.sample(rng);
                *v = sd * e;
            }
        }
        Some(x)
    }

    fn plot_views(&self) -> Vec<PlotView> {
        vec![PlotView {
            coords: (0, 1),
            x: (-10.0, 10.0),
            y: (-20.0, 20.0),
        }]
    }

    /// The (x₀, x₁) marginal is the 2-D funnel itself; other pairs have no closed form here.
    fn marginal_log_prob(
        &self,
        coords: (usize, usize),
        points: ArrayView2<f64>,
    ) -> Result<Array1<f64>> {
        if coords != (0, 1) {
            return Err(FabError::invalid(
                "plot",
                format!("no 2-D marginal for coordinates {coords:?}"),
            ));
        }
        Funnel::new(2)?.log_prob(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fab_core::rng::seeded;
    use ndarray::Axis;

    /// log N(v; 0, sd²).
    fn log_normal(v: f64, sd: f64) -> f64 {
        -0.5 * (v / sd).powi(2) - sd.ln() - HALF_LOG_2PI
    }

    #[test]
    fn density_is_the_product_of_its_conditionals_and_the_2d_funnel_integrates_to_one() {
        let f = Funnel::new(10).unwrap();
        let x = f.sample(50, &mut seeded(3)).unwrap();
        let lp = f.log_prob(x.view()).unwrap();
        for (row, &l) in x.rows().into_iter().zip(&lp) {
            let sd = (0.5 * row[0]).exp();
            let want = log_normal(row[0], 3.0)
                + row.iter().skip(1).map(|&v| log_normal(v, sd)).sum::<f64>();
            assert!(
                (l - want).abs() < 1e-10 * (1.0 + want.abs()),
                "{l} vs {want}"
            );
        }
        // ∫∫ p(x₀, x₁): inner integral over x₁ on a grid scaled to its width e^{x₀/2}.
        let two = Funnel::new(2).unwrap();
        let (h0, m0) = (0.01, 3600); // x₀ ∈ [−18, 18]: 6σ
        let mut z = 0.0;
        for i in 0..m0 {
            let x0 = -18.0 + (i as f64 + 0.5) * h0;
            let sd = (0.5 * x0).exp();
            let m1 = 400;
            let h1 = 16.0 * sd / m1 as f64;
            let pts = Array2::from_shape_fn((m1, 2), |(k, j)| {
                if j == 0 {
                    x0
                } else {
                    -8.0 * sd + (k as f64 + 0.5) * h1
                }
            });
            z += two.log_prob(pts.view()).unwrap().mapv(f64::exp).sum() * h1 * h0;
        }
        assert!((z - 1.0).abs() < 1e-6, "{z}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let f = Funnel::new(5).unwrap();
        let x = f.sample(20, &mut seeded(5)).unwrap();
        let mut g = Array2::zeros(x.dim());
        let lp = f.log_prob_and_grad(x.view(), g.view_mut()).unwrap();
        assert_eq!(lp, f.log_prob(x.view()).unwrap());
        let eps = 1e-6;
        for i in 0..x.nrows() {
            for j in 0..5 {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[[i, j]] += eps;
                xm[[i, j]] -= eps;
                let fd = (f.log_prob(xp.view()).unwrap()[i] - f.log_prob(xm.view()).unwrap()[i])
                    / (2.0 * eps);
                assert!(
                    (fd - g[[i, j]]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "({i},{j}) {fd} vs {}",
                    g[[i, j]]
                );
            }
        }
        // Non-finite input: −inf and a zero gradient.
        let bad = ndarray::array![[f64::NAN, 0.0, 0.0, 0.0, 0.0]];
        let mut g = Array2::from_elem((1, 5), 7.0);
        let lp = f.log_prob_and_grad(bad.view(), g.view_mut()).unwrap();
        assert!(lp[0] == f64::NEG_INFINITY && g.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn exact_samples_have_the_known_moments() {
        // x₀ ∼ N(0, 9); xᵢ/e^{x₀/2} ∼ N(0, 1) independently of x₀.
        let n = 100_000;
        let x = Funnel::new(4).unwrap().sample(n, &mut seeded(8)).unwrap();
        let x0 = x.column(0);
        let se = (9.0 / n as f64).sqrt();
        assert!(x0.mean().unwrap().abs() < 5.0 * se);
        let var0 = x0.var(0.0);
        assert!(
            (var0 - 9.0).abs() < 5.0 * (2.0 * 81.0 / n as f64).sqrt(),
            "{var0}"
        );
        let scaled =
            Array2::from_shape_fn((n, 3), |(i, j)| x[[i, j + 1]] * (-0.5 * x[[i, 0]]).exp());
        let mean = scaled.mean_axis(Axis(0)).unwrap();
        let var = scaled.var_axis(Axis(0), 0.0);
        let se1 = (1.0 / n as f64).sqrt();
        for j in 0..3 {
            assert!(mean[j].abs() < 5.0 * se1, "mean {j}");
            assert!(
                (var[j] - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(),
                "var {j}"
            );
        }
    }
}
