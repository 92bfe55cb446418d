//! The FAB training loop (fab-torch order, fab-spec §4.4).
//!
//! One iteration with the prioritised buffer: AIS toward g = p^α q^(1−α) from N fresh flow samples
//! → add the batch to the buffer → draw `n_updates` minibatches ∝ w without replacement → for each,
//! one optimiser step on −mean(min(w_adjust, C) · log q) followed by the buffer weight adjustment.
//! Without buffer: AIS, then one step on −mean(softmax(log w) · log q) at the AIS points.
//!
//! The loop is quiet: progress bars, metric files and checkpoints are attached by the caller as an
//! [`Observer`] (argmin's executor/observer split), which keeps the library testable.

use std::ops::ControlFlow;

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::loss::{
    alpha2_nis_coefficients, buffer_coefficients, log_w_adjust, no_buffer_coefficients,
    reverse_kl_coefficients,
};
use crate::optim::{Adam, AdamConfig};
use crate::weights::{ess, log_z_estimate};
use crate::{
    AisBatch, AnnealTarget, AnnealedSampler, CountingDensity, FabError, FabRng, Flow,
    PrioritisedBuffer, Result, StepInfo, Target,
};

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
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad("alpha", "must be a positive number");
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

/// What one iteration did, for logging (one CSV row).
#[derive(Debug, Clone, Serialize, Default)]
pub struct IterInfo {
    /// 1-based iteration number.
    pub iteration: u64,
    /// Mean loss over the iteration's gradient steps.
    pub loss: f64,
    /// Mean pre-clip gradient norm.
    pub grad_norm: f64,
    /// Gradient steps skipped for non-finite loss or gradient.
    pub skipped_steps: usize,
    /// ESS (normalised) of the AIS batch toward g.
    pub ess_ais: f64,
    /// ESS (normalised) of the flow samples toward p that started the AIS chains.
    pub ess_flow: f64,
    /// log Z estimate of the AIS goal g from this batch.
    pub log_z_ais: f64,
    /// Mean acceptance probability over intermediate distributions.
    pub acceptance: f64,
    /// Mean step size over intermediate distributions (after tuning).
    pub step_size: f64,
    /// Initial flow samples that were non-finite and replaced.
    pub n_invalid: usize,
    /// Target evaluations so far, including the buffer fill.
    pub target_evals: u64,
    /// Training wall time so far in seconds, from the start of the buffer fill (or of the first
    /// iteration), summed over the invocations of a resumed run: the x axis of ESS-vs-time curves.
    /// The only logged value that is not reproducible from the seed.
    pub wall_seconds: f64,
}

/// Serialisable scalar state of a trainer, stored in checkpoint metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    iteration: u64,
    target_evals: u64,
    adam_t: u64,
    buffer_write_index: usize,
    rng: FabRng,
    /// Absent in checkpoints written before it existed (read as 0).
    #[serde(default)]
    wall_seconds: f64,
}

/// The training state: optimiser, buffer, RNG, counters.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// Settings.
    pub config: TrainConfig,
    /// Optimiser over the flow's flat parameters.
    pub adam: Adam,
    /// Replay buffer (FAB with buffer only).
    pub buffer: Option<PrioritisedBuffer>,
    /// Completed iterations.
    pub iteration: u64,
    /// Target evaluations so far.
    pub target_evals: u64,
    /// Training random stream.
    pub rng: FabRng,
    /// Wall time of earlier invocations (from the checkpoint) and the start of this one.
    wall_before: f64,
    wall_start: Option<std::time::Instant>,
}

impl Trainer {
    /// Training wall time so far (see [`IterInfo::wall_seconds`]); starts the clock on first use.
    pub fn wall_seconds(&mut self) -> f64 {
        let start = *self.wall_start.get_or_insert_with(std::time::Instant::now);
        self.wall_before + start.elapsed().as_secs_f64()
    }

