//! The FAB loss as per-sample coefficients (fab-spec §1.2–1.3).
//!
//! Every FAB loss has the form L(θ) = −(1/B) Σᵢ cᵢ · log q_θ(xᵢ) with the coefficients cᵢ held
//! constant (stop-gradient). A flow only needs to implement that one weighted step; this module
//! computes the cᵢ.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

use crate::flow::ReparamCoefficients;
use crate::weights::normalised_weights;
use crate::{LogDensity, Result};

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

/// Reverse KL, L = mean(log q(x) − log p(x)) over reparameterised flow samples x = f_θ(z):
/// constants c = 1 and g = −∇ₓ log p(x) for [`crate::Flow::reparam_grad`]. Rows with a non-finite
/// log p or log q contribute nothing (c = 0, g = 0).
pub fn reverse_kl_coefficients(
    target: &dyn LogDensity,
    x: ArrayView2<f64>,
    log_q: ArrayView1<f64>,
) -> Result<ReparamCoefficients> {
    let n = x.nrows();
    let mut g = Array2::zeros(x.raw_dim());
    let log_p = target.log_prob_and_grad(x, g.view_mut())?;
    let log_w = &log_p - &log_q;
    let mask = log_w.mapv(|v| if v.is_finite() { 1.0 } else { 0.0 });
    g.mapv_inplace(|v| if v.is_finite() { -v } else { 0.0 });
    g *= &mask.view().insert_axis(Axis(1));
    let loss = -log_w.iter().filter(|v| v.is_finite()).sum::<f64>() / n.max(1) as f64;
    Ok(ReparamCoefficients { c: mask, g, loss })
}

/// α = 2 divergence with flow samples (fab-torch `flow_alpha_2_div_nis`):
/// L = −mean(sg[exp(2(log p − log q))] · log q), log q along the sampling path, unnormalised
/// weights; non-finite weights count as 0.
pub fn alpha2_nis_coefficients(
    target: &dyn LogDensity,
    x: ArrayView2<f64>,
    log_q: ArrayView1<f64>,
) -> Result<ReparamCoefficients> {
    let log_p = target.log_prob(x)?;
    let w = (&log_p - &log_q).mapv(|v| if v.is_finite() { (2.0 * v).exp() } else { 0.0 });
    let w = w.mapv(|v| if v.is_finite() { v } else { 0.0 });
    let loss = -Zip::from(&w).and(log_q).fold(
        0.0,
        |acc, &wi, &lq| if wi > 0.0 { acc + wi * lq } else { acc },
    ) / x.nrows().max(1) as f64;
    Ok(ReparamCoefficients {
        c: -w,
        g: Array2::zeros(x.raw_dim()),
        loss,
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
