//! `fab md`: ground-truth molecular dynamics of alanine dipeptide (or any `Peptide` target) by
//! temperature replica exchange, with a progress bar and Ctrl-C to stop. The run and its files
//! are library code (`fab_targets::molecule::md::ground_truth::replica_exchange_of`,
//! `fab_targets::molecule::md::run_files`: frames as .npy and as a DCD trajectory with its topology PDB,
//! md.json); this file adds the progress bar, `ramachandran.png` (one panel per residue) and the
//! printed summary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use fab_targets::molecule::basins::BasinPopulations;
use fab_targets::molecule::md::ground_truth::replica_exchange_of;
use fab_targets::molecule::md::replica_exchange::ReplicaExchangeConfig;
use fab_targets::molecule::md::run_files::{is_cached, write_md_run, MdRun};
use fab_targets::Molecule;

use crate::charts::{ramachandran, RamachandranPanel};
use crate::config::RunConfig;

/// The molecule of a run config's target; an error for targets that are not molecules.
pub fn molecule_of(config: &RunConfig) -> Result<Molecule> {
    match Molecule::from_config(&config.target)? {
        Some(m) => Ok(m),
        None => bail!(
            "`fab md` needs a molecule: target AlanineDipeptide(...) or Peptide(...), not {:?}",
            config.target
        ),
    }
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
    let invalid = || format!("invalid config {}", config_path.display());
    let molecule = molecule_of(&config).with_context(invalid)?;
    let md = molecule
        .ground_truth(length_ps)
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(invalid)?;
    let out = out.unwrap_or_else(|| config.output.dir.join("ground-truth"));
    if reuse && is_cached(&md, &molecule.md_name, &out) {
        eprintln!(
            "reusing the ground truth in {} (same settings)",
            out.display()
        );
        return Ok(());
    }
    crate::pool::in_pool(config.threads, || run(&md, &molecule, &out))
}

/// Runs replica exchange of `molecule` with settings `md` and writes the results into `out`.
pub fn run(md: &ReplicaExchangeConfig, molecule: &Molecule, out: &Path) -> Result<()> {
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
    let (frames, acceptance) = replica_exchange_of(&molecule.md, md, &mut |p| {
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
    let summary = write_md_run(
        out,
        &MdRun {
            settings: md,
            molecule: &molecule.md_name,
            frames: &frames,
            acceptance: &acceptance,
            wall_seconds: seconds,
            topology: &molecule.peptide.topology,
        },
    )?;
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
    let pops = BasinPopulations::of(&pair(0).to_owned(), None);
    let complete = summary["complete"] == serde_json::Value::Bool(true);
    eprintln!(
        "{} frames in {seconds:.0} s; populations φ>0 {:.4}, αR {:.4}, β {:.4}; exchange acceptance {:?}{}",
        frames.z.nrows(),
        pops.phi_positive,
        pops.alpha_r,
        pops.beta,
        acceptance.iter().map(|a| (a * 100.0).round() / 100.0).collect::<Vec<_>>(),
        if complete { "" } else { " (incomplete)" }
    );
    if !complete && stop.load(Ordering::Relaxed) {
        return Err(crate::interrupted::Interrupted::md(out, frames.z.nrows()).into());
    }
    if !complete {
        bail!(
            "the MD in {} failed its checks and is not marked complete: {}",
            out.display(),
            summary["check"].as_str().unwrap_or("unknown")
        );
    }
    Ok(())
}
