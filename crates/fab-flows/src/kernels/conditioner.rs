//! A coupling layer's conditioner MLP as one fused dfdx operation: dense hidden layers with a ReLU
//! or GELU activation σ ([`Activation`]) and one or more linear output heads, computed with one
//! GEMM per layer (the heads side by side in one), and a hand-written backward pass.
//!
//! Forward, with a₀ = x:  zₗ = aₗ₋₁ Wₗ + bₗ, aₗ = σ(zₗ),  headₕ = a_L Wₕ + bₕ.
//! Backward, from the head gradients gₕ:
//!   ∂a_L = Σₕ gₕ Wₕᵀ;  for l = L..1: ∂zₗ = ∂aₗ ⊙ σ'(zₗ), ∂aₗ₋₁ = ∂zₗ Wₗᵀ;
//!   ∂Wₗ = aₗ₋₁ᵀ ∂zₗ, ∂bₗ = Σ_rows ∂zₗ (and the same for the heads).
//! With [`ParamGrads::Skip`] (HMC needs only ∂ log q/∂x) the ∂W and ∂b products are not formed:
//! two GEMMs per dense layer instead of three. Activations are kept for the backward pass only
//! when the tape records one.

use dfdx::prelude::*;

use crate::activation::Activation;
use crate::kernels::matmul::{add_bias, add_column_sums, gemm, product, Mat};
use crate::linear::Linear;
use crate::real::{host, Real, M, V};

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
            w: host(&layer.w),
            b: host(&layer.b),
            n_in,
            n_out,
            g_w: layer.w.clone(),
            g_b: layer.b.clone(),
        }
    }

    /// σ(x W + b) for the (n × n_in) rows `x`, and σ' there when `keep_slope` (see
    /// [`Activation::apply`]).
    fn forward_activated(
        &self,
        x: &[E],
        n: usize,
        activation: Activation,
        keep_slope: bool,
    ) -> (Vec<E>, Option<Vec<E>>) {
        if activation == Activation::Relu {
            // Bias and clamp in one pass.
            return (forward(&self.w, &self.b, self.n_in, x, n, true), None);
        }
        let mut z = forward(&self.w, &self.b, self.n_in, x, n, false);
        let slope = activation.apply(&mut z, keep_slope);
        (z, slope)
    }

    /// ∂W += inputᵀ g and ∂b += Σ_rows g.
    fn accumulate(
        &self,
        grads: &mut Gradients<E, Cpu>,
        input: &[E],
        g: &[E],
        n: usize,
    ) -> Result<(), CpuError> {
        let gw = grads.get_or_alloc_mut(&self.g_w)?;
        gemm(
            Mat::new(input, n, self.n_in).t(),
            Mat::new(g, n, self.n_out),
            E::one(),
            gw,
        );
        add_column_sums(g, self.n_out, grads.get_or_alloc_mut(&self.g_b)?);
        Ok(())
    }
}

/// x W + b (then relu, if asked) for the (n × n_in) rows `x` and a row-major (n_in × n_out) W.
fn forward<E: Real>(w: &[E], b: &[E], n_in: usize, x: &[E], n: usize, relu: bool) -> Vec<E> {
    let mut out = product(Mat::new(x, n, n_in), Mat::new(w, n_in, b.len()));
    add_bias(&mut out, b, relu);
    out
}

/// The output heads side by side, [W₁ | W₂ | …] and [b₁ | b₂ | …], so they take one GEMM forward
/// and one per backward product instead of one per head.
struct Heads<E: Real> {
    w: Vec<E>,
    b: Vec<E>,
    n_in: usize,
    /// Each head with its first column in the combined output.
    parts: Vec<(Dense<E>, usize)>,
}

impl<E: Real> Heads<E> {
    fn of(heads: &[&Linear<E>]) -> Self {
        let parts: Vec<Dense<E>> = heads.iter().map(|h| Dense::of(h)).collect();
        let n_in = parts.first().map_or(0, |p| p.n_in);
        let total: usize = parts.iter().map(|p| p.n_out).sum();
        let mut w = Vec::with_capacity(n_in * total);
        for r in 0..n_in {
            for p in &parts {
                w.extend_from_slice(&p.w[r * p.n_out..(r + 1) * p.n_out]);
            }
        }
        let b = parts.iter().flat_map(|p| p.b.iter().copied()).collect();
        let mut offset = 0;
        let parts = parts
            .into_iter()
            .map(|p| {
                let at = offset;
                offset += p.n_out;
                (p, at)
            })
            .collect();
        Self { w, b, n_in, parts }
    }

    fn total(&self) -> usize {
        self.b.len()
    }

    /// Columns [at, at + width) of the row-major (n × total) `all`.
    fn columns(&self, all: &[E], at: usize, width: usize) -> Vec<E> {
        let mut out = Vec::with_capacity(all.len() / self.total().max(1) * width);
        for row in all.chunks_exact(self.total()) {
            out.extend_from_slice(&row[at..at + width]);
        }
        out
    }

