//! The flow as a trainable [`Flow`]: sampling, the weighted negative log-likelihood and
//! reparameterisation gradients, and the flat parameter vector.

use dfdx::prelude::*;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use fab_core::distributed::{ordered_sum, share, Local};
use fab_core::flow::{ReparamCoefficients, ReparamGrad, WeightedGrad};
use fab_core::{Communicator, FabError, FabRng, Flow, Result};

use super::chunks::grad_chunk_count;
use super::flow::CouplingFlow;
use super::params::{Param, ParamMut};
use crate::kernels::conditioner::ParamGrads;
use crate::real::{host, narrow, widen, Real, M, V};

impl<E: Real> CouplingFlow<E>
where
    Cpu: Device<E>,
{
    /// [`Flow::weighted_nll_grad`] over row chunks: the gradient of −Σ c log q / n is summed
    /// over chunks in chunk order. The chunks depend on the batch size alone
    /// ([`grad_chunk_count`]) and both schedules below give the same bits (a taped and an untaped
    /// pass compute log q alike), so training is the same on any number of threads, and, with
    /// the chunks shared out over the ranks of `comm` and summed by [`ordered_sum`], of ranks.
    ///
    /// The coefficients need log q of the whole batch first. On one thread each chunk's taped
    /// pass is kept until they are known (dfdx tapes cannot move between threads); on several,
    /// log q is first evaluated without a tape (about a third of a taped pass) and each chunk
    /// then runs its taped pass and backward on its own thread. Across ranks, each rank's log q
    /// is all-gathered before the coefficients are computed.
    pub(super) fn weighted_nll_grad_chunked(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
        comm: &dyn Communicator,
    ) -> Result<WeightedGrad> {
        let n = x.nrows();
        let size = n.div_ceil(grad_chunk_count(n, self.gradient_chunk_rows));
        let all_chunks: Vec<ArrayView2<f64>> = x.axis_chunks_iter(ndarray::Axis(0), size).collect();
        let ranks = comm.size();
        let chunk_counts: Vec<usize> = (0..ranks)
            .map(|r| share(all_chunks.len(), r, ranks).len())
            .collect();
        let row_range = |r: usize| {
            let c = share(all_chunks.len(), r, ranks);
            (c.start * size).min(n)..(c.end * size).min(n)
        };
        let chunks = &all_chunks[share(all_chunks.len(), comm.rank(), ranks)];
        let my_rows = row_range(comm.rank());
        let row_counts: Vec<usize> = (0..ranks).map(|r| row_range(r).len()).collect();
        let gather = |local: Array1<f64>| -> Array1<f64> {
            if ranks == 1 {
                local
            } else {
                Array1::from(comm.all_gather_f64(&local.to_vec(), &row_counts))
            }
        };
        let scale = E::of(-1.0 / n as f64);
        // Each part is the chunk's gradient with its loss appended, so one ordered sum adds both.
        let chunk_loss = |lq: V<E, OwnedTape<E, Cpu>>, c: ArrayView1<f64>| {
            let c: V<E> = self.dev.tensor_from_vec(narrow(c), (c.len(),));
            let loss = (lq * c).sum::<(), _>() * scale;
            let value = loss.array().wide();
            let mut part = self.flat_grad(&loss.backward());
            part.push(value);
            part
        };
        let check = |c: &Array1<f64>| {
            if c.len() == n {
                Ok(())
            } else {
                Err(FabError::shape("loss coefficients", n, c.len()))
            }
        };
        let (log_q, coefficients, parts) = if rayon::current_num_threads() == 1 || chunks.len() <= 1
        {
            let taped: Vec<_> = chunks
                .iter()
                .map(|x| self.log_q(self.to_tensor(*x).leaky_trace(), ParamGrads::Accumulate))
                .collect();
            let log_q = gather(taped.iter().flat_map(|lq| widen(host(lq))).collect());
            let coefficients = coeff(log_q.view());
            check(&coefficients)?;
            let parts: Vec<Vec<f64>> = taped
                .into_iter()
                .zip(
                    coefficients
                        .slice(s![my_rows.clone()])
                        .axis_chunks_iter(ndarray::Axis(0), size),
                )
                .map(|(lq, c)| chunk_loss(lq, c))
                .collect();
            (log_q, coefficients, parts)
        } else {
            let log_q = gather(self.log_prob_chunks(chunks));
            let coefficients = coeff(log_q.view());
            check(&coefficients)?;
            let my_coefficients = coefficients.slice(s![my_rows.clone()]);
            let c_chunks: Vec<ArrayView1<f64>> = my_coefficients
                .axis_chunks_iter(ndarray::Axis(0), size)
                .collect();
            let parts: Vec<Vec<f64>> = chunks
                .par_iter()
                .zip(c_chunks)
                .map(|(x, c)| {
                    chunk_loss(
                        self.log_q(self.to_tensor(*x).leaky_trace(), ParamGrads::Accumulate),
                        c,
                    )
                })
                .collect();
            (log_q, coefficients, parts)
        };
        // A rank without chunks still needs the length (parameters and the loss).
        let len = parts.first().map_or_else(|| self.n_params() + 1, Vec::len);
        let mut grad = ordered_sum(comm, &parts, &chunk_counts, len);
        let loss = grad.pop().unwrap_or(f64::NAN);
        Ok(WeightedGrad {
            log_q,
            coefficients,
            loss,
            grad,
        })
    }
}

