//! Criterion benchmark of the alanine-dipeptide force field: energy + gradient of a batch of 1024
//! conformations in Cartesian coordinates (rayon over the batch). Evaluations per second =
//! 1024 / time. Run: `cargo bench -p fab-benches --bench aldp_energy`.

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array2;
use rand::Rng;

use fab_core::{rng::seeded, LogDensity};
use fab_targets::aldp::crd::parse_crd;
use fab_targets::aldp::{CartesianBoltzmann, ALANINE_DIPEPTIDE_CRD};

fn energy(c: &mut Criterion) {
    let target = CartesianBoltzmann::alanine_dipeptide(300.0);
    let mut rng = seeded(0);
    // The crd structure jittered by 0.005 nm per coordinate.
    let crd = parse_crd(ALANINE_DIPEPTIDE_CRD, "alanine-dipeptide.crd").unwrap();
    let x = Array2::from_shape_fn((1024, 66), |(_, k)| {
        crd[k / 3][k % 3] + rng.gen_range(-0.005..0.005)
    });
    let mut grad = Array2::zeros((1024, 66));
    c.bench_function("aldp_cartesian_energy_and_grad_batch1024", |b| {
        b.iter(|| target.log_prob_and_grad(x.view(), grad.view_mut()).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = energy
}
criterion_main!(benches);
