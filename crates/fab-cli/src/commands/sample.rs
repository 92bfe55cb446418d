//! `fab sample`: flow or AIS samples of a trained run, written in the format the file name asks
//! for.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use fab_core::distributed::{SplitDensity, SplitFlow};
use fab_core::{AnnealTarget, AnnealedSampler, Communicator, Flow, LogDensity};

use crate::components::load_trained;
use crate::components::{load_run_config, Components};
use crate::pool::in_pool;
use crate::ranks::together;
use crate::sample_files::{write_csv, write_dcd, write_npy_table, write_pdb};

/// `fab sample`: flow (or AIS) samples with log q / log weights into a CSV file.
#[allow(clippy::too_many_arguments)] // one per command-line option
pub fn sample(
    run: &Path,
    checkpoint: Option<&PathBuf>,
    n: usize,
    out: &Path,
    ais: bool,
    seed: u64,
    force: bool,
    comm: &dyn Communicator,
) -> Result<()> {
    if n == 0 {
        bail!("-n must be at least 1");
    }
    check_output(out, force)?;
    // Checked before any sampling: the format follows the file name.
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "csv" | "npy" | "pdb" | "dcd") {
        bail!(
            "--out {}: unknown format `.{ext}`; write .csv or .npy (any target), .pdb or .dcd (molecules)",
            out.display()
        );
    }
    let config = together(comm, || load_run_config(run))?;
    in_pool(config.threads, || {
        let parts = together(comm, || {
            let parts = load_trained(run, &config, checkpoint)?;
            // Samples, log q and weights, twice over while they are written.
            let per_sample = 2 * (parts.flow.dim() + 2);
            fab_core::memory::ensure_f64s_fit("-n", n, per_sample)?;
            Ok(parts)
        })?;
        write_samples(parts, &config.target, n, out, ais, seed, comm)
    })
}

/// The files a run directory holds that `fab sample --out` must never replace.
const RUN_FILES: [&str; 8] = [
    "checkpoint.safetensors",
    "config.ron",
    "metrics.csv",
    "eval.jsonl",
    "eval.json",
    "train_summary.json",
    "curves.png",
    "ess_vs_time.png",
];

/// Refuses an output that would replace a run's own file, or any existing file without
/// `--force`.
fn check_output(out: &Path, force: bool) -> Result<()> {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let in_a_run = out
        .parent()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .is_some_and(|d| {
            d.join("checkpoint.safetensors").exists() || d.join("config.ron").exists()
        });
    if in_a_run && RUN_FILES.contains(&name) {
        bail!(
            "--out {}: that is a file of the run directory; write the samples elsewhere",
            out.display()
        );
    }
    if out.exists() && !force {
        bail!("--out {} exists; pass --force to replace it", out.display());
    }
    Ok(())
}

/// `fab sample` with the run loaded: draws the samples and writes them to `out`.
fn write_samples(
    mut parts: Components,
    target: &fab_targets::TargetConfig,
    n: usize,
    out: &Path,
    ais: bool,
    seed: u64,
    comm: &dyn Communicator,
) -> Result<()> {
    let mut rng = fab_core::rng::seeded(seed);
    // The ranks share the flow and target evaluations; rank 0 writes the file.
    let flow = SplitFlow::new(&*parts.flow, comm);
    let target_density = SplitDensity::new(&*parts.target, comm);
    // Flow samples need no AIS run: their weights are log p − log q.
    let (x, log_w) = if ais {
        let batch = parts
            .ais
            .run(&flow, &target_density, n, AnnealTarget::P, false, &mut rng)?;
        (batch.x, batch.log_w)
    } else {
        let (x, log_q) = flow.sample(n, &mut rng)?;
        let log_p = target_density.log_prob(x.view())?;
        (x, log_p - log_q)
    };
    // PDB files carry no log q.
    let log_q = out
        .extension()
        .is_none_or(|e| e != "pdb")
        .then(|| flow.log_prob(x.view()))
        .transpose()?;
    if comm.rank() != 0 {
        return Ok(());
    }
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "pdb" {
        return write_pdb(target, x.view(), log_w.view(), out);
    }
    let log_q = match log_q {
        Some(log_q) => log_q,
        None => parts.flow.log_prob(x.view())?,
    };
    if ext == "dcd" {
        return write_dcd(target, x.view(), log_q.view(), log_w.view(), out);
    }
    // Molecules: internal coordinates, Cartesian positions, φ/ψ and weights; other targets: the
    // point, log q, log w and the normalised weight.
    let (header, rows) = match fab_targets::build_molecule(target)? {
        Some(molecule) => fab_targets::molecule::formats::sample_table::molecule_sample_table(
            &molecule,
            x.view(),
            log_q.view(),
            log_w.view(),
        )?,
        None => fab_core::sample_table::sample_table(x.view(), log_q.view(), log_w.view())?,
    };
    if ext == "npy" {
        write_npy_table(&header, &rows, out)?;
    } else {
        write_csv(&header, &rows, out)?;
    }
    eprintln!(
        "wrote {n} {} samples to {}",
        if ais { "AIS" } else { "flow" },
        out.display()
    );
    Ok(())
}
