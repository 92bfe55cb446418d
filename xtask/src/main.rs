//! Project automation. `cargo xtask reproduce gmm [--quick]` runs the paper's GMM benchmark end to
//! end: builds the `fab` binary, trains (resuming if a checkpoint exists), evaluates, and writes
//! `results/<name>/` with results.json, results.md and the plots; `gmm-v1`, `funnel`, `cox` and
//! `many-well-fab-jax` do the same for fab-jax's benchmarks. `many-well` compares FAB with the
//! paper's baselines; `alanine` adds replica-exchange ground truth (cached) and its KL divergences,
//! `tetrapeptide` the same for alanine tetrapeptide, per residue.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod alanine;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "xtask", about = "fab-rs project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Reproduce a paper benchmark from start to finish.
    Reproduce {
        /// Which benchmark.
        benchmark: Benchmark,
        /// Short profile instead of the paper's settings (GMM ~6 min, Many Well ~35 min, alanine < 60 min on 2 cores).
        #[arg(long, conflicts_with = "medium")]
        quick: bool,
        /// Alanine: the quick flow trained for 12,000 iterations with 2-step HMC
        /// (configs/alanine-medium.ron, ~75 min of training on 2 cores by `fab bench`; ~1 h 40 min end to end with the MD, estimated from the 16,000-iteration run's measured parts), against the paper profile's 20 ns ground truth.
        /// many-well-fab-jax: fab-jax's settings over 9,000 instead of 10,000 iterations
        /// (configs/many-well-fab-jax-medium.ron, 2.6-2.8 h of training on 2 cores from measured per-iteration cost).
        #[arg(long)]
        medium: bool,
        /// Results directory (default `results/<benchmark>[-quick|-medium]`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Evaluation samples (default: the config's eval.n_samples).
        #[arg(long)]
        eval_samples: Option<usize>,
        /// Methods to run (Many Well; default all): fab-buffer, fab-no-buffer, reverse-kl, alpha2-nis, forward-kl.
        #[arg(long, value_delimiter = ',')]
        method: Vec<Method>,
        /// gmm, gmm-v1, funnel, cox, cox-whitened, many-well-fab-jax: train N runs with seeds 0..N (fab train --seed) and report
        /// every metric as mean ± standard error over them, as fab-jax does (5 seeds).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
        seeds: u64,
        /// Train and evaluate on R MPI ranks (`mpirun -np R`; fab built with `--features mpi`,
        /// Open MPI installed). Results are the same as on one process.
        #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..))]
        mpi: Option<u32>,
    },
}

/// The `fab` binary and how to start it: training and evaluation on `ranks` MPI ranks if given.
pub(crate) struct Fab {
    path: PathBuf,
    ranks: Option<u32>,
}

impl Fab {
    /// `fab` for a command that shares its work over the ranks (train, eval).
    pub(crate) fn shared(&self) -> Command {
        match self.ranks {
            None => Command::new(&self.path),
            Some(r) => {
                let mut c = Command::new("mpirun");
                c.args(["-np", &r.to_string()]).arg(&self.path);
                c
            }
        }
    }

    /// `fab` for a one-process command (md, sample, plot).
    pub(crate) fn one(&self) -> Command {
        Command::new(&self.path)
    }
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Benchmark {
    /// The 40-mode 2-D Gaussian mixture.
    Gmm,
    /// fab-jax's 9-mode grid Gaussian mixture (gmm_v1).
    GmmV1,
    /// fab-jax's 10-D Neal's funnel.
    Funnel,
    /// fab-jax's log-Gaussian Cox process on the Finnish pines (1,600-D).
    Cox,
    /// The same Cox posterior in whitened coordinates (prior N(0, I), same log Z).
    CoxWhitened,
    /// The 32-D Many Well, FAB against the paper's baselines.
    ManyWell,
    /// The 32-D Many Well with fab-jax's flow, AIS and training recipe, but a fixed gradient clip
    /// (FAB only; ~3.2 h on two cores, `--medium` 9,000 iterations in 2.6-2.8 h).
    ManyWellFabJax,
    /// Alanine dipeptide in implicit solvent against replica-exchange MD ground truth.
    Alanine,
    /// Alanine tetrapeptide (three residues, 120-D) against replica-exchange MD ground truth.
    Tetrapeptide,
}

/// Training objectives (the `training.loss` values of fab-core).
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Method {
    FabBuffer,
    FabNoBuffer,
    ReverseKl,
    Alpha2Nis,
    ForwardKl,
}

impl Method {
    const ALL: [Method; 5] = [
        Method::FabBuffer,
        Method::FabNoBuffer,
        Method::ReverseKl,
        Method::Alpha2Nis,
        Method::ForwardKl,
    ];

