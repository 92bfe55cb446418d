//! Criterion benchmark of the alanine-dipeptide force field: energy + gradient of a batch of 1024
//! conformations in Cartesian coordinates and of FAB's target log p(z) + ∇_z log p in internal
//! coordinates (rayon over the batch). Evaluations per second = 1024 / time.
//! Also the bare force field of the dipeptide and the tetrapeptide (`forces`).
//! Run: `cargo bench -p fab-benches --bench aldp_energy` (`RAYON_NUM_THREADS=1` for per-thread rates).

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array2;
use rand::Rng;

use fab_core::{rng::seeded, LogDensity};
use fab_targets::molecule::formats::crd::parse_crd;
use fab_targets::molecule::{
    CartesianBoltzmann, ForceField, InternalBoltzmann, Peptide, ALANINE_DIPEPTIDE_CRD,
};

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
        b.iter(|| {
            fab_benches::on_worker(|| target.log_prob_and_grad(x.view(), grad.view_mut()).unwrap())
        })
    });
    // The same conformations in FAB's normalised internal coordinates.
    let internal = InternalBoltzmann::alanine_dipeptide(300.0);
    let mut z = Array2::zeros((1024, 60));
    for (i, row) in x.outer_iter().enumerate() {
        let xi: Vec<[f64; 3]> = row
            .as_slice()
            .unwrap()
            .chunks(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        internal
            .transform()
            .to_internal(&xi, z.row_mut(i).as_slice_mut().unwrap());
    }
    let mut grad_z = Array2::zeros((1024, 60));
    c.bench_function("aldp_internal_log_prob_and_grad_batch1024", |b| {
        b.iter(|| {
            fab_benches::on_worker(|| {
                internal
                    .log_prob_and_grad(z.view(), grad_z.view_mut())
                    .unwrap()
            })
        })
    });
}

/// The force field alone on 1024 conformations of alanine dipeptide (22 atoms) and tetrapeptide
/// (42 atoms) through the public batch API (`energies_and_forces`, four per SIMD call): with
/// `RAYON_NUM_THREADS=1`, calls per second per thread = 1024 / time.
fn forces(c: &mut Criterion) {
    let jittered = |x0: &[[f64; 3]]| {
        let mut rng = seeded(0);
        Array2::from_shape_fn((1024, 3 * x0.len()), |(_, k)| {
            x0[k / 3][k % 3] + rng.gen_range(-0.005..0.005)
        })
    };
    let crd = parse_crd(ALANINE_DIPEPTIDE_CRD, "alanine-dipeptide.crd").unwrap();
    let di = (ForceField::alanine_dipeptide(), jittered(&crd));
    let tetra = Peptide::alanine_tetrapeptide();
    let tetra = (
        ForceField::alanine_tetrapeptide(),
        jittered(&tetra.reference),
    );
    for (name, (ff, x)) in [("dipeptide", di), ("tetrapeptide", tetra)] {
        c.bench_function(&format!("{name}_energies_and_forces_batch1024"), |b| {
            b.iter(|| fab_benches::on_worker(|| ff.energies_and_forces(x.view()).unwrap()))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = energy, forces
}
criterion_main!(benches);
