//! Criterion benchmark of the paper's alanine-dipeptide flow shape: 60 dimensions, 12 rational-
//! quadratic spline coupling layers with 256 hidden units and 8 bins, circular splines on 12 of
//! the coordinates, batch 1024, f64: forward + backward of the weighted NLL (one training step's
//! gradient), and log q with its input gradient (one HMC evaluation).
//!
//! Run: `cargo bench -p fab-benches --bench spline_flow`.

use criterion::{criterion_group, criterion_main, Criterion};

use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::spline::SplineConfig;
use fab_flows::{CircularShift, CouplingFlow, SplineFlowConfig};

fn alanine_flow(n_layers: usize, hidden_units: usize) -> CouplingFlow {
    let config = SplineFlowConfig {
        n_layers,
        hidden_units,
        hidden_layers: 2,
        init_seed: 0,
        spline: SplineConfig {
            bins: 8,
            bound: 5.0,
            ..Default::default()
        },
        circular: (48..60).collect(),
        circular_shift: CircularShift::Random,
    };
    let mut flow = CouplingFlow::spline(60, &config).unwrap();
    // Move off the identity so the splines do real work.
    let p: Vec<f64> = flow
        .params()
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.01 * ((i % 7) as f64 - 3.0))
        .collect();
    flow.set_params(&p).unwrap();
    flow
}

fn spline_flow(c: &mut Criterion) {
    let flow = alanine_flow(12, 256);
    let (x, _) = flow.sample(1024, &mut seeded(0)).unwrap();
    let coeff = ndarray::Array1::from_elem(1024, 1.0 / 1024.0);
    c.bench_function(
        "alanine_spline_flow_f64_forward_backward_params_batch1024",
        |b| {
            b.iter(|| {
                flow.weighted_nll_grad(x.view(), &mut |_| coeff.clone())
                    .unwrap()
            })
        },
    );
    let mut grad = ndarray::Array2::zeros((1024, 60));
    c.bench_function(
        "alanine_spline_flow_f64_log_prob_and_input_grad_batch1024",
        |b| b.iter(|| flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap()),
    );
}

/// The flow of configs/alanine-quick.ron (8 layers × 64 hidden units) at its batch size 256.
fn quick_spline_flow(c: &mut Criterion) {
    let flow = alanine_flow(8, 64);
    let (x, _) = flow.sample(256, &mut seeded(0)).unwrap();
    let mut grad = ndarray::Array2::zeros((256, 60));
    c.bench_function(
        "alanine_quick_spline_flow_f64_log_prob_and_input_grad_batch256",
        |b| b.iter(|| flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap()),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = spline_flow, quick_spline_flow
}
criterion_main!(benches);
