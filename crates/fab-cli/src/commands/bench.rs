//! `fab bench`: times FAB iterations of a config and reports where the time goes.

use std::path::Path;

use anyhow::{Context, Result};

use crate::components::Components;
use crate::config::RunConfig;
use crate::pool::in_pool;

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
