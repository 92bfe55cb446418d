//! Criterion benchmarks live in `benches/`; this crate holds only what they share.

use fab_core::Flow;

/// Moves every parameter of `flow` by a small fixed pattern, so layers initialised to the
/// identity do real work when timed.
pub fn off_identity<F: Flow>(mut flow: F) -> F {
    let p: Vec<f64> = flow
        .params()
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.01 * ((i % 7) as f64 - 3.0))
        .collect();
    flow.set_params(&p)
        .expect("the flow's own parameter layout");
    flow
}

/// Runs `work` on a worker of rayon's global pool (as `fab` runs its commands): with
/// `RAYON_NUM_THREADS=1` the parallel loops inside then run inline instead of being handed from
/// criterion's thread to a sleeping worker and back.
pub fn on_worker<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}
