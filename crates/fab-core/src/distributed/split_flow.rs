//! A flow whose sampling, density evaluations and training gradients are split over the ranks.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};

use super::{gather_rows, share, Communicator, SplitDensity};
use crate::flow::{ReparamCoefficients, ReparamGrad, WeightedGrad};
use crate::{FabError, FabRng, Flow, LogDensity, Result};

/// Wraps a flow for data-parallel use: [`Flow::sample`] pushes this rank's share of the base
/// samples through the flow ([`Flow::sample_rows`]), densities are evaluated by rows as in
/// [`SplitDensity`], and [`Flow::weighted_nll_grad`] becomes
/// [`Flow::weighted_nll_grad_across`]. Every rank must make the same calls. The wrapper reads
/// the flow; parameter updates go to the wrapped flow itself.
pub struct SplitFlow<'a> {
    inner: &'a dyn Flow,
    comm: &'a dyn Communicator,
}

impl<'a> SplitFlow<'a> {
    /// Splits the work of `inner` over `comm`'s ranks.
    pub fn new(inner: &'a dyn Flow, comm: &'a dyn Communicator) -> Self {
        Self { inner, comm }
    }

    fn rows(&self) -> SplitDensity<'_> {
        SplitDensity::new(self.inner, self.comm)
    }
}

impl LogDensity for SplitFlow<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.rows().log_prob(x)
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        self.rows().log_prob_and_grad(x, grad)
    }
}

impl Flow for SplitFlow<'_> {
    fn sample(&self, n: usize, rng: &mut FabRng) -> Result<(Array2<f64>, Array1<f64>)> {
        if self.comm.size() == 1 {
            return self.inner.sample(n, rng);
        }
        let d = self.dim();
        let rows = share(n, self.comm.rank(), self.comm.size());
        // Each gathered row is [x, log q].
        let local = self
            .inner
            .sample_rows(n, rows.clone(), rng)
            .map(|(x, log_q)| {
                let mut out = Array2::zeros((rows.len(), d + 1));
                out.slice_mut(s![.., ..d]).assign(&x);
                out.column_mut(d).assign(&log_q);
                out
            });
        let all = gather_rows(self.comm, n, d + 1, local)?;
        Ok((all.slice(s![.., ..d]).to_owned(), all.column(d).to_owned()))
    }

    fn weighted_nll_grad(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad> {
        self.inner.weighted_nll_grad_across(x, coeff, self.comm)
    }

    fn reparam_grad(
        &self,
        n: usize,
        rng: &mut FabRng,
        coeff: &mut dyn FnMut(ArrayView2<f64>, ArrayView1<f64>) -> Result<ReparamCoefficients>,
    ) -> Result<ReparamGrad> {
        // Not split: every rank computes the whole (identical) gradient.
        self.inner.reparam_grad(n, rng, coeff)
    }

    fn params(&self) -> Vec<f64> {
        self.inner.params()
    }

    fn set_params(&mut self, _params: &[f64]) -> Result<()> {
        Err(FabError::invalid(
            "split flow parameters",
            "a split flow only reads its flow; set the parameters on the wrapped flow",
        ))
    }

    fn param_layout(&self) -> Vec<(String, Vec<usize>)> {
        self.inner.param_layout()
    }
}