    /// A fresh trainer for `flow`.
    pub fn new(config: TrainConfig, flow: &dyn Flow) -> Result<Self> {
        config.validate()?;
        let buffer = match config.loss {
            LossKind::FabBuffer => Some(PrioritisedBuffer::new(
                flow.dim(),
                config.buffer.min_samples(config.batch_size),
                config.buffer.max_samples(config.batch_size),
            )?),
            _ => None,
        };
        Ok(Self {
            adam: Adam::new(config.optimizer, flow.params().len()),
            buffer,
            iteration: 0,
            target_evals: 0,
            rng: crate::rng::seeded(config.seed),
            config,
            wall_before: 0.0,
            wall_start: None,
        })
    }

    fn goal(&self) -> AnnealTarget {
        AnnealTarget::Fab {
            alpha: self.config.alpha,
        }
    }

    /// Fills the buffer with AIS batches until it can be sampled (no-op without buffer or if full
    /// enough). Step sizes are tuned during the fill, as in both reference codes.
    pub fn fill_buffer(
        &mut self,
        flow: &dyn Flow,
        sampler: &mut dyn AnnealedSampler,
        target: &dyn Target,
    ) -> Result<()> {
        self.wall_seconds(); // starts the training clock with the fill
        let counting = CountingDensity::new(target, self.target_evals);
        let goal = self.goal();
        if let Some(buffer) = self.buffer.as_mut() {
            while !buffer.can_sample() {
                let ais = sampler.run(
                    flow,
                    &counting,
                    self.config.batch_size,
                    goal,
                    true,
                    &mut self.rng,
                )?;
                let kept = KeptRows::of(target, &ais);
                buffer.add(kept.x.view(), kept.log_w.view(), kept.log_q.view())?;
            }
        }
        self.target_evals = counting.count();
        Ok(())
    }

    /// Applies one optimiser step with gradient `grad`; returns what happened.
    fn apply(&mut self, flow: &mut dyn Flow, loss: f64, mut grad: Vec<f64>) -> Result<StepInfo> {
        if !loss.is_finite() {
            return Ok(StepInfo {
                loss,
                grad_norm: f64::NAN,
                skipped: true,
            });
        }
        let mut params = flow.params();
        let (grad_norm, taken) = self.adam.step(&mut params, &mut grad);
        if taken {
            flow.set_params(&params)?;
        }
        Ok(StepInfo {
            loss,
            grad_norm,
            skipped: !taken,
        })
    }

    /// One training iteration. Call [`Trainer::fill_buffer`] first when training with a buffer.
    pub fn iteration(
        &mut self,
        flow: &mut dyn Flow,
        sampler: &mut dyn AnnealedSampler,
        target: &dyn Target,
    ) -> Result<IterInfo> {
        let mut info = if self.config.loss.uses_ais() {
            self.fab_iteration(flow, sampler, target)?
        } else {
            self.baseline_iteration(flow, target)?
        };
        self.iteration += 1;
        info.iteration = self.iteration;
        info.target_evals = self.target_evals;
        info.wall_seconds = self.wall_seconds();
        Ok(info)
    }

