//! FAB's internal-coordinate transform and target density for alanine dipeptide against the boltzgen
//! reference values in tests/data/internal-coordinate-reference.json (22 conformations: crd,
//! minimised, MD at 300 K, MD + 0.01 nm noise), plus round trips, finite-difference gradients,
//! periodicity and the chirality filter.

mod common;

use common::log_abs_det;
use ndarray::{Array1, Array2};
use serde_json::Value;

use fab_core::LogDensity;
use fab_targets::molecule::coordinates::internal::wrap_angle;
use fab_targets::molecule::coordinates::ramachandran::phi_psi;
use fab_targets::molecule::{ChiralityFilter, InternalBoltzmann, InternalCoordinates};

struct Reference {
    label: String,
    x_openmm: Vec<[f64; 3]>,
    z: Vec<f64>,
    x_reconstructed: Vec<[f64; 3]>,
    log_det_forward: f64,
    log_det_inverse: f64,
    energy: f64,
    log_prob: f64,
    grad: Vec<f64>,
    phi: f64,
    psi: f64,
    chirality: f64,
    is_l: bool,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect()
}

fn points(v: &Value) -> Vec<[f64; 3]> {
    let flat: Vec<f64> = match v.as_array().unwrap()[0].as_array() {
        Some(_) => v.as_array().unwrap().iter().flat_map(floats).collect(),
        None => floats(v),
    };
    flat.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn references() -> Vec<Reference> {
    let energies: Value =
        serde_json::from_str(include_str!("data/openmm-reference-energies.json")).unwrap();
    let internal: Value =
        serde_json::from_str(include_str!("data/internal-coordinate-reference.json")).unwrap();
    internal["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let idx = v["index_in_openmm_reference_energies"].as_u64().unwrap() as usize;
            Reference {
                label: format!("{} #{idx}", v["label"].as_str().unwrap()),
                x_openmm: points(&energies["conformations"][idx]["positions_nm"]),
                z: floats(&v["z"]),
                x_reconstructed: points(&v["x_reconstructed_nm"]),
                log_det_forward: v["log_det_forward_x_to_z"].as_f64().unwrap(),
                log_det_inverse: v["log_det_inverse_z_to_x"].as_f64().unwrap(),
                energy: v["energy_kj_per_mol_at_x_reconstructed"].as_f64().unwrap(),
                log_prob: v["log_prob_z__kT_R8.314e-3"].as_f64().unwrap(),
                grad: floats(&v["grad_log_prob_z__kT_R8.314e-3"]),
                phi: v["phi_rad_iupac"].as_f64().unwrap(),
                psi: v["psi_rad_iupac"].as_f64().unwrap(),
                chirality: v["chirality_diff_z17_minus_z26"].as_f64().unwrap(),
                is_l: v["is_L_by_filter"].as_bool().unwrap(),
            }
        })
        .collect()
}

#[test]
fn transform_matches_boltzgen_on_all_reference_conformations() {
    let ic = InternalCoordinates::alanine_dipeptide();
    let refs = references();
    assert_eq!(refs.len(), 22);
    for r in &refs {
        let mut z = vec![0.0; 60];
        let ld = ic.to_internal(&r.x_openmm, &mut z);
        assert_eq!(r.z.len(), 60, "{}", r.label);
        for (k, (&zk, &rk)) in z.iter().zip(&r.z).enumerate() {
            // Circular coordinates may land on either side of ±π.
            let diff = zk - rk;
            let diff = if ic.circular_indices().contains(&k) {
                wrap_angle(diff)
            } else {
                diff
            };
            assert!(
                diff.abs() < 1e-9,
                "{} z[{k}]: {} vs boltzgen {}",
                r.label,
                zk,
                rk
            );
        }
        assert!(
            (ld - r.log_det_forward).abs() < 1e-9,
            "{}: log det x→z {ld} vs {}",
            r.label,
            r.log_det_forward
        );

        let mut x = vec![[0.0; 3]; 22];
        let ld_inv = ic.to_cartesian(&r.z, &mut x);
        assert!(
            (ld_inv - r.log_det_inverse).abs() < 1e-9,
            "{}: log det z→x",
            r.label
        );
        assert_eq!(r.x_reconstructed.len(), 22, "{}", r.label);
        for (a, (xa, want)) in x.iter().zip(&r.x_reconstructed).enumerate() {
            for d in 0..3 {
                assert!(
                    (xa[d] - want[d]).abs() < 1e-11,
                    "{} atom {a}: reconstruction {:?} vs {:?}",
                    r.label,
                    xa,
                    want
                );
            }
        }
        let (phi, psi) = phi_psi(&r.x_openmm);
        assert!(
            wrap_angle(phi - r.phi).abs() < 1e-9 && wrap_angle(psi - r.psi).abs() < 1e-9,
            "{}: φ/ψ",
            r.label
        );
        let filter = ChiralityFilter::default();
        let zv = Array1::from(r.z.clone());
        assert!(
            (filter.difference(zv.view()) - r.chirality).abs() < 1e-9,
            "{}: chirality",
            r.label
        );
        assert_eq!(filter.is_l(zv.view()), r.is_l, "{}: L/D", r.label);
    }
}

