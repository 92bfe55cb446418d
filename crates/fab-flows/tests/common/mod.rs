//! Helpers shared by the flow tests.

use fab_core::{rng::seeded, Flow};
use fab_flows::CouplingFlow;
use ndarray::Array2;
use rand::Rng;

/// `n` seeded points in `dim` dimensions: angles uniform in [−π, π) on the `circular` coordinates,
/// uniform in [−4, 4] (so some lie in the splines' linear tails) on the others.
#[allow(dead_code)] // not every test file uses every helper
pub fn points(n: usize, seed: u64, dim: usize, circular: &[usize]) -> Array2<f64> {
    let pi = std::f64::consts::PI;
    let mut rng = seeded(seed);
    Array2::from_shape_fn((n, dim), |(_, j)| {
        if circular.contains(&j) {
            rng.gen_range(-pi..pi)
        } else {
            rng.gen_range(-4.0..4.0)
        }
    })
}

/// Moves every parameter of `flow` by N(0, scale²) noise from `seed`, so the layers are far from
/// the identity.
#[allow(dead_code)]
pub fn perturb(flow: &mut dyn Flow, scale: f64, seed: u64) {
    use rand_distr::{Distribution, Normal};
    let noise = Normal::new(0.0, scale).unwrap();
    let mut rng = seeded(seed);
    let p: Vec<f64> = flow
        .params()
        .iter()
        .map(|v| v + noise.sample(&mut rng))
        .collect();
    flow.set_params(&p).unwrap();
}

/// Worst relative error between `grad` and central finite differences of `loss` over every
/// parameter of `flow`, |fd − g| / (0.01 + |fd|). With h = 1e-5 the round-off in the loss
/// (~1e-16·|L|/h) stays near 1e-9 and truncation is ~h², while a wrong gradient term is off by
/// O(|g|), far above the 1e-5 the tests require. Restores the parameters afterwards.
#[allow(dead_code)]
pub fn worst_fd_error(
    flow: &mut CouplingFlow,
    grad: &[f64],
    loss: &mut dyn FnMut(&CouplingFlow) -> f64,
) -> f64 {
    let params = flow.params();
    assert_eq!(grad.len(), params.len());
    let h = 1e-5;
    let mut worst = 0.0f64;
    for k in 0..params.len() {
        let mut p = params.clone();
        p[k] += h;
        flow.set_params(&p).unwrap();
        let lp = loss(flow);
        p[k] -= 2.0 * h;
        flow.set_params(&p).unwrap();
        let lm = loss(flow);
        let fd = (lp - lm) / (2.0 * h);
        worst = worst.max((fd - grad[k]).abs() / (1e-2 + fd.abs()));
    }
    flow.set_params(&params).unwrap();
    worst
}
