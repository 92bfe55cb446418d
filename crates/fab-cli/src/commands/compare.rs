//! `fab compare`: training runs of variants side by side at equal training wall time, from their
//! metrics.csv (batch ESS of the flow and of AIS, smoothed over windows of iterations) and, where
//! a run has one, its final evaluation (eval.json): compare.md, compare.json and compare.png.

use anyhow::{bail, Context, Result};
use fab_core::learning_curve::{CurvePoint, LearningCurve};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::metrics_csv::MetricsCsv;

/// One run's curves and final evaluation.
struct RunCurves {
    name: String,
    flow: LearningCurve,
    ais: LearningCurve,
    /// `eval_ess_flow` and `eval_ess_ais` of the run's eval.json, when it has been evaluated.
    final_eval: Option<(f64, f64)>,
}

fn read_run(run: &Path) -> Result<RunCurves> {
    let metrics = MetricsCsv::read(&run.join("metrics.csv"))?;
    let eval_path = run.join("eval.json");
    let final_eval = if eval_path.exists() {
        let text = std::fs::read_to_string(&eval_path)
            .with_context(|| format!("cannot read {}", eval_path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not JSON", eval_path.display()))?;
        let get = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        Some((get("eval_ess_flow"), get("eval_ess_ais")))
    } else {
        None
    };
    Ok(RunCurves {
        name: run
            .file_name()
            .map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into()),
        flow: metrics.curve("ess_flow")?,
        ais: metrics.curve("ess_ais")?,
        final_eval,
    })
}

/// `fab compare`: writes compare.md, compare.json and compare.png into `out` and prints the table.
/// `at_minutes` defaults to four equal steps up to the shortest run's training time; `window` is
/// the number of iterations each batch-ESS value is averaged over.
pub fn compare(
    runs: &[PathBuf],
    at_minutes: Option<Vec<f64>>,
    window: usize,
    out: &Path,
) -> Result<()> {
    if runs.is_empty() {
        bail!("--runs: give at least one run directory");
    }
    if window == 0 {
        bail!("--window must be at least 1 iteration");
    }
    let curves: Vec<RunCurves> = runs.iter().map(|r| read_run(r)).collect::<Result<_>>()?;
    if let Some(empty) = curves.iter().find(|c| c.flow.is_empty()) {
        bail!("run `{}` has no logged iterations yet", empty.name);
    }
    let shortest = curves
        .iter()
        .map(|c| c.flow.total_seconds())
        .fold(f64::INFINITY, f64::min)
        / 60.0;
    let at = at_minutes.unwrap_or_else(|| (1..=4).map(|k| shortest * k as f64 / 4.0).collect());
    if let Some(bad) = at.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
        bail!("--at: wall times must be positive minutes, got {bad}");
    }

    let cell = |p: Option<CurvePoint>| {
        p.map_or("–".to_string(), |p| {
            format!("{:.3} ({} it)", p.mean, p.iterations)
        })
    };
    let mut md = format!(
        "Batch ESS (flow / AIS) at equal training wall time, means over the last {window} iterations \
         finished by then (iterations in parentheses).\n\n| run |"
    );
    for t in &at {
        write!(md, " flow @ {t:.1} min | AIS @ {t:.1} min |")?;
    }
    md.push_str(" training time | final eval flow / AIS |\n|---|");
    md.push_str(&"---|---|".repeat(at.len()));
    md.push_str("---|---|\n");
    let mut rows = Vec::new();
    for c in &curves {
        write!(md, "| {} |", c.name)?;
        let mut points = Vec::new();
        for &t in &at {
            let (f, a) = (
                c.flow.trailing_mean_at(t * 60.0, window),
                c.ais.trailing_mean_at(t * 60.0, window),
            );
            write!(md, " {} | {} |", cell(f), cell(a))?;
            points.push(json!({
                "minutes": t,
                "iterations": f.map(|p| p.iterations),
                "ess_flow": f.map(|p| p.mean),
                "ess_ais": a.map(|p| p.mean),
            }));
        }
        let total = c.flow.total_seconds() / 60.0;
        let final_eval = c
            .final_eval
            .map_or("–".to_string(), |(f, a)| format!("{f:.3} / {a:.3}"));
        writeln!(
            md,
            " {total:.1} min, {} it | {final_eval} |",
            c.flow.last_iteration()
        )?;
        rows.push(json!({
            "run": c.name,
            "at": points,
            "training_minutes": total,
            "iterations": c.flow.last_iteration(),
            "eval_ess_flow": c.final_eval.map(|e| e.0),
            "eval_ess_ais": c.final_eval.map(|e| e.1),
        }));
    }

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let md_path = out.join("compare.md");
    std::fs::write(&md_path, &md).with_context(|| format!("cannot write {}", md_path.display()))?;
    let json_path = out.join("compare.json");
    let doc = json!({ "window": window, "runs": rows });
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    let series: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|c| {
            let pts = c
                .flow
                .window_means(window)
                .iter()
                .map(|p| (p.wall_seconds / 60.0, p.mean))
                .collect();
            (c.name.as_str(), pts)
        })
        .collect();
    crate::charts::overlaid_curves(
        &series,
        "training wall time (min)",
        &format!("flow ESS / N (training batches, means over {window} iterations)"),
        crate::charts::YAxis::Linear,
        &out.join("compare.png"),
    )?;
    print!("{md}");
    eprintln!(
        "wrote {}, {} and compare.png",
        md_path.display(),
        json_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_run(dir: &Path, name: &str, seconds_per_it: f64, ess: f64) -> PathBuf {
        let run = dir.join(name);
        std::fs::create_dir_all(&run).unwrap();
        let mut csv = "iteration,ess_flow,ess_ais,wall_seconds\n".to_string();
        for i in 1..=20 {
            let t = seconds_per_it * i as f64;
            csv += &format!("{i},{},{},{t}\n", ess * i as f64, 2.0 * ess * i as f64);
        }
        std::fs::write(run.join("metrics.csv"), csv).unwrap();
        run
    }

    #[test]
    fn runs_are_compared_at_the_same_wall_time_not_the_same_iteration() {
        let dir = tempfile::tempdir().unwrap();
        // Run a takes 6 s per iteration, run b 12 s; both log ESS 0.01·i at iteration i.
        let a = write_run(dir.path(), "a", 6.0, 0.01);
        let b = write_run(dir.path(), "b", 12.0, 0.01);
        std::fs::write(
            b.join("eval.json"),
            r#"{"eval_ess_flow": 0.5, "eval_ess_ais": 0.7}"#,
        )
        .unwrap();
        let out = dir.path().join("cmp");
        compare(&[a, b], Some(vec![1.0]), 2, &out).unwrap();
        let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
        // At 1 min, a has finished 10 iterations (mean of 9, 10 → 0.095), b 5 (4, 5 → 0.045).
        assert!(md.contains("| a | 0.095 (10 it) | 0.190 (10 it) |"), "{md}");
        assert!(md.contains("| b | 0.045 (5 it) | 0.090 (5 it) |"), "{md}");
        assert!(md.contains("0.500 / 0.700"), "{md}");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap())
                .unwrap();
        assert_eq!(doc["runs"][1]["at"][0]["iterations"], 5);
        assert!(out.join("compare.png").exists());
    }

    #[test]
    fn a_run_without_metrics_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = compare(&[dir.path().join("missing")], None, 10, dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }
}
