//! A training run's settings: objective, buffer, optimiser and run length, with their checks.

use serde::{Deserialize, Serialize};

use crate::optim::AdamConfig;
use crate::{FabError, Result};

/// Largest α of the α-divergence accepted: the AIS goal p^α q^(1−α) raises importance weights
/// to the power α, which leaves f64's range for α far above FAB's 2.
const MAX_ALPHA: f64 = 10.0;

/// Which training objective to use: FAB or one of the paper's baselines (fab-spec §1.4, §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossKind {
    /// FAB with the prioritised replay buffer (the paper's main method).
    FabBuffer,
    /// FAB without buffer: one step per AIS batch with self-normalised weights.
    FabNoBuffer,
    /// Reverse KL with reparameterised flow samples: mean(log q − log p).
    ReverseKl,
    /// α = 2 divergence with flow samples (NIS form): −mean(sg[(p/q)²] · log q).
    Alpha2Nis,
    /// Forward KL (maximum likelihood) on exact target samples: −mean(log q(x)), x ∼ p.
    ForwardKl,
}

impl LossKind {
    /// Whether the objective runs AIS.
    pub fn uses_ais(&self) -> bool {
        matches!(self, LossKind::FabBuffer | LossKind::FabNoBuffer)
    }
}

/// Replay-buffer settings (fab-spec §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Rows required before sampling starts (the initial fill runs AIS until reached).
    pub min_length: usize,
    /// Capacity (FIFO beyond it).
    pub max_length: usize,
    /// Gradient steps per AIS batch.
    pub n_updates: usize,
    /// Clip C of the loss multiplier min(w_adjust, C); `None` = no clip (fab-torch GMM).
    pub w_adjust_clip: Option<f64>,
    /// `min_length` in AIS batches instead (fab-jax's way: 40); overrides `min_length`.
    pub min_batches: Option<usize>,
    /// `max_length` in AIS batches instead (fab-jax: 400); overrides `max_length`.
    pub max_batches: Option<usize>,
}

impl BufferConfig {
    /// Rows required before sampling starts, for AIS batches of `batch_size`.
    pub fn min_samples(&self, batch_size: usize) -> usize {
        self.min_batches
            .map_or(self.min_length, |b| b.saturating_mul(batch_size))
    }

    /// Capacity in rows, for AIS batches of `batch_size`.
    pub fn max_samples(&self, batch_size: usize) -> usize {
        self.max_batches
            .map_or(self.max_length, |b| b.saturating_mul(batch_size))
    }
}

/// How long to train.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Iterations {
    /// A fixed number of iterations.
    Fixed(u64),
    /// A budget of flow evaluations, converted as in fab-torch's `get_n_iterations` (fab-spec §5.1).
    FlowEvalBudget(u64),
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed of the whole run (flow init uses its own seed from the flow config).
    pub seed: u64,
    /// AIS batch size N, also the minibatch size B.
    pub batch_size: usize,
    /// α of the α-divergence (2 in the paper).
    pub alpha: f64,
    /// Estimator.
    pub loss: LossKind,
    /// Replay buffer (ignored by `FabNoBuffer`).
    pub buffer: BufferConfig,
    /// Optimiser.
    pub optimizer: AdamConfig,
    /// Length of training.
    pub iterations: Iterations,
}

impl Default for BufferConfig {
    /// fab-torch's GMM buffer: 10 to 100 batches of 128, 4 updates, no clip.
    fn default() -> Self {
        Self {
            min_length: 1280,
            max_length: 12_800,
            n_updates: 4,
            w_adjust_clip: None,
            min_batches: None,
            max_batches: None,
        }
    }
}

impl Default for TrainConfig {
    /// The paper's GMM settings (fab-spec §5.1): batch 128, FAB with buffer, α = 2, Adam 1e-4,
    /// 2·10⁷ flow evaluations; the gradient clipping is fab-jax's median-relative one
    /// ([`crate::optim::AdamConfig::default`]) instead of the paper's fixed clip at 100.
    fn default() -> Self {
        Self {
            seed: 0,
            batch_size: 128,
            alpha: 2.0,
            loss: LossKind::FabBuffer,
            buffer: BufferConfig::default(),
            optimizer: AdamConfig::default(),
            iterations: Iterations::FlowEvalBudget(20_000_000),
        }
    }
}

impl TrainConfig {
    /// Number of iterations, resolving a flow-evaluation budget with `per` = flow evaluations per
    /// sample of one AIS pass.
    pub fn n_iterations(&self, per: usize) -> u64 {
        let (per, n) = (per as u64, self.batch_size as u64);
        match (self.iterations, self.loss) {
            (Iterations::Fixed(k), _) => k,
            (Iterations::FlowEvalBudget(b), LossKind::FabBuffer) => {
                let min = self.buffer.min_samples(self.batch_size) as u64;
                b.saturating_sub(per * min) / ((per + 1) * n)
            }
            (Iterations::FlowEvalBudget(b), LossKind::FabNoBuffer) => b / (per * n),
            (Iterations::FlowEvalBudget(b), _) => b / n,
        }
    }

