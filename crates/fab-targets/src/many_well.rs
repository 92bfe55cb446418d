//! The Many Well target (fab-torch `ManyWellEnergy`, fab-spec §7.2): d/2 independent copies of a
//! 2-D double well. Even coordinates are double-well coordinates, odd ones Gaussian:
//! log p̃(x) = Σᵢ [0.5·x₂ᵢ + 6·x₂ᵢ² − x₂ᵢ⁴ − ½·x₂ᵢ₊₁²], unnormalised, 2^(d/2) modes.
//! log Z = (d/2)·(ln Z₁ + ½ ln 2π) with Z₁ = ∫ exp(−x⁴ + 6x² + 0.5x) dx = 11784.50927.
//! Exact samples: Gaussian coordinates directly, double-well coordinates by rejection from the
//! mixture 0.2·N(−1.7, 0.5²) + 0.8·N(1.7, 0.5²) with envelope 3·Z₁ (min ratio 1.158 > 1, exact).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Zip};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use fab_core::density::{check_dim, check_dim_and_grad, par_rows};
use fab_core::target::WeightedSamples;
use fab_core::{FabError, FabRng, LogDensity, PlotView, Result, Target};

/// Z₁ = ∫ exp(−x⁴ + 6x² + 0.5x) dx (fab-torch's constant; checked by quadrature in the tests).
pub const Z_DOUBLE_WELL_1D: f64 = 11784.50927;

const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

/// Unnormalised log density of the 1-D double-well coordinate.
pub fn double_well_log_prob(x: f64) -> f64 {
    0.5 * x + 6.0 * x * x - x.powi(4)
}

/// The Many Well density in an even dimension.
#[derive(Debug, Clone)]
pub struct ManyWell {
    dim: usize,
}

impl ManyWell {
    /// Many Well in dimension `dim` (even, at least 2); 32 in the paper.
    pub fn new(dim: usize) -> Result<Self> {
        if dim < 2 || !dim.is_multiple_of(2) {
            return Err(FabError::invalid(
                "target.ManyWell.dim",
                format!("must be even and >= 2, got {dim}"),
            ));
        }
        Ok(Self { dim })
    }

    /// Number of double-well copies d/2 (the log₂ of the number of modes).
    pub fn n_wells(&self) -> usize {
        self.dim / 2
    }

    fn point(&self, x: ArrayView1<f64>, grad: Option<ndarray::ArrayViewMut1<f64>>) -> f64 {
        let mut lp = 0.0;
        for i in 0..self.n_wells() {
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            lp += double_well_log_prob(a) - 0.5 * b * b;
        }
        if let Some(mut g) = grad {
            for i in 0..self.n_wells() {
                let (a, b) = (x[2 * i], x[2 * i + 1]);
                g[2 * i] = 0.5 + 12.0 * a - 4.0 * a.powi(3);
                g[2 * i + 1] = -b;
            }
        }
        if lp.is_nan() {
            f64::NEG_INFINITY
        } else {
            lp
        }
    }

    /// One exact draw of the double-well coordinate by rejection sampling.
    pub fn sample_double_well(rng: &mut FabRng) -> f64 {
        let envelope = 3.0 * Z_DOUBLE_WELL_1D;
        let mixture = |z: f64| {
            let n = |m: f64| {
                (-0.5 * ((z - m) / 0.5).powi(2)).exp() / (0.5 * (2.0 * std::f64::consts::PI).sqrt())
            };
            0.2 * n(-1.7) + 0.8 * n(1.7)
        };
        loop {
            let m = if rng.gen::<f64>() < 0.2 { -1.7 } else { 1.7 };
            let e: f64 = StandardNormal.sample(rng);
            let z = m + 0.5 * e;
            let u = rng.gen::<f64>() * envelope * mixture(z);
            if double_well_log_prob(z).exp() > u {
                return z;
            }
        }
    }

    /// Sign pattern of the double-well coordinates of one sample as a bit mask (bit i: x₂ᵢ > 0).
    fn well_index(&self, x: ArrayView1<f64>, n_wells: usize) -> u64 {
        (0..n_wells).fold(0u64, |acc, i| acc | (((x[2 * i] > 0.0) as u64) << i))
    }

