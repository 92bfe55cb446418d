//! A peptide model judged against ground-truth MD, for any number of residues (fab-torch's
//! `evaluate_aldp` generalised): per residue, the KL divergences KL(MD ‖ model) of the φ and ψ
//! marginals (200 bins on [−π, π)) and of the Ramachandran map (64 × 64 bins), the basin
//! populations with standard errors (delta method for weighted samples, block averaging for the
//! correlated MD frames), the φ > 0 population among L-form samples, and how far in log weight
//! the αL/C7ax core is from carrying weight; for the whole molecule, the KL divergences of the 1-D
//! marginals of every internal coordinate (bonds, angles, dihedrals; the paper's table), each on
//! 200 bins over [−5, 5) in normalised units (circular dihedrals over [−π, π)).
//!
//! Three sample sets are judged: plain flow samples (`flow`), the same reweighted by their
//! importance weights (`flow_reweighted`), and reweighted AIS samples (`ais_reweighted`). Metric
//! names are those of eval.json; for molecules of several residues every per-residue name ends in
//! `_1`, `_2`, … (residue order along the backbone).

use std::f64::consts::PI;

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use serde::Serialize;

use fab_core::histogram::{density_1d, density_2d, kl_divergence};
use fab_core::weights::normalised_weights;

use crate::molecule::basins::BasinPopulations;
use crate::molecule::coordinates::internal::CoordinateKind;
use crate::molecule::InternalBoltzmann;

/// Blocks of MD frames for the standard errors of the ground-truth populations.
pub const MD_BLOCKS: usize = 20;

/// Bins of every 1-D marginal histogram.
pub const MARGINAL_BINS: usize = 200;

/// Half-width of the histogram range of non-circular normalised coordinates.
pub const MARGINAL_RANGE: f64 = 5.0;

/// Why an evaluation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    /// Arrays whose shapes do not fit the molecule.
    #[error("{what}: shape {shape:?}, expected {expected}")]
    Shape {
        /// Which array.
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// What the molecule needs.
        expected: String,
    },
}

/// Ground-truth MD frames of a molecule: internal coordinates (n, dim) and backbone torsions
/// φ₁, ψ₁, …, φₖ, ψₖ (n, 2k) in rad, in time order (the block standard errors rely on it).
#[derive(Debug, Clone)]
pub struct MdFrames {
    /// (n, dim) normalised internal coordinates.
    pub z: Array2<f64>,
    /// (n, 2k) backbone torsions.
    pub torsions: Array2<f64>,
}

/// Model samples: normalised internal coordinates and their log importance weights.
#[derive(Debug, Clone, Copy)]
pub struct ModelSamples<'a> {
    /// (n, dim) samples.
    pub z: ArrayView2<'a, f64>,
    /// (n,) log w = log p̃ − log q (−inf for rejected samples).
    pub log_w: ArrayView1<'a, f64>,
}

/// KL(MD ‖ model) of one internal coordinate's 1-D marginal for each sample set.
#[derive(Debug, Clone, Serialize)]
pub struct MarginalKld {
    /// Index in z.
    pub index: usize,
    /// Bond, angle or dihedral.
    pub kind: CoordinateKind,
    /// Plain flow samples.
    pub flow: f64,
    /// Flow samples with importance weights.
    pub flow_reweighted: f64,
    /// AIS samples with importance weights (NaN without AIS samples).
    pub ais_reweighted: f64,
}

/// What [`compare_with_md`] finds: the scalar metrics, the per-coordinate marginal KLDs, and the
/// torsions and normalised weights of the samples (for plots).
#[derive(Debug, Clone)]
pub struct MdComparison {
    /// (name, value) in eval.json's naming.
    pub metrics: Vec<(String, f64)>,
    /// One entry per internal coordinate.
    pub marginals: Vec<MarginalKld>,
    /// (n, 2k) backbone torsions of the flow samples.
    pub flow_torsions: Array2<f64>,
    /// (m, 2k) backbone torsions of the AIS samples.
    pub ais_torsions: Array2<f64>,
    /// Self-normalised importance weights of the flow samples.
    pub flow_weights: Array1<f64>,
    /// Self-normalised importance weights of the AIS samples.
    pub ais_weights: Array1<f64>,
}

