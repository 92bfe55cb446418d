//! Bonded and nonbonded energies of alanine dipeptide against OpenMM 8.6.1 Reference for 32
//! conformations (tests/data/openmm-reference-energies.json, copied from the project's shared data),
//! and their analytic gradients against finite differences.

mod common;

use fab_targets::molecule::forcefield::bonded::BondedTerms;
use fab_targets::molecule::forcefield::gb_obc::GbObc;
use fab_targets::molecule::forcefield::nonbonded::Nonbonded;
use fab_targets::molecule::{Prmtop, ALANINE_DIPEPTIDE_PRMTOP};

fn conformations() -> Vec<(String, Vec<[f64; 3]>, serde_json::Value)> {
    common::conformations(include_str!("data/openmm-reference-energies.json"))
        .into_iter()
        .map(|(label, x, c)| {
            let mut reference = c["terms_kj_per_mol"].clone();
            reference["total"] = c["energy_kj_per_mol"].clone();
            reference["forces"] = c["forces_kj_per_mol_nm"].clone();
            (label, x, reference)
        })
        .collect()
}

/// `ours` against OpenMM's `want` within max(1e-6 relative, 1e-4 kJ/mol): the file's positions are
/// rounded to 1e-8 nm after the energies were computed.
fn assert_matches_openmm(label: &str, what: &str, ours: f64, want: f64) {
    let tol = (1e-6 * want.abs()).max(1e-4);
    assert!(
        (ours - want).abs() < tol,
        "{label} {what}: {ours} vs OpenMM {want}"
    );
}

/// Per-part values for the crd structure against aldp-target.md's breakdown (exact coordinates).
fn assert_crd_parts(parts: &[(f64, f64)]) {
    for &(ours, want) in parts {
        assert!((ours - want).abs() < 1e-5, "crd part {ours} vs {want}");
    }
}

/// Central differences (h = 1e-7 nm) of `total` against the analytic gradient `g`, every coordinate.
fn assert_gradient_matches_fd(
    label: &str,
    x: &[[f64; 3]],
    g: &[[f64; 3]],
    total: &dyn Fn(&[[f64; 3]]) -> f64,
) {
    let h = 1e-7;
    for a in 0..x.len() {
        for d in 0..3 {
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[a][d] += h;
            xm[a][d] -= h;
            let fd = (total(&xp) - total(&xm)) / (2.0 * h);
            assert!(
                (fd - g[a][d]).abs() < 1e-5 * (1.0 + fd.abs()),
                "{label} atom {a} dim {d}: fd {fd} vs {}",
                g[a][d]
            );
        }
    }
}

fn terms() -> BondedTerms {
    BondedTerms::from_prmtop(
        &Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "alanine-dipeptide.prmtop").unwrap(),
    )
}

#[test]
fn bonded_energies_match_openmm_for_all_32_conformations() {
    let t = terms();
    let confs = conformations();
    assert_eq!(confs.len(), 32);
    for (label, x, reference) in confs {
        let mut g = vec![[0.0; 3]; 22];
        let e = t.energy_and_grad(&x, &mut g);
        for (ours, key) in [
            (e.bond, "HarmonicBondForce"),
            (e.angle, "HarmonicAngleForce"),
            (e.torsion, "PeriodicTorsionForce"),
        ] {
            assert_matches_openmm(&label, key, ours, reference[key].as_f64().unwrap());
        }
    }
}

#[test]
fn bonded_gradients_match_finite_differences() {
    let t = terms();
    for (label, x, _) in conformations().into_iter().take(6) {
        let mut g = vec![[0.0; 3]; 22];
        t.energy_and_grad(&x, &mut g);
        let total = |x: &[[f64; 3]]| {
            let mut scratch = vec![[0.0; 3]; 22];
            let e = t.energy_and_grad(x, &mut scratch);
            e.bond + e.angle + e.torsion
        };
        assert_gradient_matches_fd(&label, &x, &g, &total);
    }
}

fn nonbonded() -> Nonbonded {
    Nonbonded::from_prmtop(
        &Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "alanine-dipeptide.prmtop").unwrap(),
    )
}

#[test]
fn nonbonded_energies_match_openmm_for_all_32_conformations() {
    let nb = nonbonded();
    // aldp-target.md: 133 of the 231 pairs interact fully, 41 are scaled 1-4 pairs.
    assert_eq!(nb.n_pairs(), (133, 41));
    assert!(nb.charges.iter().sum::<f64>().abs() < 1e-6);
    for (label, x, reference) in conformations() {
        let e = nb.energy_and_grad(&x, &mut vec![[0.0; 3]; 22]);
        assert_matches_openmm(
            &label,
            "NonbondedForce",
            e.total(),
            reference["NonbondedForce"].as_f64().unwrap(),
        );
        if label == "crd" {
            assert_crd_parts(&[
                (e.coulomb_14, 204.753069),
                (e.lj_14, 20.985654),
                (e.coulomb, -335.249580),
                (e.lj, 11.765349),
            ]);
        }
    }
}