    /// FAB: AIS toward p^α q^(1−α), then one (no buffer) or `n_updates` (buffer) steps.
    fn fab_iteration(
        &mut self,
        flow: &mut dyn Flow,
        sampler: &mut dyn AnnealedSampler,
        target: &dyn Target,
    ) -> Result<IterInfo> {
        let counting = CountingDensity::new(target, self.target_evals);
        let ais = sampler.run(
            &*flow,
            &counting,
            self.config.batch_size,
            self.goal(),
            true,
            &mut self.rng,
        )?;
        self.target_evals = counting.count();
        let kept = KeptRows::of(target, &ais);

        let mut steps = Vec::new();
        if self.config.loss == LossKind::FabNoBuffer {
            let c = no_buffer_coefficients(kept.log_w.view());
            let g = flow.weighted_nll_grad(kept.x.view(), &mut |_| c.clone())?;
            steps.push(self.apply(flow, g.loss, g.grad)?);
        } else {
            let buffer = self
                .buffer
                .as_mut()
                .ok_or_else(|| FabError::invalid("trainer", "FAB with buffer needs a buffer"))?;
            buffer.add(kept.x.view(), kept.log_w.view(), kept.log_q.view())?;
            if !buffer.can_sample() {
                return Err(FabError::invalid(
                    "trainer",
                    "buffer not filled: call fill_buffer first",
                ));
            }
            let (alpha, clip) = (self.config.alpha, self.config.buffer.w_adjust_clip);
            let batches = buffer.sample_n_batches(
                self.config.batch_size,
                self.config.buffer.n_updates,
                &mut self.rng,
            )?;
            for batch in batches {
                let mut adjust = Array1::zeros(0);
                let g = flow.weighted_nll_grad(batch.x.view(), &mut |log_q| {
                    adjust = log_w_adjust(alpha, log_q, batch.log_q_old.view());
                    buffer_coefficients(adjust.view(), clip)
                })?;
                steps.push(self.apply(flow, g.loss, g.grad)?);
                // Adjust with log q of the parameters *before* this step (fab-spec §4.4).
                self.buffer.as_mut().expect("checked above").adjust(
                    &batch.indices,
                    adjust.view(),
                    g.log_q.view(),
                )?;
            }
        }
        let (loss, grad_norm, skipped_steps) = summarise(&steps);
        Ok(IterInfo {
            loss,
            grad_norm,
            skipped_steps,
            ess_ais: ess(ais.log_w.view()),
            ess_flow: ess(ais.flow_log_w.view()),
            log_z_ais: log_z_estimate(ais.log_w.view()),
            acceptance: mean_of(&ais.acceptance),
            step_size: mean_of(&sampler.step_sizes()),
            n_invalid: ais.n_invalid,
            ..Default::default()
        })
    }

    /// The baselines of fab-spec §1.4 and §5.6: one step per iteration on flow samples (reverse KL,
    /// α = 2 with flow samples) or on exact target samples (forward KL).
    fn baseline_iteration(&mut self, flow: &mut dyn Flow, target: &dyn Target) -> Result<IterInfo> {
        let n = self.config.batch_size;
        let mut flow_log_w = Array1::zeros(0);
        let (loss, grad) = match self.config.loss {
            LossKind::ForwardKl => {
                let x = target.sample(n, &mut self.rng).ok_or_else(|| {
                    FabError::invalid(
                        "training.loss",
                        format!(
                            "ForwardKl needs exact samples, which target `{}` cannot draw",
                            target.name()
                        ),
                    )
                })?;
                let c = Array1::from_elem(n, 1.0);
                let g = flow.weighted_nll_grad(x.view(), &mut |_| c.clone())?;
                (g.loss, g.grad)
            }
            kind => {
                let r = flow.reparam_grad(n, &mut self.rng, &mut |x, log_q| {
                    if kind == LossKind::ReverseKl {
                        reverse_kl_coefficients(target, x, log_q)
                    } else {
                        alpha2_nis_coefficients(target, x, log_q)
                    }
                })?;
                self.target_evals += n as u64;
                let log_p = target.log_prob(r.x.view())?;
                flow_log_w =
                    (&log_p - &r.log_q).mapv(|v| if v.is_finite() { v } else { f64::NEG_INFINITY });
                (r.loss, r.grad)
            }
        };
        let step = self.apply(flow, loss, grad)?;
        let (loss, grad_norm, skipped_steps) = summarise(&[step]);
        Ok(IterInfo {
            loss,
            grad_norm,
            skipped_steps,
            ess_ais: f64::NAN,
            ess_flow: if flow_log_w.is_empty() {
                f64::NAN
            } else {
                ess(flow_log_w.view())
            },
            log_z_ais: f64::NAN,
            acceptance: f64::NAN,
            step_size: f64::NAN,
            ..Default::default()
        })
    }

