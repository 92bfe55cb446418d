//! Alanine-dipeptide evaluation against ground-truth MD, as fab-torch's `evaluate_aldp`:
//! KL divergences KL(ground truth ‖ model) of the φ and ψ marginals (200 bins on [−π, π)) and of
//! the Ramachandran histogram (64 × 64), for plain flow samples, importance-reweighted flow samples
//! and reweighted AIS samples; the population of the rare φ > 0 basin and how far (in log weight)
//! its αL/C7ax core is from carrying weight; the flow's mean log q on the
//! ground-truth frames; plots ramachandran.png (side by side) and phi.png (φ marginals overlaid).

use std::f64::consts::PI;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};

use fab_core::histogram::{density_1d, density_2d, kl_divergence};
use fab_core::metrics::Evaluation;
use fab_core::weights::normalised_weights;
use fab_core::Flow;
use fab_targets::aldp::ground_truth::BasinPopulations;
use fab_targets::aldp::ramachandran::phi_psi_of_internal;
use fab_targets::aldp::{ChiralityFilter, InternalCoordinates};

use crate::md::MD_SUMMARY;
use crate::plot::{ramachandran, RamachandranPanel};

/// Ground-truth frames read from a `fab md` output directory.
pub struct GroundTruth {
    /// (n, 60) internal coordinates.
    pub z: Array2<f64>,
    /// (n, 2) φ, ψ in rad.
    pub phi_psi: Array2<f64>,
}

fn read_npy2(path: &Path, cols: usize) -> Result<Array2<f64>> {
    let a: Array2<f64> = ndarray_npy::read_npy(path).with_context(|| {
        format!(
            "cannot read {} as an (n, {cols}) float64 array",
            path.display()
        )
    })?;
    if a.ncols() != cols || a.nrows() == 0 {
        bail!(
            "{}: shape {:?}, expected (n > 0, {cols})",
            path.display(),
            a.shape()
        );
    }
    Ok(a)
}

impl GroundTruth {
    /// Reads `frames_z.npy` and `phi_psi.npy` of a finished `fab md` run.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.join(MD_SUMMARY).exists() {
            bail!(
                "{} has no {MD_SUMMARY}: not a finished `fab md` run (run `fab md --config …` first)",
                dir.display()
            );
        }
        let summary_path = dir.join(MD_SUMMARY);
        let summary: serde_json::Value = std::fs::read_to_string(&summary_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .with_context(|| format!("{} is unreadable", summary_path.display()))?;
        if summary["complete"] != serde_json::Value::Bool(true) {
            bail!(
                "{} is not a complete ground truth ({}); rerun `fab md`",
                dir.display(),
                summary["check"].as_str().unwrap_or("stopped early")
            );
        }
        let z = read_npy2(&dir.join("frames_z.npy"), 60)?;
        let phi_psi = read_npy2(&dir.join("phi_psi.npy"), 2)?;
        if z.nrows() != phi_psi.nrows() {
            bail!(
                "{}: frames_z.npy and phi_psi.npy have different lengths",
                dir.display()
            );
        }
        Ok(Self { z, phi_psi })
    }
}

/// Blocks of MD frames for the standard errors of the ground-truth populations.
const MD_BLOCKS: usize = 20;

/// The three KL divergences of one sample set against the ground truth.
fn klds(
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

/// A named sample set with optional log weights.
type SampleSet<'a> = (&'a str, ArrayView2<'a, f64>, Option<ArrayView1<'a, f64>>);