    fn loss(&self) -> &'static str {
        match self {
            Method::FabBuffer => "FabBuffer",
            Method::FabNoBuffer => "FabNoBuffer",
            Method::ReverseKl => "ReverseKl",
            Method::Alpha2Nis => "Alpha2Nis",
            Method::ForwardKl => "ForwardKl",
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Method::FabBuffer => "FAB with buffer",
            Method::FabNoBuffer => "FAB without buffer",
            Method::ReverseKl => "flow, reverse KL",
            Method::Alpha2Nis => "flow, α=2 (NIS)",
            Method::ForwardKl => "flow, forward KL on exact samples",
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if status.code() == Some(130) {
        return Err(Interrupted.into());
    }
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// A step stopped by a signal after keeping its work (`fab` exited 130).
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted; its checkpoint is kept: rerun the same command to resume")
    }
}

impl std::error::Error for Interrupted {}

/// Peak memory of a run: the larger of the `fab train` and `fab eval` processes' own peaks.
pub(crate) fn run_peak_mib(r: &RunResult) -> f64 {
    let a = r.summary["peak_rss_mib"].as_f64().unwrap_or(f64::NAN);
    let b = r.metrics["eval_peak_rss_mib"].as_f64().unwrap_or(f64::NAN);
    a.max(b)
}

/// Outcome of training and evaluating one run directory.
pub(crate) struct RunResult {
    pub(crate) metrics: serde_json::Value,
    pub(crate) summary: serde_json::Value,
    pub(crate) train_seconds: f64,
    pub(crate) eval_seconds: f64,
}

/// Writes a benchmark's report to `results/results.json`.
pub(crate) fn write_report(results: &Path, report: &serde_json::Value) -> Result<()> {
    let path = results.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

pub(crate) fn read_json(p: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("malformed {}", p.display()))
}

/// Trains (resuming an existing checkpoint) and evaluates one run with the `fab` binary.
pub(crate) fn train_and_eval(
    root: &Path,
    fab: &Fab,
    config: &Path,
    run_dir: &Path,
    eval_samples: Option<usize>,
    train_args: &[String],
    eval_args: &[String],
) -> Result<RunResult> {
    let started = Instant::now();
    let mut train = fab.shared();
    train
        .current_dir(root)
        .args(["train", "--config"])
        .arg(config)
        .arg("--out")
        .arg(run_dir);
    train.args(train_args);
    if run_dir.join("checkpoint.safetensors").exists() {
        eprintln!("xtask: resuming the existing run in {}", run_dir.display());
        train.arg("--resume");
    }
    run(&mut train)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut eval = fab.shared();
    eval.current_dir(root).args(["eval", "--run"]).arg(run_dir);
    if let Some(n) = eval_samples {
        eval.args(["--n-samples", &n.to_string()]);
    }
    eval.args(eval_args);
    run(&mut eval)?;
    Ok(RunResult {
        metrics: read_json(&run_dir.join("eval.json"))?,
        summary: read_json(&run_dir.join("train_summary.json"))?,
        train_seconds,
        eval_seconds: started.elapsed().as_secs_f64(),
    })
}

#[allow(clippy::too_many_arguments)] // one per command-line option
fn reproduce(
    benchmark: Benchmark,
    quick: bool,
    medium: bool,
    out: Option<PathBuf>,
    eval_samples: Option<usize>,
    methods: Vec<Method>,
    seeds: u64,
    mpi: Option<u32>,
) -> Result<()> {
    let root = workspace_root();
    let name = match benchmark {
        Benchmark::Gmm => "gmm",
        Benchmark::GmmV1 => "gmm-v1",
        Benchmark::Funnel => "funnel",
        Benchmark::Cox => "cox",
        Benchmark::CoxWhitened => "cox-whitened",
        Benchmark::ManyWell => "many-well",
        Benchmark::ManyWellFabJax => "many-well-fab-jax",
        Benchmark::Alanine => "alanine",
        Benchmark::Tetrapeptide => "tetrapeptide",
    };
    if medium && !matches!(benchmark, Benchmark::Alanine | Benchmark::ManyWellFabJax) {
        bail!("--medium is a profile of the alanine and many-well-fab-jax benchmarks only");
    }
    let single_run = matches!(
        benchmark,
        Benchmark::Gmm
            | Benchmark::GmmV1
            | Benchmark::Funnel
            | Benchmark::Cox
            | Benchmark::CoxWhitened
            | Benchmark::ManyWellFabJax
    );
    if seeds > 1 && !single_run {
        bail!("--seeds is for gmm, gmm-v1, funnel, cox, cox-whitened and many-well-fab-jax");
    }
    let profile = if quick {
        format!("{name}-quick")
    } else if medium {
        format!("{name}-medium")
    } else {
        name.to_string()
    };
    let config = root.join("configs").join(format!("{profile}.ron"));
    if !config.exists() {
        bail!(
            "{profile}: no such profile ({} is missing)",
            config.display()
        );
    }
    let results = out.unwrap_or_else(|| root.join("results").join(&profile));
    std::fs::create_dir_all(&results)?;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .current_dir(&root)
        .args(["build", "--release", "-p", "fab-cli"]);
    if mpi.is_some() {
        build.args(["--features", "mpi"]);
    }
    run(&mut build)?;
    // Where cargo put the binary: CARGO_TARGET_DIR (relative to the workspace root) or target/.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target".into());
    let fab = Fab {
        path: root.join(target_dir).join("release/fab"),
        ranks: mpi,
    };
    let config_rel = config
        .strip_prefix(&root)
        .unwrap_or(&config)
        .display()
        .to_string();

    let md = match benchmark {
        Benchmark::Gmm
        | Benchmark::GmmV1
        | Benchmark::Funnel
        | Benchmark::Cox
        | Benchmark::CoxWhitened
        | Benchmark::ManyWellFabJax
            if seeds > 1 =>
        {
            seeds_report(
                &root,
                &fab,
                &config,
                &results,
                eval_samples,
                seeds,
                name,
                &profile,
                &config_rel,
            )?
        }
        Benchmark::Gmm
        | Benchmark::GmmV1
        | Benchmark::Funnel
        | Benchmark::Cox
        | Benchmark::CoxWhitened
        | Benchmark::ManyWellFabJax => {
            let run_dir = results.join("run");
            let r = train_and_eval(&root, &fab, &config, &run_dir, eval_samples, &[], &[])?;
            let report = serde_json::json!({
                "benchmark": name,
                "profile": profile,
                "config": config_rel,
                "metrics": r.metrics,
                "iterations": r.summary["iterations"],
                "target_evals": r.summary["target_evals"],
                "train_wall_seconds_this_invocation": r.train_seconds,
                "eval_wall_seconds": r.eval_seconds,
                "peak_rss_mib": run_peak_mib(&r),
            });
            write_report(&results, &report)?;
            for png in [
                "samples.png",
                "curves.png",
                "ess_vs_time.png",
                "log_z_mae_vs_time.png",
            ] {
                if run_dir.join(png).exists() {
                    std::fs::copy(run_dir.join(png), results.join(png))?;
                }
            }
            let mut md = markdown(&report, &profile);
            if run_dir.join("log_z_mae_vs_time.png").exists() {
                md.push_str("\n![log Z MAE against training time](log_z_mae_vs_time.png)\n");
            }
            md
        }
        Benchmark::ManyWell => {
            let methods = if methods.is_empty() {
                Method::ALL.to_vec()
            } else {
                methods
            };
            let mut rows = Vec::new();
            for m in methods {
                let run_dir = results.join(m.loss());
                eprintln!("xtask: {} → {}", m.label(), run_dir.display());
                let loss = ["--loss".to_string(), m.loss().to_string()];
                let r = train_and_eval(&root, &fab, &config, &run_dir, eval_samples, &loss, &[])?;
                rows.push(serde_json::json!({
                    "method": m.loss(),
                    "label": m.label(),
                    "metrics": r.metrics,
                    "iterations": r.summary["iterations"],
                    "target_evals": r.summary["target_evals"],
                    "train_wall_seconds_this_invocation": r.train_seconds,
                    "eval_wall_seconds": r.eval_seconds,
                    "peak_rss_mib": run_peak_mib(&r),
                }));
                if run_dir.join("samples.png").exists() {
                    std::fs::copy(
                        run_dir.join("samples.png"),
                        results.join(format!("samples-{}.png", m.loss())),
                    )?;
                }
            }
            let report = serde_json::json!({
                "benchmark": name,
                "profile": profile,
                "config": config_rel,
                "methods": rows,
            });
            write_report(&results, &report)?;
            comparison_markdown(&report, &profile)
        }
        Benchmark::Alanine | Benchmark::Tetrapeptide => {
            alanine::reproduce(name, &root, &fab, &config, &results, &profile, eval_samples)?
        }
    };
    std::fs::write(results.join("results.md"), &md)?;
    println!("{md}");
    println!("results written to {}", results.display());
    Ok(())
}

pub(crate) fn fmt(v: &serde_json::Value, digits: usize) -> String {
    v.as_f64()
        .map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "n/a".into())
}