#[test]
fn log_prob_and_gradient_match_boltzgen_with_openmm_forces() {
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    for r in references() {
        let mut grad = vec![0.0; 60];
        let p = target.evaluate(&r.z, Some(&mut grad));
        // Energies agree with OpenMM to ~1e-4 kJ/mol on the noisy structures (spec): 1e-4/kT in log p.
        assert!(
            (p.energy - r.energy).abs() < (1e-7 * r.energy.abs()).max(2e-4),
            "{}: E {} vs {}",
            r.label,
            p.energy,
            r.energy
        );
        assert!(
            (p.log_prob - r.log_prob).abs() < (1e-7 * r.log_prob.abs()).max(1e-4),
            "{}: log p {} vs {}",
            r.label,
            p.log_prob,
            r.log_prob
        );
        let scale = r.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        assert_eq!(r.grad.len(), 60, "{}", r.label);
        for (k, (&gk, &rk)) in grad.iter().zip(&r.grad).enumerate() {
            assert!(
                (gk - rk).abs() < 1e-6 * scale,
                "{}: ∂log p/∂z[{k}] {} vs boltzgen {} (largest {scale})",
                r.label,
                gk,
                rk
            );
        }
    }
}

/// Central differences of log p(z) against the analytic gradient, every coordinate.
#[test]
fn gradient_matches_finite_differences() {
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    for r in references().iter().step_by(5) {
        let mut grad = vec![0.0; 60];
        target.evaluate(&r.z, Some(&mut grad));
        let h = 1e-6;
        for k in 0..60 {
            let (mut zp, mut zm) = (r.z.clone(), r.z.clone());
            zp[k] += h;
            zm[k] -= h;
            let fd = (target.evaluate(&zp, None).log_prob - target.evaluate(&zm, None).log_prob)
                / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 1e-5 * (1.0 + fd.abs()),
                "{} k={k}: fd {fd} vs analytic {}",
                r.label,
                grad[k]
            );
        }
    }
}

#[test]
fn round_trips_are_exact_and_log_dets_are_opposite() {
    let ic = InternalCoordinates::alanine_dipeptide();
    for r in references() {
        let mut x = vec![[0.0; 3]; 22];
        let ld_inv = ic.to_cartesian(&r.z, &mut x);
        let mut z = vec![0.0; 60];
        let ld = ic.to_internal(&x, &mut z);
        assert!((ld + ld_inv).abs() < 1e-10, "{}", r.label);
        for (k, (&zk, &rk)) in z.iter().zip(&r.z).enumerate() {
            assert!((zk - rk).abs() < 1e-10, "{} z[{k}]", r.label);
        }
    }
}

/// log|det ∂x/∂z| against the log-determinant of a finite-difference Jacobian of the 60 reduced
/// Cartesian coordinates (x_N, x_C, y_C and the 19 placed atoms).
#[test]
fn log_det_matches_the_finite_difference_jacobian() {
    let ic = InternalCoordinates::alanine_dipeptide();
    let r = &references()[2];
    let reduced = |z: &[f64]| -> Vec<f64> {
        let mut x = vec![[0.0; 3]; 22];
        ic.to_cartesian(z, &mut x);
        let mut out = vec![x[6][0], x[14][0], x[14][1]];
        for row in &ic.zmatrix().rows {
            out.extend(x[row.atom]);
        }
        out
    };
    let h = 1e-6;
    let mut jac = Array2::<f64>::zeros((60, 60));
    for k in 0..60 {
        let (mut zp, mut zm) = (r.z.clone(), r.z.clone());
        zp[k] += h;
        zm[k] -= h;
        let (xp, xm) = (reduced(&zp), reduced(&zm));
        for i in 0..60 {
            jac[[i, k]] = (xp[i] - xm[i]) / (2.0 * h);
        }
    }
    let mut x = vec![[0.0; 3]; 22];
    let ld = ic.to_cartesian(&r.z, &mut x);
    let fd = log_abs_det(jac);
    assert!(
        (fd - ld).abs() < 1e-5,
        "log det {ld} vs finite differences {fd}"
    );
}

#[test]
fn density_is_periodic_in_the_circular_coordinates() {
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    let ic = target.transform();
    let r = &references()[3];
    let base = target.evaluate(&r.z, None).log_prob;
    for k in ic.circular_indices() {
        let mut z = r.z.clone();
        z[k] += 2.0 * std::f64::consts::PI;
        let shifted = target.evaluate(&z, None).log_prob;
        assert!(
            (shifted - base).abs() < 1e-8,
            "z[{k}] + 2π: {shifted} vs {base}"
        );
    }
}

