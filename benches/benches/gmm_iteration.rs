//! Criterion benchmarks of the 2-D GMM: one full FAB iteration at the paper's settings (RealNVP
//! 15 × 80 in f64, batch 128, Metropolis with 1 intermediate distribution, 4 updates) and at
//! fab-jax's gmm_v0 settings (configs/bench/gmm-fab-jax.ron: RealNVP 24 × [32, 32] in f32, batch
//! 200, Metropolis with 3 intermediate distributions, 4 updates), and the paper flow's passes at
//! batch 128 on the fused and the reference engine.
//!
//! Run: `RAYON_NUM_THREADS=1 cargo bench -p fab-benches --bench gmm_iteration`.

use criterion::{criterion_group, criterion_main, Criterion};

use fab_ais::step_size::StepSizeAdaptation;
use fab_ais::{Ais, AisConfig};
use fab_core::optim::AdamConfig;
use fab_core::train::{BufferConfig, TrainConfig, Trainer};
use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::{CouplingFlow, Engine, Precision, RealNvpConfig};
use fab_targets::Gmm;

fn fab_iteration(c: &mut Criterion) {
    let target = Gmm::paper();
    let mut flow = CouplingFlow::<f64>::real_nvp(2, &RealNvpConfig::default()).unwrap();
    let mut ais = Ais::new(AisConfig::default()).unwrap();
    let mut trainer = Trainer::new(TrainConfig::default(), &flow).unwrap();
    trainer.fill_buffer(&flow, &mut ais, &target).unwrap();
    c.bench_function("fab_iteration_gmm_paper_f64_batch128", |b| {
        b.iter(|| {
            fab_benches::on_worker(|| trainer.iteration(&mut flow, &mut ais, &target).unwrap())
        })
    });
}

fn fab_iteration_fab_jax(c: &mut Criterion) {
    let target = Gmm::paper();
    let config = RealNvpConfig {
        n_layers: 24,
        hidden_units_per_dim: 16,
        hidden_layers: 2,
        init_seed: 0,
        precision: Precision::F32,
        hidden_units: None,
        ..Default::default()
    };
    let mut flow = CouplingFlow::<f32>::real_nvp(2, &config).unwrap();
    let mut ais = Ais::new(AisConfig {
        n_intermediate: 3,
        init_step_size: 1.0,
        adaptation: StepSizeAdaptation {
            enabled: true,
            target_accept: 0.65,
            factor: 1.02,
        },
        ..Default::default()
    })
    .unwrap();
    let batch = 200;
    let training = TrainConfig {
        batch_size: batch,
        buffer: BufferConfig {
            min_length: 4 * batch,
            max_length: 100 * batch,
            n_updates: 4,
            w_adjust_clip: Some(10.0),
            ..Default::default()
        },
        optimizer: AdamConfig {
            lr: 2e-4,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut trainer = Trainer::new(training, &flow).unwrap();
    trainer.fill_buffer(&flow, &mut ais, &target).unwrap();
    c.bench_function("fab_iteration_gmm_fab_jax_v0_f32_batch200", |b| {
        b.iter(|| {
            fab_benches::on_worker(|| trainer.iteration(&mut flow, &mut ais, &target).unwrap())
        })
    });
}

fn flow_passes(c: &mut Criterion) {
    for (engine, tag) in [(Engine::Fused, "fused"), (Engine::Reference, "reference")] {
        let flow = CouplingFlow::<f64>::real_nvp(2, &RealNvpConfig::default())
            .unwrap()
            .with_engine(engine);
        let mut rng = seeded(0);
        let (x, _) = flow.sample(128, &mut rng).unwrap();
        let coeff = ndarray::Array1::from_elem(128, 1.0 / 128.0);
        c.bench_function(
            &format!("realnvp15_{tag}_forward_backward_params_batch128"),
            |b| {
                b.iter(|| {
                    fab_benches::on_worker(|| {
                        flow.weighted_nll_grad(x.view(), &mut |_| coeff.clone())
                            .unwrap()
                    })
                })
            },
        );
        let mut grad = ndarray::Array2::zeros((128, 2));
        c.bench_function(
            &format!("realnvp15_{tag}_log_prob_and_input_grad_batch128"),
            |b| {
                b.iter(|| {
                    fab_benches::on_worker(|| {
                        flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap()
                    })
                })
            },
        );
        c.bench_function(&format!("realnvp15_{tag}_sample_batch128"), |b| {
            b.iter(|| fab_benches::on_worker(|| flow.sample(128, &mut rng).unwrap()))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = fab_iteration, fab_iteration_fab_jax, flow_passes
}
criterion_main!(benches);
