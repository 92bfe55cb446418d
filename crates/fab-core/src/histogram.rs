//! Weighted histograms normalised to densities, and the KL divergence between two of them as
//! fab-torch's `evaluate_aldp` computes it: KL(p‖q) = Σ_bins p ln((p + ε)/(q + ε)) · bin volume with
//! ε = 1e-10, p and q densities (`density=True`), no smoothing. Used for marginals of molecular
//! samples (φ, ψ, the Ramachandran plane).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// ε of fab-torch's histogram KL divergence.
pub const KL_EPS: f64 = 1e-10;

/// Density histogram of `values` on `bins` equal bins over [lo, hi); values outside or non-finite
/// are dropped (density over the kept mass, as numpy). `weights` default to 1.
pub fn density_1d(
    values: ArrayView1<f64>,
    weights: Option<ArrayView1<f64>>,
    bins: usize,
    (lo, hi): (f64, f64),
) -> Array1<f64> {
    let width = (hi - lo) / bins as f64;
    let mut h = Array1::zeros(bins);
    let mut total = 0.0;
    for (i, &v) in values.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        if !(v.is_finite() && w.is_finite()) || v < lo || v > hi {
            continue;
        }
        let b = (((v - lo) / width) as usize).min(bins - 1);
        h[b] += w;
        total += w;
    }
    if total > 0.0 {
        h /= total * width;
    }
    h
}

/// Density histogram of the rows of `points` (n, 2) on a `bins` × `bins` grid over `range`²
/// (first coordinate along rows of the result).
pub fn density_2d(
    points: ArrayView2<f64>,
    weights: Option<ArrayView1<f64>>,
    bins: usize,
    (lo, hi): (f64, f64),
) -> Array2<f64> {
    let width = (hi - lo) / bins as f64;
    let mut h = Array2::zeros((bins, bins));
    let mut total = 0.0;
    for (i, p) in points.outer_iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        let inside = |v: f64| v.is_finite() && v >= lo && v <= hi;
        if !(inside(p[0]) && inside(p[1]) && w.is_finite()) {
            continue;
        }
        let a = (((p[0] - lo) / width) as usize).min(bins - 1);
        let b = (((p[1] - lo) / width) as usize).min(bins - 1);
        h[[a, b]] += w;
        total += w;
    }
    if total > 0.0 {
        h /= total * width * width;
    }
    h
}

/// KL(p‖q) of two density histograms on the same bins with volume `bin_volume` each.
pub fn kl_divergence<'a>(
    p: impl IntoIterator<Item = &'a f64>,
    q: impl IntoIterator<Item = &'a f64>,
    bin_volume: f64,
) -> f64 {
    p.into_iter()
        .zip(q)
        .map(|(&p, &q)| {
            if p > 0.0 {
                p * ((p + KL_EPS) / (q + KL_EPS)).ln()
            } else {
                0.0
            }
        })
        .sum::<f64>()
        * bin_volume
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn densities_integrate_to_one_and_kl_is_zero_for_equal_histograms() {
        let v = array![0.1, 0.2, 0.7, 0.75, 2.0, f64::NAN];
        let h = density_1d(v.view(), None, 4, (0.0, 1.0));
        assert!((h.sum() * 0.25 - 1.0).abs() < 1e-12);
        assert_eq!(h[0], 2.0 / 4.0 / 0.25);
        let pts = array![[0.1, 0.1], [0.9, 0.9], [0.9, 0.8], [5.0, 0.0]];
        let w = array![1.0, 2.0, 1.0, 1.0];
        let h2 = density_2d(pts.view(), Some(w.view()), 2, (0.0, 1.0));
        assert!((h2.sum() * 0.25 - 1.0).abs() < 1e-12);
        assert!((h2[[1, 1]] * 0.25 - 0.75).abs() < 1e-12);
        assert_eq!(kl_divergence(h.iter(), h.iter(), 0.25), 0.0);
    }

    #[test]
    fn kl_matches_the_closed_form_for_two_bins() {
        // p = (0.5, 0.5), q = (0.9, 0.1) as probabilities on unit bins.
        let p = [0.5, 0.5];
        let q = [0.9, 0.1];
        let exact = 0.5 * (0.5f64 / 0.9).ln() + 0.5 * (0.5f64 / 0.1).ln();
        assert!((kl_divergence(p.iter(), q.iter(), 1.0) - exact).abs() < 1e-9);
    }
}
