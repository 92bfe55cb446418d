//! The trainer: one FAB (or baseline) iteration at a time, with the optimiser, buffer and
//! counters it carries between iterations.

use std::sync::Arc;

use ndarray::{Array1, Array2, Axis};
use serde::Serialize;

use super::config::{LossKind, TrainConfig};
use crate::distributed::{Local, SplitDensity, SplitFlow};
use crate::loss::{
    alpha2_nis_coefficients, buffer_coefficients, log_w_adjust, no_buffer_coefficients,
    reverse_kl_coefficients,
};
use crate::optim::Adam;
use crate::weights::{ess, log_z_estimate};
use crate::{
    AisBatch, AnnealTarget, AnnealedSampler, Communicator, CountingDensity, FabError, FabRng, Flow,
    PrioritisedBuffer, Result, StepInfo, Target,
};

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
    pub(super) wall_before: f64,
    pub(super) wall_start: Option<std::time::Instant>,
    /// The ranks sharing the work ([`Local`] unless set with [`Trainer::with_communicator`]).
    pub(super) comm: Arc<dyn Communicator>,
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
            comm: Arc::new(Local),
        })
    }

    /// Shares the work of every iteration with the other ranks of `comm` (data-parallel FAB:
    /// each rank runs its share of the AIS chains and of the gradient chunks). All ranks must run
    /// the same trainer; the result is the same for any number of ranks.
    pub fn with_communicator(mut self, comm: Arc<dyn Communicator>) -> Self {
        self.comm = comm;
        self
    }

    /// The ranks this trainer shares its work with.
    pub fn communicator(&self) -> &dyn Communicator {
        &*self.comm
    }

    pub(super) fn goal(&self) -> AnnealTarget {
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
        let comm = Arc::clone(&self.comm);
        let split_target = SplitDensity::new(target, &*comm);
        let counting = CountingDensity::new(&split_target, self.target_evals);
        let split_flow = SplitFlow::new(flow, &*comm);
        let goal = self.goal();
        if let Some(buffer) = self.buffer.as_mut() {
            while !buffer.can_sample() {
                let ais = sampler.run(
                    &split_flow,
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
    pub(super) fn apply(
        &mut self,
        flow: &mut dyn Flow,
        loss: f64,
        mut grad: Vec<f64>,
    ) -> Result<StepInfo> {
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
    pub(super) fn fab_iteration(
        &mut self,
        flow: &mut dyn Flow,
        sampler: &mut dyn AnnealedSampler,
        target: &dyn Target,
    ) -> Result<IterInfo> {
        let comm = Arc::clone(&self.comm);
        let split_target = SplitDensity::new(target, &*comm);
        let counting = CountingDensity::new(&split_target, self.target_evals);
        let ais = sampler.run(
            &SplitFlow::new(&*flow, &*comm),
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
            let g = flow.weighted_nll_grad_across(kept.x.view(), &mut |_| c.clone(), &*comm)?;
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
                let g = flow.weighted_nll_grad_across(
                    batch.x.view(),
                    &mut |log_q| {
                        adjust = log_w_adjust(alpha, log_q, batch.log_q_old.view());
                        buffer_coefficients(adjust.view(), clip)
                    },
                    &*comm,
                )?;
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
    pub(super) fn baseline_iteration(
        &mut self,
        flow: &mut dyn Flow,
        target: &dyn Target,
    ) -> Result<IterInfo> {
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
}

/// (mean loss, mean grad norm, number skipped) over the steps that were taken.
pub(super) fn summarise(steps: &[StepInfo]) -> (f64, f64, usize) {
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

pub(super) fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The rows of an AIS batch that enter training after the target's [`Target::training_mask`].
pub(super) struct KeptRows {
    x: Array2<f64>,
    log_w: Array1<f64>,
    log_q: Array1<f64>,
}

impl KeptRows {
    pub(super) fn of(target: &dyn Target, ais: &AisBatch) -> Self {
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
