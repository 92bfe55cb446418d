//! The paper's 40-mode Gaussian mixture in 2-D (fab-torch `GMM`, fab-spec §7.1), and fab-jax's
//! `gmm_v1` benchmark: 9 modes on the grid {−5, 0, 5}² with σ² = 0.3.
//!
//! p(x) = (1/40) Σₖ N(x; μₖ, σ² I) with σ = softplus(1) ≈ 1.3133 and the means of fab-spec §11.A
//! (PyTorch's generator seeded with 0). Normalised (log Z = 0); like fab-torch, log p below −1e4 is
//! reported as −inf. Also the quadratic test function f(x) = (x + s)ᵀA(x + s) + bᵀ(x + s) whose
//! expectation the paper uses to measure bias, with its exact expectation.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use fab_core::density::{check_dim, check_dim_and_grad, par_rows};
use fab_core::target::WeightedSamples;
use fab_core::weights::normalised_weights;
use fab_core::{FabRng, LogDensity, PlotView, Result, Target};

/// The 40 means (x, y) of the paper's GMM, fab-spec §11.A.
pub const PAPER_MEANS: [[f64; 2]; 40] = [
    [-0.2994728, 21.4577446],
    [-32.9218063, -29.4375610],
    [-15.4061747, 10.7262945],
    [-0.7925272, 31.7155800],
    [-3.5497618, 10.5845022],
    [-12.0885229, -7.8626156],
    [-38.2139397, -26.4912834],
    [-16.4889240, 1.4817429],
    [15.8134079, 24.0009117],
    [-27.1176434, -17.4185143],
    [14.5286846, 33.2155190],
    [-8.2320070, 29.9324703],
    [-6.4473343, 4.2325640],
    [36.2190475, -37.1068153],
    [-25.1815186, -10.1266098],
    [-15.5919981, 34.5600319],
    [-25.9271851, -18.4133148],
    [-27.9456177, -37.4624405],
    [-23.3496189, 34.3839226],
    [17.8487358, 19.3869019],
    [2.1036625, -20.5073395],
    [6.7673874, -37.3477898],
    [-28.9026489, -20.6212006],
    [25.2375183, 23.4528503],
    [-17.7398014, -1.4432955],
    [25.5824280, 39.7653236],
    [15.8752871, 5.4037142],
    [26.8194542, -23.5520935],
    [7.4537611, -31.0122204],
    [-27.7234459, -20.6633415],
    [18.0989227, 16.0864162],
    [-23.6940994, 12.0842838],
    [21.9588814, -5.0486946],
    [1.5272617, 9.2681885],
    [24.8150635, 38.4077644],
    [-30.8249435, -14.6587896],
    [15.7203960, 33.1419754],
    [34.8082924, 35.2942696],
    [7.9605818, -34.7833061],
    [3.6796999, -25.0242138],
];

/// Parameters of the quadratic test function (float32 draws of fab-torch, fab-spec §7.1).
const QUAD_S: [f64; 2] = [3.0819921, -0.5868578];
const QUAD_A: [[f64; 2]; 2] = [[0.6148456, 1.2681574], [0.9801868, 1.7928895]];
const QUAD_B: [f64; 2] = [0.4556280, 0.6323063];

/// fab-torch replaces log p below this by −inf.
const LOG_P_FLOOR: f64 = -1e4;

/// An isotropic Gaussian mixture with equal weights.
#[derive(Debug, Clone)]
pub struct Gmm {
    name: String,
    means: Array2<f64>,
    sigma: f64,
    /// Half-width of the square plot window.
    window: f64,
}

impl Gmm {
    /// A mixture of N(μₖ, σ² I) with equal weights; `name` is used in file names and reports,
    /// `window` is the half-width of the plot window.
    pub fn new(name: &str, means: Array2<f64>, sigma: f64, window: f64) -> Result<Self> {
        if means.nrows() == 0 || means.ncols() == 0 || !(sigma.is_finite() && sigma > 0.0) {
            return Err(fab_core::FabError::invalid(
                "target",
                "a Gaussian mixture needs at least one mean and a positive σ",
            ));
        }
        Ok(Self {
            name: name.to_string(),
            means,
            sigma,
            window,
        })
    }

