//! The FAB loss as per-sample coefficients (fab-spec §1.2–1.3).
//!
//! Every FAB loss has the form L(θ) = −(1/B) Σᵢ cᵢ · log q_θ(xᵢ) with the coefficients cᵢ held
//! constant (stop-gradient). A flow only needs to implement that one weighted step; this module
//! computes the cᵢ.

use ndarray::{Array1, ArrayView1, Zip};

use crate::weights::normalised_weights;

/// Coefficients for FAB without a buffer: cᵢ = w̄ᵢ = softmax(log w)ᵢ, the self-normalised AIS weights
/// (so the loss is the mean of w̄ ⊙ log q, as in both reference codes).
pub fn no_buffer_coefficients(log_w: ArrayView1<f64>) -> Array1<f64> {
    normalised_weights(log_w)
}

/// log w_adjust = (1 − α)(log q_new − log q_old): the importance ratio that moves a buffer point
/// sampled under g_old ∝ p^α q_old^(1−α) to the current g ∝ p^α q_new^(1−α).
/// Non-finite results are returned as NaN so callers can kill the entry.
pub fn log_w_adjust(
    alpha: f64,
    log_q_new: ArrayView1<f64>,
    log_q_old: ArrayView1<f64>,
) -> Array1<f64> {
    Zip::from(log_q_new)
        .and(log_q_old)
        .map_collect(|&new, &old| {
            let a = (1.0 - alpha) * (new - old);
            if a.is_finite() {
                a
            } else {
                f64::NAN
            }
        })
}

/// Loss coefficients for FAB with a buffer: cᵢ = min(exp(log w_adjustᵢ), clip); non-finite → 0.
/// `clip = None` means no clipping (fab-torch's GMM/Many Well setting).
pub fn buffer_coefficients(log_w_adjust: ArrayView1<f64>, clip: Option<f64>) -> Array1<f64> {
    log_w_adjust.mapv(|a| {
        // Check first: f64::min(NaN, C) would return C.
        if a.is_nan() {
            return 0.0;
        }
        let w = a.exp();
        let w = match clip {
            Some(c) => w.min(c),
            None => w,
        };
        if w.is_finite() {
            w
        } else {
            0.0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn adjustment_for_alpha_two_is_log_q_old_minus_log_q_new() {
        let new = array![-1.0, -2.5, f64::NEG_INFINITY];
        let old = array![-1.5, -2.0, -1.0];
        let a = log_w_adjust(2.0, new.view(), old.view());
        assert!((a[0] - (-1.5 - -1.0)).abs() < 1e-15);
        assert!((a[1] - (-2.0 - -2.5)).abs() < 1e-15);
        assert!(a[2].is_nan());
        // α = 1 targets p itself: no adjustment.
        let a1 = log_w_adjust(
            1.0,
            new.slice(ndarray::s![..2]),
            old.slice(ndarray::s![..2]),
        );
        assert_eq!(a1, array![0.0, 0.0]);
    }

    #[test]
    fn buffer_coefficients_clip_above_only() {
        let a = array![0.0, 5.0, -5.0, f64::NAN];
        let c = buffer_coefficients(a.view(), Some(10.0));
        assert_eq!(c[0], 1.0);
        assert_eq!(c[1], 10.0);
        assert!((c[2] - (-5.0f64).exp()).abs() < 1e-15);
        assert_eq!(c[3], 0.0);
        let unclipped = buffer_coefficients(a.view(), None);
        assert!((unclipped[1] - 5.0f64.exp()).abs() < 1e-9);
    }

    #[test]
    fn no_buffer_coefficients_sum_to_one() {
        let c = no_buffer_coefficients(array![0.0, 1.0, f64::NEG_INFINITY].view());
        assert!((c.sum() - 1.0).abs() < 1e-15);
        assert_eq!(c[2], 0.0);
    }
}
