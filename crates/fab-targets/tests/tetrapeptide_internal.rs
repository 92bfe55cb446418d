//! Internal coordinates of alanine tetrapeptide derived from its bond graph (no hand-written
//! table): round trips x → z → x and z → x → z on the 32 OpenMM reference conformations,
//! log|det| against a finite-difference Jacobian, ∇_z log p against finite differences, and the
//! stereocentre filter against the handedness of each Cα computed directly.

use common::log_abs_det;
use fab_targets::molecule::coordinates::internal::DefaultStd;
use fab_targets::molecule::numeric::vec3::{cross, dot, sub, Vec3};
use fab_targets::molecule::{
    BondGraph, ForceField, InternalBoltzmann, InternalCoordinates, Prmtop, StereoFilter, ZMatrix,
    ALANINE_TETRAPEPTIDE_PRMTOP,
};
use ndarray::Array2;

mod common;

const N_ATOMS: usize = 42;
const DIM: usize = 3 * N_ATOMS - 6;

fn conformations() -> Vec<(String, Vec<Vec3>)> {
    common::conformations(include_str!(
        "data/tetrapeptide-openmm-reference-energies.json"
    ))
    .into_iter()
    .map(|(label, x, _)| (label, x))
    .collect()
}

fn graph() -> BondGraph {
    let top = Prmtop::parse(ALANINE_TETRAPEPTIDE_PRMTOP, "alanine-tetrapeptide.prmtop").unwrap();
    BondGraph::from_prmtop(&top).unwrap()
}

/// The transform with means from the minimised structure (conformation 1).
fn transform() -> InternalCoordinates {
    let zm = ZMatrix::from_bond_graph(&graph()).unwrap();
    InternalCoordinates::from_reference(zm, &conformations()[1].1, DefaultStd::default())
}

fn distance(a: Vec3, b: Vec3) -> f64 {
    let d = sub(a, b);
    dot(d, d).sqrt()
}

#[test]
fn round_trips_keep_every_distance_and_log_dets_are_opposite() {
    let ic = transform();
    assert_eq!(ic.dim(), DIM);
    for (label, x) in conformations() {
        let mut z = vec![0.0; DIM];
        let ld = ic.to_internal(&x, &mut z);
        let mut back = vec![[0.0; 3]; N_ATOMS];
        let ld_inv = ic.to_cartesian(&z, &mut back);
        assert!((ld + ld_inv).abs() < 1e-9, "{label}: {ld} vs {ld_inv}");
        // x → z → x is exact up to the 6 rigid-body coordinates: all pairwise distances agree.
        for i in 0..N_ATOMS {
            for j in i + 1..N_ATOMS {
                let (a, b) = (distance(x[i], x[j]), distance(back[i], back[j]));
                assert!((a - b).abs() < 1e-10, "{label} atoms {i}-{j}: {a} vs {b}");
            }
        }
        // And z → x → z exactly.
        let mut again = vec![0.0; DIM];
        ic.to_internal(&back, &mut again);
        for k in 0..DIM {
            assert!((again[k] - z[k]).abs() < 1e-9, "{label} z[{k}]");
        }
    }
}

/// log|det ∂x/∂z| against the log-determinant of a finite-difference Jacobian of the 114 reduced
/// Cartesian coordinates (x of the +x anchor, x and y of the plane anchor, the 39 placed atoms).
#[test]
fn log_det_matches_the_finite_difference_jacobian() {
    let ic = transform();
    let [_, plus_x, plane] = ic.zmatrix().anchors;
    let (_, x0) = &conformations()[2];
    let mut z0 = vec![0.0; DIM];
    ic.to_internal(x0, &mut z0);
    let reduced = |z: &[f64]| -> Vec<f64> {
        let mut x = vec![[0.0; 3]; N_ATOMS];
        ic.to_cartesian(z, &mut x);
        let mut out = vec![x[plus_x][0], x[plane][0], x[plane][1]];
        for row in &ic.zmatrix().rows {
            out.extend(x[row.atom]);
        }
        out
    };
    let h = 1e-6;
    let mut jac = Array2::<f64>::zeros((DIM, DIM));
    for k in 0..DIM {
        let (mut zp, mut zm) = (z0.clone(), z0.clone());
        zp[k] += h;
        zm[k] -= h;
        let (xp, xm) = (reduced(&zp), reduced(&zm));
        for i in 0..DIM {
            jac[[i, k]] = (xp[i] - xm[i]) / (2.0 * h);
        }
    }
    let mut x = vec![[0.0; 3]; N_ATOMS];
    let ld = ic.to_cartesian(&z0, &mut x);
    let fd = log_abs_det(jac);
    assert!(
        (fd - ld).abs() < 1e-5,
        "log det {ld} vs finite differences {fd}"
    );
}

