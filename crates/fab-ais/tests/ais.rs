//! Statistical properties of AIS and its kernels on Gaussians with known normalisers.
//! Every test is seeded; tolerances are stated in standard errors (SE) of the estimate.

use fab_ais::kernel::Kernel;
use fab_ais::point::Points;
use fab_ais::step_size::StepSizeAdaptation;
use fab_ais::{Ais, AisConfig, KernelConfig};
use fab_core::flow::WeightedGrad;
use fab_core::{
    rng::seeded, AnnealTarget, AnnealedSampler, FabError, FabRng, Flow, LogDensity, Result,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use rand_distr::{Distribution, StandardNormal};

const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

/// Z · N(μ, s² I): an unnormalised isotropic Gaussian with known log Z.
struct Gaussian {
    mu: Vec<f64>,
    s: f64,
    log_z: f64,
}

impl LogDensity for Gaussian {
    fn dim(&self) -> usize {
        self.mu.len()
    }
    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        let d = self.dim() as f64;
        Ok(x.map_axis(Axis(1), |r| {
            let sq: f64 = r.iter().zip(&self.mu).map(|(v, m)| (v - m) * (v - m)).sum();
            self.log_z - 0.5 * sq / (self.s * self.s) - d * (HALF_LOG_2PI + self.s.ln())
        }))
    }
    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        mut grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        for (mut g, r) in grad.rows_mut().into_iter().zip(x.rows()) {
            for j in 0..self.dim() {
                g[j] = -(r[j] - self.mu[j]) / (self.s * self.s);
            }
        }
        self.log_prob(x)
    }
}

/// A fixed standard-normal "flow": enough to drive AIS, no training.
struct StdNormalFlow(Gaussian);

impl StdNormalFlow {
    fn new(d: usize) -> Self {
        Self(Gaussian {
            mu: vec![0.0; d],
            s: 1.0,
            log_z: 0.0,
        })
    }
}

impl LogDensity for StdNormalFlow {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.0.log_prob(x)
    }
    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        self.0.log_prob_and_grad(x, grad)
    }
}

impl Flow for StdNormalFlow {
    fn sample(&self, n: usize, rng: &mut FabRng) -> Result<(Array2<f64>, Array1<f64>)> {
        let x = Array2::from_shape_simple_fn((n, self.dim()), || StandardNormal.sample(rng));
        let lq = self.log_prob(x.view())?;
        Ok((x, lq))
    }
    fn weighted_nll_grad(
        &self,
        _: ArrayView2<f64>,
        _: &mut dyn FnMut(ArrayView1<f64>) -> Array1<f64>,
    ) -> Result<WeightedGrad> {
        Err(FabError::Backend("not trainable".into()))
    }
    fn reparam_grad(
        &self,
        _: usize,
        _: &mut FabRng,
        _: &mut dyn FnMut(
            ArrayView2<f64>,
            ArrayView1<f64>,
        ) -> Result<fab_core::flow::ReparamCoefficients>,
    ) -> Result<fab_core::flow::ReparamGrad> {
        Err(FabError::Backend("not trainable".into()))
    }
    fn params(&self) -> Vec<f64> {
        Vec::new()
    }
    fn set_params(&mut self, _: &[f64]) -> Result<()> {
        Ok(())
    }
    fn param_layout(&self) -> Vec<(String, Vec<usize>)> {
        Vec::new()
    }
}

fn target() -> Gaussian {
    Gaussian {
        mu: vec![1.0, -0.5],
        s: 0.8,
        log_z: 1.5,
    }
}