    /// The paper's 40-mode problem.
    pub fn paper() -> Self {
        let means = Array2::from_shape_fn((40, 2), |(k, j)| PAPER_MEANS[k][j]);
        // softplus(1) = ln(1 + e).
        Self {
            name: "gmm".into(),
            means,
            sigma: (1.0 + std::f64::consts::E).ln(),
            window: 50.0,
        }
    }

    /// fab-jax's `gmm_v1`: 9 modes on the grid {−5, 0, 5}², σ = √0.3 ≈ 0.5477 per dimension.
    pub fn grid9() -> Self {
        let grid = [-5.0, 0.0, 5.0];
        let means =
            Array2::from_shape_fn((9, 2), |(k, j)| grid[if j == 0 { k / 3 } else { k % 3 }]);
        Self {
            name: "gmm-v1".into(),
            means,
            sigma: 0.3f64.sqrt(),
            window: 8.0,
        }
    }

    /// Component means, shape (K, d).
    pub fn means(&self) -> &Array2<f64> {
        &self.means
    }

    /// Component standard deviation σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// log p and ∇ log p at one point (gradient only if `grad` is given).
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN must fail the check
    fn point(&self, x: ArrayView1<f64>, grad: Option<ndarray::ArrayViewMut1<f64>>) -> f64 {
        let k = self.means.nrows() as f64;
        let var = self.sigma * self.sigma;
        let d = x.len() as f64;
        let log_norm = -k.ln() - 0.5 * d * (2.0 * std::f64::consts::PI * var).ln();
        // Component log densities; reused as responsibilities for the gradient.
        let mut comp: Vec<f64> = self
            .means
            .rows()
            .into_iter()
            .map(|mu| {
                let sq: f64 = mu
                    .iter()
                    .zip(x.iter())
                    .map(|(m, v)| (v - m) * (v - m))
                    .sum();
                log_norm - 0.5 * sq / var
            })
            .collect();
        let max = comp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = comp.iter().map(|c| (c - max).exp()).sum();
        let mut lp = max + sum.ln();
        if !(lp >= LOG_P_FLOOR) {
            lp = f64::NEG_INFINITY;
        }
        if let Some(mut g) = grad {
            g.fill(0.0);
            if lp.is_finite() {
                for c in comp.iter_mut() {
                    *c = (*c - max).exp() / sum;
                }
                // ∇ log p = Σₖ rₖ (μₖ − x) / σ².
                for (r, mu) in comp.iter().zip(self.means.rows()) {
                    g.zip_mut_with(&mu, |gj, &m| *gj += r * m);
                }
                g.zip_mut_with(&x, |gj, &xj| *gj = (*gj - xj) / var);
            }
        }
        lp
    }

    /// The quadratic test function f(x) = (x + s)ᵀA(x + s) + bᵀ(x + s) of the bias metric.
    pub fn quadratic(x: ArrayView1<f64>) -> f64 {
        let y = [x[0] + QUAD_S[0], x[1] + QUAD_S[1]];
        let mut f = QUAD_B[0] * y[0] + QUAD_B[1] * y[1];
        for i in 0..2 {
            for j in 0..2 {
                f += y[i] * QUAD_A[i][j] * y[j];
            }
        }
        f
    }

    /// Exact E_p\[f\] = meanₖ \[tr(A)σ² + f(μₖ)\] (≈ 1777.886 for the paper's GMM).
    pub fn quadratic_expectation(&self) -> f64 {
        let tr = QUAD_A[0][0] + QUAD_A[1][1];
        let k = self.means.nrows() as f64;
        self.means
            .rows()
            .into_iter()
            .map(|mu| tr * self.sigma * self.sigma + Self::quadratic(mu))
            .sum::<f64>()
            / k
    }