    /// Optimiser steps per iteration: `n_updates` with the buffer, one otherwise.
    pub fn steps_per_iteration(&self) -> u64 {
        match self.loss {
            LossKind::FabBuffer => self.buffer.n_updates as u64,
            _ => 1,
        }
    }

    /// The settings with every "derive from the run" value filled in: a warm-up-cosine schedule
    /// without `total_steps` decays to 0 at the run's last optimiser step. `per` is the flow
    /// evaluations per sample of one AIS pass (as for [`TrainConfig::n_iterations`]). Refuses a
    /// run of no iterations and a warm-up as long as the run it would fill.
    pub fn resolved(mut self, per: usize) -> Result<Self> {
        let iterations = self.n_iterations(per);
        if iterations == 0 {
            return Err(FabError::invalid(
                "training.iterations",
                format!("{:?} gives no iteration to train", self.iterations),
            ));
        }
        let per_iteration = self.steps_per_iteration();
        let run_steps = iterations * per_iteration;
        if let crate::optim::LrSchedule::WarmupCosine {
            total_steps,
            warmup_steps,
        } = &mut self.optimizer.schedule
        {
            if *total_steps == 0 {
                if run_steps <= *warmup_steps {
                    return Err(FabError::invalid(
                        "training.optimizer.schedule.warmup_steps",
                        format!(
                            "{warmup_steps} warm-up steps, but the whole run has only {run_steps} \
                             optimiser steps ({iterations} iterations × {per_iteration} per \
                             iteration): shorten the warm-up or lengthen the run"
                        ),
                    ));
                }
                *total_steps = run_steps;
            }
        }
        Ok(self)
    }