/// max log w over all samples − max log w over samples in the αL/C7ax core (0 < φ < 2); +inf
/// when no sample with a finite weight lies there.
fn alpha_l_log_w_gap(angles: ArrayView2<f64>, log_w: ArrayView1<f64>) -> f64 {
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

/// Computes the alanine metrics of an evaluation and writes the plots into `run`.
pub fn evaluate(
    ev: &Evaluation,
    flow: &dyn Flow,
    truth: &GroundTruth,
    run: &Path,
) -> Result<Vec<(String, f64)>> {
    let transform = InternalCoordinates::alanine_dipeptide();
    let flow_angles = phi_psi_of_internal(&transform, ev.flow_x.view());
    let ais_angles = phi_psi_of_internal(&transform, ev.ais_x.view());
    let w_flow = normalised_weights(ev.flow_log_w.view());
    let w_ais = normalised_weights(ev.ais_log_w.view());
    let gt = truth.phi_psi.view();
    let mut m = Vec::new();
    let sets: [SampleSet; 3] = [
        ("flow", flow_angles.view(), None),
        ("flow_reweighted", flow_angles.view(), Some(w_flow.view())),
        ("ais_reweighted", ais_angles.view(), Some(w_ais.view())),
    ];
    for (name, angles, w) in &sets {
        let [phi, psi, rama] = klds(gt, *angles, *w);
        m.push((format!("kld_phi_{name}"), phi));
        m.push((format!("kld_psi_{name}"), psi));
        m.push((format!("kld_ramachandran_{name}"), rama));
        let (angles, w) = (angles.to_owned(), w.and_then(|w| w.to_slice()));
        let pops = BasinPopulations::of(&angles, w);
        let se = BasinPopulations::importance_standard_errors(&angles, w);
        m.push((format!("population_phi_positive_{name}"), pops.phi_positive));
        m.push((
            format!("population_phi_positive_{name}_se"),
            se.phi_positive,
        ));
        m.push((format!("population_alpha_r_{name}"), pops.alpha_r));
        m.push((format!("population_alpha_r_{name}_se"), se.alpha_r));
        m.push((format!("population_alpha_l_{name}"), pops.alpha_l));
        m.push((format!("population_alpha_l_{name}_se"), se.alpha_l));
    }
    // The MD is all L-alanine, while the flow also puts some samples on the mirror image, whose
    // β basin lies at φ > 0. φ > 0 among the L-form samples only separates the two.
    let filter = ChiralityFilter::default();
    for (name, z, angles, w) in [
        (
            "flow_reweighted",
            ev.flow_x.view(),
            flow_angles.view(),
            &w_flow,
        ),
        ("ais_reweighted", ev.ais_x.view(), ais_angles.view(), &w_ais),
    ] {
        let keep = filter.mask(z);
        let rows: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
        let angles = angles.select(ndarray::Axis(0), &rows);
        let w: Vec<f64> = rows.iter().map(|&i| w[i]).collect();
        let pops = BasinPopulations::of(&angles, Some(&w));
        let se = BasinPopulations::importance_standard_errors(&angles, Some(&w));
        m.push((
            format!("population_phi_positive_{name}_l_form"),
            pops.phi_positive,
        ));
        m.push((
            format!("population_phi_positive_{name}_l_form_se"),
            se.phi_positive,
        ));
        // The weights are normalised over all samples: this is the importance mass of the L form.
        m.push((format!("l_form_mass_{name}"), w.iter().sum::<f64>()));
    }
    // How far the αL/C7ax basin is from carrying importance weight: the best log weight among
    // samples with 0 < φ < 2 below the best log weight overall (nats; +inf with no finite
    // sample there). Near 0 the basin is found; tens of nats mean its samples are clashes.
    for (name, angles, log_w) in [
        ("flow", flow_angles.view(), ev.flow_log_w.view()),
        ("ais", ais_angles.view(), ev.ais_log_w.view()),
    ] {
        m.push((
            format!("log_w_gap_alpha_l_{name}"),
            alpha_l_log_w_gap(angles, log_w),
        ));
    }
    // MD frames are correlated: standard errors by block averaging.
    let pops = BasinPopulations::of(&truth.phi_psi, None);
    let se = BasinPopulations::block_standard_errors(&truth.phi_psi, MD_BLOCKS);
    m.push((
        "population_phi_positive_ground_truth".into(),
        pops.phi_positive,
    ));
    m.push((
        "population_phi_positive_ground_truth_se".into(),
        se.phi_positive,
    ));
    m.push(("population_alpha_r_ground_truth".into(), pops.alpha_r));
    m.push(("population_alpha_r_ground_truth_se".into(), se.alpha_r));
    m.push(("population_alpha_l_ground_truth".into(), pops.alpha_l));
    m.push(("population_alpha_l_ground_truth_se".into(), se.alpha_l));
    m.push(("ground_truth_frames".into(), truth.z.nrows() as f64));
    // Mean log q of (up to 10,000 evenly spaced) ground-truth frames under the flow.
    let stride = (truth.z.nrows() / 10_000).max(1);
    let test = truth.z.slice(s![..;stride, ..]).to_owned();
    let log_q: Array1<f64> = flow.log_prob(test.view())?;
    let finite: Vec<f64> = log_q.iter().copied().filter(|v| v.is_finite()).collect();
    m.push((
        "test_mean_log_q_ground_truth".into(),
        finite.iter().sum::<f64>() / finite.len().max(1) as f64,
    ));

    ramachandran(
        &[
            RamachandranPanel {
                title: "ground truth (MD)",
                phi_psi: gt,
                weights: None,
            },
            RamachandranPanel {
                title: "flow",
                phi_psi: flow_angles.view(),
                weights: None,
            },
            RamachandranPanel {
                title: "flow, reweighted",
                phi_psi: flow_angles.view(),
                weights: Some(w_flow.view()),
            },
            RamachandranPanel {
                title: "AIS, reweighted",
                phi_psi: ais_angles.view(),
                weights: Some(w_ais.view()),
            },
        ],
        &run.join("ramachandran.png"),
    )?;
    let bins = 100;
    let width = 2.0 * PI / bins as f64;
    let curve = |angles: ArrayView2<f64>, w: Option<ArrayView1<f64>>| -> Vec<(f64, f64)> {
        density_1d(angles.column(0), w, bins, (-PI, PI))
            .iter()
            .enumerate()
            .map(|(i, d)| (-PI + (i as f64 + 0.5) * width, *d))
            .collect()
    };
    crate::plot::overlaid_densities(
        &[
            ("ground truth", curve(gt, None)),
            ("flow", curve(flow_angles.view(), None)),
            (
                "flow, reweighted",
                curve(flow_angles.view(), Some(w_flow.view())),
            ),
            (
                "AIS, reweighted",
                curve(ais_angles.view(), Some(w_ais.view())),
            ),
        ],
        "φ (rad)",
        &run.join("phi.png"),
    )?;
    Ok(m)
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
}
