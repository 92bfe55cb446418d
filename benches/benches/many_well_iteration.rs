//! Criterion benchmarks on the 32-D Many Well at fab-jax's many_well settings
//! (configs/bench/many-well-fab-jax.ron): RealNVP 16 couplings × MLP [128, 128] in f32, batch
//! 1,024, HMC AIS with 8 intermediate distributions × 5 leapfrog steps, 4 buffer updates per AIS
//! batch. One FAB iteration, and the two flow passes that make it up (log q with its input
//! gradient, as HMC calls it 41 times per iteration; forward + backward of the training loss),
//! on the fused engine and on the reference engine (dfdx's own operations).
//!
//! Run: `RAYON_NUM_THREADS=1 cargo bench -p fab-benches --bench many_well_iteration`.

use criterion::{criterion_group, criterion_main, Criterion};

use fab_ais::step_size::StepSizeAdaptation;
use fab_ais::{Ais, AisConfig, KernelConfig};
use fab_core::optim::AdamConfig;
use fab_core::train::{BufferConfig, Iterations, LossKind, TrainConfig, Trainer};
use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::{CouplingFlow, Engine, RealNvpConfig};
use fab_targets::ManyWell;

const BATCH: usize = 1024;

fn flow(engine: Engine) -> CouplingFlow<f32> {
    let config = RealNvpConfig {
        n_layers: 16,
        hidden_units_per_dim: 4,
        hidden_layers: 2,
        init_seed: 0,
        precision: fab_flows::Precision::F32,
        hidden_units: None,
        ..Default::default()
    };
    fab_benches::off_identity(
        CouplingFlow::<f32>::real_nvp(32, &config)
            .unwrap()
            .with_engine(engine),
    )
}

fn fab_iteration(c: &mut Criterion) {
    let target = ManyWell::new(32).unwrap();
    let mut flow = flow(Engine::Fused);
    let mut ais = Ais::new(AisConfig {
        n_intermediate: 8,
        kernel: KernelConfig::Hmc {
            n_leapfrog: 5,
            max_grad: 1e3,
        },
        init_step_size: 0.01,
        adaptation: StepSizeAdaptation {
            enabled: true,
            target_accept: 0.65,
            factor: 1.02,
        },
        ..Default::default()
    })
    .unwrap();
    let config = TrainConfig {
        batch_size: BATCH,
        loss: LossKind::FabBuffer,
        buffer: BufferConfig {
            min_length: 4 * BATCH,
            max_length: 400 * BATCH,
            n_updates: 4,
            w_adjust_clip: Some(10.0),
            ..Default::default()
        },
        optimizer: AdamConfig {
            lr: 2e-4,
            ..Default::default()
        },
        iterations: Iterations::Fixed(1),
        ..Default::default()
    };
    let mut trainer = Trainer::new(config, &flow).unwrap();
    trainer.fill_buffer(&flow, &mut ais, &target).unwrap();
    c.bench_function("fab_iteration_many_well32_fab_jax_f32_batch1024", |b| {
        b.iter(|| {
            fab_benches::on_worker(|| trainer.iteration(&mut flow, &mut ais, &target).unwrap())
        })
    });
}

fn flow_passes(c: &mut Criterion) {
    for (engine, tag) in [(Engine::Fused, "fused"), (Engine::Reference, "reference")] {
        let flow = flow(engine);
        let (x, _) = flow.sample(BATCH, &mut seeded(0)).unwrap();
        let mut grad = ndarray::Array2::zeros((BATCH, 32));
        c.bench_function(
            &format!("realnvp16x128_f32_{tag}_log_prob_and_input_grad_batch1024"),
            |b| {
                b.iter(|| {
                    fab_benches::on_worker(|| {
                        flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap()
                    })
                })
            },
        );
        let coeff = ndarray::Array1::from_elem(BATCH, 1.0 / BATCH as f64);
        c.bench_function(
            &format!("realnvp16x128_f32_{tag}_forward_backward_params_batch1024"),
            |b| {
                b.iter(|| {
                    fab_benches::on_worker(|| {
                        flow.weighted_nll_grad(x.view(), &mut |_| coeff.clone())
                            .unwrap()
                    })
                })
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = flow_passes, fab_iteration
}
criterion_main!(benches);
