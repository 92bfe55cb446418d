//! Criterion benchmarks on the 32-D Many Well: one FAB iteration (HMC AIS with 4 intermediate
//! distributions × 5 leapfrog steps, buffer, 8 updates) at batch 2048 with the quick profile's flow
//! (8 layers × 128 hidden units), and the flow passes that dominate it.
//!
//! Run: `cargo bench -p fab-benches --bench many_well_iteration`.

use criterion::{criterion_group, criterion_main, Criterion};

use fab_ais::step_size::StepSizeAdaptation;
use fab_ais::{Ais, AisConfig, KernelConfig};
use fab_core::optim::AdamConfig;
use fab_core::train::{BufferConfig, Iterations, LossKind, TrainConfig, Trainer};
use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::{CouplingFlow, RealNvpConfig};
use fab_targets::ManyWell;

const FLOW: RealNvpConfig = RealNvpConfig {
    n_layers: 8,
    hidden_units_per_dim: 4,
    hidden_layers: 2,
    init_seed: 0,
    precision: fab_flows::Precision::F64,
};

fn fab_iteration(c: &mut Criterion) {
    let target = ManyWell::new(32).unwrap();
    let mut flow = CouplingFlow::<f64>::real_nvp(32, &FLOW).unwrap();
    let mut ais = Ais::new(AisConfig {
        n_intermediate: 4,
        kernel: KernelConfig::Hmc {
            n_leapfrog: 5,
            max_grad: 1e3,
        },
        init_step_size: 1.0,
        adaptation: StepSizeAdaptation {
            enabled: true,
            target_accept: 0.65,
            factor: 1.05,
        },
        ..Default::default()
    })
    .unwrap();
    let batch = 2048;
    let config = TrainConfig {
        batch_size: batch,
        loss: LossKind::FabBuffer,
        buffer: BufferConfig {
            min_length: 8 * batch,
            max_length: 40 * batch,
            n_updates: 8,
            w_adjust_clip: Some(10.0),
        },
        optimizer: AdamConfig {
            lr: 3e-4,
            ..Default::default()
        },
        iterations: Iterations::Fixed(1),
        ..Default::default()
    };
    let mut trainer = Trainer::new(config, &flow).unwrap();
    trainer.fill_buffer(&flow, &mut ais, &target).unwrap();
    c.bench_function("fab_iteration_many_well32_batch2048", |b| {
        b.iter(|| trainer.iteration(&mut flow, &mut ais, &target).unwrap())
    });
}

fn flow_passes(c: &mut Criterion) {
    let flow = CouplingFlow::<f64>::real_nvp(32, &FLOW).unwrap();
    let (x, _) = flow.sample(2048, &mut seeded(0)).unwrap();
    let mut grad = ndarray::Array2::zeros((2048, 32));
    c.bench_function("realnvp8x128_log_prob_and_input_grad_batch2048", |b| {
        b.iter(|| flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap())
    });
    let coeff = ndarray::Array1::from_elem(2048, 1.0 / 2048.0);
    c.bench_function("realnvp8x128_forward_backward_params_batch2048", |b| {
        b.iter(|| {
            flow.weighted_nll_grad(x.view(), &mut |_| coeff.clone())
                .unwrap()
        })
    });
    let target = ManyWell::new(32).unwrap();
    c.bench_function("many_well32_log_prob_and_grad_batch2048", |b| {
        b.iter(|| target.log_prob_and_grad(x.view(), grad.view_mut()).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = flow_passes, fab_iteration
}
criterion_main!(benches);
