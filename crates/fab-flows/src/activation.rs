//! The hidden-layer activation of the conditioner MLPs: ReLU (fab-torch's choice, the default) or
//! GELU in its tanh form (fab-jax's `jax.nn.gelu`, dfdx's `fast_gelu`):
//!   gelu(z) = ½ z (1 + tanh u),  u = c (z + κ z³),  c = √(2/π), κ = 0.044715,
//!   gelu'(z) = ½ (1 + tanh u) + ½ z (1 − tanh² u) c (1 + 3κ z²).
//! GELU is smooth, so the flow's log-density is twice differentiable in its parameters and inputs
//! (HMC differentiates the flow in x); ReLU is cheaper.

use serde::{Deserialize, Serialize};

use crate::real::Real;

/// Hidden activation of a coupling layer's conditioner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// max(z, 0).
    #[default]
    Relu,
    /// GELU, tanh approximation (fab-jax's conditioner MLPs).
    Gelu,
}

impl Activation {
    /// Replaces the pre-activations `z` by the activations in place. With `keep_slope`, returns
    /// act'(z) per element for the backward pass (GELU only: ReLU's slope is read off the
    /// activation itself, a > 0 ⇔ z > 0).
    pub(crate) fn apply<E: Real>(self, z: &mut [E], keep_slope: bool) -> Option<Vec<E>> {
        match self {
            Activation::Relu => {
                z.iter_mut().for_each(|v| *v = v.max(E::zero()));
                None
            }
            Activation::Gelu => {
                // One SIMD pass for the activation and its slope: separate tanh, activation
                // and slope passes made GELU a quarter of a Many Well iteration.
                E::gelu_slice(z, keep_slope)
            }
        }
    }

    /// ∂z = ∂a ⊙ act'(z) in place on `g`, from the activations `a` (ReLU) or the slopes kept by
    /// [`Activation::apply`] (GELU; a backward pass only runs when a tape recorded, and then
    /// the slopes were kept).
    pub(crate) fn backward<E: Real>(self, g: &mut [E], a: &[E], slope: Option<&[E]>) {
        match self {
            Activation::Relu => g
                .iter_mut()
                .zip(a)
                .for_each(|(g, &a)| *g = if a > E::zero() { *g } else { E::zero() }),
            Activation::Gelu => {
                let s = slope.expect("GELU slopes are kept whenever a tape records");
                g.iter_mut().zip(s).for_each(|(g, &s)| *g *= s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_slope_matches_finite_differences_and_known_values() {
        // gelu(0) = 0, gelu(z) → z for large z, → 0 for very negative z.
        let mut z: Vec<f64> = vec![0.0, 8.0, -8.0];
        Activation::Gelu.apply(&mut z, false);
        assert_eq!(z[0], 0.0);
        assert!((z[1] - 8.0).abs() < 1e-12 && z[2].abs() < 1e-12);
        let h = 1e-6;
        for &x in &[-3.0, -1.2, -0.3, 0.0, 0.4, 1.7, 2.5] {
            let mut v: Vec<f64> = vec![x];
            let slope = Activation::Gelu.apply(&mut v, true).expect("slope kept");
            let (mut up, mut down): (Vec<f64>, Vec<f64>) = (vec![x + h], vec![x - h]);
            Activation::Gelu.apply(&mut up, false);
            Activation::Gelu.apply(&mut down, false);
            let fd = (up[0] - down[0]) / (2.0 * h);
            assert!((slope[0] - fd).abs() < 1e-8, "x {x}: {} vs {fd}", slope[0]);
        }
    }

    #[test]
    fn relu_backward_masks_by_the_activation() {
        let mut z = vec![-1.0_f64, 2.0];
        assert!(Activation::Relu.apply(&mut z, true).is_none());
        let mut g = vec![5.0, 7.0];
        Activation::Relu.backward(&mut g, &z, None);
        assert_eq!(g, vec![0.0, 7.0]);
    }
}