/// The name suffix of residue `k` (0-based) in a molecule of `n` residues: none for one residue.
pub fn residue_suffix(k: usize, n: usize) -> String {
    if n > 1 {
        format!("_{}", k + 1)
    } else {
        String::new()
    }
}

/// Columns 2k, 2k + 1 (residue k's φ, ψ) of a torsion array.
pub fn residue_pair(torsions: ArrayView2<f64>, k: usize) -> Array2<f64> {
    torsions.slice(s![.., 2 * k..2 * k + 2]).to_owned()
}

/// KL(p ‖ q) of the φ and ψ marginals (200 bins) and of the Ramachandran map (64²) of one
/// residue's (n, 2) angles.
pub fn torsion_klds(
    truth: ArrayView2<f64>,
    model: ArrayView2<f64>,
    weights: Option<ArrayView1<f64>>,
) -> [f64; 3] {
    let range = (-PI, PI);
    let mut out = [0.0; 3];
    for (k, col) in [0usize, 1].into_iter().enumerate() {
        let p = density_1d(truth.column(col), None, 200, range);
        let q = density_1d(model.column(col), weights, 200, range);
        out[k] = kl_divergence(p.iter(), q.iter(), 2.0 * PI / 200.0);
    }
    let p = density_2d(truth, None, 64, range);
    let q = density_2d(model, weights, 64, range);
    out[2] = kl_divergence(p.iter(), q.iter(), (2.0 * PI / 64.0).powi(2));
    out
}