#[test]
fn batched_density_equals_pointwise_and_mirror_image_is_d_form() {
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    let refs = references();
    let mut z = Array2::zeros((refs.len(), 60));
    for (i, r) in refs.iter().enumerate() {
        z.row_mut(i).assign(&Array1::from(r.z.clone()));
    }
    let mut grad = Array2::zeros(z.raw_dim());
    let lp = target.log_prob_and_grad(z.view(), grad.view_mut()).unwrap();
    // 22 rows: five full SIMD vectors and one padded one.
    for (i, r) in refs.iter().enumerate() {
        assert_row_is_pointwise(&target, &r.z, lp[i], grad.row(i), i);
    }
    // Reflecting crd through a plane gives D-alanine: same energy, other side of the filter.
    let ic = target.transform();
    let mirrored: Vec<[f64; 3]> = refs[0]
        .x_openmm
        .iter()
        .map(|p| [p[0], p[1], -p[2]])
        .collect();
    let mut zm = vec![0.0; 60];
    ic.to_internal(&mirrored, &mut zm);
    let filter = ChiralityFilter::default();
    let d = filter.difference(Array1::from(zm.clone()).view());
    assert!(
        !filter.is_l(Array1::from(zm).view()) && (d.abs() - 2.11).abs() < 0.05,
        "mirror difference {d}"
    );
}

/// A point whose density is −inf (a negative bond length) shares SIMD lanes with valid points:
/// it gets log p = −inf and a zero gradient, and its lane neighbours are unaffected; the batch
/// may arrive in column-major order.
#[test]
fn invalid_rows_in_a_batch_leave_their_lane_neighbours_alone() {
    use ndarray::ShapeBuilder;
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    let refs = references();
    let mut z = Array2::zeros((5, 60).f());
    for (i, r) in refs.iter().take(5).enumerate() {
        z.row_mut(i).assign(&Array1::from(r.z.clone()));
    }
    // Row 1: the first Z-matrix bond at mean − 1000 std (< 0 nm): ln b in log|det| is NaN.
    z[[1, 3]] = -1000.0;
    let mut grad = Array2::from_elem((5, 60), 7.0);
    let lp = target.log_prob_and_grad(z.view(), grad.view_mut()).unwrap();
    assert_eq!(lp[1], f64::NEG_INFINITY);
    assert!(grad.row(1).iter().all(|&g| g == 0.0));
    for i in [0, 2, 3, 4] {
        assert_row_is_pointwise(&target, &refs[i].z, lp[i], grad.row(i), i);
    }
}

/// A batch row's log p and gradient equal the pointwise evaluation at z to 1e-10 (the batch runs
/// on SIMD lanes, whose ln/exp/sin differ from libm's in the last bits only).
fn assert_row_is_pointwise(
    target: &InternalBoltzmann,
    z: &[f64],
    lp: f64,
    grad: ndarray::ArrayView1<f64>,
    row: usize,
) {
    let mut g = vec![0.0; 60];
    let want = target.evaluate(z, Some(&mut g)).log_prob;
    assert!((lp - want).abs() < 1e-10 * want.abs().max(1.0), "row {row}");
    let scale = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in grad.iter().zip(&g) {
        assert!((a - b).abs() < 1e-10 * scale, "row {row}: {a} vs {b}");
    }
}

/// The stereocentre filter any molecule gets (handedness of each stereocentre against a reference
/// structure) gives FAB's two-dihedral verdict on every reference conformation of alanine
/// dipeptide, including the D one, through z as the training filter sees it.
#[test]
fn the_generic_stereo_filter_agrees_with_fabs_chirality_filter() {
    use fab_targets::molecule::{BondGraph, Prmtop, StereoFilter, ALANINE_DIPEPTIDE_PRMTOP};
    let top = Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "alanine-dipeptide.prmtop").unwrap();
    let ic = InternalCoordinates::alanine_dipeptide();
    // The reference handedness from the transform's mean structure (z = 0).
    let mut x0 = vec![[0.0; 3]; 22];
    ic.to_cartesian(&[0.0; 60], &mut x0);
    let stereo = StereoFilter::from_reference(&BondGraph::from_prmtop(&top).unwrap(), &x0);
    let refs = references();
    // Each reference conformation and its mirror image (x → −x), which is the D form.
    let mut z = Array2::zeros((2 * refs.len(), 60));
    for (i, r) in refs.iter().enumerate() {
        z.row_mut(i).assign(&Array1::from(r.z.clone()));
        let mirror: Vec<[f64; 3]> = r.x_openmm.iter().map(|p| [-p[0], p[1], p[2]]).collect();
        let mut zm = vec![0.0; 60];
        ic.to_internal(&mirror, &mut zm);
        z.row_mut(refs.len() + i).assign(&Array1::from(zm));
    }
    let generic = stereo.mask_internal(&ic, z.view());
    let fab = ChiralityFilter::default().mask(z.view());
    assert_eq!(generic, fab);
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(generic[i], r.is_l, "{}", r.label);
        assert_eq!(generic[refs.len() + i], !r.is_l, "mirror of {}", r.label);
    }
}