/// The method comparison table of the Many Well benchmark.
fn comparison_markdown(report: &serde_json::Value, profile: &str) -> String {
    let mut s = format!(
        "# fab-rs: {profile}\n\nConfig `{}`; every method gets the same budget of flow evaluations (fab-torch's \
         accounting). log Z MAE: mean |log Ẑ − log Z| over 10 strided groups of the evaluation samples \
         (group r = samples r, r+10, …), log Z = 164.6957.\n\n",
        report["config"].as_str().unwrap_or("?")
    );
    s.push_str("| method | iterations | ESS flow | ESS AIS | log Z MAE flow | log Z MAE AIS | test log-lik (mean log q) | x₀,x₂,x₄,x₆ sign patterns visited | train s |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in report["methods"].as_array().into_iter().flatten() {
        let m = &r["metrics"];
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["label"].as_str().unwrap_or("?"),
            r["iterations"],
            fmt(&m["eval_ess_flow"], 4),
            fmt(&m["eval_ess_ais"], 4),
            fmt(&m["log_z_mae_flow"], 4),
            fmt(&m["log_z_mae_ais"], 4),
            fmt(&m["test_mean_log_q"], 3),
            fmt(&m["first4_patterns_flow"], 3),
            fmt(&r["train_wall_seconds_this_invocation"], 0),
        ));
    }
    s.push_str("\nfab-jax reports a log Z MAE of 0.0316 (5 seeds) for FAB on this target with 10,000 iterations of batch 1,024 and a RealNVP of 8 layers × [128, 128].\n\n");
    for r in report["methods"].as_array().into_iter().flatten() {
        let key = r["method"].as_str().unwrap_or("?");
        s.push_str(&format!(
            "![{}](samples-{key}.png)\n\n",
            r["label"].as_str().unwrap_or(key)
        ));
    }
    s
}

