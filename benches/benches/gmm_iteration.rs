//! Criterion benchmarks of the GMM slice: one full FAB iteration (AIS + buffer + 4 updates) with
//! the paper's flow, and the flow's forward+backward at batch 128.
//!
//! Run: `cargo bench -p fab-benches --bench gmm_iteration`.

use criterion::{criterion_group, criterion_main, Criterion};

use fab_ais::{Ais, AisConfig};
use fab_core::train::{TrainConfig, Trainer};
use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::{CouplingFlow, RealNvpConfig};
use fab_targets::Gmm;

fn fab_iteration(c: &mut Criterion) {
    let target = Gmm::paper();
    let mut flow = CouplingFlow::<f64>::real_nvp(2, &RealNvpConfig::default()).unwrap();
    let mut ais = Ais::new(AisConfig::default()).unwrap();
    let mut trainer = Trainer::new(TrainConfig::default(), &flow).unwrap();
    trainer.fill_buffer(&flow, &mut ais, &target).unwrap();
    c.bench_function("fab_iteration_gmm_batch128", |b| {
        b.iter(|| trainer.iteration(&mut flow, &mut ais, &target).unwrap())
    });
}

fn flow_passes(c: &mut Criterion) {
    let flow = CouplingFlow::<f64>::real_nvp(2, &RealNvpConfig::default()).unwrap();
    let mut rng = seeded(0);
    let (x, _) = flow.sample(128, &mut rng).unwrap();
    let coeff = ndarray::Array1::from_elem(128, 1.0 / 128.0);
    c.bench_function("realnvp15_forward_backward_params_batch128", |b| {
        b.iter(|| {
            flow.weighted_nll_grad(x.view(), &mut |_| coeff.clone())
                .unwrap()
        })
    });
    let mut grad = ndarray::Array2::zeros((128, 2));
    c.bench_function("realnvp15_log_prob_and_input_grad_batch128", |b| {
        b.iter(|| flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap())
    });
    c.bench_function("realnvp15_sample_batch128", |b| {
        b.iter(|| flow.sample(128, &mut rng).unwrap())
    });
    c.bench_function("realnvp15_log_prob_batch128", |b| {
        b.iter(|| flow.log_prob(x.view()).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = fab_iteration, flow_passes
}
criterion_main!(benches);