    /// Checks the settings for values the algorithm cannot run with.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN must fail the check
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &str, reason: &str| Err(FabError::invalid(format!("training.{field}"), reason));
        if self.batch_size == 0 {
            return bad("batch_size", "must be positive");
        }
        if !(self.alpha > 0.0 && self.alpha <= MAX_ALPHA) {
            return bad(
                "alpha",
                &format!("must lie in (0, {MAX_ALPHA}] (FAB uses 2; larger powers of the importance weights overflow)"),
            );
        }
        if self.loss == LossKind::FabBuffer {
            let b = &self.buffer;
            if b.n_updates == 0 {
                return bad("buffer.n_updates", "must be positive");
            }
            let (min, max) = (
                b.min_samples(self.batch_size),
                b.max_samples(self.batch_size),
            );
            // Name the fields the user set: the batch counts when given.
            let (min_name, max_name) = (
                if b.min_batches.is_some() {
                    "buffer.min_batches"
                } else {
                    "buffer.min_length"
                },
                if b.max_batches.is_some() {
                    "buffer.max_batches"
                } else {
                    "buffer.max_length"
                },
            );
            if max == 0 {
                return bad(max_name, "must be positive");
            }
            if min > max {
                return Err(FabError::invalid(
                    format!("training.{min_name}"),
                    format!(
                        "{min} rows exceed the capacity {max} ({max_name}): the buffer could never \
                         start sampling"
                    ),
                ));
            }
            if b.n_updates * self.batch_size > min {
                return Err(FabError::invalid(
                    format!("training.{min_name}"),
                    format!(
                        "{min} rows are fewer than n_updates × batch_size = {}: one iteration \
                         samples that many",
                        b.n_updates * self.batch_size
                    ),
                ));
            }
            if let Some(c) = b.w_adjust_clip {
                if !(c.is_finite() && c > 0.0) {
                    return bad("buffer.w_adjust_clip", "must be a positive number or None");
                }
            }
        }
        let opt = &self.optimizer;
        if !(opt.lr.is_finite() && opt.lr > 0.0 && opt.lr <= 1.0) {
            return bad("optimizer.lr", "must lie in (0, 1]");
        }
        if let crate::optim::LrSchedule::WarmupCosine {
            warmup_steps,
            total_steps,
        } = opt.schedule
        {
            if total_steps > 0 && total_steps <= warmup_steps {
                return bad(
                    "optimizer.schedule.total_steps",
                    "must exceed warmup_steps (or be left out: the whole run)",
                );
            }
        }
        if !(opt.eps.is_finite() && opt.eps > 0.0) {
            return bad("optimizer.eps", "must be a positive number");
        }
        for (name, beta) in [("beta1", opt.beta1), ("beta2", opt.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return bad(&format!("optimizer.{name}"), "must lie in [0, 1)");
            }
        }
        if !(opt.weight_decay.is_finite() && opt.weight_decay >= 0.0) {
            return bad("optimizer.weight_decay", "must be a non-negative number");
        }
        if let Some(max) = opt.max_grad_norm {
            if !(max.is_finite() && max > 0.0) {
                return bad(
                    "optimizer.max_grad_norm",
                    "must be a positive number or None",
                );
            }
        }
        if let Some(d) = opt.dynamic_clip {
            if d.window == 0 {
                return bad("optimizer.dynamic_clip.window", "must be positive");
            }
            if !(d.clip_factor.is_finite() && d.clip_factor > 0.0) {
                return bad(
                    "optimizer.dynamic_clip.clip_factor",
                    "must be a positive number",
                );
            }
            if !(d.skip_factor.is_finite() && d.skip_factor >= d.clip_factor) {
                return bad(
                    "optimizer.dynamic_clip.skip_factor",
                    "must be a number at least clip_factor",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(loss: LossKind) -> TrainConfig {
        TrainConfig {
            loss,
            ..Default::default()
        }
    }

    #[test]
    fn flow_eval_budget_gives_fab_torch_iteration_counts() {
        // fab-spec §5.1: GMM, Metropolis with 1 intermediate distribution and 1 step → 2 flow
        // evaluations per sample; 52,076 iterations with buffer, 78,125 without.
        assert_eq!(config(LossKind::FabBuffer).n_iterations(2), 52_076);
        assert_eq!(config(LossKind::FabNoBuffer).n_iterations(2), 78_125);
        assert_eq!(config(LossKind::ReverseKl).n_iterations(2), 156_250);
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut c = config(LossKind::FabBuffer);
        c.buffer.min_length = 100;
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("training.buffer.min_length"), "{msg}");
    }

    #[test]
    fn buffer_sizes_may_be_given_in_batches() {
        // fab-jax: 40 to 400 batches; with batch 128, 5,120 to 51,200 rows.
        let mut c = config(LossKind::FabBuffer);
        c.buffer.min_batches = Some(40);
        c.buffer.max_batches = Some(400);
        c.validate().unwrap();
        assert_eq!(c.buffer.min_samples(c.batch_size), 40 * c.batch_size);
        assert_eq!(c.buffer.max_samples(c.batch_size), 400 * c.batch_size);
        // The initial fill of the flow-evaluation budget counts the rows, not min_length.
        let mut rows = config(LossKind::FabBuffer);
        rows.buffer.min_length = 40 * c.batch_size;
        rows.iterations = Iterations::FlowEvalBudget(10_000_000);
        c.iterations = rows.iterations;
        assert_eq!(c.n_iterations(2), rows.n_iterations(2));
        // Wrong combinations name the field given in batches.
        c.buffer.max_batches = Some(20);
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("training.buffer.min_batches") && msg.contains("buffer.max_batches"),
            "{msg}"
        );
        c.buffer.max_batches = Some(0);
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("training.buffer.max_batches"), "{msg}");
        c.buffer.max_batches = None;
        c.buffer.min_batches = Some(1); // fewer rows than 4 updates of one batch
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("training.buffer.min_batches"), "{msg}");
    }

    #[test]
    fn an_open_warmup_cosine_schedule_decays_over_the_whole_run() {
        let mut c = config(LossKind::FabBuffer);
        c.iterations = Iterations::Fixed(250);
        c.optimizer.schedule = crate::optim::LrSchedule::WarmupCosine {
            warmup_steps: 40,
            total_steps: 0,
        };
        let r = c.resolved(2).unwrap();
        assert_eq!(
            r.optimizer.schedule,
            crate::optim::LrSchedule::WarmupCosine {
                warmup_steps: 40,
                total_steps: 1000 // 250 iterations × 4 updates
            }
        );
        // An explicit total is kept.
        assert_eq!(r.resolved(2).unwrap(), r);
        // A warm-up as long as the whole run, and a run of no iterations, are refused by name.
        c.optimizer.schedule = crate::optim::LrSchedule::WarmupCosine {
            warmup_steps: 1000,
            total_steps: 0,
        };
        let msg = c.resolved(2).unwrap_err().to_string();
        assert!(
            msg.contains("warmup_steps") && msg.contains("1000 optimiser steps"),
            "{msg}"
        );
        c.iterations = Iterations::Fixed(0);
        let msg = c.resolved(2).unwrap_err().to_string();
        assert!(msg.contains("training.iterations"), "{msg}");
    }

    #[test]
    fn bad_clip_settings_are_refused_with_their_field() {
        let mut c = config(LossKind::FabBuffer);
        c.optimizer.max_grad_norm = Some(0.0);
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("training.optimizer.max_grad_norm"), "{msg}");
        let mut c = config(LossKind::FabBuffer);
        if let Some(d) = c.optimizer.dynamic_clip.as_mut() {
            d.skip_factor = 1.0;
        }
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("dynamic_clip.skip_factor"), "{msg}");
        type Case = (&'static str, fn(&mut TrainConfig));
        let cases: [Case; 4] = [
            ("buffer.w_adjust_clip", |c| {
                c.buffer.w_adjust_clip = Some(-1.0)
            }),
            ("optimizer.eps", |c| c.optimizer.eps = -1.0),
            ("optimizer.beta2", |c| c.optimizer.beta2 = 1.0),
            ("optimizer.weight_decay", |c| {
                c.optimizer.weight_decay = f64::NAN
            }),
        ];
        for (field, spoil) in cases {
            let mut c = config(LossKind::FabBuffer);
            spoil(&mut c);
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains(field), "{field}: {msg}");
        }
    }
}
