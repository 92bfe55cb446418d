//! `fab md`: ground-truth molecular dynamics of alanine dipeptide (or any `Peptide` target) by
//! temperature replica exchange, with a progress bar. Writes into the output directory:
//! `frames_z.npy` (n, 60) internal coordinates, `frames_x.npy` (n, 66) Cartesian nm,
//! `phi_psi.npy` (n, 2) rad, `energy.npy` (n) kJ/mol, `md.json` (settings, exchange acceptance,
//! basin populations, energy statistics, wall time) and `ramachandran.png`. For a molecule of k
//! residues `phi_psi.npy` holds φ₁, ψ₁, …, φₖ, ψₖ (n, 2k), md.json the populations of each residue
//! (`populations_by_residue`) and `ramachandran.png` one panel per residue.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray_npy::WritableElement;

use fab_targets::aldp::ground_truth::{replica_exchange_of, BasinPopulations, MdSystem};
use fab_targets::aldp::Peptide;
use fab_targets::replica_exchange::ReplicaExchangeConfig;
use fab_targets::TargetConfig;

use crate::config::RunConfig;
use crate::plot::{ramachandran, RamachandranPanel};

/// Name of the summary file; it is written last, so its presence marks a finished run.
pub const MD_SUMMARY: &str = "md.json";

/// The molecule of a run config's target and its name: alanine dipeptide or a `Peptide`.
pub fn md_system(config: &RunConfig) -> Result<(MdSystem, String)> {
    match &config.target {
        TargetConfig::AlanineDipeptide(_) => {
            Ok((MdSystem::alanine_dipeptide(), "alanine-dipeptide".into()))
        }
        TargetConfig::Peptide(p) => {
            let peptide = Peptide::from_files(&p.prmtop, &p.coordinates)?;
            let system = MdSystem::peptide(&peptide)
                .with_context(|| format!("{}", p.prmtop.display()))?;
            Ok((system, p.prmtop.display().to_string()))
        }
        other => bail!("`fab md` needs a molecule: target AlanineDipeptide(...) or Peptide(...), not {other:?}"),
    }
}

/// The ground-truth settings of a molecule's run config, with an optional length override.
pub fn ground_truth_config(
    config: &RunConfig,
    length_ps: Option<f64>,
) -> Result<ReplicaExchangeConfig> {
    let (mut md, mut aldp) = match &config.target {
        TargetConfig::AlanineDipeptide(aldp) => (aldp.ground_truth.clone(), aldp.clone()),
        TargetConfig::Peptide(p) => (
            p.ground_truth.clone(),
            fab_targets::AldpConfig {
                temperature: p.temperature,
                chirality_filter: p.chirality_filter,
                ground_truth: p.ground_truth.clone(),
            },
        ),
        _ => bail!("`fab md` needs a config with target AlanineDipeptide(...) or Peptide(...)"),
    };
    if let Some(l) = length_ps {
        md.length = l;
    }
    aldp.ground_truth = md.clone();
    aldp.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(md)
}

