//! The force field on a second molecule: alanine tetrapeptide (42 atoms, a ParmEd-written prmtop
//! with per-torsion 1-4 scale factors) against OpenMM 8.6.1 Reference for 32 conformations
//! (tests/data/tetrapeptide-openmm-reference-energies.json, copied from the project's shared data).
//! Unlike the dipeptide file, positions are stored at full precision, so the tolerances are tight:
//! every force group within 1e-7 relative and forces within 1e-6 of the largest component.

mod common;

use common::triples;
use fab_targets::molecule::forcefield::bonded::BondedTerms;
use fab_targets::molecule::forcefield::gb_obc::GbObc;
use fab_targets::molecule::forcefield::nonbonded::Nonbonded;
use fab_targets::molecule::{ForceField, Prmtop, ALANINE_TETRAPEPTIDE_PRMTOP};

const N_ATOMS: usize = 42;

struct Reference {
    label: String,
    x: Vec<[f64; 3]>,
    terms: serde_json::Value,
    total: f64,
    forces: Vec<[f64; 3]>,
}

fn conformations() -> Vec<Reference> {
    common::conformations(include_str!(
        "data/tetrapeptide-openmm-reference-energies.json"
    ))
    .into_iter()
    .map(|(label, x, c)| Reference {
        label,
        x,
        terms: c["terms_kj_per_mol"].clone(),
        total: c["energy_kj_per_mol"].as_f64().unwrap(),
        forces: triples(&c["forces_kj_per_mol_nm"]),
    })
    .collect()
}

fn topology() -> Prmtop {
    Prmtop::parse(ALANINE_TETRAPEPTIDE_PRMTOP, "alanine-tetrapeptide.prmtop").unwrap()
}

/// Relative agreement 1e-7 (of the term itself, at least 1e-7 kJ/mol for terms near zero).
fn assert_close(label: &str, what: &str, ours: f64, want: f64) {
    let tol = (1e-7 * want.abs()).max(1e-7);
    assert!(
        (ours - want).abs() < tol,
        "{label} {what}: {ours} vs OpenMM {want} (difference {:e})",
        ours - want
    );
}

#[test]
fn the_parmed_layout_is_read_with_its_scale_factors() {
    let top = topology();
    assert_eq!(top.n_atoms(), N_ATOMS);
    assert_eq!(top.residue_labels, ["ACE", "ALA", "ALA", "ALA", "NME"]);
    // The README's counts: 41 bonds, 72 angles, 118 torsion entries.
    assert_eq!(
        (top.bonds.len(), top.angles.len(), top.dihedrals.len()),
        (41, 72, 118)
    );
    assert!(top.dihedrals.iter().all(|d| d.scee == 1.2 && d.scnb == 2.0));
    // 204 excluded pairs, 91 of them scaled 1-4 pairs.
    assert_eq!(top.exclusions.iter().map(Vec::len).sum::<usize>(), 204);
    let nb = Nonbonded::from_prmtop(&top);
    assert_eq!(nb.n_pairs().1, 91);
    assert_eq!(nb.n_pairs().0 + 204, N_ATOMS * (N_ATOMS - 1) / 2);
}

/// The scale factors are used, not assumed: halving scee doubles the 1-4 Coulomb energy.
#[test]
fn per_torsion_scale_factors_change_the_one_four_energy() {
    let text = ALANINE_TETRAPEPTIDE_PRMTOP;
    let start = text.find("%FLAG SCEE_SCALE_FACTOR").unwrap();
    let end = start + text[start..].find("%FLAG SCNB_SCALE_FACTOR").unwrap();
    let changed = format!(
        "{}{}{}",
        &text[..start],
        text[start..end].replace("1.20000000E+00", "6.00000000E-01"),
        &text[end..]
    );
    let x = &conformations()[0].x;
    let e = |t: &str| {
        Nonbonded::from_prmtop(&Prmtop::parse(t, "t.prmtop").unwrap())
            .energy_and_grad(x, &mut vec![[0.0; 3]; N_ATOMS])
    };
    let (base, halved) = (e(text), e(&changed));
    assert!((halved.coulomb_14 - 2.0 * base.coulomb_14).abs() < 1e-9 * base.coulomb_14.abs());
    assert_eq!(halved.lj_14, base.lj_14);
    assert_eq!(halved.coulomb, base.coulomb);
    // A zero or negative factor is refused with the section's name.
    let broken = format!(
        "{}{}{}",
        &text[..start],
        text[start..end].replacen("1.20000000E+00", "0.00000000E+00", 1),
        &text[end..]
    );
    let err = Prmtop::parse(&broken, "t.prmtop").unwrap_err().to_string();
    assert!(err.contains("SCEE_SCALE_FACTOR"), "{err}");
}

#[test]
fn every_force_group_matches_openmm_for_all_32_conformations() {
    let top = topology();
    let bonded = BondedTerms::from_prmtop(&top);
    let nb = Nonbonded::from_prmtop(&top);
    let gb = GbObc::from_prmtop(&top, &nb.charges);
    let confs = conformations();
    assert_eq!(confs.len(), 32);
    for c in &confs {
        let mut g = vec![[0.0; 3]; N_ATOMS];
        let b = bonded.energy_and_grad(&c.x, &mut g);
        let n = nb.energy_and_grad(&c.x, &mut g);
        let s = gb.energy_and_grad(&c.x, &mut g);
        for (ours, key) in [
            (b.bond, "HarmonicBondForce"),
            (b.angle, "HarmonicAngleForce"),
            (b.torsion, "PeriodicTorsionForce"),
            (n.total(), "NonbondedForce"),
            (s.total(), "CustomGBForce"),
        ] {
            assert_close(&c.label, key, ours, c.terms[key].as_f64().unwrap());
        }
    }
}

#[test]
fn total_energy_and_forces_match_openmm_for_all_32_conformations() {
    let ff = ForceField::alanine_tetrapeptide();
    assert_eq!(ff.n_atoms(), N_ATOMS);
    let confs = conformations();
    // The batch API (any number of rows, four per SIMD call) on all 32 at once.
    let rows: Vec<f64> = confs
        .iter()
        .flat_map(|c| c.x.iter().flatten())
        .copied()
        .collect();
    let x = ndarray::Array2::from_shape_vec((confs.len(), 3 * N_ATOMS), rows).unwrap();
    let (energies, forces) = ff.energies_and_forces(x.view()).unwrap();
    for (i, c) in confs.iter().enumerate() {
        let mut g = vec![[0.0; 3]; N_ATOMS];
        let e = ff.energy_and_grad(&c.x, &mut g).unwrap().total();
        assert_close(&c.label, "total", e, c.total);
        assert_close(&c.label, "total (batched)", energies[i], c.total);
        let largest = c
            .forces
            .iter()
            .flatten()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        // 1e-6 of the largest component (measured: at most 2e-9 of it), with a floor of 1e-5
        // kJ/mol/nm for the minimised structure, whose largest force is only 1.3e-3 while each
        // atom's force is a sum of terms near 1e3 (measured differences there: up to 5e-7).
        let tol = (1e-6 * largest).max(1e-5);
        for a in 0..N_ATOMS {
            for d in 0..3 {
                let want = c.forces[a][d];
                for (what, ours) in [
                    ("force", -g[a][d]),
                    ("batched force", forces[[i, 3 * a + d]]),
                ] {
                    assert!(
                        (ours - want).abs() < tol,
                        "{} atom {a} dim {d} {what}: {ours} vs {want} (tolerance {tol:e})",
                        c.label
                    );
                }
            }
        }
    }
}
