//! Timing FAB iterations and where their time goes, so users can size runs before starting them
//! (`fab bench`).
//!
//! [`bench_iterations`] fills the replay buffer first (untimed), runs warm-up iterations, then
//! times `n` iterations. The flow and the target are wrapped in [`TimedFlow`] and
//! [`TimedTarget`], which add the wall time of every call to per-kind counters; the rest of an
//! iteration (buffer sampling and updates, Adam, AIS bookkeeping) is reported as "other".
//! Calls are timed where they start and end on the calling thread, so work a flow spreads over
//! the rayon threads counts once, as wall time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use serde::Serialize;

use crate::flow::{ReparamCoefficients, ReparamGrad, WeightedGrad};
use crate::target::{PlotView, WeightedSamples};
use crate::train::Trainer;
use crate::{AnnealedSampler, FabError, FabRng, Flow, LogDensity, Result, Target};

/// A nanosecond counter shared by `&self` methods.
#[derive(Debug, Default)]
struct Clock(AtomicU64);

impl Clock {
    /// Runs `f`, adding its wall time to the counter.
    fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let out = f();
        let ns = start.elapsed().as_nanos() as u64;
        self.0.fetch_add(ns, Ordering::Relaxed);
        out
    }

    fn seconds(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 * 1e-9
    }
}

/// A flow whose calls are timed by kind: sampling, log q, log q with input gradient (HMC) and
/// the parameter gradients of the training steps.
pub struct TimedFlow<'a> {
    inner: &'a mut dyn Flow,
    sample: Clock,
    log_q: Clock,
    log_q_grad: Clock,
    train: Clock,
}

impl<'a> TimedFlow<'a> {
    /// Wraps `inner` with all counters at zero.
    pub fn new(inner: &'a mut dyn Flow) -> Self {
        Self {
            inner,
            sample: Clock::default(),
            log_q: Clock::default(),
            log_q_grad: Clock::default(),
            train: Clock::default(),
        }
    }
}

impl LogDensity for TimedFlow<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.log_q.time(|| self.inner.log_prob(x))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        self.log_q_grad
            .time(|| self.inner.log_prob_and_grad(x, grad))
    }
}

impl Flow for TimedFlow<'_> {
    fn sample(&self, n: usize, rng: &mut FabRng) -> Result<(Array2<f64>, Array1<f64>)> {
        self.sample.time(|| self.inner.sample(n, rng))
    }

    fn weighted_nll_grad(
        &self,
        x: ArrayView2<f64>,
        coeff: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad> {
        self.train.time(|| self.inner.weighted_nll_grad(x, coeff))
    }

    fn reparam_grad(
        &self,
        n: usize,
        rng: &mut FabRng,
        coeff: &mut dyn FnMut(ArrayView2<f64>, ArrayView1<f64>) -> Result<ReparamCoefficients>,
    ) -> Result<ReparamGrad> {
        self.train.time(|| self.inner.reparam_grad(n, rng, coeff))
    }

    fn params(&self) -> Vec<f64> {
        self.inner.params()
    }

    fn set_params(&mut self, params: &[f64]) -> Result<()> {
        self.inner.set_params(params)
    }

    fn param_layout(&self) -> Vec<(String, Vec<usize>)> {
        self.inner.param_layout()
    }
}

/// A target whose density evaluations are timed.
pub struct TimedTarget<'a> {
    inner: &'a dyn Target,
    clock: Clock,
}

impl<'a> TimedTarget<'a> {
    /// Wraps `inner` with the counter at zero.
    pub fn new(inner: &'a dyn Target) -> Self {
        Self {
            inner,
            clock: Clock::default(),
        }
    }
}

impl LogDensity for TimedTarget<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.clock.time(|| self.inner.log_prob(x))
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        self.clock.time(|| self.inner.log_prob_and_grad(x, grad))
    }
}

impl Target for TimedTarget<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn log_z(&self) -> Option<f64> {
        self.inner.log_z()
    }
    fn sample(&self, n: usize, rng: &mut FabRng) -> Option<Array2<f64>> {
        self.inner.sample(n, rng)
    }
    fn extra_metrics(
        &self,
        flow: WeightedSamples<'_>,
        ais: WeightedSamples<'_>,
    ) -> Vec<(String, f64)> {
        self.inner.extra_metrics(flow, ais)
    }
    fn training_mask(&self, x: ArrayView2<f64>) -> Option<Vec<bool>> {
        self.inner.training_mask(x)
    }
    fn plot_views(&self) -> Vec<PlotView> {
        self.inner.plot_views()
    }
    fn marginal_log_prob(
        &self,
        coords: (usize, usize),
        points: ArrayView2<f64>,
    ) -> Result<Array1<f64>> {
        self.inner.marginal_log_prob(coords, points)
    }
}

