//! The `fab` subcommands.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use fab_core::checkpoint::Checkpoint;
use fab_core::metrics::{evaluate, EvalConfig, Evaluation};
use fab_core::{AnnealTarget, AnnealedSampler};

use crate::components::{
    checkpoint_path, load_run_config, Components, CHECKPOINT_FILE, CONFIG_FILE,
};
use crate::config::RunConfig;
use crate::metrics_csv::MetricsCsv;
use crate::observer::CliObserver;

/// `fab train`.
pub fn train(
    config_path: &Path,
    resume: bool,
    out: Option<PathBuf>,
    loss: Option<&str>,
    seed: Option<u64>,
) -> Result<()> {
    let mut config = RunConfig::load(config_path)?;
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
        train_in_pool(config_path, config, resume)
    })
}

/// `fab train` once the config is loaded, on the run's thread pool.
fn train_in_pool(config_path: &Path, config: RunConfig, resume: bool) -> Result<()> {
    let run_dir = config.output.dir.clone();
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
    // Held until training ends: a second `fab train` on this directory is refused.
    let _lock = crate::run_dir::lock(&run_dir)?;
    fab_core::checkpoint::remove_partial_files(&run_dir)?;
    let ck_path = run_dir.join(CHECKPOINT_FILE);

    let mut parts = Components::build(&config)?;
    let mut trainer = parts
        .trainer(&config)
        .with_context(|| format!("invalid config {}", config_path.display()))?;
    if config.output.n_evals > 0 {
        // Refused now rather than at the first evaluation, hours into the run.
        config.eval.check_memory(parts.target.dim())?;
    }
    if resume {
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
            })?;
        crate::run_dir::cut_logs(&run_dir, trainer.iteration)?;
        eprintln!(
            "resuming {} at iteration {}",
            run_dir.display(),
            trainer.iteration
        );
    } else if ck_path.exists() {
        bail!(
            "{} already holds a checkpoint; pass --resume to continue it, or set another output.dir (or --out)",
            run_dir.display()
        );
    }
    std::fs::write(run_dir.join(CONFIG_FILE), config.to_ron()?)
        .with_context(|| format!("cannot write {}", run_dir.join(CONFIG_FILE).display()))?;

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
    let mut observer = CliObserver::new(
        &config,
        &*parts.target,
        run_dir.clone(),
        n_iterations,
        trainer.iteration,
        stop,
    )?;
    eprintln!(
        "training {} iterations on {} ({} flow parameters) → {}",
        n_iterations,
        parts.target.name(),
        parts.flow.params().len(),
        run_dir.display()
    );
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
    let summary = serde_json::json!({
        "iterations": trainer.iteration,
        "target_evals": trainer.target_evals,
        "wall_seconds_this_session": seconds,
        "peak_rss_mib": peak_rss_mib(),
    });
    std::fs::write(
        run_dir.join("train_summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    if let Err(e) = plot_curves(&run_dir) {
        eprintln!("warning: could not plot training curves: {e:#}");
    }
    if observer.stop.load(Ordering::Relaxed) && trainer.iteration < n_iterations {
        return Err(Interrupted {
            run_dir,
            iteration: trainer.iteration,
        }
        .into());
    }
    eprintln!(
        "done: {} iterations in {:.1} s, {} target evaluations",
        trainer.iteration, seconds, trainer.target_evals
    );
    Ok(())
}

/// A training run stopped by a signal after writing its checkpoint (exit code 130, so scripts
/// can tell it from a finished run).
#[derive(Debug)]
pub struct Interrupted {
    /// The run directory, to resume.
    pub run_dir: PathBuf,
    /// Iterations completed.
    pub iteration: u64,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training interrupted at iteration {}; continue with `fab train --resume` on {}",
            self.iteration,
            self.run_dir.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), NaN where unavailable.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `fab bench`: times FAB iterations of a config and prints ms per iteration with time shares,
/// then the report as one JSON line.
pub fn bench(
    config_path: &Path,
    iterations: usize,
    warmup: usize,
    threads: Option<usize>,
) -> Result<()> {
    let mut config = RunConfig::load(config_path)?;
    if threads.is_some() {
        crate::config::check_threads(threads).context("--threads")?;
        config.threads = threads;
    }
    in_pool(config.threads, || {
        bench_in_pool(config_path, &config, iterations, warmup)
    })
}