    /// Fraction of the 16 sign patterns of the first four double-well coordinates (x₀, x₂, x₄, x₆)
    /// that hold at least one sample.
    pub fn first_four_pattern_coverage(&self, x: ArrayView2<f64>) -> f64 {
        let k = self.n_wells().min(4);
        let mut seen = vec![false; 1 << k];
        for row in x.rows() {
            if row.iter().all(|v| v.is_finite()) {
                seen[self.well_index(row, k) as usize] = true;
            }
        }
        seen.iter().filter(|s| **s).count() as f64 / seen.len() as f64
    }

    /// Number of distinct wells (full sign patterns) among the samples.
    pub fn distinct_wells(&self, x: ArrayView2<f64>) -> usize {
        let k = self.n_wells().min(64);
        let mut ids: Vec<u64> = x
            .rows()
            .into_iter()
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .map(|r| self.well_index(r, k))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Importance-weighted fraction of mass with x₀ > 0 (exact: P(x > 0) under the 1-D double well).
    fn weighted_positive_fraction(s: WeightedSamples<'_>) -> f64 {
        let w = fab_core::weights::normalised_weights(s.log_w);
        Zip::from(&w)
            .and(s.x.rows())
            .fold(0.0, |acc, &wi, r| if r[0] > 0.0 { acc + wi } else { acc })
    }
}

impl LogDensity for ManyWell {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim("Many Well log_prob", &x, self.dim)?;
        Ok(par_rows(x, None, |r, g| self.point(r, g)))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim_and_grad("Many Well log_prob_and_grad", &x, &grad, self.dim)?;
        Ok(par_rows(x, Some(grad), |r, g| self.point(r, g)))
    }
}

impl Target for ManyWell {
    fn name(&self) -> &str {
        "many-well"
    }

    fn log_z(&self) -> Option<f64> {
        Some(self.n_wells() as f64 * (Z_DOUBLE_WELL_1D.ln() + HALF_LOG_2PI))
    }

    fn sample(&self, n: usize, rng: &mut FabRng) -> Option<Array2<f64>> {
        let mut x = Array2::zeros((n, self.dim));
        for mut row in x.rows_mut() {
            for i in 0..self.n_wells() {
                row[2 * i] = Self::sample_double_well(rng);
                row[2 * i + 1] = StandardNormal.sample(rng);
            }
        }
        Some(x)
    }

    fn extra_metrics(
        &self,
        flow: WeightedSamples<'_>,
        ais: WeightedSamples<'_>,
    ) -> Vec<(String, f64)> {
        vec![
            (
                "first4_patterns_flow".into(),
                self.first_four_pattern_coverage(flow.x),
            ),
            (
                "first4_patterns_ais".into(),
                self.first_four_pattern_coverage(ais.x),
            ),
            (
                "distinct_wells_flow".into(),
                self.distinct_wells(flow.x) as f64,
            ),
            (
                "x0_positive_mass_flow_is".into(),
                Self::weighted_positive_fraction(flow),
            ),
            (
                "x0_positive_mass_ais_is".into(),
                Self::weighted_positive_fraction(ais),
            ),
        ]
    }

    fn plot_views(&self) -> Vec<PlotView> {
        let w = (-3.0, 3.0);
        let mut v = vec![PlotView {
            coords: (0, 1),
            x: w,
            y: w,
        }];
        if self.n_wells() >= 2 {
            v.push(PlotView {
                coords: (2, 3),
                x: w,
                y: w,
            });
            v.push(PlotView {
                coords: (0, 2),
                x: w,
                y: w,
            });
        }
        v
    }