/// Rows of the Markdown table: (metric key, description, reference value).
const ROWS: &[(&str, &str, &str)] = &[
    (
        "eval_ess_flow",
        "ESS of the flow toward p (normalised by N)",
        "1",
    ),
    ("eval_ess_ais", "ESS of AIS toward p", "1"),
    (
        "test_mean_log_q",
        "test-set mean log q (exact target samples)",
        "E_p[log p] (see forward KL)",
    ),
    (
        "forward_kl",
        "forward KL estimate, mean(log p − log q)",
        "0",
    ),
    (
        "quad_rel_bias_flow",
        "relative bias of E[f] (quadratic f), flow IS",
        "0",
    ),
    ("quad_rel_bias_ais", "relative bias of E[f], AIS IS", "0"),
    (
        "modes_flow",
        "modes holding flow samples",
        "all (40 GMM-40, 9 gmm-v1)",
    ),
    ("modes_ais", "modes holding AIS samples", "all"),
    (
        "log_z_mae_flow",
        "mean \\|log Ẑ − log Z\\| over 10 strided groups, flow",
        "0",
    ),
    ("log_z_mae_ais", "same, AIS", "0"),
];

/// `--seeds N`: trains and evaluates seeds 0..N into `results/seed-K`, writes results.json with
/// every run's metrics and their mean ± standard error, and returns the markdown table.
#[allow(clippy::too_many_arguments)] // the reproduce call's context, passed through
fn seeds_report(
    root: &Path,
    fab: &Fab,
    config: &Path,
    results: &Path,
    eval_samples: Option<usize>,
    seeds: u64,
    name: &str,
    profile: &str,
    config_rel: &str,
) -> Result<String> {
    let mut runs = Vec::new();
    let mut per_seed = Vec::new();
    let (mut train_s, mut eval_s) = (0.0, 0.0);
    for seed in 0..seeds {
        let run_dir = results.join(format!("seed-{seed}"));
        eprintln!("xtask: seed {seed} → {}", run_dir.display());
        let args = ["--seed".to_string(), seed.to_string()];
        let r = train_and_eval(root, fab, config, &run_dir, eval_samples, &args, &[])?;
        train_s += r.train_seconds;
        eval_s += r.eval_seconds;
        let numbers: std::collections::BTreeMap<String, f64> = r
            .metrics
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
                    .collect()
            })
            .unwrap_or_default();
        runs.push(numbers);
        per_seed.push(serde_json::json!({
            "seed": seed,
            "metrics": r.metrics,
            "iterations": r.summary["iterations"],
            "train_wall_seconds_this_invocation": r.train_seconds,
            "eval_wall_seconds": r.eval_seconds,
        }));
    }
    let summary = fab_core::seeds::over_seeds(&runs);
    let mean: serde_json::Map<String, serde_json::Value> = summary
        .iter()
        .map(|(k, (m, _))| (k.clone(), serde_json::json!(m)))
        .collect();
    let se: serde_json::Map<String, serde_json::Value> = summary
        .iter()
        .map(|(k, (_, e))| (k.clone(), serde_json::json!(e)))
        .collect();
    let report = serde_json::json!({
        "benchmark": name,
        "profile": profile,
        "config": config_rel,
        "seeds": seeds,
        "metrics": mean,
        "metrics_standard_error": se,
        "runs": per_seed,
        "train_wall_seconds_this_invocation": train_s,
        "eval_wall_seconds": eval_s,
    });
    write_report(results, &report)?;
    let mut s = format!(
        "# fab-rs: {profile}, {seeds} seeds\n\nConfig `{config_rel}`, seeds 0..{seeds} (`fab train --seed K`): \
         mean ± standard error over the seeds.\n\n| metric | mean ± SE |\n|---|---|\n"
    );
    for (key, what, _) in ROWS {
        if let Some((m, e)) = summary.get(*key) {
            s.push_str(&format!("| {what} (`{key}`) | {m:.5} ± {e:.5} |\n"));
        }
    }
    s.push_str(&format!(
        "\nWall time: training {train_s:.0} s, evaluation {eval_s:.0} s over all seeds (this invocation).\n"
    ));
    Ok(s)
}