impl<E: Real> Flow for CouplingFlow<E>
where
    Cpu: Device<E>,
{
    fn sample(&self, n: usize, rng: &mut FabRng) -> Result<(Array2<f64>, Array1<f64>)> {
        let z = self.sample_base(n, rng);
        let (x, log_det) = self.forward(z.view())?;
        Ok((x, self.log_base(z.view()) - log_det))
    }

    fn weighted_nll_grad(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad> {
        self.check("flow training batch", &x)?;
        let n = x.nrows();
        if n == 0 {
            return Err(FabError::invalid(
                "flow training batch",
                "the batch is empty",
            ));
        }
        self.weighted_nll_grad_chunked(x, coeff, &Local)
    }

    fn weighted_nll_grad_across(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
        comm: &dyn Communicator,
    ) -> Result<WeightedGrad> {
        self.check("flow training batch", &x)?;
        if x.nrows() == 0 {
            return Err(FabError::invalid(
                "flow training batch",
                "the batch is empty",
            ));
        }
        self.weighted_nll_grad_chunked(x, coeff, comm)
    }

    fn sample_rows(
        &self,
        n: usize,
        rows: std::ops::Range<usize>,
        rng: &mut FabRng,
    ) -> Result<(Array2<f64>, Array1<f64>)> {
        // All n base samples are drawn, so the random stream advances as in `sample`.
        let z = self.sample_base(n, rng);
        let z = z.slice(s![rows, ..]);
        let (x, log_det) = self.forward(z)?;
        Ok((x, self.log_base(z) - log_det))
    }

    fn reparam_grad(
        &self,
        n: usize,
        rng: &mut FabRng,
        coeff: &mut dyn FnMut(ArrayView2<f64>, ArrayView1<f64>) -> Result<ReparamCoefficients>,
    ) -> Result<ReparamGrad> {
        if n == 0 {
            return Err(FabError::invalid(
                "reparameterised batch",
                "the batch is empty",
            ));
        }
        let d = self.dim;
        let z = self.sample_base(n, rng);
        let log_base = self.log_base(z.view());
        let (x, log_det) = self.forward_taped(
            self.to_tensor(z.view()).leaky_trace(),
            ParamGrads::Accumulate,
        );
        let base: V<E> = self.dev.tensor_from_vec(narrow(log_base.view()), (n,));
        // log q along the sampling path: log base(z) − log|det ∂f/∂z|, differentiable in θ.
        let log_q = log_det.negate() + base;
        let x_values = self.to_array(x.retaped::<NoneTape>())?;
        let log_q_values = Array1::from(widen(host(&log_q)));
        let k = coeff(x_values.view(), log_q_values.view())?;
        if k.c.len() != n || k.g.dim() != (n, d) {
            return Err(FabError::shape(
                "reparameterised loss coefficients",
                format!("c ({n}), g ({n}, {d})"),
                format!("c ({}), g {:?}", k.c.len(), k.g.dim()),
            ));
        }
        let c: V<E> = self.dev.tensor_from_vec(narrow(k.c.view()), (n,));
        let g: M<E> = self.to_tensor(k.g.view());
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
                Param::M(t) => out.extend(widen(host(t))),
                Param::V(t) => out.extend(widen(host(t))),
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
        let params: Vec<E> = params.iter().map(|&v| E::of(v)).collect();
        let mut offset = 0;
        for p in self.params_mut() {
            let len = match &p {
                ParamMut::M(t) => t.shape().num_elements(),
                ParamMut::V(t) => t.shape().num_elements(),
            };
            match p {
                ParamMut::M(t) => t.copy_from(&params[offset..offset + len]),
                ParamMut::V(t) => t.copy_from(&params[offset..offset + len]),
            }
            offset += len;
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
