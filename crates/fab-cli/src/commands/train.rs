//! `fab train`: trains a flow with FAB from a RON config into a run directory, resuming from
//! its checkpoint when asked.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use fab_core::checkpoint::Checkpoint;
use fab_core::{AnnealedSampler, Communicator, FabError};

use crate::commands::plot::plot_curves;
use crate::components::{Components, CHECKPOINT_FILE, CONFIG_FILE};
use crate::config::RunConfig;
use crate::interrupted::Interrupted;
use crate::observer::CliObserver;
use crate::peak_memory::peak_rss_mib;
use crate::pool::in_pool;
use crate::ranks::{on_root, together};

/// `fab train`.
pub fn train(
    config_path: &Path,
    resume: bool,
    out: Option<PathBuf>,
    loss: Option<&str>,
    seed: Option<u64>,
    comm: &Arc<dyn Communicator>,
) -> Result<()> {
    let mut config = together(&**comm, || RunConfig::load(config_path))?;
    if let Some(out) = out {
        config.output.dir = out;
    }
    if let Some(seed) = seed {
        config.training.seed = seed;
        config.flow.set_init_seed(seed);
    }
    if let Some(loss) = loss {
        config.training.loss = ron::from_str(loss).map_err(|e| {
            anyhow::anyhow!("--loss {loss}: {}; expected FabBuffer, FabNoBuffer, ReverseKl, Alpha2Nis or ForwardKl", e.code)
        })?;
        config.training.validate().context("--loss")?;
    }
    in_pool(config.threads, || {
        train_in_pool(config_path, config, resume, comm)
    })
}