/// Writes an array as .npy atomically (temp file + rename), so a crash never leaves half a file.
fn write_npy<A, D>(dir: &Path, name: &str, array: &ndarray::ArrayBase<A, D>) -> Result<()>
where
    A: ndarray::Data,
    A::Elem: WritableElement,
    D: ndarray::Dimension,
{
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    ndarray_npy::write_npy(&tmp, array)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Whether `out` holds a finished run of `molecule` with exactly the settings `md` (the cache key).
pub fn is_cached(md: &ReplicaExchangeConfig, molecule: &str, out: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(out.join(MD_SUMMARY)) else {
        return false;
    };
    let Ok(summary) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let same = serde_json::to_value(md).is_ok_and(|v| v == summary["settings"]);
    // md.json files written before other molecules existed have no "molecule": the dipeptide.
    let recorded = summary["molecule"].as_str().unwrap_or("alanine-dipeptide");
    same && recorded == molecule && summary["complete"] == serde_json::Value::Bool(true)
}

/// `fab md`: runs the config's replica exchange and writes the frames into `out`; with `reuse`,
/// a finished run with identical settings already in `out` is kept instead.
pub fn md(
    config_path: &Path,
    out: Option<PathBuf>,
    length_ps: Option<f64>,
    reuse: bool,
) -> Result<()> {
    let config = RunConfig::load(config_path)?;
    let md = ground_truth_config(&config, length_ps)
        .with_context(|| format!("invalid config {}", config_path.display()))?;
    let (system, molecule) =
        md_system(&config).with_context(|| format!("invalid config {}", config_path.display()))?;
    let out = out.unwrap_or_else(|| config.output.dir.join("ground-truth"));
    if reuse && is_cached(&md, &molecule, &out) {
        eprintln!(
            "reusing the ground truth in {} (same settings)",
            out.display()
        );
        return Ok(());
    }
    crate::commands::in_pool(config.threads, || run(&md, &system, &molecule, &out))
}

/// Convergence check (spec aldp-target.md §7.3): KL(first half ‖ second half) of the φ, ψ and
/// Ramachandran histograms and the basin populations of each half. The KL values are a floor for
/// any model comparison against these frames.
fn half_comparison(phi_psi: &ndarray::Array2<f64>) -> serde_json::Value {
    use fab_core::histogram::{density_1d, density_2d, kl_divergence};
    use std::f64::consts::PI;
    let n = phi_psi.nrows() / 2;
    if n == 0 {
        return serde_json::Value::Null;
    }
    let (a, b) = (
        phi_psi.slice(ndarray::s![..n, ..]),
        phi_psi.slice(ndarray::s![n..2 * n, ..]),
    );
    let kl1 = |col: usize| {
        let p = density_1d(a.column(col), None, 200, (-PI, PI));
        let q = density_1d(b.column(col), None, 200, (-PI, PI));
        kl_divergence(p.iter(), q.iter(), 2.0 * PI / 200.0)
    };
    let p = density_2d(a, None, 64, (-PI, PI));
    let q = density_2d(b, None, 64, (-PI, PI));
    serde_json::json!({
        "kld_phi": kl1(0),
        "kld_psi": kl1(1),
        "kld_ramachandran": kl_divergence(p.iter(), q.iter(), (2.0 * PI / 64.0).powi(2)),
        "populations_first_half": BasinPopulations::of(&a.to_owned(), None),
        "populations_second_half": BasinPopulations::of(&b.to_owned(), None),
    })
}

/// Runs replica exchange of `system` (named `molecule` in md.json) with settings `md` and writes
/// the results into `out`.
pub fn run(
    md: &ReplicaExchangeConfig,
    system: &MdSystem,
    molecule: &str,
    out: &Path,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let n_frames = md.n_frames() as u64;
    let temps = md.temperatures();
    eprintln!(
        "replica exchange: {} replicas {:.0}–{:.0} K, {} ps per replica ({} frames) → {}",
        md.n_replicas,
        md.t_min,
        md.t_max,
        md.length,
        n_frames,
        out.display()
    );
    let bar = ProgressBar::new(n_frames);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} frames ({eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let started = Instant::now();
    let (frames, acceptance) = replica_exchange_of(system, md, &mut |p| {
        bar.set_position(p.frames as u64);
        if p.frames % 10 == 0 {
            let mean_acc = p.acceptance.iter().filter(|a| a.is_finite()).sum::<f64>()
                / p.acceptance.len().max(1) as f64;
            bar.set_message(format!(
                "U({:.0} K) {:.1} kJ/mol, exchange acceptance {:.2}",
                temps[0], p.energies[0], mean_acc
            ));
        }
        !stop.load(Ordering::Relaxed)
    });
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    // Only a run that passes the ground-truth checks (frame count included) is marked complete
    // (and reused).
    let verdict = frames.check(md);
    let complete = verdict.is_ok();
    write_npy(out, "frames_z.npy", &frames.z)?;
    write_npy(out, "frames_x.npy", &frames.x)?;
    write_npy(out, "phi_psi.npy", &frames.phi_psi)?;
    write_npy(out, "energy.npy", &frames.energy)?;
    // One (φ, ψ) pair per residue.
    let n_residues = frames.phi_psi.ncols() / 2;
    let pair = |k: usize| frames.phi_psi.slice(ndarray::s![.., 2 * k..2 * k + 2]);
    let titles: Vec<String> = (0..n_residues)
        .map(|k| {
            let residue = if n_residues > 1 {
                format!("residue {}, ", k + 1)
            } else {
                String::new()
            };
            format!(
                "{residue}replica exchange, {:.0} K, {} frames",
                md.t_min,
                frames.z.nrows()
            )
        })
        .collect();
    let panels: Vec<RamachandranPanel> = (0..n_residues)
        .map(|k| RamachandranPanel {
            title: &titles[k],
            phi_psi: pair(k),
            weights: None,
        })
        .collect();
    ramachandran(&panels, &out.join("ramachandran.png"))?;
    let by_residue: Vec<BasinPopulations> = (0..n_residues)
        .map(|k| BasinPopulations::of(&pair(k).to_owned(), None))
        .collect();
    let pops = by_residue[0];
    let halves = half_comparison(&pair(0).to_owned());
    let n = frames.energy.len().max(1) as f64;
    let mean = frames.energy.sum() / n;
    let std = (frames.energy.mapv(|e| (e - mean) * (e - mean)).sum() / n).sqrt();
    let steps_per_replica = md.steps(md.equilibration) as f64
        + frames.z.nrows() as f64 * md.steps(md.save_interval) as f64;
    let summary = serde_json::json!({
        "settings": md,
        "complete": complete,
        "check": verdict.as_ref().err().cloned().unwrap_or_else(|| "passed".into()),
        "frames": frames.z.nrows(),
        "kinetic_temperature_mean_k": frames.temperature.mean().unwrap_or(f64::NAN),
        "temperatures_k": temps,
        "exchange_acceptance": acceptance,
        "molecule": molecule,
        "populations": pops,
        "populations_by_residue": by_residue,
        "halves": halves,
        "energy_mean_kj_per_mol": mean,
        "energy_std_kj_per_mol": std,
        "force_evaluations": steps_per_replica * md.n_replicas as f64,
        "wall_seconds": seconds,
        "ns_per_day_per_replica": steps_per_replica * md.dt * 1e-3 / seconds * 86_400.0,
    });
    let path = out.join(MD_SUMMARY);
    let tmp = out.join(format!(".{MD_SUMMARY}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "{} frames in {seconds:.0} s; populations φ>0 {:.4}, αR {:.4}, β {:.4}; exchange acceptance {:?}{}",
        frames.z.nrows(),
        pops.phi_positive,
        pops.alpha_r,
        pops.beta,
        acceptance.iter().map(|a| (a * 100.0).round() / 100.0).collect::<Vec<_>>(),
        if complete { "" } else { " (incomplete)" }
    );
    if let Err(reason) = verdict {
        if !stop.load(Ordering::Relaxed) {
            bail!(
                "the MD in {} failed its checks and is not marked complete: {reason}",
                out.display()
            );
        }
    }
    Ok(())
}