/// `fab bench` once the config is loaded, on the run's thread pool.
fn bench_in_pool(
    config_path: &Path,
    config: &RunConfig,
    iterations: usize,
    warmup: usize,
) -> Result<()> {
    let mut parts = Components::build(config)?;
    let mut trainer = parts
        .trainer(config)
        .with_context(|| format!("invalid config {}", config_path.display()))?;
    eprintln!(
        "benchmarking {} ({} flow parameters): filling the buffer, {warmup} warm-up and {iterations} timed iterations",
        config_path.display(),
        parts.flow.params().len(),
    );
    let report = fab_core::bench::bench_iterations(
        &mut trainer,
        &mut *parts.flow,
        &mut parts.ais,
        &*parts.target,
        warmup,
        iterations,
    )?;
    println!(
        "{:.2} ms per iteration (mean of {}; min {:.2}, median {:.2}) on {} thread(s)",
        report.ms_per_iteration, report.iterations, report.ms_min, report.ms_median, report.threads
    );
    for (name, ms, share) in report.shares() {
        println!("  {name:<36} {ms:>10.2} ms {:>6.1} %", 100.0 * share);
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs a command's `work` on a rayon pool of `threads` workers (`None`: one per core). The
/// command itself runs on a pool thread, not only its parallel loops: with one thread every
/// parallel loop then runs inline instead of being handed to a sleeping worker and back.
pub fn in_pool<T: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.map_or(0, |n| n.max(1)))
        .build()
        .context("cannot start the worker threads")?;
    pool.install(work)
}

/// The components of a trained run with its checkpoint (or `checkpoint`) loaded.
fn load_trained(
    run: &Path,
    config: &RunConfig,
    checkpoint: Option<&PathBuf>,
) -> Result<Components> {
    let mut parts = Components::build(config)?;
    let path = checkpoint_path(run, checkpoint);
    if !path.exists() {
        bail!(
            "checkpoint {} not found (train first, or pass --checkpoint)",
            path.display()
        );
    }
    parts.load_checkpoint(&path, config)?;
    Ok(parts)
}

/// `fab eval`: writes eval.json and samples.png into the run directory. With more than one seed in
/// `seeds` (`--seed S --repeats N` gives S..S+N) eval.json holds every metric's mean over
/// them with its standard error (`<metric>_se`): heavy-tailed importance weights make a single
/// evaluation's ESS and log Z error noisy (the funnel's flow log Z MAE ranged 0.008–0.019 over
/// three evaluation seeds of one trained flow).
pub fn eval(
    run: &Path,
    checkpoint: Option<&PathBuf>,
    n_samples: Option<usize>,
    seeds: std::ops::Range<u64>,
    ground_truth: Option<&Path>,
) -> Result<Evaluation> {
    if seeds.is_empty() {
        bail!("--repeats must be at least 1");
    }
    let config = load_run_config(run)?;
    in_pool(config.threads, || {
        eval_in_pool(run, &config, checkpoint, n_samples, seeds, ground_truth)
    })
}

