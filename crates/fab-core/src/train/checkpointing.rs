//! A trainer's state and the flow's parameters written to and read from a checkpoint.

use serde::{Deserialize, Serialize};

use super::trainer::Trainer;
use crate::checkpoint::Checkpoint;
use crate::{AnnealedSampler, FabError, FabRng, Flow, Result};

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

impl Trainer {
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
