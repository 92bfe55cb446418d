//! Project automation. `cargo xtask reproduce gmm [--quick]` runs the paper's GMM benchmark end to
//! end: builds the `fab` binary, trains (resuming if a checkpoint exists), evaluates, and writes
//! `results/<name>/` with results.json, results.md and the plots.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

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
        /// Short profile (under 15 minutes on 2 cores) instead of the paper's settings.
        #[arg(long)]
        quick: bool,
        /// Results directory (default results/<benchmark>[-quick]).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Evaluation samples (default: the config's eval.n_samples).
        #[arg(long)]
        eval_samples: Option<usize>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Benchmark {
    /// The 40-mode 2-D Gaussian mixture.
    Gmm,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Peak resident memory of finished child processes, in MiB (Linux reports ru_maxrss in KiB).
fn children_peak_rss_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage struct into the pointer it is given.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) } == 0;
    if ok {
        // SAFETY: initialised by the successful call above.
        unsafe { usage.assume_init() }.ru_maxrss as f64 / 1024.0
    } else {
        f64::NAN
    }
}

fn reproduce(
    benchmark: Benchmark,
    quick: bool,
    out: Option<PathBuf>,
    eval_samples: Option<usize>,
) -> Result<()> {
    let root = workspace_root();
    let name = match benchmark {
        Benchmark::Gmm => "gmm",
    };
    let profile = if quick {
        format!("{name}-quick")
    } else {
        name.to_string()
    };
    let config = root.join("configs").join(format!("{profile}.ron"));
    let results = out.unwrap_or_else(|| root.join("results").join(&profile));
    let run_dir = results.join("run");
    std::fs::create_dir_all(&results)?;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "fab-cli"]))?;
    let fab = root.join("target/release/fab");

    let started = Instant::now();
    let mut train = Command::new(&fab);
    train
        .current_dir(&root)
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&run_dir);
    if run_dir.join("checkpoint.safetensors").exists() {
        eprintln!("xtask: resuming the existing run in {}", run_dir.display());
        train.arg("--resume");
    }
    run(&mut train)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut eval = Command::new(&fab);
    eval.current_dir(&root)
        .args(["eval", "--run"])
        .arg(&run_dir);
    if let Some(n) = eval_samples {
        eval.args(["--n-samples", &n.to_string()]);
    }
    run(&mut eval)?;
    let eval_seconds = started.elapsed().as_secs_f64();

    let read_json = |p: PathBuf| -> Result<serde_json::Value> {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        Ok(serde_json::from_str(&text).with_context(|| format!("malformed {}", p.display()))?)
    };
    let metrics = read_json(run_dir.join("eval.json"))?;
    let summary = read_json(run_dir.join("train_summary.json"))?;
    let peak_mib = children_peak_rss_mib();
    let report = serde_json::json!({
        "benchmark": name,
        "profile": profile,
        "config": config.strip_prefix(&root).unwrap_or(&config),
        "metrics": metrics,
        "iterations": summary["iterations"],
        "target_evals": summary["target_evals"],
        "train_wall_seconds_this_invocation": train_seconds,
        "eval_wall_seconds": eval_seconds,
        "peak_rss_mib": peak_mib,
    });
    std::fs::write(
        results.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    for png in ["samples.png", "curves.png"] {
        if run_dir.join(png).exists() {
            std::fs::copy(run_dir.join(png), results.join(png))?;
        }
    }
    let md = markdown(&report, &profile);
    std::fs::write(results.join("results.md"), &md)?;
    println!("{md}");
    println!("results written to {}", results.display());
    Ok(())
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
    ("modes_flow", "modes holding flow samples (of 40)", "40"),
    ("modes_ais", "modes holding AIS samples (of 40)", "40"),
    (
        "log_z_mae_flow",
        "mean |log Ẑ − log Z| over 10 strided groups, flow",
        "0",
    ),
    ("log_z_mae_ais", "same, AIS", "0"),
];

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

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Reproduce {
            benchmark,
            quick,
            out,
            eval_samples,
        } => reproduce(benchmark, quick, out, eval_samples),
    }
}