#[test]
fn nonbonded_gradients_match_finite_differences() {
    let nb = nonbonded();
    for (label, x, _) in conformations().into_iter().take(4) {
        let mut g = vec![[0.0; 3]; 22];
        nb.energy_and_grad(&x, &mut g);
        let total = |x: &[[f64; 3]]| nb.energy_and_grad(x, &mut vec![[0.0; 3]; 22]).total();
        assert_gradient_matches_fd(&label, &x, &g, &total);
    }
}

fn gb() -> GbObc {
    let top = Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "alanine-dipeptide.prmtop").unwrap();
    GbObc::from_prmtop(&top, &Nonbonded::from_prmtop(&top).charges)
}

#[test]
fn obc1_energies_match_openmm_for_all_32_conformations() {
    let gb = gb();
    for (label, x, reference) in conformations() {
        let e = gb.energy_and_grad(&x, &mut vec![[0.0; 3]; 22]);
        assert_matches_openmm(
            &label,
            "CustomGBForce",
            e.total(),
            reference["CustomGBForce"].as_f64().unwrap(),
        );
        if label == "crd" {
            assert_crd_parts(&[
                (e.self_energy, -770.001771),
                (e.pair, 702.594886),
                (e.ace, 16.525787),
            ]);
        }
    }
}

#[test]
fn obc1_gradients_match_finite_differences() {
    let gb = gb();
    for (label, x, _) in conformations().into_iter().take(4) {
        let mut g = vec![[0.0; 3]; 22];
        gb.energy_and_grad(&x, &mut g);
        let total = |x: &[[f64; 3]]| gb.energy_and_grad(x, &mut vec![[0.0; 3]; 22]).total();
        assert_gradient_matches_fd(&label, &x, &g, &total);
    }
}

#[test]
fn total_energy_and_forces_match_openmm_for_all_32_conformations() {
    let ff = fab_targets::molecule::ForceField::alanine_dipeptide();
    for (label, x, reference) in conformations() {
        let mut g = vec![[0.0; 3]; 22];
        let e = ff.energy_and_grad(&x, &mut g).unwrap().total();
        assert_matches_openmm(&label, "total", e, reference["total"].as_f64().unwrap());
        if label == "crd" {
            // Exact input coordinates: agreement far below the rounding tolerance (measured 2.3e-8).
            assert!((e - -138.96968726934978).abs() < 1e-6, "{e}");
        }
        let forces = common::triples(&reference["forces"]);
        let largest = forces.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        // Positions in the file are rounded to 1e-8 nm; with bond stiffnesses up to ~6e5 kJ/mol/nm²
        // that alone moves a force by up to ~6e-3 kJ/mol/nm, which dominates near minima where all
        // forces are small. Tolerance: 1e-5 of the largest force component, at least 1e-2 kJ/mol/nm.
        let tol = (1e-5 * largest).max(1e-2);
        for a in 0..22 {
            for d in 0..3 {
                // Force = −∂E/∂x.
                assert!(
                    (-g[a][d] - forces[a][d]).abs() < tol,
                    "{label} atom {a} dim {d}: {} vs {}",
                    -g[a][d],
                    forces[a][d]
                );
            }
        }
    }
}

/// Four conformations per SIMD vector (wide::f64x4, the path every batched density takes) give
/// the scalar energies and gradients to 1e-10 (ln/exp differ from libm in the last bits), also in
/// a partly filled vector, and so match OpenMM as well.
#[test]
fn simd_lanes_match_the_scalar_force_field_and_openmm() {
    let ff = fab_targets::molecule::ForceField::alanine_dipeptide();
    let confs = conformations();
    let mut start = 0;
    // One workspace for every call, as a thread keeps it: buffers must not leak between calls.
    let mut ws = ff.workspace();
    // Chunks of 4, 4, …, then 3 and 1: full and padded vectors.
    for size in [4, 4, 4, 4, 4, 4, 4, 3, 1] {
        let chunk = &confs[start..start + size];
        start += size;
        let xs: Vec<&[[f64; 3]]> = chunk.iter().map(|(_, x, _)| x.as_slice()).collect();
        let mut gs = vec![vec![[0.0; 3]; 22]; size];
        let energies = ff.energy_and_grad_batch(&xs, &mut gs, &mut ws).unwrap();
        for (l, (label, x, reference)) in chunk.iter().enumerate() {
            let mut g = vec![[0.0; 3]; 22];
            let e = ff.energy_and_grad(x, &mut g).unwrap().total();
            assert!(
                (energies[l] - e).abs() < 1e-10 * e.abs().max(1.0),
                "{label}: lanes {} vs scalar {e}",
                energies[l]
            );
            assert_matches_openmm(
                label,
                "total (SIMD)",
                energies[l],
                reference["total"].as_f64().unwrap(),
            );
            let scale = g.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
            for (a, b) in gs[l].iter().flatten().zip(g.iter().flatten()) {
                assert!(
                    (a - b).abs() < 1e-10 * scale,
                    "{label}: gradient {a} vs {b}"
                );
            }
        }
    }
    assert_eq!(start, confs.len());
}

