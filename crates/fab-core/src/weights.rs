//! Importance-weight arithmetic in log space: log-sum-exp, self-normalised weights, effective
//! sample size and log-normaliser estimates (fab-spec §8.1, §8.3).
//!
//! Non-finite log weights are treated as zero weight (log w = −inf); NaN counts as −inf.

use ndarray::{Array1, ArrayView1};

/// log Σ exp(ℓᵢ), stable; `-inf` for an empty slice or when every entry is −inf/NaN.
pub fn log_sum_exp(log_w: ArrayView1<f64>) -> f64 {
    let max = log_w
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if max == f64::INFINITY {
        return f64::INFINITY;
    }
    let sum: f64 = log_w
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| (v - max).exp())
        .sum();
    max + sum.ln()
}

/// Self-normalised weights w̄ = softmax(ℓ); NaN entries get weight 0. All zeros if no entry is finite.
pub fn normalised_weights(log_w: ArrayView1<f64>) -> Array1<f64> {
    let lse = log_sum_exp(log_w);
    if !lse.is_finite() {
        return Array1::zeros(log_w.len());
    }
    log_w.mapv(|v| if v.is_nan() { 0.0 } else { (v - lse).exp() })
}

/// Effective sample size normalised by N: 1 / (N Σ w̄ᵢ²) ∈ (0, 1]; 0 if no weight is finite.
pub fn ess(log_w: ArrayView1<f64>) -> f64 {
    let n = log_w.len();
    if n == 0 {
        return 0.0;
    }
    let lse = log_sum_exp(log_w);
    if !lse.is_finite() {
        return 0.0;
    }
    let doubled = log_w.mapv(|v| 2.0 * v);
    // log ESS = 2 lse(ℓ) − lse(2ℓ) − log N, the same value as 1/(N Σ w̄²) without forming w̄.
    (2.0 * lse - log_sum_exp(doubled.view()) - (n as f64).ln()).exp()
}

/// Estimate of log Z from unnormalised log weights: log (1/N Σ wᵢ).
pub fn log_z_estimate(log_w: ArrayView1<f64>) -> f64 {
    log_sum_exp(log_w) - (log_w.len() as f64).ln()
}

/// Mean absolute error of log Ẑ over `groups` strided groups (group r = samples r, r+M, r+2M, …,
/// fab-torch's grouping), against the true `log_z`. Returns NaN if there are fewer samples than groups.
pub fn log_z_group_mae(log_w: ArrayView1<f64>, groups: usize, log_z: f64) -> f64 {
    if groups == 0 || log_w.len() < groups {
        return f64::NAN;
    }
    let per = log_w.len() / groups;
    let total: f64 = (0..groups)
        .map(|r| {
            let group: Array1<f64> = (0..per).map(|k| log_w[r + k * groups]).collect();
            (log_z_estimate(group.view()) - log_z).abs()
        })
        .sum();
    total / groups as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn log_sum_exp_matches_direct_sum_and_handles_infinities() {
        let l = array![0.1, -2.0, 3.5];
        let direct = l.iter().map(|v: &f64| v.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(l.view()) - direct).abs() < 1e-14);
        let big = array![1000.0, 1000.0];
        assert!((log_sum_exp(big.view()) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        let with_inf = array![f64::NEG_INFINITY, 0.0, f64::NAN];
        assert!((log_sum_exp(with_inf.view())).abs() < 1e-15);
        assert_eq!(
            log_sum_exp(array![f64::NEG_INFINITY].view()),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn ess_is_one_for_equal_weights_and_one_over_n_for_a_single_weight() {
        let equal = Array1::from_elem(50, -3.0);
        assert!((ess(equal.view()) - 1.0).abs() < 1e-12);
        let mut single = Array1::from_elem(50, f64::NEG_INFINITY);
        single[7] = 0.0;
        assert!((ess(single.view()) - 1.0 / 50.0).abs() < 1e-12);
        // Against the definition 1/(N Σ w̄²) on uneven weights.
        let l = array![0.0, 1.0, -1.0, 2.0];
        let w = normalised_weights(l.view());
        let expect = 1.0 / (4.0 * w.iter().map(|v| v * v).sum::<f64>());
        assert!((ess(l.view()) - expect).abs() < 1e-12);
    }

    #[test]
    fn log_z_mae_is_zero_when_weights_are_exact() {
        let l = Array1::from_elem(100, 2.5);
        assert!(log_z_group_mae(l.view(), 10, 2.5).abs() < 1e-12);
        assert!((log_z_group_mae(l.view(), 10, 2.0) - 0.5).abs() < 1e-12);
    }
}