/// Timing of FAB iterations: milliseconds per iteration and the share of each kind of work.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Timed iterations.
    pub iterations: usize,
    /// Warm-up iterations run before timing (after the buffer was filled).
    pub warmup: usize,
    /// rayon threads the run used.
    pub threads: usize,
    /// Mean wall time per iteration (ms).
    pub ms_per_iteration: f64,
    /// Fastest iteration (ms).
    pub ms_min: f64,
    /// Median iteration (ms).
    pub ms_median: f64,
    /// Per iteration (ms): flow sampling (the AIS start points).
    pub ms_flow_sample: f64,
    /// Per iteration (ms): flow log q without gradient (Metropolis, loss coefficients).
    pub ms_flow_log_q: f64,
    /// Per iteration (ms): flow log q with input gradient (HMC).
    pub ms_flow_log_q_grad: f64,
    /// Per iteration (ms): the parameter gradients of the training steps.
    pub ms_flow_train: f64,
    /// Per iteration (ms): target log density (and gradient).
    pub ms_target: f64,
    /// Per iteration (ms): everything else (buffer, optimiser, AIS bookkeeping).
    pub ms_other: f64,
}

impl BenchReport {
    /// The parts of an iteration as (name, ms, share of the total).
    pub fn shares(&self) -> Vec<(&'static str, f64, f64)> {
        let total = self.ms_per_iteration.max(f64::MIN_POSITIVE);
        [
            ("flow log q + input gradient (HMC)", self.ms_flow_log_q_grad),
            ("flow training steps", self.ms_flow_train),
            ("flow sampling", self.ms_flow_sample),
            ("flow log q", self.ms_flow_log_q),
            ("target", self.ms_target),
            ("buffer, optimiser, other", self.ms_other),
        ]
        .into_iter()
        .map(|(name, ms)| (name, ms, ms / total))
        .collect()
    }
}

/// Fills `trainer`'s buffer, runs `warmup` iterations, then times `iterations` more (at least
/// one) and reports where the time went. The trainer, flow and sampler advance as in training.
pub fn bench_iterations(
    trainer: &mut Trainer,
    flow: &mut dyn Flow,
    sampler: &mut dyn AnnealedSampler,
    target: &dyn Target,
    warmup: usize,
    iterations: usize,
) -> Result<BenchReport> {
    if iterations == 0 {
        return Err(FabError::invalid("bench iterations", "must be at least 1"));
    }
    trainer.fill_buffer(&*flow, sampler, target)?;
    for _ in 0..warmup {
        trainer.iteration(flow, sampler, target)?;
    }
    let timed_target = TimedTarget::new(target);
    let mut timed_flow = TimedFlow::new(flow);
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        trainer.iteration(&mut timed_flow, sampler, &timed_target)?;
        times.push(start.elapsed());
    }
    let total: Duration = times.iter().sum();
    let per = |s: f64| 1e3 * s / iterations as f64;
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let ms_per_iteration = per(total.as_secs_f64());
    let parts = [
        per(timed_flow.sample.seconds()),
        per(timed_flow.log_q.seconds()),
        per(timed_flow.log_q_grad.seconds()),
        per(timed_flow.train.seconds()),
        per(timed_target.clock.seconds()),
    ];
    Ok(BenchReport {
        iterations,
        warmup,
        threads: rayon::current_num_threads(),
        ms_per_iteration,
        ms_min: ms[0],
        ms_median: ms[ms.len() / 2],
        ms_flow_sample: parts[0],
        ms_flow_log_q: parts[1],
        ms_flow_log_q_grad: parts[2],
        ms_flow_train: parts[3],
        ms_target: parts[4],
        ms_other: (ms_per_iteration - parts.iter().sum::<f64>()).max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_adds_the_time_of_each_call() {
        let clock = Clock::default();
        let v = clock.time(|| {
            std::thread::sleep(Duration::from_millis(20));
            7
        });
        assert_eq!(v, 7);
        clock.time(|| std::thread::sleep(Duration::from_millis(20)));
        let s = clock.seconds();
        assert!((0.04..1.0).contains(&s), "{s}");
    }
}
