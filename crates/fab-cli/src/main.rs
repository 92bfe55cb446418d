//! `fab`: train, evaluate, sample and plot FAB flows from RON configurations.
//!
//! ```text
//! fab train --config configs/gmm.ron            # writes runs/gmm/{metrics.csv, eval.jsonl, checkpoint…}
//! fab train --config configs/gmm.ron --resume   # continues from runs/gmm/checkpoint.safetensors
//! fab eval  --run runs/gmm                      # eval.json + samples.png
//! fab sample --run runs/gmm -n 10000 --out samples.csv [--ais]
//! fab plot  --run runs/gmm                      # training curves + samples plot
//! fab compare --runs runs/a,runs/b --out cmp    # variants side by side at equal wall time
//! fab bench --config configs/bench/many-well-fab-jax.ron   # ms per iteration and time shares
//! fab md    --config configs/alanine.ron        # replica-exchange ground truth for alanine dipeptide
//! ```

mod charts;
mod commands;
mod components;
mod config;
mod interrupted;
mod metrics_csv;
mod molecule_eval;
mod observer;
mod peak_memory;
mod pool;
mod ranks;
mod run_dir;
mod sample_files;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Flow Annealed Importance Sampling Bootstrap: train normalizing flows on unnormalised densities.
#[derive(Parser)]
#[command(name = "fab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a flow with FAB as described by a RON config.
    Train {
        /// Run configuration (RON), e.g. configs/gmm.ron.
        #[arg(long)]
        config: PathBuf,
        /// Continue from the run directory's latest checkpoint.
        #[arg(long)]
        resume: bool,
        /// Override output.dir of the config.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override training.loss: FabBuffer, FabNoBuffer, ReverseKl, Alpha2Nis or ForwardKl.
        #[arg(long)]
        loss: Option<String>,
        /// Override the seed: training.seed and the flow's init_seed both become SEED.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Evaluate a trained flow: ESS, log Z, test log-likelihood, target metrics; writes eval.json.
    Eval {
        /// Run directory written by `fab train`.
        #[arg(long)]
        run: PathBuf,
        /// Checkpoint to evaluate (default: the run's latest).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Number of flow samples / AIS chains (default: the config's eval.n_samples).
        #[arg(long)]
        n_samples: Option<usize>,
        /// Seed of the evaluation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Evaluate N times with seeds seed, seed+1, … and report each metric's mean and
        /// standard error (`<metric>_se` in eval.json): one evaluation of heavy-tailed weights
        /// is noisy.
        #[arg(long, default_value_t = 1)]
        repeats: u64,
        /// Alanine dipeptide: a `fab md` output directory; adds φ/ψ/Ramachandran KL divergences,
        /// basin populations, ramachandran.png and phi.png.
        #[arg(long)]
        ground_truth: Option<PathBuf>,
    },
    /// Draw samples from a trained flow (and optionally AIS toward p) into a CSV file.
    Sample {
        /// Run directory written by `fab train`.
        #[arg(long)]
        run: PathBuf,
        /// Checkpoint (default: the run's latest).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Number of samples.
        #[arg(short, long, default_value_t = 10_000)]
        n: usize,
        /// Output file STEM.EXT; the extension picks the format. .csv: columns x0.., log_q,
        /// log_w, normalised weight (molecules: z0.., atom positions in nm, phi_r/psi_r, log_q,
        /// log_w, weight). .npy: the same table as a float64 array, column names in
        /// STEM.columns.txt. Molecules also: .pdb (one MODEL per sample, weights in REMARKs and
        /// B-factors) and .dcd (trajectory in Å with STEM.topology.pdb and STEM.weights.csv;
        /// read by mdtraj, MDAnalysis, VMD).
        #[arg(long)]
        out: PathBuf,
        /// Run AIS toward p from the flow samples and write its samples and weights instead.
        #[arg(long)]
        ais: bool,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Replace --out if it exists (never a file of a run directory: its checkpoint, config or
        /// logs).
        #[arg(long)]
        force: bool,
    },
    /// Ground-truth MD of alanine dipeptide (temperature replica exchange) from a config's
    /// `target.ground_truth` section: frames as .npy and as a DCD trajectory (frames.dcd with
    /// frames.topology.pdb), φ/ψ, md.json, ramachandran.png.
    Md {
        /// Run configuration with target AlanineDipeptide(...) or Peptide(...), e.g. configs/alanine.ron.
        #[arg(long)]
        config: PathBuf,
        /// Output directory (default: <output.dir>/ground-truth).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the production length per replica (ps).
        #[arg(long)]
        length_ps: Option<f64>,
        /// Keep a finished run with identical settings already in the output directory.
        #[arg(long)]
        reuse: bool,
    },
    /// Time FAB iterations of a config (buffer filled first, warm-up excluded): ms per iteration
    /// and where the time goes; the last line is the same as JSON.
    Bench {
        /// Run configuration (RON), e.g. configs/bench/many-well-fab-jax.ron.
        #[arg(long)]
        config: PathBuf,
        /// Timed iterations.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// Iterations run before timing starts.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Override the config's thread count.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Redraw the training-curve plot of a run from its metrics.csv.
    Plot {
        /// Run directory written by `fab train`.
        #[arg(long)]
        run: PathBuf,
    },
    /// Compare training runs at equal training wall time: batch ESS of flow and AIS (means over
    /// windows of iterations) and final evaluations; writes compare.md, compare.json, compare.png.
    Compare {
        /// Run directories written by `fab train`, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        runs: Vec<PathBuf>,
        /// Wall times in minutes, comma-separated (default: quarters of the shortest run).
        #[arg(long, value_delimiter = ',')]
        at: Option<Vec<f64>>,
        /// Iterations each batch-ESS value is averaged over.
        #[arg(long, default_value_t = 100)]
        window: usize,
        /// Output directory.
        #[arg(long, default_value = "compare")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ranks = match ranks::Ranks::start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let comm = ranks.comm.clone();
    // Refused on every rank together, reported once.
    let one_rank = |name: &str| -> anyhow::Result<()> {
        ranks::on_root(&*comm, || {
            if comm.size() > 1 {
                anyhow::bail!(
                    "`fab {name}` runs in one process; only train, eval and sample share their work over MPI ranks"
                );
            }
            Ok(())
        })
    };
    let result = match cli.command {
        Command::Train {
            config,
            resume,
            out,
            loss,
            seed,
        } => commands::train::train(&config, resume, out, loss.as_deref(), seed, &comm),
        Command::Eval {
            run,
            checkpoint,
            n_samples,
            seed,
            repeats,
            ground_truth,
        } => commands::eval::eval(
            &run,
            checkpoint.as_ref(),
            n_samples,
            seed..seed.checked_add(repeats).unwrap_or(seed),
            ground_truth.as_deref(),
            &*comm,
        )
        .map(|_| ()),
        Command::Sample {
            run,
            checkpoint,
            n,
            out,
            ais,
            seed,
            force,
        } => commands::sample::sample(&run, checkpoint.as_ref(), n, &out, ais, seed, force, &*comm),
        Command::Bench {
            config,
            iterations,
            warmup,
            threads,
        } => one_rank("bench")
            .and_then(|()| commands::bench::bench(&config, iterations, warmup, threads)),
        Command::Plot { run } => one_rank("plot").and_then(|()| commands::plot::plot_curves(&run)),
        Command::Compare {
            runs,
            at,
            window,
            out,
        } => one_rank("compare").and_then(|()| commands::compare::compare(&runs, at, window, &out)),
        Command::Md {
            config,
            out,
            length_ps,
            reuse,
        } => one_rank("md").and_then(|()| commands::md::md(&config, out, length_ps, reuse)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<interrupted::Interrupted>() => {
            if comm.rank() == 0 {
                eprintln!("{e}");
            }
            ExitCode::from(130)
        }
        Err(e) => ranks.fail(&e),
    }
}
