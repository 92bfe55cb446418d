//! RealNVP affine coupling flow (Dinh et al. 2017) as used by FAB's GMM and Many Well experiments.
//!
//! Sampling direction: z ∼ N(0, I); h = μ + exp(s_b) ⊙ z (trainable base location and log-scale,
//! as fab-torch's base); then each coupling layer l = 0..L−1 keeps its conditioning coordinates
//! h_c and maps the others as h_t ← h_t ⊙ s(h_c) + t(h_c), log det = Σ log s.
//! Layers alternate which half conditions (fab-jax's swap), so every coordinate is transformed.
//! The log-scale is soft-clamped, log s = k·tanh(a/k) with k = ln 10, so s ∈ (0.1, 10) as in fab-jax's
//! `restrict_scale_rnvp` (which keeps early FAB training stable) while s = 1 exactly at a = 0. The conditioner is an MLP with
//! ReLU hidden layers; its shift and scale heads start at zero, so the initial flow is exactly the
//! identity map and q = N(0, I).
//!
//! Density direction (x → z): the inverse maps in reverse order, accumulating −Σ log s, then
//! log q(x) = log N(z; 0, I) + log|det ∂z/∂x|.

use dfdx::prelude::*;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use fab_core::flow::{ReparamCoefficients, ReparamGrad, WeightedGrad};
use fab_core::{FabError, FabRng, Flow, LogDensity, Result};

use crate::linear::Linear;
use crate::split::Split;
use crate::tape::dup2;

type M<T = NoneTape> = Tensor<(usize, usize), f64, Cpu, T>;
type V<T = NoneTape> = Tensor<(usize,), f64, Cpu, T>;

/// ½ ln 2π.
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

/// Bound on |log s|: scales stay in (0.1, 10), as fab-jax's restricted RealNVP scale.
const LOG_SCALE_BOUND: f64 = std::f64::consts::LN_10;

/// RealNVP settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealNvpConfig {
    /// Number of coupling layers (paper GMM: 15).
    pub n_layers: usize,
    /// Hidden units per data dimension; width = dim · this (paper GMM: 40 → 80 for d = 2).
    pub hidden_units_per_dim: usize,
    /// Hidden layers of each conditioner MLP.
    pub hidden_layers: usize,
    /// Seed of the random initialisation of the hidden layers.
    pub init_seed: u64,
}

impl Default for RealNvpConfig {
    fn default() -> Self {
        Self {
            n_layers: 15,
            hidden_units_per_dim: 40,
            hidden_layers: 2,
            init_seed: 0,
        }
    }
}

/// One affine coupling layer.
#[derive(Debug, Clone)]
struct Coupling {
    split: Split,
    hidden: Vec<Linear>,
    shift: Linear,
    scale: Linear,
}

impl Coupling {
    /// (shift t, log-scale log s) from the conditioning coordinates.
    fn conditioner<T: Tape<f64, Cpu>>(&self, h_c: M<T>) -> (M<T>, M<T>) {
        let mut h = h_c;
        for layer in &self.hidden {
            h = layer.forward(h).relu();
        }
        let (h1, h2) = dup2(h);
        let t = self.shift.forward(h1);
        let log_s = (self.scale.forward(h2) * (1.0 / LOG_SCALE_BOUND)).tanh() * LOG_SCALE_BOUND;
        (t, log_s)
    }
}

/// A RealNVP flow on R^d in f64.
#[derive(Debug, Clone)]
pub struct RealNvp {
    dev: Cpu,
    dim: usize,
    loc: V,
    log_scale: V,
    layers: Vec<Coupling>,
}

