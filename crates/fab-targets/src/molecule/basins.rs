//! Populations of the Ramachandran basins that judge FAB on alanine dipeptide, with standard
//! errors: for (importance-weighted) independent samples by the delta method, for correlated MD
//! frames by block averaging. "Reweighted samples put mass in φ > 0 in proportion to the ground
//! truth" is a statement about two noisy numbers; the errors say how far apart they may be.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Fractions of frames in the Ramachandran regions used to judge FAB (IUPAC angles, rad).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BasinPopulations {
    /// φ > 0 (αL / C7ax): the rare basin.
    pub phi_positive: f64,
    /// φ < 0 and −2.5 < ψ < 1.0 (αR and C7eq side).
    pub alpha_r: f64,
    /// φ < 0 and the rest of ψ (β / PII / C5).
    pub beta: f64,
    /// 0 < φ < 2 rad: the αL / C7ax basin proper, the part of φ > 0 that is not the β basin
    /// reaching across φ = ±π (the spec's metadynamics estimate: 0.36 %). Absent in md.json
    /// files written before it existed (read as 0).
    #[serde(default)]
    pub alpha_l: f64,
}

/// Membership of one (φ, ψ) in [φ > 0, αR, β, αL] (the first three partition the plane, αL lies
/// inside φ > 0); `None` for non-finite angles.
fn basins(phi: f64, psi: f64) -> Option<[bool; 4]> {
    if !(phi.is_finite() && psi.is_finite()) {
        return None;
    }
    let positive = phi > 0.0;
    let alpha_r = !positive && psi > -2.5 && psi < 1.0;
    Some([
        positive,
        alpha_r,
        !positive && !alpha_r,
        positive && phi < 2.0,
    ])
}

impl BasinPopulations {
    fn from_array(a: [f64; 4]) -> Self {
        Self {
            phi_positive: a[0],
            alpha_r: a[1],
            beta: a[2],
            alpha_l: a[3],
        }
    }

    fn to_array(self) -> [f64; 4] {
        [self.phi_positive, self.alpha_r, self.beta, self.alpha_l]
    }

    /// Populations of the rows of `phi_psi` (n, 2), weighted by `weights` if given. Rows with
    /// non-finite angles are left out.
    pub fn of(phi_psi: &Array2<f64>, weights: Option<&[f64]>) -> Self {
        Self::of_view(phi_psi.view(), weights)
    }

    fn of_view(phi_psi: ArrayView2<f64>, weights: Option<&[f64]>) -> Self {
        let (mut mass, mut total) = ([0.0; 4], 0.0);
        for (i, row) in phi_psi.outer_iter().enumerate() {
            if let Some(member) = basins(row[0], row[1]) {
                let w = weights.map_or(1.0, |w| w[i]);
                total += w;
                for (m, inside) in mass.iter_mut().zip(member) {
                    if inside {
                        *m += w;
                    }
                }
            }
        }
        Self::from_array(mass.map(|m| m / total))
    }

    /// Standard errors of [`Self::of`] for independent samples with self-normalised importance
    /// weights (delta method): SE(p̂_A)² = Σᵢ w̄ᵢ² (1_A(xᵢ) − p̂_A)² with w̄ the weights normalised
    /// to sum 1. Unit weights give the binomial √(p(1 − p)/n).
    pub fn importance_standard_errors(phi_psi: &Array2<f64>, weights: Option<&[f64]>) -> Self {
        let p = Self::of(phi_psi, weights).to_array();
        let mut total = 0.0;
        let mut sq = [0.0; 4];
        for (i, row) in phi_psi.outer_iter().enumerate() {
            let Some(member) = basins(row[0], row[1]) else {
                continue;
            };
            let w = weights.map_or(1.0, |w| w[i]);
            total += w;
            for (k, s) in sq.iter_mut().enumerate() {
                let indicator = if member[k] { 1.0 } else { 0.0 };
                *s += w * w * (indicator - p[k]).powi(2);
            }
        }
        Self::from_array(sq.map(|s| s.sqrt() / total))
    }