    fn marginal_log_prob(
        &self,
        coords: (usize, usize),
        points: ArrayView2<f64>,
    ) -> Result<Array1<f64>> {
        if coords.0 >= self.dim || coords.1 >= self.dim || coords.0 == coords.1 {
            return Err(FabError::invalid(
                "plot",
                format!("coordinates {coords:?} of a {}-D Many Well", self.dim),
            ));
        }
        // Coordinates are independent: the marginal is a product of 1-D marginals (unnormalised).
        let one = |j: usize, v: f64| {
            if j.is_multiple_of(2) {
                double_well_log_prob(v)
            } else {
                -0.5 * v * v
            }
        };
        Ok(points
            .rows()
            .into_iter()
            .map(|r| one(coords.0, r[0]) + one(coords.1, r[1]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fab_core::rng::seeded;

    #[test]
    fn normalising_constant_matches_quadrature() {
        // Trapezoid rule on [−10, 10] with 2·10⁵ intervals; the integrand is negligible outside.
        let (a, b, m) = (-10.0, 10.0, 200_000);
        let h = (b - a) / m as f64;
        let z: f64 = (0..=m)
            .map(|i| {
                let w = if i == 0 || i == m { 0.5 } else { 1.0 };
                w * double_well_log_prob(a + i as f64 * h).exp()
            })
            .sum::<f64>()
            * h;
        assert!((z / Z_DOUBLE_WELL_1D - 1.0).abs() < 1e-9, "{z}");
        let mw = ManyWell::new(32).unwrap();
        assert!((mw.log_z().unwrap() - 164.6956753).abs() < 1e-6);
    }

    #[test]
    fn rejection_sampler_matches_the_double_well_moments() {
        // Exact moments by quadrature, compared with 10⁵ samples within 5 standard errors.
        let (a, b, m) = (-10.0, 10.0, 100_000);
        let h = (b - a) / m as f64;
        let mut mom = [0.0f64; 3];
        for i in 0..=m {
            let x = a + i as f64 * h;
            let p = double_well_log_prob(x).exp() * h / Z_DOUBLE_WELL_1D;
            mom[0] += p * x;
            mom[1] += p * x * x;
            mom[2] += p * (x > 0.0) as u8 as f64;
        }
        let mut rng = seeded(4);
        let n = 100_000;
        let xs: Vec<f64> = (0..n)
            .map(|_| ManyWell::sample_double_well(&mut rng))
            .collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let second = xs.iter().map(|x| x * x).sum::<f64>() / n as f64;
        let positive = xs.iter().filter(|x| **x > 0.0).count() as f64 / n as f64;
        let var = mom[1] - mom[0] * mom[0];
        assert!(
            (mean - mom[0]).abs() < 5.0 * (var / n as f64).sqrt(),
            "mean {mean} vs {}",
            mom[0]
        );
        let var2: f64 = xs.iter().map(|x| (x * x - mom[1]).powi(2)).sum::<f64>() / n as f64;
        assert!(
            (second - mom[1]).abs() < 5.0 * (var2 / n as f64).sqrt(),
            "E[x²] {second} vs {}",
            mom[1]
        );
        // Mass of the deeper (positive) well ≈ 0.8443 (fab-spec §7.2).
        assert!((mom[2] - 0.8443).abs() < 1e-3);
        assert!((positive - mom[2]).abs() < 5.0 * (mom[2] * (1.0 - mom[2]) / n as f64).sqrt());
    }

    #[test]
    fn gradient_matches_finite_differences_and_samples_cover_the_modes() {
        let mw = ManyWell::new(8).unwrap();
        let x = mw.sample(16, &mut seeded(1)).unwrap();
        let mut g = Array2::zeros(x.dim());
        mw.log_prob_and_grad(x.view(), g.view_mut()).unwrap();
        let eps = 1e-6;
        for i in 0..x.nrows() {
            for j in 0..8 {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[[i, j]] += eps;
                xm[[i, j]] -= eps;
                let fd = (mw.log_prob(xp.view()).unwrap()[i] - mw.log_prob(xm.view()).unwrap()[i])
                    / (2.0 * eps);
                assert!((fd - g[[i, j]]).abs() < 1e-5 * (1.0 + fd.abs()));
            }
        }
        let many = mw.sample(20_000, &mut seeded(2)).unwrap();
        assert_eq!(mw.first_four_pattern_coverage(many.view()), 1.0);
        assert_eq!(mw.distinct_wells(many.view()), 16);
        assert!(ManyWell::new(3).is_err());
    }
}