    /// Writes optimiser, buffer, sampler step sizes, flow parameters and counters into `ck`.
    pub fn save(
        &self,
        flow: &dyn Flow,
        sampler: &dyn AnnealedSampler,
        ck: &mut Checkpoint,
    ) -> Result<()> {
        let params = flow.params();
        let mut offset = 0;
        for (name, shape) in flow.param_layout() {
            let len: usize = shape.iter().product();
            ck.put_tensor(
                format!("flow.{name}"),
                &shape,
                params[offset..offset + len].to_vec(),
            )?;
            offset += len;
        }
        ck.put_tensor("adam.m", &[self.adam.m.len()], self.adam.m.clone())?;
        ck.put_tensor("adam.v", &[self.adam.v.len()], self.adam.v.clone())?;
        if !self.adam.grad_norms.is_empty() {
            // Empty window slots (NaN) are stored as −1 (norms are never negative).
            let norms = self.adam.grad_norms.iter();
            let stored = norms.map(|&v| if v.is_nan() { -1.0 } else { v }).collect();
            ck.put_tensor("adam.grad_norms", &[self.adam.grad_norms.len()], stored)?;
        }
        let steps = sampler.step_sizes();
        ck.put_tensor("sampler.step_sizes", &[steps.len()], steps)?;
        let mut write_index = 0;
        if let Some(buffer) = &self.buffer {
            let (x, log_w, log_q) = buffer.contents();
            ck.put_tensor(
                "buffer.x",
                &[x.nrows(), x.ncols()],
                x.iter().copied().collect(),
            )?;
            ck.put_tensor("buffer.log_w", &[log_w.len()], log_w.to_vec())?;
            ck.put_tensor("buffer.log_q_old", &[log_q.len()], log_q.to_vec())?;
            write_index = buffer.write_index();
        }
        let state = TrainerState {
            iteration: self.iteration,
            target_evals: self.target_evals,
            adam_t: self.adam.t,
            buffer_write_index: write_index,
            rng: self.rng.clone(),
            wall_seconds: self.wall_before
                + self.wall_start.map_or(0.0, |s| s.elapsed().as_secs_f64()),
        };
        ck.put_meta(
            "trainer",
            serde_json::to_string(&state).map_err(|e| FabError::Backend(e.to_string()))?,
        );
        Ok(())
    }

    /// Restores flow parameters, sampler step sizes and the trainer state saved by [`Trainer::save`].
    /// Every tensor is checked against the current model's layout.
    pub fn restore(
        &mut self,
        flow: &mut dyn Flow,
        sampler: &mut dyn AnnealedSampler,
        ck: &Checkpoint,
    ) -> Result<()> {
        load_flow(flow, ck)?;
        let n = self.adam.m.len();
        self.adam.m = ck.finite_tensor("adam.m", &[n])?.iter().copied().collect();
        self.adam.v = ck.finite_tensor("adam.v", &[n])?.iter().copied().collect();
        let w = self.adam.grad_norms.len();
        if w > 0 && ck.has_tensor("adam.grad_norms") {
            let norms = ck.tensor("adam.grad_norms", &[w])?;
            self.adam.grad_norms = norms
                .iter()
                .map(|&v| if v < 0.0 { f64::NAN } else { v })
                .collect();
        }
        let n_steps = sampler.step_sizes().len();
        let steps: Vec<f64> = ck
            .finite_tensor("sampler.step_sizes", &[n_steps])?
            .iter()
            .copied()
            .collect();
        sampler.set_step_sizes(&steps)?;
        let state: TrainerState = ck.meta_json("trainer")?;
        if let Some(buffer) = self.buffer.as_mut() {
            let x = ck.tensor2("buffer.x", flow.dim())?;
            let log_w = ck.tensor1("buffer.log_w")?;
            let log_q = ck.tensor1("buffer.log_q_old")?;
            buffer.restore(
                x.view(),
                log_w.view(),
                log_q.view(),
                state.buffer_write_index,
            )?;
        }
        self.iteration = state.iteration;
        self.target_evals = state.target_evals;
        self.adam.t = state.adam_t;
        self.rng = state.rng;
        self.wall_before = state.wall_seconds;
        self.wall_start = None;
        Ok(())
    }
}