    /// Standard errors of [`Self::of`] (unweighted) for a correlated time series such as MD
    /// frames: the frames are cut into `n_blocks` contiguous blocks and SE = standard deviation
    /// of the block populations / √n_blocks. Valid when blocks are longer than the correlation
    /// time; for a basin visited in few long stays it is itself uncertain by ~1/√(2 n_blocks).
    pub fn block_standard_errors(phi_psi: &Array2<f64>, n_blocks: usize) -> Self {
        let n_blocks = n_blocks.clamp(2, phi_psi.nrows().max(2));
        let size = phi_psi.nrows() / n_blocks;
        if size == 0 {
            return Self::from_array([f64::NAN; 4]);
        }
        let blocks: Vec<[f64; 4]> = (0..n_blocks)
            .map(|b| {
                let rows = phi_psi.slice(ndarray::s![b * size..(b + 1) * size, ..]);
                Self::of_view(rows, None).to_array()
            })
            .collect();
        let nb = n_blocks as f64;
        Self::from_array(std::array::from_fn(|k| {
            let mean = blocks.iter().map(|b| b[k]).sum::<f64>() / nb;
            let var = blocks.iter().map(|b| (b[k] - mean).powi(2)).sum::<f64>() / (nb - 1.0);
            (var / nb).sqrt()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fab_core::rng::seeded;
    use rand::Rng;

    /// (φ, ψ) rows: basin 0 → φ = 1; basin 1 → φ = −1, ψ = 0; basin 2 → φ = −1, ψ = 2.
    fn rows(basins: &[usize]) -> Array2<f64> {
        Array2::from_shape_fn((basins.len(), 2), |(i, j)| match (basins[i], j) {
            (0, 0) => 1.0,
            (_, 0) => -1.0,
            (1, _) => 0.0,
            _ => 2.0,
        })
    }

    #[test]
    fn unit_weights_give_the_binomial_error() {
        let basins: Vec<usize> = (0..1000)
            .map(|i| [0, 1, 1, 2, 2, 2, 2, 2, 2, 2][i % 10])
            .collect();
        let x = rows(&basins);
        let p = BasinPopulations::of(&x, None);
        assert_eq!(p.phi_positive, 0.1);
        // φ = 1 lies in the αL core (0 < φ < 2).
        assert_eq!(p.alpha_l, 0.1);
        let se = BasinPopulations::importance_standard_errors(&x, None);
        assert!((se.phi_positive - (0.1f64 * 0.9 / 1000.0).sqrt()).abs() < 1e-12);
        assert!((se.beta - (0.7f64 * 0.3 / 1000.0).sqrt()).abs() < 1e-12);
    }

    /// Importance sampling of a known distribution: the predicted standard error matches the
    /// spread of the estimate over 400 independent repetitions (seeded).
    #[test]
    fn importance_error_matches_the_spread_of_repeated_estimates() {
        // Proposal: basins with probabilities q; target p = (0.02, 0.18, 0.8); w = p/q · noise,
        // where the multiplicative noise stands for within-basin weight variation (mean 1).
        let q = [0.1, 0.3, 0.6];
        let p = [0.02, 0.18, 0.8];
        let mut rng = seeded(17);
        let (reps, n) = (400, 2000);
        let mut estimates = Vec::new();
        let mut predicted = Vec::new();
        for _ in 0..reps {
            let mut basins = Vec::with_capacity(n);
            let mut w = Vec::with_capacity(n);
            for _ in 0..n {
                let u: f64 = rng.gen();
                let b = if u < q[0] {
                    0
                } else if u < q[0] + q[1] {
                    1
                } else {
                    2
                };
                basins.push(b);
                w.push(p[b] / q[b] * rng.gen_range(0.0..2.0));
            }
            let x = rows(&basins);
            estimates.push(BasinPopulations::of(&x, Some(&w)).phi_positive);
            predicted.push(BasinPopulations::importance_standard_errors(&x, Some(&w)).phi_positive);
        }
        let mean = estimates.iter().sum::<f64>() / reps as f64;
        let spread =
            (estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
        let se = predicted.iter().sum::<f64>() / reps as f64;
        assert!((mean - 0.02).abs() < 3.0 * spread / (reps as f64).sqrt() + 1e-4);
        // The spread of 400 estimates is known to ~3.5 %; allow 12 %.
        assert!(
            (se / spread - 1.0).abs() < 0.12,
            "predicted {se}, observed {spread}"
        );
    }

    /// A two-state Markov chain that stays with probability 0.95: the variance of the mean is
    /// p(1 − p)/n · (1 + ρ)/(1 − ρ) with ρ = 0.9, i.e. 19 times the independent-sample value. Block
    /// averaging recovers it (mean over 10 seeded chains), the binomial formula does not.
    #[test]
    fn block_errors_see_the_correlation_of_a_markov_chain() {
        let (n, stay) = (100_000, 0.95);
        let rho: f64 = 2.0 * stay - 1.0;
        let expected = (0.25 / n as f64 * (1.0 + rho) / (1.0 - rho)).sqrt();
        let mut block = 0.0;
        let mut naive = 0.0;
        for seed in 0..10 {
            let mut rng = seeded(seed);
            let mut state = 0usize;
            let basins: Vec<usize> = (0..n)
                .map(|_| {
                    if rng.gen::<f64>() > stay {
                        state = 1 - state;
                    }
                    // States 0 and 2 (φ > 0 and β), stationary population 1/2 each.
                    2 * state
                })
                .collect();
            let x = rows(&basins);
            block += BasinPopulations::block_standard_errors(&x, 20).phi_positive / 10.0;
            naive += BasinPopulations::importance_standard_errors(&x, None).phi_positive / 10.0;
        }
        assert!(
            (block / expected - 1.0).abs() < 0.15,
            "block {block}, expected {expected}"
        );
        assert!(naive < expected / 3.0);
    }
}
