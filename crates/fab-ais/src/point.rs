//! A batch of chain states with cached densities: x, log q, log p and, for gradient-based kernels,
//! ∇log q and ∇log p. Each proposal costs one flow and one target evaluation (fab-spec §2.1).

use ndarray::{Array1, Array2, ArrayView1, Axis};
use rand::Rng;

use fab_core::{FabError, FabRng, LogDensity, Result};

/// Chain states of a batch.
#[derive(Debug, Clone)]
pub struct Points {
    /// Positions, shape (n, d).
    pub x: Array2<f64>,
    /// log q(x).
    pub log_q: Array1<f64>,
    /// log p(x).
    pub log_p: Array1<f64>,
    /// ∇ log q(x) (empty (0, d) when the kernel needs no gradients).
    pub grad_q: Array2<f64>,
    /// ∇ log p(x) (empty when not needed).
    pub grad_p: Array2<f64>,
}

impl Points {
    /// Evaluates q and p (and their gradients if `with_grad`) at `x`.
    pub fn evaluate(
        x: Array2<f64>,
        flow: &dyn LogDensity,
        target: &dyn LogDensity,
        with_grad: bool,
    ) -> Result<Self> {
        Self::evaluate_reusing(x, None, flow, target, with_grad)
    }

    /// As [`Points::evaluate`], reusing an already known log q(x) (e.g. from sampling the flow)
    /// when no gradients are needed, which saves one flow pass.
    pub fn evaluate_reusing(
        x: Array2<f64>,
        log_q: Option<Array1<f64>>,
        flow: &dyn LogDensity,
        target: &dyn LogDensity,
        with_grad: bool,
    ) -> Result<Self> {
        let d = x.ncols();
        if with_grad {
            let mut grad_q = Array2::zeros(x.dim());
            let mut grad_p = Array2::zeros(x.dim());
            let log_q = flow.log_prob_and_grad(x.view(), grad_q.view_mut())?;
            let log_p = target.log_prob_and_grad(x.view(), grad_p.view_mut())?;
            Ok(Self {
                x,
                log_q,
                log_p,
                grad_q,
                grad_p,
            })
        } else {
            let log_q = match log_q {
                Some(l) if l.len() == x.nrows() => l,
                _ => flow.log_prob(x.view())?,
            };
            let log_p = target.log_prob(x.view())?;
            Ok(Self {
                x,
                log_q,
                log_p,
                grad_q: Array2::zeros((0, d)),
                grad_p: Array2::zeros((0, d)),
            })
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validity of point i: finite x, log q and log p (fab-jax `point_is_valid`).
    pub fn is_valid(&self, i: usize) -> bool {
        self.log_q[i].is_finite()
            && self.log_p[i].is_finite()
            && self.x.row(i).iter().all(|v| v.is_finite())
    }

    /// log f(x) = a_q log q + a_p log p for each point.
    pub fn log_f(&self, (a_q, a_p): (f64, f64)) -> Array1<f64> {
        &self.log_q * a_q + &self.log_p * a_p
    }

    /// Copies point `src` of `other` into slot `dst`.
    pub fn copy_from(&mut self, dst: usize, other: &Points, src: usize) {
        self.x.row_mut(dst).assign(&other.x.row(src));
        self.log_q[dst] = other.log_q[src];
        self.log_p[dst] = other.log_p[src];
        if self.grad_q.nrows() > 0 {
            self.grad_q.row_mut(dst).assign(&other.grad_q.row(src));
            self.grad_p.row_mut(dst).assign(&other.grad_p.row(src));
        }
    }

    /// Replaces every invalid point by a copy of a valid one drawn uniformly (fab-jax's chain-start
    /// rule), keeping the batch size. Returns the number replaced; errors if none is valid.
    pub fn replace_invalid(&mut self, rng: &mut FabRng) -> Result<usize> {
        let valid: Vec<usize> = (0..self.len()).filter(|&i| self.is_valid(i)).collect();
        if valid.is_empty() {
            // Say which side failed: the flow (often a diverged training run or unstable
            // optimiser settings) or the target (its parameters or input files).
            let bad = |v: &ndarray::Array1<f64>| v.iter().filter(|x| !x.is_finite()).count();
            return Err(FabError::NoValidPoint {
                n: self.len(),
                context: format!(
                    "AIS chain start: log q of the flow non-finite at {} points, log p of the target at {}; \
                     a flow that gives no finite density usually means training diverged (optimizer settings), \
                     a target that gives none means its settings or input files are wrong",
                    bad(&self.log_q),
                    bad(&self.log_p)
                ),
            });
        }
        let invalid: Vec<usize> = (0..self.len()).filter(|&i| !self.is_valid(i)).collect();
        let snapshot = if invalid.is_empty() {
            None
        } else {
            Some(self.clone())
        };
        if let Some(src) = snapshot {
            for &i in &invalid {
                let j = valid[rng.gen_range(0..valid.len())];
                self.copy_from(i, &src, j);
            }
        }
        Ok(invalid.len())
    }

    /// Takes the proposal's point i wherever `accept[i]` is true.
    pub fn accept(&mut self, proposal: &Points, accept: ArrayView1<bool>) {
        for (i, &a) in accept.iter().enumerate() {
            if a {
                self.copy_from(i, proposal, i);
            }
        }
    }

    /// ∇ log f = a_q ∇log q + a_p ∇log p, clamped to ±`max_abs` with NaN → 0 (fab-torch HMC).
    pub fn grad_log_f(&self, (a_q, a_p): (f64, f64), max_abs: f64) -> Array2<f64> {
        let mut g = &self.grad_q * a_q + &self.grad_p * a_p;
        g.mapv_inplace(|v| {
            if v.is_nan() {
                0.0
            } else {
                v.clamp(-max_abs, max_abs)
            }
        });
        g
    }

    /// Rows `idx` of the batch (for tests and evaluation subsets).
    pub fn select(&self, idx: &[usize]) -> Points {
        let pick = |a: &Array2<f64>| {
            if a.nrows() > 0 {
                a.select(Axis(0), idx)
            } else {
                a.clone()
            }
        };
        Points {
            x: self.x.select(Axis(0), idx),
            log_q: self.log_q.select(Axis(0), idx),
            log_p: self.log_p.select(Axis(0), idx),
            grad_q: pick(&self.grad_q),
            grad_p: pick(&self.grad_p),
        }
    }
}