/// `fab eval` once the run's config is loaded, on its thread pool.
fn eval_in_pool(
    run: &Path,
    config: &RunConfig,
    checkpoint: Option<&PathBuf>,
    n_samples: Option<usize>,
    seeds: std::ops::Range<u64>,
    ground_truth: Option<&Path>,
) -> Result<Evaluation> {
    let truth = match ground_truth {
        None => None,
        Some(dir) => {
            let Some(molecule) = fab_targets::build_molecule(&config.target)? else {
                bail!(
                    "--ground-truth is for molecule runs (AlanineDipeptide or Peptide); {} trains on {:?}",
                    run.display(),
                    config.target
                );
            };
            let frames = fab_targets::aldp::md_files::load_ground_truth(dir, &molecule)?;
            Some((molecule, frames))
        }
    };
    let mut parts = load_trained(run, config, checkpoint)?;
    let eval_config = EvalConfig {
        n_samples: n_samples.unwrap_or(config.eval.n_samples),
        ..config.eval
    };
    let started = Instant::now();
    let n_repeats = seeds.end - seeds.start;
    let mut per_seed = Vec::new();
    let mut last = None;
    for seed in seeds.clone() {
        let mut rng = fab_core::rng::seeded(seed);
        let mut ev = evaluate(
            &*parts.flow,
            &mut parts.ais,
            &*parts.target,
            &eval_config,
            &mut rng,
        )?;
        if let Some((molecule, frames)) = &truth {
            let extra = crate::aldp_eval::evaluate(&ev, &*parts.flow, molecule, frames, run)?;
            ev.metrics.extend(extra);
        }
        if n_repeats > 1 {
            println!(
                "seed {seed}: flow ESS {:.4}, AIS ESS {:.4}",
                ev.metrics.get("eval_ess_flow").copied().unwrap_or(f64::NAN),
                ev.metrics.get("eval_ess_ais").copied().unwrap_or(f64::NAN)
            );
        }
        per_seed.push(ev.metrics.clone());
        last = Some(ev);
    }
    let Some(mut ev) = last else {
        bail!("--repeats must be at least 1");
    };
    let mut out = serde_json::Map::new();
    // Mean ± standard error over the evaluation seeds; the samples and plots are the last seed's.
    let summary = (n_repeats > 1).then(|| fab_core::seeds::over_seeds(&per_seed));
    if let Some(summary) = &summary {
        ev.metrics = summary.iter().map(|(k, (m, _))| (k.clone(), *m)).collect();
        for (k, (m, se)) in summary {
            out.insert(k.clone(), serde_json::Value::from(*m));
            out.insert(format!("{k}_se"), serde_json::Value::from(*se));
        }
        out.insert(
            "eval_seeds".into(),
            seeds.clone().collect::<Vec<_>>().into(),
        );
    } else {
        for (k, v) in &ev.metrics {
            out.insert(k.clone(), serde_json::Value::from(*v));
        }
    }
    out.insert(
        "eval_wall_seconds".into(),
        started.elapsed().as_secs_f64().into(),
    );
    out.insert("eval_peak_rss_mib".into(), peak_rss_mib().into());
    let path = run.join("eval.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::Value::Object(out))?,
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    match &summary {
        Some(summary) => {
            for (k, (m, se)) in summary {
                println!("{k:32} {m:.6} ± {se:.6}");
            }
        }
        None => {
            for (k, v) in &ev.metrics {
                println!("{k:32} {v:.6}");
            }
        }
    }
    if !parts.target.plot_views().is_empty() {
        let panels = [
            ("flow samples", ev.flow_x.view()),
            ("AIS samples (target p)", ev.ais_x.view()),
        ];
        crate::plot::samples_over_target(&*parts.target, &panels, &run.join("samples.png"))?;
    }
    Ok(ev)
}

/// `fab sample`: flow (or AIS) samples with log q / log weights into a CSV file.
pub fn sample(
    run: &Path,
    checkpoint: Option<&PathBuf>,
    n: usize,
    out: &Path,
    ais: bool,
    seed: u64,
) -> Result<()> {
    if n == 0 {
        bail!("-n must be at least 1");
    }
    // Checked before any sampling: the format follows the file name.
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "csv" | "npy" | "pdb" | "dcd") {
        bail!(
            "--out {}: unknown format `.{ext}`; write .csv or .npy (any target), .pdb or .dcd (molecules)",
            out.display()
        );
    }
    let config = load_run_config(run)?;
    in_pool(config.threads, || {
        let parts = load_trained(run, &config, checkpoint)?;
        // Samples, log q and weights, twice over while they are written.
        let per_sample = 2 * (parts.flow.dim() + 2);
        fab_core::memory::ensure_f64s_fit("-n", n, per_sample)?;
        write_samples(parts, &config.target, n, out, ais, seed)
    })
}

