//! Batched log-densities with gradients: the one interface targets and flows share.
//!
//! A batch is an `(n, d)` array view with one point per row. Densities may be unnormalised.
//! The gradient is written into a caller-owned buffer so hot loops (HMC) allocate nothing per call.

use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip};
use rayon::prelude::*;

use crate::Result;

/// A (possibly unnormalised) log-density on R^d, evaluated over batches.
pub trait LogDensity: Send + Sync {
    /// Dimension d of a point.
    fn dim(&self) -> usize;

    /// log p(x) for each row of `x` (shape `(n, d)`), returned as a length-n array.
    /// Points outside the support give `-inf`; never panic on finite or non-finite input.
    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>>;

    /// log p(x) for each row, and ∇ₓ log p(x) written into `grad` (same shape as `x`; another
    /// shape is an error, see [`check_dim_and_grad`]).
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

/// [`check_dim`] for `log_prob_and_grad`, and that `grad` has the shape of `x` (one gradient
/// row per point), so a wrong buffer is an error instead of a panic deep in a parallel loop.
pub fn check_dim_and_grad(
    context: &str,
    x: &ArrayView2<f64>,
    grad: &ArrayViewMut2<f64>,
    dim: usize,
) -> Result<()> {
    check_dim(context, x, dim)?;
    if grad.dim() != x.dim() {
        return Err(crate::FabError::shape(
            format!("{context}: gradient buffer"),
            format!("{:?}", x.dim()),
            format!("{:?}", grad.dim()),
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

/// Evaluates a log density over chunks of `size` consecutive rows in parallel (rayon), for
/// densities that evaluate a few points at once (SIMD lanes): `chunk(scratch, rows, out,
/// grad_rows)` writes log p of the chunk's rows into `out` and, when given, their gradients into
/// `grad_rows`. `scratch` comes from `init`, called once per rayon work item (not per chunk), so
/// a density can keep its buffers across the chunks a thread evaluates instead of allocating.
pub fn par_row_chunks<W>(
    x: ArrayView2<f64>,
    grad: Option<ArrayViewMut2<f64>>,
    size: usize,
    init: impl Fn() -> W + Sync + Send,
    chunk: impl Fn(&mut W, ArrayView2<f64>, ArrayViewMut1<f64>, Option<ArrayViewMut2<f64>>)
        + Sync
        + Send,
) -> Array1<f64> {
    let size = size.max(1);
    let mut out = Array1::zeros(x.nrows());
    let xs: Vec<ArrayView2<f64>> = x.axis_chunks_iter(Axis(0), size).collect();
    let outs: Vec<ArrayViewMut1<f64>> = out.axis_chunks_iter_mut(Axis(0), size).collect();
    let mut grad = grad;
    let grads: Vec<Option<ArrayViewMut2<f64>>> = match grad.as_mut() {
        Some(g) => g.axis_chunks_iter_mut(Axis(0), size).map(Some).collect(),
        None => (0..xs.len()).map(|_| None).collect(),
    };
    xs.into_par_iter()
        .zip(outs)
        .zip(grads)
        .for_each_init(init, |w, ((x, o), g)| chunk(w, x, o, g));
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