/// `fab train` once the config is loaded, on the run's thread pool. Every rank builds the same
/// components and trainer; only rank 0 touches the run directory.
fn train_in_pool(
    config_path: &Path,
    config: RunConfig,
    resume: bool,
    comm: &Arc<dyn Communicator>,
) -> Result<()> {
    let root = comm.rank() == 0;
    let run_dir = config.output.dir.clone();
    let ck_path = run_dir.join(CHECKPOINT_FILE);
    // Held by rank 0 until training ends: a second `fab train` on this directory is refused.
    let mut lock = None;
    on_root(&**comm, || {
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
        lock = Some(crate::run_dir::lock(&run_dir)?);
        fab_core::checkpoint::remove_partial_files(&run_dir)?;
        if !resume && ck_path.exists() {
            bail!(
                "{} already holds a checkpoint; pass --resume to continue it, or set another output.dir (or --out)",
                run_dir.display()
            );
        }
        Ok(())
    })?;

    let (mut parts, trainer) = together(&**comm, || {
        let parts = Components::build(&config)
            .with_context(|| format!("config {}", config_path.display()))?;
        let trainer = parts
            .trainer(&config)
            .with_context(|| format!("invalid config {}", config_path.display()))?;
        if config.output.n_evals > 0 {
            // Refused now rather than at the first evaluation, hours into the run.
            config.eval.check_memory(parts.target.dim())?;
        }
        Ok((parts, trainer))
    })?;
    let mut trainer = trainer.with_communicator(comm.clone());
    if resume {
        // Every rank reads the checkpoint itself (no shared state is sent), and all must agree.
        together(&**comm, || {
            if !ck_path.exists() {
                bail!("--resume: no checkpoint at {}", ck_path.display());
            }
            let ck = Checkpoint::read(&ck_path)?;
            config
                .check_matches_checkpoint(&ck)
                .with_context(|| format!("--resume with config {}", config_path.display()))?;
            trainer
                .restore(&mut *parts.flow, &mut parts.ais, &ck)
                .with_context(|| {
                    format!(
                        "cannot resume from {} with config {}",
                        ck_path.display(),
                        config_path.display()
                    )
                })
        })?;
        check_same_state(&**comm, &trainer, &*parts.flow, &ck_path)?;
        on_root(&**comm, || {
            crate::run_dir::cut_logs(&run_dir, trainer.iteration)?;
            eprintln!(
                "resuming {} at iteration {}",
                run_dir.display(),
                trainer.iteration
            );
            Ok(())
        })?;
    }
    on_root(&**comm, || {
        std::fs::write(run_dir.join(CONFIG_FILE), config.to_ron()?)
            .with_context(|| format!("cannot write {}", run_dir.join(CONFIG_FILE).display()))
    })?;

    let n_iterations = config
        .training
        .n_iterations(parts.ais.flow_evals_per_sample());
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C, SIGTERM or SIGHUP finish the current iteration, write a checkpoint and exit
        // with `Interrupted` (exit code 130).
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let mut observer = together(&**comm, || {
        CliObserver::new(
            &config,
            &*parts.target,
            run_dir.clone(),
            n_iterations,
            trainer.iteration,
            stop,
            root,
        )
    })?;
    if root {
        eprintln!(
            "training {} iterations on {} ({} flow parameters{}) → {}",
            n_iterations,
            parts.target.name(),
            parts.flow.params().len(),
            if comm.size() > 1 {
                format!(", {} ranks", comm.size())
            } else {
                String::new()
            },
            run_dir.display()
        );
    }
    let started = Instant::now();
    fab_core::train::run(
        &mut trainer,
        &mut *parts.flow,
        &mut parts.ais,
        &*parts.target,
        n_iterations,
        &mut observer,
    )?;
    observer.bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    let interrupted = observer.stopped && trainer.iteration < n_iterations;
    drop(lock);
    if !root {
        return if interrupted {
            Err(Interrupted::training(&run_dir, trainer.iteration).into())
        } else {
            Ok(())
        };
    }
    let traffic = comm.traffic();
    let mut summary = serde_json::json!({
        "iterations": trainer.iteration,
        "target_evals": trainer.target_evals,
        "wall_seconds_this_session": seconds,
        "peak_rss_mib": peak_rss_mib(),
    });
    if comm.size() > 1 {
        summary["mpi"] = serde_json::json!({
            "ranks": comm.size(),
            "rank0_calls": traffic.calls,
            "rank0_bytes_sent": traffic.bytes_sent,
            "rank0_seconds_in_mpi": traffic.seconds,
        });
    }
    std::fs::write(
        run_dir.join("train_summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    if let Err(e) = plot_curves(&run_dir) {
        eprintln!("warning: could not plot training curves: {e:#}");
    }
    if interrupted {
        return Err(Interrupted::training(&run_dir, trainer.iteration).into());
    }
    eprintln!(
        "done: {} iterations in {:.1} s, {} target evaluations",
        trainer.iteration, seconds, trainer.target_evals
    );
    if comm.size() > 1 {
        eprintln!(
            "MPI, {} ranks: rank 0 spent {:.2} s in {} calls and sent {:.1} MB",
            comm.size(),
            traffic.seconds,
            traffic.calls,
            traffic.bytes_sent as f64 / 1e6
        );
    }
    Ok(())
}

/// Refuses to train when the ranks restored different states (e.g. each host found another
/// file at the checkpoint path): compares a checksum of the flow parameters and counters.
fn check_same_state(
    comm: &dyn Communicator,
    trainer: &fab_core::train::Trainer,
    flow: &dyn fab_core::Flow,
    ck_path: &Path,
) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    let mut hasher = crc32fast::Hasher::new();
    for p in flow.params() {
        hasher.update(&p.to_le_bytes());
    }
    hasher.update(&trainer.iteration.to_le_bytes());
    hasher.update(&trainer.target_evals.to_le_bytes());
    let mine = hasher.finalize().to_le_bytes();
    let all = comm.all_gather_bytes(&mine);
    if let Some(rank) = all.iter().position(|h| h[..] != all[0][..]) {
        return Err(FabError::Rank {
            rank,
            message: format!(
                "restored another state from {} than rank 0 (the ranks must read the same checkpoint)",
                ck_path.display()
            ),
        }
        .into());
    }
    Ok(())
}