/// `fab sample` with the run loaded: draws the samples and writes them to `out`.
fn write_samples(
    mut parts: Components,
    target: &fab_targets::TargetConfig,
    n: usize,
    out: &Path,
    ais: bool,
    seed: u64,
) -> Result<()> {
    let mut rng = fab_core::rng::seeded(seed);
    // Flow samples need no AIS run: their weights are log p − log q.
    let (x, log_w) = if ais {
        let batch = parts.ais.run(
            &*parts.flow,
            &*parts.target,
            n,
            AnnealTarget::P,
            false,
            &mut rng,
        )?;
        (batch.x, batch.log_w)
    } else {
        let (x, log_q) = parts.flow.sample(n, &mut rng)?;
        let log_p = parts.target.log_prob(x.view())?;
        (x, log_p - log_q)
    };
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "pdb" {
        return write_pdb(target, x.view(), log_w.view(), out);
    }
    let log_q = parts.flow.log_prob(x.view())?;
    if ext == "dcd" {
        return write_dcd(target, x.view(), log_q.view(), log_w.view(), out);
    }
    // Molecules: internal coordinates, Cartesian positions, φ/ψ and weights; other targets: the
    // point, log q, log w and the normalised weight.
    let (header, rows) = match fab_targets::build_molecule(target)? {
        Some(molecule) => fab_targets::aldp::sample_table::molecule_sample_table(
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

/// Writes a table as CSV with a header, atomically (temporary file, then rename).
fn write_csv(header: &[String], rows: &ndarray::Array2<f64>, out: &Path) -> Result<()> {
    let tmp = out.with_extension("csv.tmp");
    let mut w =
        csv::Writer::from_path(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    w.write_record(header)?;
    for row in rows.rows() {
        w.write_record(row.iter().map(|v| v.to_string()))?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))
}

/// Writes a table as an (n, columns) float64 .npy array, atomically, and its column names one
/// per line to `<stem>.columns.txt` (numpy arrays carry no names).
fn write_npy_table(header: &[String], rows: &ndarray::Array2<f64>, out: &Path) -> Result<()> {
    let tmp = out.with_extension("npy.tmp");
    ndarray_npy::write_npy(&tmp, rows)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    let names = out.with_extension("columns.txt");
    std::fs::write(&names, header.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", names.display()))?;
    eprintln!(
        "columns of {} ({} × {}) are listed in {}",
        out.display(),
        rows.nrows(),
        rows.ncols(),
        names.display()
    );
    Ok(())
}

/// The molecule of a run whose samples go to a molecule-only format (`out` names it in the error).
fn molecule_for_output(
    target: &fab_targets::TargetConfig,
    out: &Path,
) -> Result<fab_targets::Molecule> {
    match fab_targets::Molecule::from_config(target)? {
        Some(m) => Ok(m),
        None => bail!(
            "{} output ({}) is for molecule targets, not {target:?}",
            out.extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_uppercase(),
            out.display()
        ),
    }
}

/// Writes molecule samples as a DCD trajectory (Cartesian, Å), with `<stem>.topology.pdb` (the
/// first sample, for mdtraj/MDAnalysis/VMD) and `<stem>.weights.csv` (log q, log w and the
/// normalised weight of each frame; DCD has no place for them).
fn write_dcd(
    target: &fab_targets::TargetConfig,
    z: ndarray::ArrayView2<f64>,
    log_q: ndarray::ArrayView1<f64>,
    log_w: ndarray::ArrayView1<f64>,
    out: &Path,
) -> Result<()> {
    let molecule = molecule_for_output(target, out)?;
    let x = molecule.target.transform().cartesian_of_rows(z)?;
    let top = fab_targets::aldp::dcd::topology_path(out);
    fab_targets::aldp::dcd::write_dcd_with_topology(out, x.view(), 0.0, &molecule.peptide.topology)
        .with_context(|| format!("cannot write {} and {}", out.display(), top.display()))?;
    // The table of log q, log w and weight with the frame number as its "point".
    let frames = ndarray::Array2::from_shape_fn((z.nrows(), 1), |(i, _)| i as f64);
    let (mut header, table) = fab_core::sample_table::sample_table(frames.view(), log_q, log_w)?;
    header[0] = "frame".into();
    write_csv(&header, &table, &out.with_extension("weights.csv"))?;
    eprintln!(
        "wrote {} frames to {} (topology {}, weights {})",
        z.nrows(),
        out.display(),
        top.display(),
        out.with_extension("weights.csv").display()
    );
    Ok(())
}

/// Writes internal-coordinate samples of a molecule target (alanine dipeptide or a `Peptide`) as
/// a multi-model PDB file, with their importance weights (REMARKs and B-factors).
fn write_pdb(
    target: &fab_targets::TargetConfig,
    z: ndarray::ArrayView2<f64>,
    log_w: ndarray::ArrayView1<f64>,
    out: &Path,
) -> Result<()> {
    let molecule = molecule_for_output(target, out)?;
    let (top, transform) = (&molecule.peptide.topology, molecule.target.transform());
    let frames: Vec<Vec<[f64; 3]>> = transform.map_cartesian(z, |x| x.to_vec());
    let tmp = out.with_extension("pdb.tmp");
    let log_w = log_w.to_vec();
    std::fs::write(
        &tmp,
        fab_targets::aldp::pdb::to_pdb_weighted(top, &frames, Some(&log_w)),
    )
    .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} conformations to {}", frames.len(), out.display());
    Ok(())
}

/// `fab plot`: training curves (loss, ESS, acceptance) from metrics.csv into curves.png.
pub fn plot_curves(run: &Path) -> Result<()> {
    let metrics = MetricsCsv::read(&run.join("metrics.csv"))?;
    let iteration = metrics.column("iteration")?;
    let series: Vec<(&str, Vec<(f64, f64)>)> = ["loss", "ess_flow", "ess_ais", "acceptance"]
        .into_iter()
        .map(|name| {
            let values = metrics.column(name)?;
            Ok((name, iteration.iter().copied().zip(values).collect()))
        })
        .collect::<Result<_>>()?;
    crate::plot::curves(&series, &run.join("curves.png"))?;
    // ESS against training wall time: from the in-training evaluations (eval.jsonl) when there
    // are at least two, else the per-iteration batch ESS of metrics.csv averaged over windows of
    // 50 iterations. Logs written before the wall_seconds column existed give no plot.
    if !metrics.has("wall_seconds") {
        return Ok(());
    }
    let evals = read_eval_log(&run.join("eval.jsonl"))?;
    let minutes = |s: f64| s / 60.0;
    let (series, source) = if evals.len() >= 2 {
        let pick = |key: &str| -> Vec<(f64, f64)> {
            evals
                .iter()
                .map(|row| {
                    let get = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
                    (minutes(get("wall_seconds")), get(key))
                })
                .collect()
        };
        (
            vec![
                ("flow", pick("eval_ess_flow")),
                ("AIS", pick("eval_ess_ais")),
            ],
            "evaluations",
        )
    } else {
        let windows = |name: &str| -> Result<Vec<(f64, f64)>> {
            Ok(metrics
                .curve(name)?
                .window_means(50)
                .iter()
                .map(|p| (minutes(p.wall_seconds), p.mean))
                .collect())
        };
        (
            vec![
                ("flow (batch)", windows("ess_flow")?),
                ("AIS (batch)", windows("ess_ais")?),
            ],
            "training batches, means over 50 iterations",
        )
    };
    crate::plot::overlaid_curves(
        &series,
        "training wall time (min)",
        &format!("ESS / N ({source})"),
        crate::plot::YAxis::Linear,
        &run.join("ess_vs_time.png"),
    )?;
    // Targets with a known log Z (GMM, funnel, Many Well): its error against wall time on a log
    // axis, the curve to extrapolate when a run stops short of a published error.
    let mae = |key: &str| -> Vec<(f64, f64)> {
        evals
            .iter()
            .filter_map(|row| Some((minutes(row["wall_seconds"].as_f64()?), row[key].as_f64()?)))
            .collect()
    };
    let (flow, ais) = (mae("log_z_mae_flow"), mae("log_z_mae_ais"));
    if flow.len() >= 2 {
        crate::plot::overlaid_curves(
            &[("flow", flow), ("AIS", ais)],
            "training wall time (min)",
            "log Z MAE (evaluations)",
            crate::plot::YAxis::Log10,
            &run.join("log_z_mae_vs_time.png"),
        )?;
    }
    Ok(())
}

/// The rows of an eval.jsonl (empty when the file does not exist); unreadable lines are skipped.
fn read_eval_log(path: &Path) -> Result<Vec<serde_json::Value>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