/// The batched Cartesian density (per-thread workspaces, four rows per SIMD vector) gives
/// −E/kT and −∇E/kT of the scalar force field for every row, also when the batch arrives in
/// column-major order and the gradient goes into a strided view.
#[test]
fn cartesian_density_batches_match_the_scalar_force_field() {
    use fab_core::LogDensity;
    use fab_targets::molecule::CartesianBoltzmann;
    use ndarray::{s, Array2, ShapeBuilder};

    let target = CartesianBoltzmann::alanine_dipeptide(300.0);
    let ff = target.force_field();
    let confs = conformations();
    let mut x = Array2::zeros((confs.len(), 66).f());
    for (i, (_, c, _)) in confs.iter().enumerate() {
        for (k, v) in c.iter().flatten().enumerate() {
            x[[i, k]] = *v;
        }
    }
    // Gradient rows interleaved with untouched ones.
    let mut big = Array2::from_elem((2 * confs.len(), 66), 7.0);
    let lp = target
        .log_prob_and_grad(x.view(), big.slice_mut(s![..;2, ..]))
        .unwrap();
    for (i, (label, c, _)) in confs.iter().enumerate() {
        let mut g = vec![[0.0; 3]; 22];
        let e = ff.energy_and_grad(c, &mut g).unwrap().total();
        let want = -e / target.kt();
        assert!((lp[i] - want).abs() < 1e-10 * want.abs(), "{label}");
        let scale = g.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs())) / target.kt();
        for (a, b) in big.row(2 * i).iter().zip(g.iter().flatten()) {
            assert!((a + b / target.kt()).abs() < 1e-10 * scale, "{label}");
        }
        assert!(big.row(2 * i + 1).iter().all(|&v| v == 7.0), "{label}");
    }
}

/// The ndarray batch API: all 32 reference conformations in one call (any batch size, rows
/// spread over threads four at a time) give OpenMM's energies and forces with OpenMM's sign;
/// wrong atom counts, too many conformations for a SIMD call and NaN coordinates are errors.
#[test]
fn batch_energies_and_forces_of_any_size_match_openmm_and_bad_input_is_an_error() {
    use fab_targets::molecule::{ForceField, ForceFieldError};
    use ndarray::Array2;

    let ff = ForceField::alanine_dipeptide();
    let confs = conformations();
    let mut x = Array2::zeros((confs.len(), 66));
    for (i, (_, c, _)) in confs.iter().enumerate() {
        for (k, v) in c.iter().flatten().enumerate() {
            x[[i, k]] = *v;
        }
    }
    let (energies, forces) = ff.energies_and_forces(x.view()).unwrap();
    for (i, (label, _, reference)) in confs.iter().enumerate() {
        assert_matches_openmm(
            label,
            "total (batch)",
            energies[i],
            reference["total"].as_f64().unwrap(),
        );
        let want: Vec<f64> = reference["forces"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                f.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        let largest = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let tol = (1e-5 * largest).max(1e-2);
        for (a, b) in forces.row(i).iter().zip(&want) {
            assert!((a - b).abs() < tol, "{label}: force {a} vs OpenMM {b}");
        }
    }

    // 21 or 23 atoms per row, a short gradient buffer, five conformations in one SIMD call, NaN.
    for cols in [63, 69] {
        let err = ff
            .energies_and_forces(Array2::zeros((3, cols)).view())
            .unwrap_err();
        assert!(
            matches!(err, ForceFieldError::AtomCount { got, .. } if got == cols),
            "{err}"
        );
    }
    let short = vec![[0.0; 3]; 21];
    assert!(ff.energy_and_grad(&confs[0].1, &mut short.clone()).is_err());
    assert!(ff.energy_and_grad(&short, &mut vec![[0.0; 3]; 22]).is_err());
    let five: Vec<&[[f64; 3]]> = confs[..5].iter().map(|(_, c, _)| c.as_slice()).collect();
    let mut gs = vec![vec![[0.0; 3]; 22]; 5];
    assert!(ff
        .energy_and_grad_batch(&five, &mut gs, &mut ff.workspace())
        .is_err());
    let mut bad = x.clone();
    bad[[7, 13]] = f64::NAN;
    assert_eq!(
        ff.energies_and_forces(bad.view()).unwrap_err(),
        ForceFieldError::NonFinite { index: 7 }
    );
    // An empty batch is empty.
    assert_eq!(
        ff.energies_and_forces(Array2::zeros((0, 66)).view())
            .unwrap()
            .0
            .len(),
        0
    );
}