    /// Number of modes holding at least `min_fraction / K` of the samples, counting a sample for the
    /// mode whose mean is nearest if it lies within 3σ of it.
    pub fn modes_covered(&self, x: ArrayView2<f64>, min_fraction: f64) -> usize {
        let k = self.means.nrows();
        let mut counts = vec![0usize; k];
        for row in x.rows() {
            let (best, dist2) = self
                .means
                .rows()
                .into_iter()
                .map(|mu| {
                    mu.iter()
                        .zip(row.iter())
                        .map(|(m, v)| (v - m) * (v - m))
                        .sum::<f64>()
                })
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |acc, (i, d)| if d < acc.1 { (i, d) } else { acc },
                );
            if dist2 <= 9.0 * self.sigma * self.sigma {
                counts[best] += 1;
            }
        }
        let threshold = (min_fraction * x.nrows() as f64 / k as f64).max(1.0);
        counts.iter().filter(|&&c| c as f64 >= threshold).count()
    }

    fn relative_bias(&self, s: WeightedSamples<'_>, weighted: bool) -> f64 {
        let f: Array1<f64> = s.x.rows().into_iter().map(Self::quadratic).collect();
        let estimate = if weighted {
            let w = normalised_weights(s.log_w);
            (&w * &f).sum()
        } else {
            f.mean().unwrap_or(f64::NAN)
        };
        let truth = self.quadratic_expectation();
        (estimate - truth) / truth
    }
}

impl LogDensity for Gmm {
    fn dim(&self) -> usize {
        self.means.ncols()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("GMM log_prob", &x, self.dim())?;
        Ok(par_rows(x, None, |r, g| self.point(r, g)))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim_and_grad("GMM log_prob_and_grad", &x, &grad, self.dim())?;
        Ok(par_rows(x, Some(grad), |r, g| self.point(r, g)))
    }
}

impl Target for Gmm {
    fn name(&self) -> &str {
        &self.name
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }

    fn sample(&self, n: usize, rng: &mut FabRng) -> Option<Array2<f64>> {
        let k = self.means.nrows();
        let d = self.dim();
        let mut x = Array2::zeros((n, d));
        for mut row in x.axis_iter_mut(Axis(0)) {
            let c = rng.gen_range(0..k);
            for j in 0..d {
                let e: f64 = StandardNormal.sample(rng);
                row[j] = self.means[[c, j]] + self.sigma * e;
            }
        }
        Some(x)
    }

    fn extra_metrics(
        &self,
        flow: WeightedSamples<'_>,
        ais: WeightedSamples<'_>,
    ) -> Vec<(String, f64)> {
        // A mode "holds" samples if it has at least 10% of the 1/K share it would get under p.
        vec![
            ("quad_rel_bias_flow".into(), self.relative_bias(flow, true)),
            (
                "quad_rel_bias_flow_unweighted".into(),
                self.relative_bias(flow, false),
            ),
            ("quad_rel_bias_ais".into(), self.relative_bias(ais, true)),
            ("modes_flow".into(), self.modes_covered(flow.x, 0.1) as f64),
            ("modes_ais".into(), self.modes_covered(ais.x, 0.1) as f64),
        ]
    }

