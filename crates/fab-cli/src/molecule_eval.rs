//! Molecule evaluation against ground-truth MD for `fab eval --ground-truth`. The library does
//! the work: `fab_targets::molecule::md::run_files::load_ground_truth` reads the `fab md` frames and
//! `fab_targets::molecule::evaluation::compare_with_md` computes the metrics (per-residue KL
//! divergences of φ, ψ and the Ramachandran map, basin populations ± SE, L-form populations,
//! marginal KL divergences of every internal coordinate). This file adds the flow's mean log q on
//! the frames, draws ramachandran.png and phi.png (one of each per residue for longer peptides:
//! ramachandran_residue2.png, …) and writes marginal_klds.csv.

use std::f64::consts::PI;
use std::path::Path;

use anyhow::{Context, Result};
use ndarray::{s, Array1, ArrayView1, ArrayView2};

use fab_core::histogram::density_1d;
use fab_core::metrics::Evaluation;
use fab_core::Flow;
use fab_targets::molecule::evaluation::{compare_with_md, residue_pair, MdFrames, ModelSamples};
use fab_targets::molecule::InternalBoltzmann;

use crate::charts::{ramachandran, RamachandranPanel};

/// Computes the molecule metrics of an evaluation against `truth` and writes the plots and
/// marginal_klds.csv into `run`.
pub fn evaluate(
    ev: &Evaluation,
    flow: &dyn Flow,
    target: &InternalBoltzmann,
    truth: &MdFrames,
    run: &Path,
) -> Result<Vec<(String, f64)>> {
    let mut cmp = compare_with_md(
        target,
        truth,
        ModelSamples {
            z: ev.flow_x.view(),
            log_w: ev.flow_log_w.view(),
        },
        ModelSamples {
            z: ev.ais_x.view(),
            log_w: ev.ais_log_w.view(),
        },
    )?;
    let mut m = std::mem::take(&mut cmp.metrics);
    // Mean log q of (up to 10,000 evenly spaced) ground-truth frames under the flow.
    let stride = (truth.z.nrows() / 10_000).max(1);
    let test = truth.z.slice(s![..;stride, ..]).to_owned();
    let log_q: Array1<f64> = flow.log_prob(test.view())?;
    let finite: Vec<f64> = log_q.iter().copied().filter(|v| v.is_finite()).collect();
    m.push((
        "test_mean_log_q_ground_truth".into(),
        finite.iter().sum::<f64>() / finite.len().max(1) as f64,
    ));

    let mut csv = String::from("index,kind,flow,flow_reweighted,ais_reweighted\n");
    for k in &cmp.marginals {
        csv.push_str(&format!(
            "{},{:?},{},{},{}\n",
            k.index, k.kind, k.flow, k.flow_reweighted, k.ais_reweighted
        ));
    }
    let path = run.join("marginal_klds.csv");
    std::fs::write(&path, csv).with_context(|| format!("cannot write {}", path.display()))?;

    let n_res = target.residues().len();
    for k in 0..n_res {
        let name = |stem: &str| {
            if k == 0 {
                format!("{stem}.png")
            } else {
                format!("{stem}_residue{}.png", k + 1)
            }
        };
        let gt = residue_pair(truth.torsions.view(), k);
        let flow_k = residue_pair(cmp.flow_torsions.view(), k);
        let ais_k = residue_pair(cmp.ais_torsions.view(), k);
        let w_flow = cmp.flow_weights.view();
        let w_ais = cmp.ais_weights.view();
        plot_residue(
            gt.view(),
            [flow_k.view(), ais_k.view()],
            [w_flow, w_ais],
            &run.join(name("ramachandran")),
            &run.join(name("phi")),
        )?;
    }
    Ok(m)
}

/// ramachandran.png (MD, flow, flow reweighted, AIS reweighted side by side) and phi.png (the φ
/// marginals overlaid) of one residue.
fn plot_residue<'a>(
    gt: ArrayView2<'a, f64>,
    [flow, ais]: [ArrayView2<'a, f64>; 2],
    [w_flow, w_ais]: [ArrayView1<'a, f64>; 2],
    rama_path: &Path,
    phi_path: &Path,
) -> Result<()> {
    ramachandran(
        &[
            RamachandranPanel {
                title: "ground truth (MD)",
                phi_psi: gt,
                weights: None,
            },
            RamachandranPanel {
                title: "flow",
                phi_psi: flow,
                weights: None,
            },
            RamachandranPanel {
                title: "flow, reweighted",
                phi_psi: flow,
                weights: Some(w_flow),
            },
            RamachandranPanel {
                title: "AIS, reweighted",
                phi_psi: ais,
                weights: Some(w_ais),
            },
        ],
        rama_path,
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
    crate::charts::overlaid_densities(
        &[
            ("ground truth", curve(gt, None)),
            ("flow", curve(flow, None)),
            ("flow, reweighted", curve(flow, Some(w_flow))),
            ("AIS, reweighted", curve(ais, Some(w_ais))),
        ],
        "φ (rad)",
        phi_path,
    )
}