fn hmc_config(n_intermediate: usize) -> AisConfig {
    AisConfig {
        n_intermediate,
        kernel: KernelConfig::Hmc {
            n_leapfrog: 3,
            max_grad: 1e3,
        },
        init_step_size: 0.4,
        adaptation: StepSizeAdaptation {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn metropolis_config(n_intermediate: usize) -> AisConfig {
    AisConfig {
        n_intermediate,
        kernel: KernelConfig::Metropolis { n_steps: 2 },
        init_step_size: 0.7,
        ..Default::default()
    }
}

/// Asserts that mean(w) estimates exp(log_z) within 4 SE (false alarm rate ≈ 6e-5).
fn assert_unbiased(log_w: &Array1<f64>, log_z: f64, what: &str) {
    let w = log_w.mapv(|l| (l - log_z).exp());
    let n = w.len() as f64;
    let mean = w.mean().unwrap();
    let se = w.std(1.0) / n.sqrt();
    assert!((mean - 1.0).abs() < 4.0 * se, "{what}: Ẑ/Z = {mean} ± {se}");
    assert!(se < 0.05, "{what}: test too weak, SE {se}");
}

#[test]
fn ais_toward_p_is_unbiased_for_the_normaliser() {
    let flow = StdNormalFlow::new(2);
    let p = target();
    for (name, config) in [("hmc", hmc_config(4)), ("metropolis", metropolis_config(4))] {
        let mut ais = Ais::new(config).unwrap();
        let batch = ais
            .run(&flow, &p, 20_000, AnnealTarget::P, false, &mut seeded(17))
            .unwrap();
        assert_unbiased(&batch.log_w, p.log_z, name);
        assert!(batch.log_w.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn ais_toward_p_squared_over_q_is_unbiased_for_its_normaliser() {
    // Z_g = ∫ p²/q for p = Z N(μ, s²I), q = N(0, I): per coordinate
    // −ln(2πs²) + ½ln(2π) + ½ln(π/a) + b²/(4a) − c with a = 1/s² − ½, b = 2μ/s², c = μ²/s².
    let p = target();
    let s2 = p.s * p.s;
    let a = 1.0 / s2 - 0.5;
    let log_z_g: f64 = 2.0 * p.log_z
        + p.mu
            .iter()
            .map(|m| {
                let (b, c) = (2.0 * m / s2, m * m / s2);
                -(2.0 * std::f64::consts::PI * s2).ln()
                    + HALF_LOG_2PI
                    + 0.5 * (std::f64::consts::PI / a).ln()
                    + b * b / (4.0 * a)
                    - c
            })
            .sum::<f64>();
    let flow = StdNormalFlow::new(2);
    let mut ais = Ais::new(hmc_config(6)).unwrap();
    let batch = ais
        .run(
            &flow,
            &p,
            40_000,
            AnnealTarget::Fab { alpha: 2.0 },
            false,
            &mut seeded(23),
        )
        .unwrap();
    assert_unbiased(&batch.log_w, log_z_g, "p²/q");
}

/// Runs `steps` transitions at f = p from exact samples of p and checks mean and variance.
fn assert_keeps_p_invariant(kernel: &dyn Kernel, step_size: f64, seed: u64) {
    let p = target();
    let flow = StdNormalFlow::new(2);
    let n = 20_000;
    let mut rng = seeded(seed);
    let x0 = Array2::from_shape_fn((n, 2), |(_, j)| {
        let e: f64 = StandardNormal.sample(&mut rng);
        p.mu[j] + p.s * e
    });
    let mut pts = Points::evaluate(x0, &flow, &p, kernel.needs_grad()).unwrap();
    let mut accept = 0.0;
    for _ in 0..10 {
        accept += kernel
            .step(&mut pts, (0.0, 1.0), step_size, &flow, &p, &mut rng)
            .unwrap()
            / 10.0;
    }
    assert!(
        accept > 0.3 && accept < 0.99,
        "acceptance {accept} makes the test uninformative"
    );
    let mean = pts.x.mean_axis(Axis(0)).unwrap();
    let var = pts.x.var_axis(Axis(0), 1.0);
    let s2 = p.s * p.s;
    for j in 0..2 {
        // Chains are independent: SE(mean) = s/√n, SE(var) = s²√(2/(n−1)) for Gaussian data.
        let se_mean = p.s / (n as f64).sqrt();
        let se_var = s2 * (2.0 / (n as f64 - 1.0)).sqrt();
        assert!(
            (mean[j] - p.mu[j]).abs() < 5.0 * se_mean,
            "coordinate {j}: mean {}",
            mean[j]
        );
        assert!(
            (var[j] - s2).abs() < 5.0 * se_var,
            "coordinate {j}: variance {}",
            var[j]
        );
    }
}

#[test]
fn hmc_keeps_a_gaussian_invariant() {
    assert_keeps_p_invariant(
        &fab_ais::hmc::Hmc {
            n_leapfrog: 5,
            max_grad: 1e3,
        },
        1.2,
        31,
    );
}

#[test]
fn metropolis_keeps_a_gaussian_invariant() {
    assert_keeps_p_invariant(&fab_ais::metropolis::Metropolis { n_steps: 3 }, 1.0, 37);
}

#[test]
fn a_kernel_without_an_acceptance_step_fails_the_invariance_check() {
    // Guards the test itself: a kernel that ignores the acceptance step must fail it.
    struct NoAccept;
    impl Kernel for NoAccept {
        fn step(
            &self,
            pts: &mut Points,
            _: (f64, f64),
            eps: f64,
            f: &dyn LogDensity,
            t: &dyn LogDensity,
            rng: &mut FabRng,
        ) -> Result<f64> {
            let x = pts.x.mapv(|v| {
                v + eps * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)
            });
            *pts = Points::evaluate(x, f, t, false)?;
            Ok(0.5)
        }
        fn needs_grad(&self) -> bool {
            false
        }
        fn evals_per_step(&self) -> usize {
            1
        }
    }
    let result = std::panic::catch_unwind(|| assert_keeps_p_invariant(&NoAccept, 0.3, 41));
    assert!(result.is_err());
}

#[test]
fn non_finite_target_points_never_enter_the_weights() {
    // p is NaN for x₀ > 2 and −inf for x₀ < −2: starts there are replaced, proposals rejected.
    struct Holey(Gaussian);
    impl LogDensity for Holey {
        fn dim(&self) -> usize {
            2
        }
        fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
            let lp = self.0.log_prob(x)?;
            Ok(ndarray::Zip::from(&lp).and(x.rows()).map_collect(|&l, r| {
                if r[0] > 2.0 {
                    f64::NAN
                } else if r[0] < -2.0 {
                    f64::NEG_INFINITY
                } else {
                    l
                }
            }))
        }
        fn log_prob_and_grad(
            &self,
            x: ArrayView2<f64>,
            g: ArrayViewMut2<f64>,
        ) -> Result<Array1<f64>> {
            self.0.log_prob_and_grad(x, g)?;
            self.log_prob(x)
        }
    }
    let p = Holey(target());
    let flow = StdNormalFlow::new(2);
    for config in [hmc_config(3), metropolis_config(3)] {
        let mut ais = Ais::new(AisConfig {
            init_step_size: 1.5,
            ..config
        })
        .unwrap();
        let b = ais
            .run(
                &flow,
                &p,
                4000,
                AnnealTarget::Fab { alpha: 2.0 },
                true,
                &mut seeded(5),
            )
            .unwrap();
        assert!(b.n_invalid > 0);
        assert!(b.log_w.iter().all(|v| v.is_finite()));
        assert!(b.x.column(0).iter().all(|&v| (-2.0..=2.0).contains(&v)));
    }
}

#[test]
fn step_sizes_adapt_toward_the_target_acceptance() {
    // Metropolis acceptance falls monotonically with the proposal scale, so multiplicative
    // adaptation settles where it crosses 0.65. (HMC on a Gaussian is non-monotone in ε because of
    // leapfrog resonances, which makes it a poor test of the adaptation rule.)
    let flow = StdNormalFlow::new(2);
    let p = target();
    let adaptation = StepSizeAdaptation {
        enabled: true,
        target_accept: 0.65,
        factor: 1.05,
    };
    let config = AisConfig {
        adaptation,
        init_step_size: 20.0,
        ..metropolis_config(2)
    };
    let mut ais = Ais::new(config).unwrap();
    let mut rng = seeded(3);
    let mut recent = vec![0.0; 2];
    for it in 0..200 {
        let acc = ais
            .run(&flow, &p, 256, AnnealTarget::P, true, &mut rng)
            .unwrap()
            .acceptance;
        if it >= 150 {
            recent.iter_mut().zip(acc).for_each(|(r, a)| *r += a / 50.0);
        }
    }
    for a in recent {
        assert!(
            (a - 0.65).abs() < 0.05,
            "mean acceptance over the last 50 passes {a}"
        );
    }
    // Frozen at evaluation.
    let before = ais.step_sizes();
    ais.run(&flow, &p, 64, AnnealTarget::P, false, &mut rng)
        .unwrap();
    assert_eq!(before, ais.step_sizes());
}

#[test]
fn smc_with_resampling_stays_unbiased_and_resamples() {
    // Resampling whenever ESS < 0.9 (often, with these weights) must keep E[Ẑ] = Z.
    let flow = StdNormalFlow::new(2);
    let p = target();
    let config = AisConfig {
        resample_below_ess: Some(0.9),
        ..hmc_config(4)
    };
    let mut ais = Ais::new(config).unwrap();
    // Many independent small SMC runs (n = 64 each): the average of their Ẑ is unbiased.
    let mut rng = seeded(29);
    let runs = 400;
    let z_hats: Vec<f64> = (0..runs)
        .map(|_| {
            let b = ais
                .run(&flow, &p, 64, AnnealTarget::P, false, &mut rng)
                .unwrap();
            fab_core::weights::log_z_estimate(b.log_w.view())
        })
        .collect();
    let w = Array1::from_iter(z_hats.iter().map(|l| (l - p.log_z).exp()));
    let se = w.std(1.0) / (runs as f64).sqrt();
    assert!(
        (w.mean().unwrap() - 1.0).abs() < 4.0 * se,
        "Ẑ/Z = {} ± {se}",
        w.mean().unwrap()
    );
    // Resampling happened: always resampling (threshold above 1) leaves only the last
    // increment's spread in the weights, far less than plain AIS accumulates.
    let spread = |threshold: Option<f64>| {
        let mut ais = Ais::new(AisConfig {
            resample_below_ess: threshold,
            ..hmc_config(4)
        })
        .unwrap();
        let b = ais
            .run(&flow, &p, 2000, AnnealTarget::P, false, &mut seeded(30))
            .unwrap();
        b.log_w.std(0.0)
    };
    let (always, never) = (spread(Some(1.1)), spread(None));
    assert!(
        always < 0.6 * never,
        "log w spread {always} with resampling vs {never} without"
    );
}

#[test]
fn bad_input_is_an_error_and_empty_batches_are_empty() {
    let p = target();
    for config in [hmc_config(2), metropolis_config(2)] {
        let mut ais = Ais::new(config).unwrap();
        // A flow of another dimension than the target.
        let e = ais
            .run(
                &StdNormalFlow::new(3),
                &p,
                10,
                AnnealTarget::P,
                false,
                &mut seeded(1),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains('3') && e.contains('2'), "{e}");
        // No samples asked: an empty batch with the right shapes, step sizes untouched.
        let before = ais.step_sizes();
        let b = ais
            .run(
                &StdNormalFlow::new(2),
                &p,
                0,
                AnnealTarget::P,
                true,
                &mut seeded(1),
            )
            .unwrap();
        assert_eq!((b.x.dim(), b.log_w.len()), ((0, 2), 0));
        assert_eq!(ais.step_sizes(), before);
        // Step sizes of the wrong count or sign are refused and leave the sampler as it was.
        assert!(ais.set_step_sizes(&before[1..]).is_err());
        assert!(ais.set_step_sizes(&vec![-1.0; before.len()]).is_err());
        assert!(ais.set_step_sizes(&vec![f64::NAN; before.len()]).is_err());
        assert_eq!(ais.step_sizes(), before);
    }
    // Invalid settings are refused by `Ais::new` with the field named.
    let Err(e) = Ais::new(AisConfig {
        init_step_size: -1.0,
        ..hmc_config(2)
    }) else {
        panic!("a negative step size was accepted");
    };
    let e = e.to_string();
    assert!(e.contains("ais.init_step_size"), "{e}");
}
