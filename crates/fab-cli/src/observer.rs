//! The CLI's training observer: progress bar, metrics.csv, periodic evaluations (eval.jsonl and
//! sample plots), atomic checkpoints, and a clean stop on Ctrl-C.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use fab_core::checkpoint::Checkpoint;
use fab_core::metrics::evaluate_across;
use fab_core::train::{IterInfo, Observer, TrainContext};
use fab_core::{FabError, Target};

use crate::components::CHECKPOINT_FILE;
use crate::config::RunConfig;

/// Evaluation iterations: round(linspace(1, n_iter, n_evals)) as in fab-torch.
pub fn eval_schedule(n_iterations: u64, n_evals: u64) -> BTreeSet<u64> {
    if n_evals == 0 || n_iterations == 0 {
        return BTreeSet::new();
    }
    if n_evals == 1 {
        return BTreeSet::from([n_iterations]);
    }
    (0..n_evals)
        .map(|k| 1 + ((n_iterations - 1) as f64 * k as f64 / (n_evals - 1) as f64) as u64)
        .collect()
}

/// Seed of the evaluation at `iteration`: independent of the training stream, so evaluating more
/// or less often never changes training.
pub fn eval_seed(seed: u64, iteration: u64) -> u64 {
    seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(iteration + 1)
}

/// Writes the checkpoint of the current state (atomically) with the run config in its metadata.
pub fn write_checkpoint(
    config: &RunConfig,
    ctx: &TrainContext<'_>,
    path: &std::path::Path,
) -> fab_core::Result<()> {
    let mut ck = Checkpoint::new();
    ctx.trainer.save(ctx.flow, &*ctx.sampler, &mut ck)?;
    ck.put_meta("format", "fab-rs checkpoint v1");
    ck.put_meta(
        "config",
        config
            .to_ron()
            .map_err(|e| FabError::Backend(e.to_string()))?,
    );
    ck.write_atomic(path)
}

/// Observer attached by `fab train`.
pub struct CliObserver<'a> {
    pub config: &'a RunConfig,
    pub target: &'a dyn Target,
    pub run_dir: PathBuf,
    pub n_iterations: u64,
    pub bar: ProgressBar,
    /// The run's log files: rank 0 writes them; other ranks hold `None` and write nothing.
    pub metrics: Option<csv::Writer<File>>,
    pub eval_log: Option<File>,
    pub eval_at: BTreeSet<u64>,
    /// Set by the signal handler of this process.
    pub stop: Arc<AtomicBool>,
    /// True once the ranks stopped together because one of them was signalled.
    pub stopped: bool,
    /// Training wall time at the last observed iteration (written with each evaluation).
    pub wall_seconds: f64,
}

