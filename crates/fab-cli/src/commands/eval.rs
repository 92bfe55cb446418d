//! `fab eval`: evaluates a trained run (ESS, log Z, forward KL, and against MD for molecules)
//! into eval.json and its plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use fab_core::metrics::{evaluate_across, EvalConfig, Evaluation};
use fab_core::Communicator;
use fab_targets::molecule::evaluation::MdFrames;
use fab_targets::molecule::InternalBoltzmann;

use crate::components::load_run_config;
use crate::components::load_trained;
use crate::config::RunConfig;
use crate::peak_memory::peak_rss_mib;
use crate::pool::in_pool;
use crate::ranks::together;

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
    comm: &dyn Communicator,
) -> Result<Evaluation> {
    if seeds.is_empty() {
        bail!(
            "--repeats must be at least 1, and --seed + --repeats at most {} (got --seed {}): the seeds are --seed, --seed + 1, …",
            u64::MAX,
            seeds.start
        );
    }
    if n_samples == Some(0) {
        bail!("--n-samples must be at least 1");
    }
    let config = together(comm, || load_run_config(run))?;
    in_pool(config.threads, || {
        eval_in_pool(
            run,
            &config,
            checkpoint,
            n_samples,
            seeds,
            ground_truth,
            comm,
        )
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
    comm: &dyn Communicator,
) -> Result<Evaluation> {
    // Every rank shares the sampling; rank 0 alone compares with the MD and writes the files.
    let root = comm.rank() == 0;
    let ground_truth = ground_truth.filter(|_| root);
    let (truth, mut parts) = together(comm, || {
        Ok((
            load_truth(run, config, ground_truth)?,
            load_trained(run, config, checkpoint)?,
        ))
    })?;
    let eval_config = EvalConfig {
        n_samples: n_samples.unwrap_or(config.eval.n_samples),
        ..config.eval
    };
    eval_config.validate().context("--n-samples")?;
    let started = Instant::now();
    let n_repeats = seeds.end - seeds.start;
    let mut per_seed = Vec::new();
    let mut last = None;
    for seed in seeds.clone() {
        let mut rng = fab_core::rng::seeded(seed);
        let mut ev = evaluate_across(
            &*parts.flow,
            &mut parts.ais,
            &*parts.target,
            &eval_config,
            &mut rng,
            comm,
        )?;
        if let Some((molecule, frames)) = &truth {
            let extra = crate::molecule_eval::evaluate(&ev, &*parts.flow, molecule, frames, run)?;
            ev.metrics.extend(extra);
        }
        if n_repeats > 1 && root {
            println!(
                "seed {seed}: flow ESS {:.4}, AIS ESS {:.4}",
                ev.metrics.get("eval_ess_flow").copied().unwrap_or(f64::NAN),
                ev.metrics.get("eval_ess_ais").copied().unwrap_or(f64::NAN)
            );
        }
        per_seed.push(ev.metrics.clone());
        last = Some(ev);
    }
    let Some(ev) = last else {
        bail!("--repeats must be at least 1");
    };
    if !root {
        return Ok(ev);
    }
    write_evaluation(run, ev, &per_seed, seeds, started, &*parts.target)
}

/// The MD ground truth for `--ground-truth DIR`, if given.
fn load_truth(
    run: &Path,
    config: &RunConfig,
    ground_truth: Option<&Path>,
) -> Result<Option<(InternalBoltzmann, MdFrames)>> {
    Ok(match ground_truth {
        None => None,
        Some(dir) => {
            let Some(molecule) = fab_targets::build_molecule(&config.target)? else {
                bail!(
                    "--ground-truth is for molecule runs (AlanineDipeptide or Peptide); {} trains on {:?}",
                    run.display(),
                    config.target
                );
            };
            let frames = fab_targets::molecule::md::run_files::load_ground_truth(dir, &molecule)?;
            Some((molecule, frames))
        }
    })
}

/// Writes eval.json (the mean ± standard error over seeds when there are several), prints the
/// metrics and draws samples.png.
fn write_evaluation(
    run: &Path,
    mut ev: Evaluation,
    per_seed: &[std::collections::BTreeMap<String, f64>],
    seeds: std::ops::Range<u64>,
    started: Instant,
    target: &dyn fab_core::Target,
) -> Result<Evaluation> {
    let n_repeats = seeds.end - seeds.start;
    let mut out = serde_json::Map::new();
    // Mean ± standard error over the evaluation seeds; the samples and plots are the last seed's.
    let summary = (n_repeats > 1).then(|| fab_core::seeds::over_seeds(per_seed));
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
    if !target.plot_views().is_empty() {
        let panels = [
            ("flow samples", ev.flow_x.view()),
            ("AIS samples (target p)", ev.ais_x.view()),
        ];
        crate::charts::samples_over_target(target, &panels, &run.join("samples.png"))?;
    }
    Ok(ev)
}
