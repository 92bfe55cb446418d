//! A coupling layer's conditioner MLP as one fused dfdx operation: dense ReLU hidden layers and
//! one or more linear output heads, computed with one GEMM per layer and head, and a hand-written
//! backward pass.
//!
//! Forward, with a₀ = x:  aₗ = relu(aₗ₋₁ Wₗ + bₗ),  headₕ = a_L Wₕ + bₕ.
//! Backward, from the head gradients gₕ:
//!   ∂a_L = Σₕ gₕ Wₕᵀ;  for l = L..1: ∂zₗ = ∂aₗ ⊙ [aₗ > 0], ∂aₗ₋₁ = ∂zₗ Wₗᵀ;
//!   ∂Wₗ = aₗ₋₁ᵀ ∂zₗ, ∂bₗ = Σ_rows ∂zₗ (and the same for the heads).
//! With [`ParamGrads::Skip`] (HMC needs only ∂ log q/∂x) the ∂W and ∂b products are not formed:
//! two GEMMs per dense layer instead of three. Activations are kept for the backward pass only
//! when the tape records one.

use dfdx::prelude::*;

use crate::linear::Linear;
use crate::matmul::{add_column_sums, fill_rows, gemm, Mat};
use crate::real::{Real, M, V};

/// Whether a taped pass also accumulates parameter gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamGrads {
    /// Training: gradients of every weight and bias.
    Accumulate,
    /// Input gradient only (HMC's ∇ₓ log q): parameters get no gradient.
    Skip,
}

/// One dense layer's values, copied out of its tensors, with its gradient handles.
struct Dense<E: Real> {
    w: Vec<E>,
    b: Vec<E>,
    n_in: usize,
    n_out: usize,
    /// The parameter tensors themselves (shared storage), naming their gradients.
    g_w: M<E>,
    g_b: V<E>,
}

impl<E: Real> Dense<E> {
    fn of(layer: &Linear<E>) -> Self {
        let (n_in, n_out) = *layer.w.shape();
        Self {
            w: layer.w.as_vec(),
            b: layer.b.as_vec(),
            n_in,
            n_out,
            g_w: layer.w.clone(),
            g_b: layer.b.clone(),
        }
    }

    /// x W + b for the (n × n_in) rows `x`.
    fn forward(&self, x: &[E], n: usize) -> Vec<E> {
        let mut out = vec![E::zero(); n * self.n_out];
        fill_rows(&mut out, &self.b);
        gemm(
            Mat::new(x, n, self.n_in),
            Mat::new(&self.w, self.n_in, self.n_out),
            E::one(),
            &mut out,
        );
        out
    }
}

/// Runs the conditioner on `x` (n × k): ReLU `hidden` layers, then each of `heads` on the last
/// hidden activation. Returns one (n × outₕ) tensor per head, in order.
///
/// (No `Cpu: Device<E>` bound, as in [`crate::rq_knots::knots`], so the backward pass can index
/// the gradient storage as a `Vec`.)
pub(crate) fn conditioner<E: Real, T: Tape<E, Cpu>>(
    x: M<E, T>,
    hidden: &[Linear<E>],
    heads: &[&Linear<E>],
    param_grads: ParamGrads,
) -> Vec<M<E, T>> {
    let (x, mut tape) = x.split_tape();
    let (n, k0) = *x.shape();
    let dev = x.device().clone();
    let xv = x.as_vec();
    let hidden: Vec<Dense<E>> = hidden.iter().map(Dense::of).collect();
    let heads: Vec<Dense<E>> = heads.iter().map(|h| Dense::of(h)).collect();
    let mut acts: Vec<Vec<E>> = Vec::with_capacity(hidden.len());
    for layer in &hidden {
        let input = acts.last().unwrap_or(&xv);
        let mut a = layer.forward(input, n);
        a.iter_mut().for_each(|v| *v = v.max(E::zero()));
        acts.push(a);
    }
    let last = acts.last().unwrap_or(&xv);
    let outs: Vec<M<E>> = heads
        .iter()
        .map(|h| dev.tensor_from_vec(h.forward(last, n), (n, h.n_out)))
        .collect();
    if T::OWNS_TAPE {
        let g_x = x.ghost();
        let g_outs: Vec<_> = outs.iter().map(|o| o.ghost()).collect();
        let keep_x = if param_grads == ParamGrads::Accumulate {
            xv
        } else {
            Vec::new()
        };
        tape.add_backward_op(move |grads| {
            let k_last = hidden.last().map_or(k0, |l| l.n_out);
            let last = acts.last().unwrap_or(&keep_x);
            // ∂a_L from every head.
            let mut g_a = vec![E::zero(); n * k_last];
            for (h, g_o) in heads.iter().zip(&g_outs) {
                let g_h: Vec<E> = grads.get_or_alloc_mut(g_o)?.to_vec();
                gemm(
                    Mat::new(&g_h, n, h.n_out),
                    Mat::new(&h.w, h.n_in, h.n_out).t(),
                    E::one(),
                    &mut g_a,
                );
                if param_grads == ParamGrads::Accumulate {
                    accumulate_param_grads(grads, h, last, &g_h, n)?;
                }
            }
            for (l, layer) in hidden.iter().enumerate().rev() {
                // ∂z = ∂a ⊙ relu'(z), read off the stored activation (a > 0 ⇔ z > 0).
                g_a.iter_mut()
                    .zip(&acts[l])
                    .for_each(|(g, &a)| *g = if a > E::zero() { *g } else { E::zero() });
                if param_grads == ParamGrads::Accumulate {
                    let input = if l == 0 { &keep_x } else { &acts[l - 1] };
                    accumulate_param_grads(grads, layer, input, &g_a, n)?;
                }
                let mut g_in = vec![E::zero(); n * layer.n_in];
                gemm(
                    Mat::new(&g_a, n, layer.n_out),
                    Mat::new(&layer.w, layer.n_in, layer.n_out).t(),
                    E::zero(),
                    &mut g_in,
                );
                g_a = g_in;
            }
            let gx = grads.get_or_alloc_mut(&g_x)?;
            gx.iter_mut().zip(&g_a).for_each(|(a, &v)| *a += v);
            Ok(())
        });
    }
    let mut tape = Some(tape);
    outs.into_iter()
        .map(|o| o.put_tape(tape.take().unwrap_or_default()))
        .collect()
}

/// ∂W += inputᵀ g and ∂b += Σ_rows g for one dense layer.
fn accumulate_param_grads<E: Real>(
    grads: &mut Gradients<E, Cpu>,
    layer: &Dense<E>,
    input: &[E],
    g: &[E],
    n: usize,
) -> Result<(), CpuError> {
    let gw = grads.get_or_alloc_mut(&layer.g_w)?;
    gemm(
        Mat::new(input, n, layer.n_in).t(),
        Mat::new(g, n, layer.n_out),
        E::one(),
        gw,
    );
    let gb = grads.get_or_alloc_mut(&layer.g_b)?;
    add_column_sums(g, layer.n_out, gb);
    Ok(())
}
