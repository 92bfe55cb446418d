//! How a batch is cut into row chunks for the threads: by the batch size alone, never by the
//! thread count, so results are the same on any number of threads.

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rayon::prelude::*;

/// Rows per chunk below which a batch is not split.
const MIN_CHUNK_ROWS: usize = 64;

/// How many row chunks a batch of `n` rows is split into: one per rayon thread, at least
/// [`MIN_CHUNK_ROWS`] rows each.
fn chunk_count(n: usize) -> usize {
    rayon::current_num_threads().min(n / MIN_CHUNK_ROWS).max(1)
}

/// How many chunks the parameter gradient of a batch of `n` rows is summed over, for chunks of
/// about `rows` rows: a function of `n` and the flow's setting only, because each chunk's
/// gradient (a GEMM over its rows) rounds differently when the rows are split differently.
/// Per-row results (log q, ∇ₓ log q) do not depend on the chunking, so [`chunk_count`] may
/// follow the thread count. One chunk below `rows` rows (small flows are overhead-bound:
/// splitting a batch of 200 cost 19 % of a GMM iteration on one thread), then at least two (so
/// two threads share the work).
pub(super) fn grad_chunk_count(n: usize, rows: usize) -> usize {
    if n < rows {
        1
    } else {
        n.div_ceil(rows).max(2)
    }
}

/// Refuses a chunk size of 0 (the flow settings' `gradient_chunk_rows`).
pub(crate) fn check_gradient_chunk_rows(rows: usize) -> fab_core::Result<()> {
    if rows == 0 {
        return Err(fab_core::FabError::invalid(
            "flow.gradient_chunk_rows",
            "must be at least 1 (default 256)",
        ));
    }
    Ok(())
}

/// Work on one row chunk: (rows, their log q, their gradient rows if asked).
type RowChunkFn<'a> =
    dyn Fn(ArrayView2<f64>, ArrayViewMut1<f64>, Option<ArrayViewMut2<f64>>) + Sync + 'a;

/// Runs `f` on row chunks of `x` (with the matching rows of `grad` and `out`) in parallel, one
/// chunk per rayon thread. dfdx runs element-wise ops on one thread, so splitting the batch is
/// what puts a second core to work on the flow; rows are independent, so results do not depend
/// on the chunking beyond GEMM rounding.
pub(super) fn par_chunks(
    x: ArrayView2<f64>,
    grad: Option<ArrayViewMut2<f64>>,
    out: ArrayViewMut1<f64>,
    f: &RowChunkFn<'_>,
) {
    let n = x.nrows();
    let chunks = chunk_count(n);
    if chunks == 1 {
        return f(x, out, grad);
    }
    let size = n.div_ceil(chunks);
    let xs: Vec<ArrayView2<f64>> = x.axis_chunks_iter(ndarray::Axis(0), size).collect();
    let mut out = out;
    let outs: Vec<ArrayViewMut1<f64>> = out.axis_chunks_iter_mut(ndarray::Axis(0), size).collect();
    let mut grad = grad;
    let grads: Vec<Option<ArrayViewMut2<f64>>> = match grad.as_mut() {
        Some(g) => g
            .axis_chunks_iter_mut(ndarray::Axis(0), size)
            .map(Some)
            .collect(),
        None => (0..xs.len()).map(|_| None).collect(),
    };
    xs.into_par_iter()
        .zip(outs)
        .zip(grads)
        .for_each(|((x, o), g)| f(x, o, g));
}
