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