/// Loads flow parameters from a checkpoint written by [`Trainer::save`], checking every tensor's
/// name and shape against the flow's layout (a checkpoint of another architecture is rejected).
pub fn load_flow(flow: &mut dyn Flow, ck: &Checkpoint) -> Result<()> {
    let mut params = Vec::new();
    for (name, shape) in flow.param_layout() {
        params.extend(
            ck.finite_tensor(&format!("flow.{name}"), &shape)?
                .iter()
                .copied(),
        );
    }
    flow.set_params(&params)
}

/// (mean loss, mean grad norm, number skipped) over the steps that were taken.
fn summarise(steps: &[StepInfo]) -> (f64, f64, usize) {
    let taken: Vec<&StepInfo> = steps.iter().filter(|s| !s.skipped).collect();
    let mean = |f: fn(&StepInfo) -> f64| {
        if taken.is_empty() {
            f64::NAN
        } else {
            taken.iter().map(|s| f(s)).sum::<f64>() / taken.len() as f64
        }
    };
    (
        mean(|s| s.loss),
        mean(|s| s.grad_norm),
        steps.len() - taken.len(),
    )
}

fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The rows of an AIS batch that enter training after the target's [`Target::training_mask`].
struct KeptRows {
    x: Array2<f64>,
    log_w: Array1<f64>,
    log_q: Array1<f64>,
}

impl KeptRows {
    fn of(target: &dyn Target, ais: &AisBatch) -> Self {
        match target.training_mask(ais.x.view()) {
            None => Self {
                x: ais.x.clone(),
                log_w: ais.log_w.clone(),
                log_q: ais.log_q.clone(),
            },
            Some(mask) => {
                let idx: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
                Self {
                    x: ais.x.select(Axis(0), &idx),
                    log_w: ais.log_w.select(Axis(0), &idx),
                    log_q: ais.log_q.select(Axis(0), &idx),
                }
            }
        }
    }
}

/// Context handed to an [`Observer`] after each iteration.
pub struct TrainContext<'a> {
    /// The trainer (read-only).
    pub trainer: &'a Trainer,
    /// The flow being trained.
    pub flow: &'a dyn Flow,
    /// The sampler (mutable so evaluation AIS can run; evaluations must pass `tune = false`).
    pub sampler: &'a mut dyn AnnealedSampler,
}

/// Hooks attached to the training loop: logging, evaluation, checkpoints, early stop.
pub trait Observer {
    /// Called after every iteration; return `Break` to stop training.
    fn after_iteration(
        &mut self,
        info: &IterInfo,
        ctx: TrainContext<'_>,
    ) -> Result<ControlFlow<()>>;
}

/// Runs training from the trainer's current iteration up to `n_iterations`.
pub fn run(
    trainer: &mut Trainer,
    flow: &mut dyn Flow,
    sampler: &mut dyn AnnealedSampler,
    target: &dyn Target,
    n_iterations: u64,
    observer: &mut dyn Observer,
) -> Result<()> {
    trainer.fill_buffer(&*flow, sampler, target)?;
    while trainer.iteration < n_iterations {
        let info = trainer.iteration(flow, sampler, target)?;
        let ctx = TrainContext {
            trainer,
            flow: &*flow,
            sampler,
        };
        if observer.after_iteration(&info, ctx)?.is_break() {
            break;
        }
    }
    Ok(())
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
