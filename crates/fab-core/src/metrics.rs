//! Evaluation of a trained flow (fab-spec §8): reverse ESS of the flow and of AIS toward p,
//! log Z error over groups, test-set log-likelihood and forward KL when exact samples exist, plus
//! the target's own metrics.
//!
//! Evaluation AIS targets p with frozen step sizes (tuned under p²/q during training).

use std::collections::BTreeMap;

use ndarray::{concatenate, Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use crate::distributed::{Local, SplitDensity, SplitFlow};
use crate::target::WeightedSamples;
use crate::weights::{ess, log_z_estimate, log_z_group_mae};
use crate::{
    AnnealTarget, AnnealedSampler, Communicator, FabRng, Flow, LogDensity, Result, Target,
};

/// Evaluation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Flow samples (each also starts one AIS chain).
    pub n_samples: usize,
    /// Samples per flow/AIS call.
    pub inner_batch: usize,
    /// Exact target samples for the test-set log-likelihood (if the target can sample).
    pub n_test: usize,
    /// Number of strided groups for the log Z mean absolute error.
    pub log_z_groups: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            n_samples: 10_000,
            inner_batch: 500,
            n_test: 10_000,
            log_z_groups: 10,
        }
    }
}

impl EvalConfig {
    /// Checks the sizes; the error names the field (`eval.…`).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("n_samples", self.n_samples),
            ("inner_batch", self.inner_batch),
            ("log_z_groups", self.log_z_groups),
        ] {
            if v == 0 {
                return Err(crate::FabError::invalid(
                    format!("eval.{name}"),
                    "must be positive",
                ));
            }
        }
        if self.log_z_groups > self.n_samples {
            // Empty groups would give no log Z error at all (reported as null).
            return Err(crate::FabError::invalid(
                "eval.log_z_groups",
                format!(
                    "{} groups of {} samples: at most one group per sample",
                    self.log_z_groups, self.n_samples
                ),
            ));
        }
        Ok(())
    }
}

impl EvalConfig {
    /// Checks that an evaluation of points of dimension `dim` fits in memory: flow and AIS
    /// samples with their weights, twice over while they are concatenated, and the test set.
    pub fn check_memory(&self, dim: usize) -> Result<()> {
        let per_sample = 2 * (2 * dim + 2);
        crate::memory::ensure_f64s_fit("eval.n_samples", self.n_samples, per_sample)?;
        // The target's exact test samples and their log q.
        crate::memory::ensure_f64s_fit("eval.n_test", self.n_test, dim + 1)
    }
}

/// Metrics and the samples they were computed from (for plots).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Metric name → value.
    pub metrics: BTreeMap<String, f64>,
    /// Flow samples.
    pub flow_x: Array2<f64>,
    /// Flow importance log weights log p − log q.
    pub flow_log_w: Array1<f64>,
    /// AIS (p-target) samples.
    pub ais_x: Array2<f64>,
    /// AIS log weights toward p.
    pub ais_log_w: Array1<f64>,
}

/// Runs the evaluation of `flow` on `target`.
pub fn evaluate(
    flow: &dyn Flow,
    sampler: &mut dyn AnnealedSampler,
    target: &dyn Target,
    config: &EvalConfig,
    rng: &mut FabRng,
) -> Result<Evaluation> {
    evaluate_across(flow, sampler, target, config, rng, &Local)
}

/// [`evaluate`] with the sampling and density evaluations split over the ranks of `comm`
/// (every rank calls it alike and gets the same evaluation, whatever the number of ranks).
pub fn evaluate_across(
    flow: &dyn Flow,
    sampler: &mut dyn AnnealedSampler,
    target: &dyn Target,
    config: &EvalConfig,
    rng: &mut FabRng,
    comm: &dyn Communicator,
) -> Result<Evaluation> {
    config.check_memory(flow.dim())?;
    let split_flow = SplitFlow::new(flow, comm);
    let split_target = SplitDensity::new(target, comm);
    let (flow, target_density): (&dyn Flow, &dyn LogDensity) = (&split_flow, &split_target);
    let mut flow_x = Vec::new();
    let mut flow_lw = Vec::new();
    let mut ais_x = Vec::new();
    let mut ais_lw = Vec::new();
    let mut done = 0;
    while done < config.n_samples {
        let n = config.inner_batch.min(config.n_samples - done).max(1);
        let batch = sampler.run(flow, target_density, n, AnnealTarget::P, false, rng)?;
        flow_x.push(batch.x0);
        flow_lw.push(batch.flow_log_w);
        ais_x.push(batch.x);
        ais_lw.push(batch.log_w);
        done += n;
    }
    let cat2 =
        |v: &[Array2<f64>]| concatenate(Axis(0), &v.iter().map(|a| a.view()).collect::<Vec<_>>());
    let cat1 =
        |v: &[Array1<f64>]| concatenate(Axis(0), &v.iter().map(|a| a.view()).collect::<Vec<_>>());
    let err = |e: ndarray::ShapeError| crate::FabError::Backend(format!("evaluation concat: {e}"));
    let (flow_x, flow_log_w) = (cat2(&flow_x).map_err(err)?, cat1(&flow_lw).map_err(err)?);
    let (ais_x, ais_log_w) = (cat2(&ais_x).map_err(err)?, cat1(&ais_lw).map_err(err)?);

    let mut m = BTreeMap::new();
    m.insert("eval_ess_flow".to_string(), ess(flow_log_w.view()));
    m.insert("eval_ess_ais".to_string(), ess(ais_log_w.view()));
    m.insert("log_z_flow".to_string(), log_z_estimate(flow_log_w.view()));
    m.insert("log_z_ais".to_string(), log_z_estimate(ais_log_w.view()));
    if let Some(log_z) = target.log_z() {
        m.insert(
            "log_z_mae_flow".into(),
            log_z_group_mae(flow_log_w.view(), config.log_z_groups, log_z),
        );
        m.insert(
            "log_z_mae_ais".into(),
            log_z_group_mae(ais_log_w.view(), config.log_z_groups, log_z),
        );
    }
    if config.n_test > 0 {
        if let Some(test) = target.sample(config.n_test, rng) {
            let log_q = flow.log_prob(test.view())?;
            let mean_log_q = log_q.mean().unwrap_or(f64::NAN);
            m.insert("test_mean_log_q".into(), mean_log_q);
            if let Some(log_z) = target.log_z() {
                let log_p = target_density.log_prob(test.view())?;
                m.insert(
                    "forward_kl".into(),
                    log_p.mean().unwrap_or(f64::NAN) - log_z - mean_log_q,
                );
            }
        }
    }
    let flow_s = WeightedSamples {
        x: flow_x.view(),
        log_w: flow_log_w.view(),
    };
    let ais_s = WeightedSamples {
        x: ais_x.view(),
        log_w: ais_log_w.view(),
    };
    m.extend(target.extra_metrics(flow_s, ais_s));
    m.insert("n_eval_samples".into(), config.n_samples as f64);
    for (j, eps) in sampler.step_sizes().iter().enumerate() {
        m.insert(format!("step_size_{j}"), *eps);
    }
    Ok(Evaluation {
        metrics: m,
        flow_x,
        flow_log_w,
        ais_x,
        ais_log_w,
    })
}
