//! A dense layer y = x W + b with runtime shapes (dfdx 0.13's `nn::Linear` is const-generic only).

use dfdx::prelude::*;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use fab_core::FabRng;

use crate::real::{host, Real, M, V};

/// Standard deviation of N(0, 1) truncated to [−2, 2] (flax's correction constant).
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

/// Dense layer with weight (in, out) and bias (out,) in float type `E`.
#[derive(Debug, Clone)]
pub struct Linear<E: Real = f64> {
    /// Weight, shape (in, out).
    pub w: M<E>,
    /// Bias, shape (out,).
    pub b: V<E>,
}

impl<E: Real> Linear<E>
where
    Cpu: Device<E>,
{
    /// PyTorch's default initialisation: weights and biases U(−1/√in, 1/√in), drawn in f64 so
    /// both precisions start from the same (rounded) values.
    pub fn uniform(dev: &Cpu, n_in: usize, n_out: usize, rng: &mut FabRng) -> Self {
        let bound = 1.0 / (n_in as f64).sqrt();
        let w = (0..n_in * n_out)
            .map(|_| E::of(rng.gen_range(-bound..bound)))
            .collect();
        let b = (0..n_out)
            .map(|_| E::of(rng.gen_range(-bound..bound)))
            .collect();
        Self {
            w: dev.tensor_from_vec(w, (n_in, n_out)),
            b: dev.tensor_from_vec(b, (n_out,)),
        }
    }

    /// flax's default initialisation (fab-jax's conditioners): weights LeCun-normal, i.e. a
    /// normal truncated at ±2 standard deviations and rescaled to variance 1/in, biases zero.
    pub fn lecun_normal(dev: &Cpu, n_in: usize, n_out: usize, rng: &mut FabRng) -> Self {
        let scale = 1.0 / ((n_in as f64).sqrt() * TRUNCATED_STD);
        let w = (0..n_in * n_out)
            .map(|_| loop {
                let z: f64 = StandardNormal.sample(rng);
                if z.abs() < 2.0 {
                    break E::of(z * scale);
                }
            })
            .collect();
        Self {
            w: dev.tensor_from_vec(w, (n_in, n_out)),
            b: dev.tensor_from_vec(vec![E::zero(); n_out], (n_out,)),
        }
    }

    /// A copy with its own storage (a `clone` shares the tensors, and so their gradients).
    pub fn deep_copy(&self) -> Self {
        let dev = self.w.device().clone();
        Self {
            w: dev.tensor_from_vec(host(&self.w), *self.w.shape()),
            b: dev.tensor_from_vec(host(&self.b), *self.b.shape()),
        }
    }

    /// All-zero layer (identity initialisation of coupling outputs).
    pub fn zeros(dev: &Cpu, n_in: usize, n_out: usize) -> Self {
        Self {
            w: dev.tensor_from_vec(vec![E::zero(); n_in * n_out], (n_in, n_out)),
            b: dev.tensor_from_vec(vec![E::zero(); n_out], (n_out,)),
        }
    }

    /// x W + b for a batch x of shape (n, in).
    pub fn forward<T: Tape<E, Cpu>>(&self, x: M<E, T>) -> M<E, T> {
        let n = x.shape().0;
        let out = self.w.shape().1;
        let b = self
            .b
            .retaped::<T>()
            .broadcast_like::<_, Axis<0>>(&(n, out));
        x.matmul(self.w.retaped::<T>()) + b
    }
}

/// How a conditioner's hidden layers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Init {
    /// PyTorch's default (fab-torch): weights and biases U(−1/√in, 1/√in), drawn afresh for every
    /// coupling layer.
    #[default]
    Torch,
    /// fab-jax's: flax's LeCun-normal weights with zero biases, drawn once for the first pair of
    /// couplings and copied to every later pair (fab-jax initialises one flow "layer" and repeats
    /// it), so all pairs start from the same hidden weights.
    FabJax,
}

/// The hidden layers of a conditioner MLP: `layers` dense layers of `width` units initialised as
/// `init` says, starting from `n_in` inputs. Returns them and the output width.
pub fn hidden_stack<E: Real>(
    dev: &Cpu,
    n_in: usize,
    width: usize,
    layers: usize,
    init: Init,
    rng: &mut FabRng,
) -> (Vec<Linear<E>>, usize)
where
    Cpu: Device<E>,
{
    let mut hidden = Vec::with_capacity(layers);
    let mut n = n_in;
    for _ in 0..layers {
        hidden.push(match init {
            Init::Torch => Linear::uniform(dev, n, width, rng),
            Init::FabJax => Linear::lecun_normal(dev, n, width, rng),
        });
        n = width;
    }
    (hidden, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lecun_normal_has_variance_one_over_fan_in_and_no_tails_past_two_sd() {
        let (n_in, n_out) = (64, 500);
        let mut rng = fab_core::rng::seeded(3);
        let layer = Linear::<f64>::lecun_normal(&Cpu::default(), n_in, n_out, &mut rng);
        let w = host(&layer.w);
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        // 32,000 draws: the sample variance's relative SE is about √(2/32000)·1.1 ≈ 0.009.
        assert!(
            (var * n_in as f64 - 1.0).abs() < 0.04,
            "n_in · var = {}",
            var * n_in as f64
        );
        let bound = 2.0 / (TRUNCATED_STD * (n_in as f64).sqrt());
        assert!(w.iter().all(|v| v.abs() < bound));
        assert!(host(&layer.b).iter().all(|&b| b == 0.0));
    }
}