    fn plot_views(&self) -> Vec<PlotView> {
        let w = self.window;
        vec![PlotView {
            coords: (0, 1),
            x: (-w, w),
            y: (-w, w),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fab_core::rng::seeded;

    #[test]
    fn grid_mixture_is_normalised_with_nine_modes() {
        let gmm = Gmm::grid9();
        assert_eq!(gmm.means().nrows(), 9);
        assert!((gmm.sigma() - 0.5477222).abs() < 1e-6); // fab-jax rounds √0.3 to 0.5477222
                                                         // ∫ p over [−10, 10]² by the midpoint rule (the mass outside is < 1e-30).
        let h = 0.02;
        let m = (20.0 / h) as usize;
        let grid = Array2::from_shape_fn((m * m, 2), |(i, j)| {
            let idx = if j == 0 { i / m } else { i % m };
            -10.0 + (idx as f64 + 0.5) * h
        });
        let z: f64 = gmm.log_prob(grid.view()).unwrap().mapv(f64::exp).sum() * h * h;
        assert!((z - 1.0).abs() < 1e-6, "{z}");
        let x = gmm.sample(90_000, &mut seeded(4)).unwrap();
        assert_eq!(gmm.modes_covered(x.view(), 0.8), 9);
        assert_eq!(gmm.name(), "gmm-v1");
    }

    #[test]
    fn quadratic_expectation_matches_the_spec_value() {
        // fab-spec §7.1: exact E[f] = 1777.886 for the paper's means and σ.
        let e = Gmm::paper().quadratic_expectation();
        assert!((e - 1777.886).abs() < 1e-3, "{e}");
    }

    #[test]
    fn exact_samples_have_the_mixture_moments() {
        let gmm = Gmm::paper();
        let n = 200_000;
        let x = gmm.sample(n, &mut seeded(1)).unwrap();
        let mean_true = gmm.means.mean_axis(Axis(0)).unwrap();
        // Per-coordinate variance: σ² + variance of the means.
        let var_true = gmm.means.var_axis(Axis(0), 0.0) + gmm.sigma * gmm.sigma;
        let mean = x.mean_axis(Axis(0)).unwrap();
        let var = x.var_axis(Axis(0), 0.0);
        for j in 0..2 {
            let se = (var_true[j] / n as f64).sqrt();
            assert!((mean[j] - mean_true[j]).abs() < 5.0 * se, "mean {j}");
            // Var of the sample variance ≈ (μ₄ − σ⁴)/n; bound μ₄ by 3× the Gaussian value (loose).
            let se_var = (2.0 * 3.0 * var_true[j] * var_true[j] / n as f64).sqrt();
            assert!((var[j] - var_true[j]).abs() < 5.0 * se_var, "var {j}");
        }
        assert_eq!(gmm.modes_covered(x.view(), 0.5), 40);
        // Expectation of the quadratic function by Monte Carlo, within 5 standard errors.
        let f: Array1<f64> = x.rows().into_iter().map(Gmm::quadratic).collect();
        let se = f.std(0.0) / (n as f64).sqrt();
        assert!((f.mean().unwrap() - gmm.quadratic_expectation()).abs() < 5.0 * se);
    }

    #[test]
    fn log_prob_is_normalised_and_gradient_matches_finite_differences() {
        let gmm = Gmm::paper();
        // ∫ p over [−60, 60]² by the midpoint rule (mass outside is < 1e-20).
        let h = 0.25;
        let m = (120.0 / h) as usize;
        let grid = Array2::from_shape_fn((m * m, 2), |(i, j)| {
            let idx = if j == 0 { i / m } else { i % m };
            -60.0 + (idx as f64 + 0.5) * h
        });
        let z: f64 = gmm.log_prob(grid.view()).unwrap().mapv(f64::exp).sum() * h * h;
        assert!((z - 1.0).abs() < 1e-6, "{z}");

        let x = gmm.sample(20, &mut seeded(2)).unwrap() + 0.7;
        let mut g = Array2::zeros(x.dim());
        let lp = gmm.log_prob_and_grad(x.view(), g.view_mut()).unwrap();
        assert_eq!(lp, gmm.log_prob(x.view()).unwrap());
        let eps = 1e-6;
        for i in 0..x.nrows() {
            for j in 0..2 {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[[i, j]] += eps;
                xm[[i, j]] -= eps;
                let fd = (gmm.log_prob(xp.view()).unwrap()[i]
                    - gmm.log_prob(xm.view()).unwrap()[i])
                    / (2.0 * eps);
                assert!(
                    (fd - g[[i, j]]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "({i},{j}) {fd} vs {}",
                    g[[i, j]]
                );
            }
        }
        // Far away the density is masked to −inf with a zero gradient, never NaN.
        let far = ndarray::array![[500.0, 500.0], [f64::NAN, 0.0]];
        let mut g = Array2::zeros((2, 2));
        let lp = gmm.log_prob_and_grad(far.view(), g.view_mut()).unwrap();
        assert_eq!(lp[0], f64::NEG_INFINITY);
        assert!(lp[1] == f64::NEG_INFINITY && g.iter().all(|v| *v == 0.0));
    }
}