fn markdown(report: &serde_json::Value, profile: &str) -> String {
    let m = &report["metrics"];
    let mut s = format!(
        "# fab-rs: {profile}\n\nConfig `{}`; {} iterations, {} target evaluations.\n\n",
        report["config"].as_str().unwrap_or("?"),
        report["iterations"],
        report["target_evals"]
    );
    s.push_str("| metric | value | ideal |\n|---|---|---|\n");
    for (key, what, ideal) in ROWS {
        let v = m[*key]
            .as_f64()
            .map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "n/a".into());
        s.push_str(&format!("| {what} (`{key}`) | {v} | {ideal} |\n"));
    }
    s.push_str(&format!(
        "\nWall time: training {:.0} s (this invocation), evaluation {:.0} s on {} samples; peak memory {:.0} MiB.\n\n![samples](samples.png)\n\n![training curves](curves.png)\n",
        report["train_wall_seconds_this_invocation"].as_f64().unwrap_or(f64::NAN),
        report["eval_wall_seconds"].as_f64().unwrap_or(f64::NAN),
        m["n_eval_samples"],
        report["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
    ));
    s
}

/// Passes Ctrl-C and SIGTERM on to the `fab` steps: every process of xtask's process group gets
/// SIGTERM once, so a running `fab train` (or `mpirun` and its ranks) checkpoints and exits 130,
/// which ends xtask with "rerun to resume", also when only xtask itself was signalled.
fn forward_stop_signals() {
    let forwarded = std::sync::atomic::AtomicBool::new(false);
    let _ = ctrlc::set_handler(move || {
        if !forwarded.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // `kill -TERM 0`: the whole process group, this one included (its handler ignores
            // the second signal).
            let _ = Command::new("kill").args(["-TERM", "0"]).status();
        }
    });
}

fn main() -> std::process::ExitCode {
    forward_stop_signals();
    let result = match Cli::parse().command {
        Cmd::Reproduce {
            benchmark,
            quick,
            medium,
            out,
            eval_samples,
            method,
            seeds,
            mpi,
        } => reproduce(
            benchmark,
            quick,
            medium,
            out,
            eval_samples,
            method,
            seeds,
            mpi,
        ),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<Interrupted>()) => {
            eprintln!("xtask: {e}");
            std::process::ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