    /// ∂W and ∂b of every head from the combined output gradient `g` (n × total).
    fn accumulate(
        &self,
        grads: &mut Gradients<E, Cpu>,
        input: &[E],
        g: &[E],
        n: usize,
    ) -> Result<(), CpuError> {
        let total = self.total();
        let gw = product(Mat::new(input, n, self.n_in).t(), Mat::new(g, n, total));
        let mut gb = vec![E::zero(); total];
        add_column_sums(g, total, &mut gb);
        for (p, at) in &self.parts {
            let dst = grads.get_or_alloc_mut(&p.g_w)?;
            for (r, row) in dst.chunks_exact_mut(p.n_out).enumerate() {
                let src = &gw[r * total + at..r * total + at + p.n_out];
                row.iter_mut().zip(src).for_each(|(a, &v)| *a += v);
            }
            let dst = grads.get_or_alloc_mut(&p.g_b)?;
            dst.iter_mut()
                .zip(&gb[*at..at + p.n_out])
                .for_each(|(a, &v)| *a += v);
        }
        Ok(())
    }
}

/// Runs the conditioner on `x` (n × k): `hidden` layers with `activation`, then each of `heads`
/// on the last hidden activation. Returns one (n × outₕ) tensor per head, in order.
///
/// (No `Cpu: Device<E>` bound, as in [`crate::spline::rq_knots::knots`], so the backward pass can index
/// the gradient storage as a `Vec`.)
pub(crate) fn conditioner<E: Real, T: Tape<E, Cpu>>(
    x: M<E, T>,
    hidden: &[Linear<E>],
    heads: &[&Linear<E>],
    activation: Activation,
    param_grads: ParamGrads,
) -> Vec<M<E, T>> {
    let (x, mut tape) = x.split_tape();
    let n = x.shape().0;
    let dev = x.device().clone();
    let xv = host(&x);
    let hidden: Vec<Dense<E>> = hidden.iter().map(Dense::of).collect();
    let heads = Heads::of(heads);
    let mut acts: Vec<Vec<E>> = Vec::with_capacity(hidden.len());
    // σ'(zₗ) per hidden layer, kept for the backward pass (GELU with a tape only).
    let mut slopes: Vec<Option<Vec<E>>> = Vec::with_capacity(hidden.len());
    for layer in &hidden {
        let input = acts.last().unwrap_or(&xv);
        let (a, slope) = layer.forward_activated(input, n, activation, T::OWNS_TAPE);
        acts.push(a);
        slopes.push(slope);
    }
    let last = acts.last().unwrap_or(&xv);
    let all = forward(&heads.w, &heads.b, heads.n_in, last, n, false);
    let outs: Vec<M<E>> = if heads.parts.len() == 1 {
        vec![dev.tensor_from_vec(all, (n, heads.total()))]
    } else {
        heads
            .parts
            .iter()
            .map(|(p, at)| dev.tensor_from_vec(heads.columns(&all, *at, p.n_out), (n, p.n_out)))
            .collect()
    };
    if T::OWNS_TAPE {
        let g_x = x.ghost();
        let g_outs: Vec<_> = outs.iter().map(|o| o.ghost()).collect();
        let keep_x = if param_grads == ParamGrads::Accumulate {
            xv
        } else {
            Vec::new()
        };
        tape.add_backward_op(move |grads| {
            let last = acts.last().unwrap_or(&keep_x);
            // The heads' output gradients side by side. Each is taken out of `grads`: nothing
            // reads an output's gradient after its producer's backward pass.
            let total = heads.total();
            let g_all = if g_outs.len() == 1 {
                std::mem::take(&mut **grads.get_or_alloc_mut(&g_outs[0])?)
            } else {
                let mut g_all = vec![E::zero(); n * total];
                for ((p, at), g_o) in heads.parts.iter().zip(&g_outs) {
                    let g_h = std::mem::take(&mut **grads.get_or_alloc_mut(g_o)?);
                    for (row, src) in g_all.chunks_exact_mut(total).zip(g_h.chunks_exact(p.n_out)) {
                        row[*at..at + p.n_out].copy_from_slice(src);
                    }
                }
                g_all
            };
            let mut g_a = product(
                Mat::new(&g_all, n, total),
                Mat::new(&heads.w, heads.n_in, total).t(),
            );
            if param_grads == ParamGrads::Accumulate {
                heads.accumulate(grads, last, &g_all, n)?;
            }
            for (l, layer) in hidden.iter().enumerate().rev() {
                // ∂z = ∂a ⊙ σ'(z).
                activation.backward(&mut g_a, &acts[l], slopes[l].as_deref());
                if param_grads == ParamGrads::Accumulate {
                    let input = if l == 0 { &keep_x } else { &acts[l - 1] };
                    layer.accumulate(grads, input, &g_a, n)?;
                }
                g_a = product(
                    Mat::new(&g_a, n, layer.n_out),
                    Mat::new(&layer.w, layer.n_in, layer.n_out).t(),
                );
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
