//! The loop that runs a trainer to the end, and the observer hooks it calls (logging, evaluation,
//! checkpoints and early stop live in the caller).

use std::ops::ControlFlow;

use super::trainer::{IterInfo, Trainer};
use crate::{AnnealedSampler, Communicator, Flow, Result, Target};

/// Context handed to an [`Observer`] after each iteration.
pub struct TrainContext<'a> {
    /// The trainer (read-only).
    pub trainer: &'a Trainer,
    /// The flow being trained.
    pub flow: &'a dyn Flow,
    /// The sampler (mutable so evaluation AIS can run; evaluations must pass `tune = false`).
    pub sampler: &'a mut dyn AnnealedSampler,
    /// The ranks sharing the run: evaluations split their work over them, stop decisions must
    /// be made together ([`Communicator::any`]), and only rank 0 writes files.
    pub comm: &'a dyn Communicator,
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
            comm: &*trainer.comm,
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