/// Borrowed parameter tensor of either rank.
enum Param<'a> {
    M(&'a M),
    V(&'a V),
}

/// Mutably borrowed parameter tensor.
enum ParamMut<'a> {
    M(&'a mut M),
    V(&'a mut V),
}

impl RealNvp {
    /// A flow for dimension `dim` (at least 2), initialised to the identity map.
    pub fn new(dim: usize, config: &RealNvpConfig) -> Result<Self> {
        if dim < 2 {
            return Err(FabError::invalid(
                "flow",
                format!("RealNVP needs dimension >= 2, got {dim}"),
            ));
        }
        if config.n_layers == 0 || config.hidden_units_per_dim == 0 {
            return Err(FabError::invalid(
                "flow",
                "n_layers and hidden_units_per_dim must be positive",
            ));
        }
        let dev = Cpu::default();
        let mut rng = fab_core::rng::seeded(config.init_seed);
        let width = dim * config.hidden_units_per_dim;
        let k = dim / 2;
        let (first, second): (Vec<usize>, Vec<usize>) = ((0..k).collect(), (k..dim).collect());
        let layers = (0..config.n_layers)
            .map(|l| {
                let (cond, trans) = if l % 2 == 0 {
                    (&first, &second)
                } else {
                    (&second, &first)
                };
                let mut hidden = Vec::new();
                let mut n_in = cond.len();
                for _ in 0..config.hidden_layers {
                    hidden.push(Linear::uniform(&dev, n_in, width, &mut rng));
                    n_in = width;
                }
                Coupling {
                    split: Split::new(&dev, dim, cond, trans),
                    hidden,
                    shift: Linear::zeros(&dev, n_in, trans.len()),
                    scale: Linear::zeros(&dev, n_in, trans.len()),
                }
            })
            .collect();
        Ok(Self {
            loc: dev.tensor_from_vec(vec![0.0; dim], (dim,)),
            log_scale: dev.tensor_from_vec(vec![0.0; dim], (dim,)),
            dev,
            dim,
            layers,
        })
    }

    fn named_params(&self) -> Vec<(String, Param<'_>)> {
        let mut out = vec![
            ("base.loc".to_string(), Param::V(&self.loc)),
            ("base.log_scale".to_string(), Param::V(&self.log_scale)),
        ];
        for (l, c) in self.layers.iter().enumerate() {
            let all = c
                .hidden
                .iter()
                .enumerate()
                .map(|(j, lin)| (format!("hidden{j}"), lin));
            for (name, lin) in all.chain([
                ("shift".to_string(), &c.shift),
                ("scale".to_string(), &c.scale),
            ]) {
                out.push((format!("layer{l}.{name}.w"), Param::M(&lin.w)));
                out.push((format!("layer{l}.{name}.b"), Param::V(&lin.b)));
            }
        }
        out
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        let mut out = vec![ParamMut::V(&mut self.loc), ParamMut::V(&mut self.log_scale)];
        for c in self.layers.iter_mut() {
            let lins = c.hidden.iter_mut().chain([&mut c.shift, &mut c.scale]);
            for lin in lins {
                out.push(ParamMut::M(&mut lin.w));
                out.push(ParamMut::V(&mut lin.b));
            }
        }
        out
    }

    fn to_tensor(&self, x: ArrayView2<f64>) -> M {
        self.dev
            .tensor_from_vec(x.iter().copied().collect(), x.dim())
    }

    /// Density direction on tape `T`: z = f⁻¹(x) and log|det ∂z/∂x| per row.
    fn inverse_taped<T: Tape<f64, Cpu>>(&self, x: M<T>) -> (M<T>, V<T>) {
        let (n, d) = *x.shape();
        // Base affine: log det of z = (h − μ) ⊙ exp(−s_b) is −Σ s_b, the same for every row.
        let mut log_det = self
            .log_scale
            .retaped::<T>()
            .sum::<(), _>()
            .negate()
            .broadcast_like(&(n,));
        let mut h = x;
        for c in self.layers.iter().rev() {
            let (h_c, h_t) = c.split.split(h);
            let (h_c1, h_c2) = dup2(h_c);
            let (t, log_s) = c.conditioner(h_c1);
            let (log_s1, log_s2) = dup2(log_s);
            let z_t = (h_t - t) * log_s1.negate().exp();
            log_det = log_det - log_s2.sum::<(usize,), Axis<1>>();
            h = c.split.merge(h_c2, z_t);
        }
        let loc = self
            .loc
            .retaped::<T>()
            .broadcast_like::<_, Axis<0>>(&(n, d));
        let inv_scale = self
            .log_scale
            .retaped::<T>()
            .negate()
            .exp()
            .broadcast_like::<_, Axis<0>>(&(n, d));
        ((h - loc) * inv_scale, log_det)
    }

    /// log q(x) = log N(f⁻¹(x); 0, I) + log|det ∂f⁻¹/∂x| for a batch, on tape `T`.
    fn log_q<T: Tape<f64, Cpu>>(&self, x: M<T>) -> V<T> {
        let d = x.shape().1;
        let (z, log_det) = self.inverse_taped(x);
        let log_norm = z.square().sum::<(usize,), Axis<1>>() * -0.5
            - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln();
        log_norm + log_det
    }

    /// Density direction: z = f⁻¹(x) and log|det ∂f⁻¹/∂x| for each row.
    pub fn inverse(&self, x: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        self.check("flow inverse", &x)?;
        let (z, log_det) = self.inverse_taped(self.to_tensor(x));
        Ok((self.to_array(z)?, Array1::from(log_det.as_vec())))
    }

    /// Sampling direction on tape `T`: x = f(z) and log|det ∂f/∂z| per row.
    fn forward_taped<T: Tape<f64, Cpu>>(&self, z: M<T>) -> (M<T>, V<T>) {
        let (n, d) = *z.shape();
        let loc = self
            .loc
            .retaped::<T>()
            .broadcast_like::<_, Axis<0>>(&(n, d));
        let scale = self
            .log_scale
            .retaped::<T>()
            .exp()
            .broadcast_like::<_, Axis<0>>(&(n, d));
        let mut h = z * scale + loc;
        let mut log_det = self
            .log_scale
            .retaped::<T>()
            .sum::<(), _>()
            .broadcast_like(&(n,));
        for c in &self.layers {
            let (h_c, h_t) = c.split.split(h);
            let (h_c1, h_c2) = dup2(h_c);
            let (t, log_s) = c.conditioner(h_c1);
            let (log_s1, log_s2) = dup2(log_s);
            log_det = log_det + log_s1.sum::<(usize,), Axis<1>>();
            h = c.split.merge(h_c2, h_t * log_s2.exp() + t);
        }
        (h, log_det)
    }

    /// Sampling direction: x = f(z) and log|det ∂f/∂z| for each row.
    pub fn forward(&self, z: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        self.check("flow forward", &z)?;
        let (x, log_det) = self.forward_taped(self.to_tensor(z));
        Ok((self.to_array(x)?, Array1::from(log_det.as_vec())))
    }

    /// Flat gradient of all parameters, in [`Flow::params`] order.
    fn flat_grad(&self, grads: &Gradients<f64, Cpu>) -> Vec<f64> {
        let mut grad = Vec::new();
        for (_, p) in self.named_params() {
            match p {
                Param::M(t) => grad.extend(grads.get(t).as_vec()),
                Param::V(t) => grad.extend(grads.get(t).as_vec()),
            }
        }
        grad
    }

    fn to_array(&self, t: M) -> Result<Array2<f64>> {
        let shape = *t.shape();
        Array2::from_shape_vec(shape, t.as_vec())
            .map_err(|e| FabError::Backend(format!("flow output: {e}")))
    }

    fn check(&self, context: &str, x: &ArrayView2<f64>) -> Result<()> {
        fab_core::density::check_dim(context, x, self.dim)
    }
}

impl LogDensity for RealNvp {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.check("flow log_prob", &x)?;
        Ok(Array1::from(self.log_q(self.to_tensor(x)).as_vec()))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        mut grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        self.check("flow log_prob_and_grad", &x)?;
        let xt = self.to_tensor(x);
        let lq = self.log_q(xt.leaky_trace());
        let values = Array1::from(lq.as_vec());
        let grads = lq.sum::<(), _>().backward();
        let g = grads.get(&xt).as_vec();
        grad.iter_mut().zip(g).for_each(|(dst, v)| *dst = v);
        Ok(values)
    }
}

impl Flow for RealNvp {
    fn sample(&self, n: usize, rng: &mut FabRng) -> Result<(Array2<f64>, Array1<f64>)> {
        let d = self.dim;
        let z = Array2::from_shape_simple_fn((n, d), || StandardNormal.sample(rng));
        let (x, log_det) = self.forward(z.view())?;
        let log_q = z
            .rows()
            .into_iter()
            .zip(log_det.iter())
            .map(|(r, ld)| -0.5 * r.dot(&r) - d as f64 * HALF_LOG_2PI - ld)
            .collect();
        Ok((x, log_q))
    }

    fn weighted_nll_grad(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad> {
        self.check("flow training batch", &x)?;
        let n = x.nrows();
        let lq = self.log_q(self.to_tensor(x).leaky_trace());
        let log_q = Array1::from(lq.as_vec());
        let coefficients = coeff(log_q.view());
        if coefficients.len() != n {
            return Err(FabError::shape("loss coefficients", n, coefficients.len()));
        }
        let c: V = self.dev.tensor_from_vec(coefficients.to_vec(), (n,));
        let loss = (lq * c).mean::<(), _>().negate();
        let loss_value = loss.array();
        let grad = self.flat_grad(&loss.backward());
        Ok(WeightedGrad {
            log_q,
            coefficients,
            loss: loss_value,
            grad,
        })
    }

    fn reparam_grad(
        &self,
        n: usize,
        rng: &mut FabRng,
        coeff: &mut dyn FnMut(ArrayView2<f64>, ArrayView1<f64>) -> Result<ReparamCoefficients>,
    ) -> Result<ReparamGrad> {
        let d = self.dim;
        let z = Array2::from_shape_simple_fn((n, d), || StandardNormal.sample(rng));
        let log_base: Vec<f64> = z
            .rows()
            .into_iter()
            .map(|r| -0.5 * r.dot(&r) - d as f64 * HALF_LOG_2PI)
            .collect();
        let zt = self.to_tensor(z.view()).leaky_trace();
        let (x, log_det) = self.forward_taped(zt);
        let base: V = self.dev.tensor_from_vec(log_base, (n,));
        // log q along the sampling path: log N(z) − log|det ∂f/∂z|, differentiable in θ.
        let log_q = log_det.negate() + base;
        let x_values = Array2::from_shape_vec((n, d), x.as_vec())
            .map_err(|e| FabError::Backend(format!("flow sample: {e}")))?;
        let log_q_values = Array1::from(log_q.as_vec());
        let k = coeff(x_values.view(), log_q_values.view())?;
        if k.c.len() != n || k.g.dim() != (n, d) {
            return Err(FabError::shape(
                "reparameterised loss coefficients",
                format!("c ({n}), g ({n}, {d})"),
                format!("c ({}), g {:?}", k.c.len(), k.g.dim()),
            ));
        }
        let c: V = self.dev.tensor_from_vec(k.c.to_vec(), (n,));
        let g: M = self.to_tensor(k.g.view());
        let surrogate =
            (log_q * c).mean::<(), _>() + (x * g).sum::<(usize,), Axis<1>>().mean::<(), _>();
        let grad = self.flat_grad(&surrogate.backward());
        Ok(ReparamGrad {
            x: x_values,
            log_q: log_q_values,
            loss: k.loss,
            grad,
        })
    }

    fn params(&self) -> Vec<f64> {
        let mut out = Vec::new();
        for (_, p) in self.named_params() {
            match p {
                Param::M(t) => out.extend(t.as_vec()),
                Param::V(t) => out.extend(t.as_vec()),
            }
        }
        out
    }

    fn set_params(&mut self, params: &[f64]) -> Result<()> {
        let expected: usize = self
            .param_layout()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        if params.len() != expected {
            return Err(FabError::shape("flow set_params", expected, params.len()));
        }
        let mut offset = 0;
        for p in self.params_mut() {
            match p {
                ParamMut::M(t) => {
                    let len = t.shape().num_elements();
                    t.copy_from(&params[offset..offset + len]);
                    offset += len;
                }
                ParamMut::V(t) => {
                    let len = t.shape().num_elements();
                    t.copy_from(&params[offset..offset + len]);
                    offset += len;
                }
            }
        }
        Ok(())
    }

    fn param_layout(&self) -> Vec<(String, Vec<usize>)> {
        self.named_params()
            .into_iter()
            .map(|(name, p)| {
                let shape = match p {
                    Param::M(t) => vec![t.shape().0, t.shape().1],
                    Param::V(t) => vec![t.shape().0],
                };
                (name, shape)
            })
            .collect()
    }
}
