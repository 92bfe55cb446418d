//! `fab plot`: training curves of a run directory (and the in-training evaluations) as PNGs.

use std::path::Path;

use anyhow::{Context, Result};

use crate::metrics_csv::MetricsCsv;

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
    crate::charts::curves(&series, &run.join("curves.png"))?;
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
    crate::charts::overlaid_curves(
        &series,
        "training wall time (min)",
        &format!("ESS / N ({source})"),
        crate::charts::YAxis::Linear,
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
        crate::charts::overlaid_curves(
            &[("flow", flow), ("AIS", ais)],
            "training wall time (min)",
            "log Z MAE (evaluations)",
            crate::charts::YAxis::Log10,
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