/// ∇_z log p of the Boltzmann density over the derived coordinates against central differences.
#[test]
fn log_density_gradient_matches_finite_differences() {
    let ic = transform();
    let target = InternalBoltzmann::new(
        ForceField::alanine_tetrapeptide(),
        ic.clone(),
        2.494338785445972,
    );
    for (label, x) in conformations().into_iter().skip(2).take(2) {
        let mut z = vec![0.0; DIM];
        ic.to_internal(&x, &mut z);
        let mut grad = vec![0.0; DIM];
        let p = target.evaluate(&z, Some(&mut grad));
        assert!(p.log_prob.is_finite(), "{label}");
        let h = 1e-6;
        for k in 0..DIM {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[k] += h;
            zm[k] -= h;
            let fd = (target.evaluate(&zp, None).log_prob - target.evaluate(&zm, None).log_prob)
                / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 1e-4 * (1.0 + fd.abs()),
                "{label} z[{k}]: fd {fd} vs {}",
                grad[k]
            );
        }
    }
}

/// The filter's verdict on every reference conformation equals the sign of
/// (N − CA)·((C − CA) × (CB − CA)) of each Cα computed from known atom indices (L: positive).
/// Two noisy conformations (7: ALA2, 16: ALA1) have an inverted Cα.
#[test]
fn the_stereo_filter_agrees_with_each_alpha_carbon() {
    let confs = conformations();
    let filter = StereoFilter::from_reference(&graph(), &confs[1].1);
    let centres: Vec<usize> = filter.centres().iter().map(|c| c.centre).collect();
    assert_eq!(centres, [8, 18, 28]);
    // (N, CA, C, CB) of each ALA.
    let residues = [[6, 8, 14, 10], [16, 18, 24, 20], [26, 28, 34, 30]];
    let mut inverted = Vec::new();
    for (i, (label, x)) in confs.iter().enumerate() {
        let direct: Vec<bool> = residues
            .iter()
            .map(|&[n, ca, c, cb]| {
                dot(sub(x[n], x[ca]), cross(sub(x[c], x[ca]), sub(x[cb], x[ca]))) > 0.0
            })
            .collect();
        assert_eq!(filter.matches(x), direct, "{label} ({i})");
        if !filter.is_reference_form(x) {
            inverted.push(i);
        }
    }
    assert_eq!(inverted, [7, 16]);
    // On internal coordinates (rebuilt to Cartesian) the verdicts are the same.
    let ic = transform();
    let mut z = Array2::zeros((confs.len(), DIM));
    for (i, (_, x)) in confs.iter().enumerate() {
        let mut row = vec![0.0; DIM];
        ic.to_internal(x, &mut row);
        z.row_mut(i).assign(&ndarray::ArrayView1::from(&row));
    }
    let mask = filter.mask_internal(&ic, z.view());
    let rejected: Vec<usize> = (0..confs.len()).filter(|&i| !mask[i]).collect();
    assert_eq!(rejected, [7, 16]);
}

#[test]
fn batches_of_cartesian_rows_map_to_the_same_internal_coordinates_as_one_by_one() {
    let t = transform();
    let confs = conformations();
    let mut x = Array2::zeros((confs.len(), 3 * t.n_atoms()));
    for (mut row, (_, c)) in x.rows_mut().into_iter().zip(&confs) {
        row.assign(&ndarray::Array1::from(c.concat()));
    }
    let z = t.internal_of_rows(x.view()).unwrap();
    for (zr, (name, c)) in z.rows().into_iter().zip(&confs) {
        let mut want = vec![0.0; t.dim()];
        t.to_internal(c, &mut want);
        assert_eq!(zr.to_vec(), want, "{name}");
    }
    // And back: the Cartesian rows of those z rebuild the conformations' internal coordinates.
    let rebuilt = t.cartesian_of_rows(z.view()).unwrap();
    assert_eq!(rebuilt.dim(), x.dim());
    let again = t.internal_of_rows(rebuilt.view()).unwrap();
    let worst = (&again - &z).iter().fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(worst < 1e-8, "{worst}");
    // Rows of another width are an error.
    assert!(t
        .internal_of_rows(x.slice(ndarray::s![.., 1..]).view())
        .is_err());
    assert!(t
        .cartesian_of_rows(z.slice(ndarray::s![.., 1..]).view())
        .is_err());
}
