//! Evaluation against MD frames (`molecule::evaluation::compare_with_md`): samples identical to the
//! frames give zero KL divergences and the frames' own populations; shifting one internal
//! coordinate shows up in that coordinate's marginal only; importance weights move the
//! reweighted populations; per-residue names for the tetrapeptide; bad shapes are errors.

use fab_core::rng::seeded;
use fab_targets::molecule::coordinates::internal::CoordinateKind;
use fab_targets::molecule::evaluation::{compare_with_md, MdFrames, ModelSamples};
use fab_targets::molecule::{InternalBoltzmann, Peptide};
use ndarray::{Array1, Array2};
use rand::Rng;

/// `n` random conformations in z: circular dihedrals uniform on [−π, π), the rest N(0, 0.3²)-ish
/// (uniform ±0.5), so every Ramachandran basin is visited.
fn frames(target: &InternalBoltzmann, n: usize, seed: u64) -> MdFrames {
    let dim = target.transform().dim();
    let circular = target.transform().circular_indices();
    let mut rng = seeded(seed);
    let z = Array2::from_shape_fn((n, dim), |(_, j)| {
        if circular.contains(&j) {
            rng.gen_range(-std::f64::consts::PI..std::f64::consts::PI)
        } else {
            rng.gen_range(-0.5..0.5)
        }
    });
    let torsions = target.backbone_torsions(z.view());
    MdFrames { z, torsions }
}

fn metric(m: &[(String, f64)], name: &str) -> f64 {
    m.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
        .1
}

#[test]
fn samples_equal_to_the_frames_score_zero_and_the_frames_populations() {
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    let truth = frames(&target, 600, 1);
    let log_w = Array1::zeros(600);
    let same = ModelSamples {
        z: truth.z.view(),
        log_w: log_w.view(),
    };
    let cmp = compare_with_md(&target, &truth, same, same).unwrap();
    for (name, value) in &cmp.metrics {
        if name.starts_with("kld_") {
            // Exactly 0 unweighted; weights 1/n round the histogram densities.
            assert!(value.abs() < 1e-12, "{name}: {value}");
        }
    }
    for set in ["flow", "flow_reweighted", "ais_reweighted"] {
        for basin in ["phi_positive", "alpha_r", "alpha_l"] {
            let model = metric(&cmp.metrics, &format!("population_{basin}_{set}"));
            let md = metric(&cmp.metrics, &format!("population_{basin}_ground_truth"));
            assert!((model - md).abs() < 1e-12, "{basin} {set}: {model} vs {md}");
        }
    }
    // Uniform φ: about half the samples have φ > 0.
    let pos = metric(&cmp.metrics, "population_phi_positive_flow");
    assert!((pos - 0.5).abs() < 0.1, "φ > 0 fraction {pos}");
    assert_eq!(cmp.marginals.len(), 60);
    assert_eq!(metric(&cmp.metrics, "ground_truth_frames"), 600.0);
}

#[test]
fn a_shifted_coordinate_shows_in_its_own_marginal_only() {
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    let truth = frames(&target, 800, 2);
    let j = 3; // the first Z-matrix row's bond
    assert_eq!(CoordinateKind::of_index(j), CoordinateKind::Bond);
    let mut z = truth.z.clone();
    z.column_mut(j).mapv_inplace(|v| v + 0.5);
    let log_w = Array1::zeros(800);
    let shifted = ModelSamples {
        z: z.view(),
        log_w: log_w.view(),
    };
    let cmp = compare_with_md(&target, &truth, shifted, shifted).unwrap();
    for k in &cmp.marginals {
        if k.index == j {
            // Half of the support no longer overlaps: KL ≈ ln 2 plus the ε penalty.
            assert!(k.flow > 0.5, "shifted bond KLD {}", k.flow);
        } else {
            assert_eq!(k.flow, 0.0, "coordinate {} ({:?})", k.index, k.kind);
        }
    }
    assert!(metric(&cmp.metrics, "kld_marginals_bonds_mean_flow") > 0.5 / 21.0);
    assert_eq!(metric(&cmp.metrics, "kld_marginals_angles_mean_flow"), 0.0);
}

#[test]
fn importance_weights_move_the_reweighted_populations() {
    let target = InternalBoltzmann::alanine_dipeptide(300.0);
    let truth = frames(&target, 1000, 3);
    let phi = truth.torsions.column(0).to_owned();
    // Weight 3 on φ > 0: reweighted φ > 0 fraction p' = 3p / (3p + 1 − p).
    let log_w = phi.mapv(|p| if p > 0.0 { 3f64.ln() } else { 0.0 });
    let samples = ModelSamples {
        z: truth.z.view(),
        log_w: log_w.view(),
    };
    let cmp = compare_with_md(&target, &truth, samples, samples).unwrap();
    let p = metric(&cmp.metrics, "population_phi_positive_flow");
    let want = 3.0 * p / (3.0 * p + 1.0 - p);
    let got = metric(&cmp.metrics, "population_phi_positive_flow_reweighted");
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    assert!(metric(&cmp.metrics, "kld_phi_flow_reweighted") > 0.01);
}

#[test]
fn tetrapeptide_metrics_per_residue_and_shape_errors() {
    let target = Peptide::alanine_tetrapeptide().target(300.0, true).unwrap();
    let truth = frames(&target, 200, 4);
    let log_w = Array1::zeros(200);
    let same = ModelSamples {
        z: truth.z.view(),
        log_w: log_w.view(),
    };
    let none = Array2::zeros((0, 120));
    let no_w = Array1::zeros(0);
    let no_ais = ModelSamples {
        z: none.view(),
        log_w: no_w.view(),
    };
    let cmp = compare_with_md(&target, &truth, same, no_ais).unwrap();
    for k in 1..=3 {
        assert_eq!(metric(&cmp.metrics, &format!("kld_phi_flow_{k}")), 0.0);
        metric(
            &cmp.metrics,
            &format!("population_alpha_r_ground_truth_se_{k}"),
        );
    }
    assert!(!cmp.metrics.iter().any(|(k, _)| k.contains("ais")));
    assert_eq!(cmp.marginals.len(), 120);

    let wrong = Array2::zeros((5, 60));
    let w5 = Array1::zeros(5);
    let bad = ModelSamples {
        z: wrong.view(),
        log_w: w5.view(),
    };
    let err = compare_with_md(&target, &truth, bad, no_ais).unwrap_err();
    assert!(err.to_string().contains("flow z"), "{err}");
    let empty = MdFrames {
        z: Array2::zeros((0, 120)),
        torsions: Array2::zeros((0, 6)),
    };
    let err = compare_with_md(&target, &empty, same, no_ais).unwrap_err();
    assert!(err.to_string().contains("at least one frame"), "{err}");
}
