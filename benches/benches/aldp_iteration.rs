//! Criterion benchmarks of FAB on alanine dipeptide at batch 256 with the quick profile's flow
//! (configs/alanine-quick.ron: 8 circular-spline coupling layers × 64 hidden units, HMC AIS with
//! 8 intermediate distributions × 4 leapfrog steps, buffer, 8 updates per AIS batch): one
//! iteration, and the passes it is made of, so the issue notes can split its time into flow,
//! target and the rest. One iteration evaluates the flow's log q and input gradient about 45 times
//! (AIS) and its parameter gradient 8 times (updates), and the target about 33 × 256 times.
//!
//! Each runs with the flow in f64 and in f32 (`precision: F32`).
//!
//! Run: `cargo bench -p fab-benches --bench aldp_iteration`.

use criterion::{criterion_group, criterion_main, Criterion};

use fab_ais::step_size::StepSizeAdaptation;
use fab_ais::{Ais, AisConfig, KernelConfig};
use fab_core::optim::AdamConfig;
use fab_core::train::{BufferConfig, Iterations, LossKind, TrainConfig, Trainer};
use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::spline::SplineConfig;
use fab_flows::{CircularShift, FlowConfig, Precision, SplineFlowConfig};
use fab_targets::molecule::{ChiralityFilter, InternalBoltzmann};

const BATCH: usize = 256;

fn quick_flow(target: &InternalBoltzmann, precision: Precision) -> Box<dyn Flow> {
    let config = SplineFlowConfig {
        n_layers: 8,
        hidden_units: 64,
        hidden_layers: 2,
        init_seed: 0,
        spline: SplineConfig::default(),
        circular: target.transform().circular_indices(),
        circular_shift: CircularShift::Random,
        precision,
        relative_angles: vec![(26, 17), (29, 17)],
        ..Default::default()
    };
    fab_flows::build(&FlowConfig::SplineCoupling(config), 60).unwrap()
}

fn target() -> InternalBoltzmann {
    InternalBoltzmann::alanine_dipeptide(300.0)
        .with_chirality_filter(Some(ChiralityFilter::default()))
}

/// Precisions benchmarked, with the tag in the benchmark name.
const PRECISIONS: [(Precision, &str); 2] = [(Precision::F64, "f64"), (Precision::F32, "f32")];

fn fab_iteration(c: &mut Criterion) {
    for (precision, tag) in PRECISIONS {
        fab_iteration_in(c, precision, tag);
    }
}

fn fab_iteration_in(c: &mut Criterion, precision: Precision, tag: &str) {
    let target = target();
    let mut flow = quick_flow(&target, precision);
    let mut ais = Ais::new(AisConfig {
        n_intermediate: 8,
        kernel: KernelConfig::Hmc {
            n_leapfrog: 4,
            max_grad: 1e3,
        },
        init_step_size: 0.05,
        adaptation: StepSizeAdaptation {
            enabled: true,
            target_accept: 0.65,
            factor: 1.05,
        },
        ..Default::default()
    })
    .unwrap();
    let config = TrainConfig {
        batch_size: BATCH,
        loss: LossKind::FabBuffer,
        buffer: BufferConfig {
            min_length: 8 * BATCH,
            max_length: 64 * BATCH,
            n_updates: 8,
            w_adjust_clip: Some(10.0),
            ..Default::default()
        },
        optimizer: AdamConfig {
            lr: 5e-4,
            ..Default::default()
        },
        iterations: Iterations::Fixed(1),
        ..Default::default()
    };
    let mut trainer = Trainer::new(config, flow.as_ref()).unwrap();
    trainer
        .fill_buffer(flow.as_ref(), &mut ais, &target)
        .unwrap();
    c.bench_function(
        &format!("fab_iteration_alanine_quick_flow_{tag}_batch256"),
        |b| {
            b.iter(|| {
                fab_benches::on_worker(|| {
                    trainer.iteration(flow.as_mut(), &mut ais, &target).unwrap()
                })
            })
        },
    );
}

fn passes(c: &mut Criterion) {
    let target = target();
    let mut grad = ndarray::Array2::zeros((BATCH, 60));
    let coeff = ndarray::Array1::from_elem(BATCH, 1.0 / BATCH as f64);
    let (z, _) = quick_flow(&target, Precision::F64)
        .sample(BATCH, &mut seeded(0))
        .unwrap();
    for (precision, tag) in PRECISIONS {
        let flow = quick_flow(&target, precision);
        c.bench_function(
            &format!("alanine_quick_flow_{tag}_log_prob_and_input_grad_batch256"),
            |b| {
                b.iter(|| {
                    fab_benches::on_worker(|| {
                        flow.log_prob_and_grad(z.view(), grad.view_mut()).unwrap()
                    })
                })
            },
        );
        c.bench_function(
            &format!("alanine_quick_flow_{tag}_forward_backward_params_batch256"),
            |b| {
                b.iter(|| {
                    fab_benches::on_worker(|| {
                        flow.weighted_nll_grad(z.view(), &mut |_| coeff.clone())
                            .unwrap()
                    })
                })
            },
        );
    }
    c.bench_function("alanine_internal_log_prob_and_grad_batch256", |b| {
        b.iter(|| {
            fab_benches::on_worker(|| target.log_prob_and_grad(z.view(), grad.view_mut()).unwrap())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = passes, fab_iteration
}
criterion_main!(benches);
