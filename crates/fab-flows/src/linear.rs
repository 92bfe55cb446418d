//! A dense layer y = x W + b with runtime shapes (dfdx 0.13's `nn::Linear` is const-generic only).

use dfdx::prelude::*;
use rand::Rng;

use fab_core::FabRng;

use crate::real::{Real, M, V};

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

/// The hidden layers of a conditioner MLP: `layers` dense layers of `width` units (PyTorch's
/// default initialisation) starting from `n_in` inputs. Returns them and the output width.
pub fn hidden_stack<E: Real>(
    dev: &Cpu,
    n_in: usize,
    width: usize,
    layers: usize,
    rng: &mut FabRng,
) -> (Vec<Linear<E>>, usize)
where
    Cpu: Device<E>,
{
    let mut hidden = Vec::with_capacity(layers);
    let mut n = n_in;
    for _ in 0..layers {
        hidden.push(Linear::uniform(dev, n, width, rng));
        n = width;
    }
    (hidden, n)
}