/// max log w over all samples − max log w over samples whose φ (column 0 of `angles`) lies in
/// the αL/C7ax core 0 < φ < 2; +inf when no sample with a finite weight lies there.
pub fn alpha_l_log_w_gap(angles: ArrayView2<f64>, log_w: ArrayView1<f64>) -> f64 {
    let best = |in_basin: bool| {
        angles
            .column(0)
            .iter()
            .zip(log_w)
            .filter(|(phi, lw)| lw.is_finite() && (**phi > 0.0 && **phi < 2.0 || !in_basin))
            .map(|(_, lw)| *lw)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    best(false) - best(true)
}

/// KL(MD ‖ model) of the 1-D marginal of z column `i` (range by kind, see the module docs).
fn marginal_kld(
    truth: ArrayView1<f64>,
    model: ArrayView1<f64>,
    weights: Option<ArrayView1<f64>>,
    circular: bool,
) -> f64 {
    let half = if circular { PI } else { MARGINAL_RANGE };
    let p = density_1d(truth, None, MARGINAL_BINS, (-half, half));
    let q = density_1d(model, weights, MARGINAL_BINS, (-half, half));
    kl_divergence(p.iter(), q.iter(), 2.0 * half / MARGINAL_BINS as f64)
}

/// Appends the per-residue population metrics of one sample set.
fn push_populations(
    m: &mut Vec<(String, f64)>,
    prefix: &str,
    name: &str,
    suffix: &str,
    pops: BasinPopulations,
    se: BasinPopulations,
) {
    for (basin, p, e) in [
        ("phi_positive", pops.phi_positive, se.phi_positive),
        ("alpha_r", pops.alpha_r, se.alpha_r),
        ("alpha_l", pops.alpha_l, se.alpha_l),
    ] {
        m.push((format!("{prefix}{basin}_{name}{suffix}"), p));
        m.push((format!("{prefix}{basin}_{name}_se{suffix}"), e));
    }
}

/// Judges flow and AIS samples of `target`'s molecule against ground-truth MD `truth` (see the
/// module docs for what is computed). AIS samples may be empty (their metrics are then left out
/// and their marginal KLDs are NaN).
pub fn compare_with_md<'a>(
    target: &InternalBoltzmann,
    truth: &MdFrames,
    flow: ModelSamples<'a>,
    ais: ModelSamples<'a>,
) -> Result<MdComparison, EvaluationError> {
    let dim = target.transform().dim();
    let n_res = target.residues().len();
    let shape_check = |what: &'static str, shape: &[usize], cols: usize| {
        if shape.len() != 2 || shape[1] != cols {
            return Err(EvaluationError::Shape {
                what,
                shape: shape.to_vec(),
                expected: format!("(n, {cols})"),
            });
        }
        Ok(())
    };
    shape_check("MD z", truth.z.shape(), dim)?;
    shape_check("MD torsions", truth.torsions.shape(), 2 * n_res)?;
    shape_check("flow z", flow.z.shape(), dim)?;
    shape_check("AIS z", ais.z.shape(), dim)?;
    if truth.z.nrows() == 0 {
        return Err(EvaluationError::Shape {
            what: "MD z",
            shape: truth.z.shape().to_vec(),
            expected: "at least one frame".into(),
        });
    }
    if truth.z.nrows() != truth.torsions.nrows()
        || flow.z.nrows() != flow.log_w.len()
        || ais.z.nrows() != ais.log_w.len()
    {
        return Err(EvaluationError::Shape {
            what: "row counts",
            shape: vec![
                truth.z.nrows(),
                truth.torsions.nrows(),
                flow.z.nrows(),
                flow.log_w.len(),
                ais.z.nrows(),
                ais.log_w.len(),
            ],
            expected: "MD z and torsions alike, each z with one log weight per row".into(),
        });
    }
    let has_ais = ais.z.nrows() > 0;
    let flow_torsions = target.backbone_torsions(flow.z);
    let ais_torsions = target.backbone_torsions(ais.z);
    let w_flow = normalised_weights(flow.log_w);
    let w_ais = normalised_weights(ais.log_w);
    let mut m = Vec::new();

    for k in 0..n_res {
        let suffix = residue_suffix(k, n_res);
        let gt = residue_pair(truth.torsions.view(), k);
        let flow_k = residue_pair(flow_torsions.view(), k);
        let ais_k = residue_pair(ais_torsions.view(), k);
        let mut sets = vec![
            ("flow", &flow_k, None),
            ("flow_reweighted", &flow_k, Some(&w_flow)),
        ];
        if has_ais {
            sets.push(("ais_reweighted", &ais_k, Some(&w_ais)));
        }
        for (name, angles, w) in sets {
            let [phi, psi, rama] = torsion_klds(gt.view(), angles.view(), w.map(|w| w.view()));
            m.push((format!("kld_phi_{name}{suffix}"), phi));
            m.push((format!("kld_psi_{name}{suffix}"), psi));
            m.push((format!("kld_ramachandran_{name}{suffix}"), rama));
            let w = w.and_then(|w| w.as_slice());
            let pops = BasinPopulations::of(angles, w);
            let se = BasinPopulations::importance_standard_errors(angles, w);
            push_populations(&mut m, "population_", name, &suffix, pops, se);
        }
        // MD frames are correlated: standard errors by block averaging.
        let pops = BasinPopulations::of(&gt, None);
        let se = BasinPopulations::block_standard_errors(&gt, MD_BLOCKS);
        push_populations(&mut m, "population_", "ground_truth", &suffix, pops, se);
        // How far the αL/C7ax basin is from carrying importance weight: the best log weight among
        // samples with 0 < φ < 2 below the best log weight overall (nats; +inf with no finite
        // sample there). Near 0 the basin is found; tens of nats mean its samples are clashes.
        m.push((
            format!("log_w_gap_alpha_l_flow{suffix}"),
            alpha_l_log_w_gap(flow_k.view(), flow.log_w),
        ));
        if has_ais {
            m.push((
                format!("log_w_gap_alpha_l_ais{suffix}"),
                alpha_l_log_w_gap(ais_k.view(), ais.log_w),
            ));
        }
    }

    // The MD is all L-form, while the flow also puts some samples on the mirror image, whose β
    // basin lies at φ > 0. φ > 0 among the L-form samples only separates the two.
    let mut l_sets = vec![("flow_reweighted", flow.z, &flow_torsions, &w_flow)];
    if has_ais {
        l_sets.push(("ais_reweighted", ais.z, &ais_torsions, &w_ais));
    }
    for (name, z, torsions, w) in l_sets {
        let keep = target.mirror_filter().mask(target.transform(), z);
        let rows: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
        let kept = torsions.select(Axis(0), &rows);
        let w_kept: Vec<f64> = rows.iter().map(|&i| w[i]).collect();
        for k in 0..n_res {
            let suffix = residue_suffix(k, n_res);
            let angles = residue_pair(kept.view(), k);
            let pops = BasinPopulations::of(&angles, Some(&w_kept));
            let se = BasinPopulations::importance_standard_errors(&angles, Some(&w_kept));
            m.push((
                format!("population_phi_positive_{name}_l_form{suffix}"),
                pops.phi_positive,
            ));
            m.push((
                format!("population_phi_positive_{name}_l_form_se{suffix}"),
                se.phi_positive,
            ));
        }
        // The weights are normalised over all samples: this is the importance mass of the L form.
        m.push((format!("l_form_mass_{name}"), w_kept.iter().sum::<f64>()));
    }
    m.push(("ground_truth_frames".into(), truth.z.nrows() as f64));

    // Marginals of every internal coordinate.
    let circular = target.transform().circular_indices();
    let marginals: Vec<MarginalKld> = (0..dim)
        .map(|i| {
            let c = circular.contains(&i);
            let t = truth.z.column(i);
            MarginalKld {
                index: i,
                kind: CoordinateKind::of_index(i),
                flow: marginal_kld(t, flow.z.column(i), None, c),
                flow_reweighted: marginal_kld(t, flow.z.column(i), Some(w_flow.view()), c),
                ais_reweighted: if has_ais {
                    marginal_kld(t, ais.z.column(i), Some(w_ais.view()), c)
                } else {
                    f64::NAN
                },
            }
        })
        .collect();
    type Pick = fn(&MarginalKld) -> f64;
    let mut sets: Vec<(&str, Pick)> = vec![
        ("flow", |k| k.flow),
        ("flow_reweighted", |k| k.flow_reweighted),
    ];
    if has_ais {
        sets.push(("ais_reweighted", |k| k.ais_reweighted));
    }
    for (name, value) in sets {
        for (group, kind) in [
            ("bonds", Some(CoordinateKind::Bond)),
            ("angles", Some(CoordinateKind::Angle)),
            ("dihedrals", Some(CoordinateKind::Dihedral)),
            ("all", None),
        ] {
            let vals: Vec<f64> = marginals
                .iter()
                .filter(|k| kind.is_none_or(|kind| k.kind == kind))
                .map(value)
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
            m.push((format!("kld_marginals_{group}_mean_{name}"), mean));
        }
        let max = marginals
            .iter()
            .map(value)
            .fold(f64::NEG_INFINITY, f64::max);
        m.push((format!("kld_marginals_max_{name}"), max));
    }
    Ok(MdComparison {
        metrics: m,
        marginals,
        flow_torsions,
        ais_torsions,
        flow_weights: w_flow,
        ais_weights: w_ais,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn alpha_l_gap_compares_the_best_weights_inside_and_outside_the_basin() {
        // φ: β basin, αL, αL, αR; the αL samples are 30 and 12 nats below the best one.
        let angles = array![[-2.5, 2.5], [1.0, 0.5], [1.5, -1.0], [-1.2, -0.7]];
        let log_w = array![-170.0, -200.0, -182.0, f64::NAN];
        assert_eq!(alpha_l_log_w_gap(angles.view(), log_w.view()), 12.0);
        let none_there = array![-170.0, f64::NEG_INFINITY, f64::NAN, -171.0];
        assert_eq!(
            alpha_l_log_w_gap(angles.view(), none_there.view()),
            f64::INFINITY
        );
    }

    #[test]
    fn residue_suffixes_only_for_several_residues() {
        assert_eq!(residue_suffix(0, 1), "");
        assert_eq!(residue_suffix(0, 3), "_1");
        assert_eq!(residue_suffix(2, 3), "_3");
    }
}