impl<'a> CliObserver<'a> {
    /// Opens (or appends to, when resuming) the run's metric files when `writer` (rank 0); the
    /// other ranks get an observer that evaluates along but writes and prints nothing.
    pub fn new(
        config: &'a RunConfig,
        target: &'a dyn Target,
        run_dir: PathBuf,
        n_iterations: u64,
        start: u64,
        stop: Arc<AtomicBool>,
        writer: bool,
    ) -> anyhow::Result<Self> {
        let eval_at = eval_schedule(n_iterations, config.output.n_evals);
        if !writer {
            return Ok(Self {
                eval_at,
                config,
                target,
                run_dir,
                n_iterations,
                bar: ProgressBar::hidden(),
                metrics: None,
                eval_log: None,
                stop,
                stopped: false,
                wall_seconds: 0.0,
            });
        }
        let metrics_path = run_dir.join("metrics.csv");
        let append = start > 0 && metrics_path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(&metrics_path)?;
        let metrics = csv::WriterBuilder::new()
            .has_headers(!append)
            .from_writer(file);
        let eval_log = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(run_dir.join("eval.jsonl"))?;
        let bar = ProgressBar::new(n_iterations).with_position(start);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ({eta}) {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Ok(Self {
            eval_at,
            config,
            target,
            run_dir,
            n_iterations,
            bar,
            metrics: Some(metrics),
            eval_log: Some(eval_log),
            stop,
            stopped: false,
            wall_seconds: 0.0,
        })
    }

    /// Prints a line above the progress bar, or to stderr when the bar is hidden (not a terminal);
    /// ranks other than 0 print nothing.
    fn say(&self, line: impl AsRef<str>) {
        if self.metrics.is_none() {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            self.bar.println(line);
        }
    }

    fn evaluate(&mut self, iteration: u64, ctx: &mut TrainContext<'_>) -> anyhow::Result<()> {
        let mut rng = fab_core::rng::seeded(eval_seed(self.config.training.seed, iteration));
        let ev = evaluate_across(
            ctx.flow,
            ctx.sampler,
            self.target,
            &self.config.eval,
            &mut rng,
            ctx.comm,
        )?;
        let Some(eval_log) = self.eval_log.as_mut() else {
            return Ok(());
        };
        let mut row = serde_json::Map::new();
        row.insert("iteration".into(), iteration.into());
        row.insert("wall_seconds".into(), self.wall_seconds.into());
        for (k, v) in &ev.metrics {
            row.insert(k.clone(), serde_json::Value::from(*v));
        }
        writeln!(eval_log, "{}", serde_json::Value::Object(row))?;
        eval_log.flush()?;
        if !self.target.plot_views().is_empty() {
            let dir = self.run_dir.join("plots");
            std::fs::create_dir_all(&dir)?;
            let panels = [
                ("flow samples", ev.flow_x.view()),
                ("AIS samples (target p)", ev.ais_x.view()),
            ];
            if let Err(e) = crate::charts::samples_over_target(
                self.target,
                &panels,
                &dir.join(format!("samples_{iteration:07}.png")),
            ) {
                self.say(format!("warning: plot failed: {e:#}"));
            }
        }
        let get = |k: &str| ev.metrics.get(k).copied().unwrap_or(f64::NAN);
        self.say(format!(
            "eval @ {iteration}: ESS flow {:.3}, ESS AIS {:.3}, test log q {:.3}",
            get("eval_ess_flow"),
            get("eval_ess_ais"),
            get("test_mean_log_q")
        ));
        Ok(())
    }

    fn observe(
        &mut self,
        info: &IterInfo,
        mut ctx: TrainContext<'_>,
    ) -> anyhow::Result<ControlFlow<()>> {
        let it = info.iteration;
        self.wall_seconds = info.wall_seconds;
        self.bar.set_position(it);
        self.bar.set_message(format!(
            "loss {:.3} ESS ais {:.3} flow {:.3} acc {:.2} ε {:.3}",
            info.loss, info.ess_ais, info.ess_flow, info.acceptance, info.step_size
        ));
        let last = it >= self.n_iterations;
        if let Some(metrics) = self.metrics.as_mut() {
            if it.is_multiple_of(self.config.output.log_every) || last {
                metrics.serialize(info)?;
                metrics.flush()?;
            }
        }
        if self.eval_at.contains(&it) {
            self.evaluate(it, &mut ctx)?;
        }
        // A signal reaches the ranks at different moments: they stop at the same iteration.
        let stop = ctx.comm.any(self.stop.load(Ordering::Relaxed));
        self.stopped = stop;
        let checkpoint = it.is_multiple_of(self.config.output.checkpoint_every) || last || stop;
        if checkpoint && self.metrics.is_some() {
            write_checkpoint(self.config, &ctx, &self.run_dir.join(CHECKPOINT_FILE))?;
        }
        if stop {
            self.say(format!("interrupted: checkpoint written at iteration {it}"));
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }
}

impl Observer for CliObserver<'_> {
    fn after_iteration(
        &mut self,
        info: &IterInfo,
        ctx: TrainContext<'_>,
    ) -> fab_core::Result<ControlFlow<()>> {
        self.observe(info, ctx)
            .map_err(|e| FabError::Backend(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_schedule_spans_first_to_last_iteration() {
        let s: Vec<u64> = eval_schedule(100, 5).into_iter().collect();
        assert_eq!(s, vec![1, 25, 50, 75, 100]);
        assert!(eval_schedule(100, 0).is_empty());
        assert_eq!(eval_schedule(7, 1).into_iter().collect::<Vec<_>>(), vec![7]);
    }
}
