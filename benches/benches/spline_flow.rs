//! Criterion benchmark of the paper's alanine-dipeptide flow shape: 60 dimensions, 12 rational-
//! quadratic spline coupling layers with 256 hidden units and 8 bins, circular splines on 12 of
//! the coordinates, batch 1024, in f64 and in f32: forward + backward of the weighted NLL (one
//! training step's gradient), and log q with its input gradient (one HMC evaluation), on the
//! fused engine (and, in f32, on the reference engine built from dfdx's own operations).
//!
//! Run: `cargo bench -p fab-benches --bench spline_flow` (`RAYON_NUM_THREADS=1` for one thread).

use criterion::{criterion_group, criterion_main, Criterion};
use dfdx::prelude::{Cpu, Device};

use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::spline::SplineConfig;
use fab_flows::{CircularShift, CouplingFlow, Engine, Real, SplineFlowConfig};

fn alanine_flow<E: Real>(n_layers: usize, hidden_units: usize, engine: Engine) -> CouplingFlow<E>
where
    Cpu: Device<E>,
{
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
        ..Default::default()
    };
    fab_benches::off_identity(
        CouplingFlow::<E>::spline(60, &config)
            .unwrap()
            .with_engine(engine),
    )
}

/// Both benchmarks of the paper shape in float type `E` on `engine`, named with `tag`.
fn paper_shape<E: Real>(c: &mut Criterion, tag: &str, engine: Engine)
where
    Cpu: Device<E>,
{
    let flow = alanine_flow::<E>(12, 256, engine);
    let (x, _) = flow.sample(1024, &mut seeded(0)).unwrap();
    let coeff = ndarray::Array1::from_elem(1024, 1.0 / 1024.0);
    c.bench_function(
        &format!("alanine_spline_flow_{tag}_forward_backward_params_batch1024"),
        |b| {
            b.iter(|| {
                fab_benches::on_worker(|| {
                    flow.weighted_nll_grad(x.view(), &mut |_| coeff.clone())
                        .unwrap()
                })
            })
        },
    );
    let mut grad = ndarray::Array2::zeros((1024, 60));
    c.bench_function(
        &format!("alanine_spline_flow_{tag}_log_prob_and_input_grad_batch1024"),
        |b| {
            b.iter(|| {
                fab_benches::on_worker(|| {
                    flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap()
                })
            })
        },
    );
}

fn spline_flow(c: &mut Criterion) {
    paper_shape::<f64>(c, "f64", Engine::Fused);
    paper_shape::<f32>(c, "f32", Engine::Fused);
    paper_shape::<f32>(c, "f32_reference", Engine::Reference);
}

/// The flow of configs/alanine-quick.ron (8 layers × 64 hidden units) at its batch size 256.
fn quick_spline_flow(c: &mut Criterion) {
    let flow = alanine_flow::<f64>(8, 64, Engine::Fused);
    let (x, _) = flow.sample(256, &mut seeded(0)).unwrap();
    let mut grad = ndarray::Array2::zeros((256, 60));
    c.bench_function(
        "alanine_quick_spline_flow_f64_log_prob_and_input_grad_batch256",
        |b| {
            b.iter(|| {
                fab_benches::on_worker(|| {
                    flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap()
                })
            })
        },
    );
    for (engine, tag) in [(Engine::Fused, "f32"), (Engine::Reference, "f32_reference")] {
        let flow = alanine_flow::<f32>(8, 64, engine);
        c.bench_function(
            &format!("alanine_quick_spline_flow_{tag}_log_prob_and_input_grad_batch256"),
            |b| {
                b.iter(|| {
                    fab_benches::on_worker(|| {
                        flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap()
                    })
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = spline_flow, quick_spline_flow
}
criterion_main!(benches);
