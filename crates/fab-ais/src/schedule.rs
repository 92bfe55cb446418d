//! β schedules for the annealing path (fab-spec §2.2): n intermediate distributions give n + 2
//! values 0 = β₀ < β₁ ≤ … ≤ βₙ < βₙ₊₁ = 1 and exactly n MCMC transitions.

use serde::{Deserialize, Serialize};

/// Spacing of the inverse temperatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum BetaSchedule {
    /// β = linspace(0, 1, n + 2) (every shipped config of both reference codes).
    #[default]
    Linear,
    /// ⌊n/4⌋ linear steps up to 0.01, then geometric spacing to 1 (both reference codes).
    Geometric,
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

impl BetaSchedule {
    /// The n + 2 values of β for `n` intermediate distributions.
    pub fn betas(&self, n: usize) -> Vec<f64> {
        match self {
            BetaSchedule::Linear => linspace(0.0, 1.0, n + 2),
            BetaSchedule::Geometric => {
                let n_lin = n / 4;
                let n_geo = n - n_lin - 1;
                let mut b = linspace(0.0, 0.01, n_lin + 2);
                b.pop();
                let (lo, hi) = (0.01f64.ln(), 0.0);
                b.extend(linspace(lo, hi, n_geo + 2).into_iter().map(f64::exp));
                b
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_match_the_reference_values() {
        assert_eq!(BetaSchedule::Linear.betas(1), vec![0.0, 0.5, 1.0]);
        let g = BetaSchedule::Geometric.betas(4);
        let expect = [0.0, 0.005, 0.01, 0.0464159, 0.2154435, 1.0];
        assert_eq!(g.len(), 6);
        for (a, b) in g.iter().zip(expect) {
            assert!((a - b).abs() < 1e-7, "{g:?}");
        }
        assert_eq!(BetaSchedule::Geometric.betas(1).len(), 3);
        assert!((BetaSchedule::Geometric.betas(1)[1] - 0.01).abs() < 1e-12);
    }
}
