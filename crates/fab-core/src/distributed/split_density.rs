//! A log density whose batch evaluations are split over the ranks by rows.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};

use super::{gather_rows, share, Communicator};
use crate::{LogDensity, Result};

/// Wraps a density so that each rank evaluates its [`share`] of a batch's rows and receives the
/// others' (every rank must call with the same batch). Per-row values do not depend on which
/// rank computes them, so results are the same on any number of ranks.
pub struct SplitDensity<'a> {
    inner: &'a dyn LogDensity,
    comm: &'a dyn Communicator,
}

impl<'a> SplitDensity<'a> {
    /// Splits the evaluations of `inner` over `comm`'s ranks.
    pub fn new(inner: &'a dyn LogDensity, comm: &'a dyn Communicator) -> Self {
        Self { inner, comm }
    }
}

impl LogDensity for SplitDensity<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        if self.comm.size() == 1 {
            return self.inner.log_prob(x);
        }
        let n = x.nrows();
        let rows = share(n, self.comm.rank(), self.comm.size());
        let local = if rows.is_empty() {
            Ok(Array2::zeros((0, 1)))
        } else {
            self.inner
                .log_prob(x.slice(s![rows, ..]))
                .map(|v| v.insert_axis(ndarray::Axis(1)))
        };
        let all = gather_rows(self.comm, n, 1, local)?;
        Ok(all.column(0).to_owned())
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        mut grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        if self.comm.size() == 1 {
            return self.inner.log_prob_and_grad(x, grad);
        }
        crate::density::check_dim_and_grad("split density", &x, &grad, self.dim())?;
        let (n, d) = x.dim();
        let rows = share(n, self.comm.rank(), self.comm.size());
        // Each gathered row is [log p, ∇ log p].
        let local = if rows.is_empty() {
            Ok(Array2::zeros((0, d + 1)))
        } else {
            let mut out = Array2::zeros((rows.len(), d + 1));
            let (mut lp, g) = out.view_mut().split_at(ndarray::Axis(1), 1);
            let done = self
                .inner
                .log_prob_and_grad(x.slice(s![rows, ..]), g)
                .map(|v| lp.column_mut(0).assign(&v));
            done.map(|()| out)
        };
        let all = gather_rows(self.comm, n, d + 1, local)?;
        grad.assign(&all.slice(s![.., 1..]));
        Ok(all.column(0).to_owned())
    }
}
