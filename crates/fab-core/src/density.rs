//! Batched log-densities with gradients: the one interface targets and flows share.
//!
//! A batch is an `(n, d)` array view with one point per row. Densities may be unnormalised.
//! The gradient is written into a caller-owned buffer so hot loops (HMC) allocate nothing per call.

use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};

use crate::Result;

/// A (possibly unnormalised) log-density on R^d, evaluated over batches.
pub trait LogDensity: Send + Sync {
    /// Dimension d of a point.
    fn dim(&self) -> usize;

    /// log p(x) for each row of `x` (shape `(n, d)`), returned as a length-n array.
    /// Points outside the support give `-inf`; never panic on finite or non-finite input.
    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>>;

    /// log p(x) for each row, and ∇ₓ log p(x) written into `grad` (same shape as `x`).
    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>>;
}

/// Checks that `x` has `dim` columns, naming `context` in the error.
pub fn check_dim(context: &str, x: &ArrayView2<f64>, dim: usize) -> Result<()> {
    if x.ncols() != dim {
        return Err(crate::FabError::shape(
            context,
            format!("(n, {dim})"),
            format!("({}, {})", x.nrows(), x.ncols()),
        ));
    }
    Ok(())
}

/// Evaluates a per-point log density over the rows of `x` in parallel (rayon), writing each row's
/// gradient into `grad` when given; `point(row, grad_row)` returns log p of the row.
pub fn par_rows(
    x: ArrayView2<f64>,
    grad: Option<ArrayViewMut2<f64>>,
    point: impl Fn(ArrayView1<f64>, Option<ArrayViewMut1<f64>>) -> f64 + Sync,
) -> Array1<f64> {
    let mut out = Array1::zeros(x.nrows());
    match grad {
        Some(mut g) => Zip::from(&mut out)
            .and(x.rows())
            .and(g.rows_mut())
            .par_for_each(|o, row, g| *o = point(row, Some(g))),
        None => Zip::from(&mut out)
            .and(x.rows())
            .par_for_each(|o, row| *o = point(row, None)),
    }
    out
}

/// Wraps a density and counts how many points it has been evaluated at, to report the
/// number of target evaluations a method used (the paper's cost measure).
pub struct CountingDensity<'a> {
    inner: &'a dyn LogDensity,
    count: AtomicU64,
}

impl<'a> CountingDensity<'a> {
    /// Starts counting at `start` (e.g. the count restored from a checkpoint).
    pub fn new(inner: &'a dyn LogDensity, start: u64) -> Self {
        Self {
            inner,
            count: AtomicU64::new(start),
        }
    }

    /// Number of points evaluated so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl LogDensity for CountingDensity<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.count.fetch_add(x.nrows() as u64, Ordering::Relaxed);
        self.inner.log_prob(x)
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        self.count.fetch_add(x.nrows() as u64, Ordering::Relaxed);
        self.inner.log_prob_and_grad(x, grad)
    }
}
