//! Adam with global gradient-norm clipping and a learning-rate schedule, over a flat parameter vector.
//!
//! Matches PyTorch's `Adam` (bias-corrected moments, L2 weight decay added to the gradient) and
//! `clip_grad_norm_` (scale by max/(‖g‖ + 1e-6) when ‖g‖ > max). A step is skipped when the gradient
//! norm is not finite, as in fab-torch.
//!
//! [`DynamicClip`] is fab-jax's stabiliser: the clip follows the median m of the last W gradient
//! norms (clip at 2m, skip the step above 10m), so one buffer point with an extreme weight neither
//! yanks the flow nor inflates Adam's second moment for a thousand steps.

use serde::{Deserialize, Serialize};

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum LrSchedule {
    /// lr at every step (fab-torch GMM / Many Well).
    #[default]
    Constant,
    /// Linear warm-up from 0 over `warmup_steps`, then half-cosine decay to 0 at `total_steps`.
    /// `total_steps` omitted (or 0) means "the whole run": [`crate::train::TrainConfig::resolved`]
    /// fills it in from the run length; left at 0 the rate stays at its peak after the warm-up.
    WarmupCosine {
        /// Steps of linear warm-up from 0 to the learning rate.
        warmup_steps: u64,
        /// Step at which the cosine reaches 0 (0: the whole run, filled in when resolved).
        #[serde(default)]
        total_steps: u64,
    },
}

/// fab-jax's dynamic gradient handling (`dynamic_grad_ignore_and_clip`): with m the median of the
/// last `window` global gradient norms (NaN entries ignored; the window starts two-thirds full of
/// 10³⁰, so the first third of a window of steps is never clipped or skipped), a step whose norm
/// exceeds `skip_factor`·m or is not finite is skipped (Adam state and schedule unchanged), and
/// otherwise the gradient is clipped to norm `clip_factor`·m. Every norm enters the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamicClip {
    /// Number of recent gradient norms the median is taken over (fab-jax: 100).
    pub window: usize,
    /// Clip the gradient to this multiple of the median norm (fab-jax: 2).
    pub clip_factor: f64,
    /// Skip the step when the norm exceeds this multiple of the median (fab-jax: 10).
    pub skip_factor: f64,
}

impl Default for DynamicClip {
    fn default() -> Self {
        Self {
            window: 100,
            clip_factor: 2.0,
            skip_factor: 10.0,
        }
    }
}

impl DynamicClip {
    /// The window before any step: ⌊2W/3⌋ (at least one) entries of 10³⁰, the rest empty (NaN).
    pub fn initial_window(&self) -> Vec<f64> {
        let full = (2 * self.window / 3).max(1).min(self.window);
        let mut w = vec![f64::NAN; self.window];
        w[..full].iter_mut().for_each(|v| *v = 1e30);
        w
    }
}

/// Median of the non-NaN values (NaN if there are none); the mean of the two middle values for an
/// even count, as numpy's nanmedian.
pub fn nan_median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        0.5 * (v[k / 2 - 1] + v[k / 2])
    }
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam β₁.
    pub beta1: f64,
    /// Adam β₂.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// L2 weight decay added to the gradient after clipping (PyTorch `Adam(weight_decay=…)`).
    pub weight_decay: f64,
    /// Global gradient-norm clip; `None` disables clipping. With `dynamic_clip` the smaller of the
    /// two limits applies.
    pub max_grad_norm: Option<f64>,
    /// fab-jax's median-relative clipping and step skipping (on by default; `None` for fab-torch's
    /// fixed clip alone, as the paper configs).
    pub dynamic_clip: Option<DynamicClip>,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: None,
            dynamic_clip: Some(DynamicClip::default()),
            schedule: LrSchedule::Constant,
        }
    }
}

/// Adam state: step count and first/second moments.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Settings.
    pub config: AdamConfig,
    /// Number of steps taken (skipped steps do not count).
    pub t: u64,
    /// First moment estimate.
    pub m: Vec<f64>,
    /// Second moment estimate.
    pub v: Vec<f64>,
    /// Recent gradient norms, oldest first (empty without [`DynamicClip`]).
    pub grad_norms: Vec<f64>,
}

impl Adam {
    /// Fresh optimiser for `n_params` parameters.
    pub fn new(config: AdamConfig, n_params: usize) -> Self {
        Self {
            config,
            t: 0,
            m: vec![0.0; n_params],
            v: vec![0.0; n_params],
            grad_norms: config
                .dynamic_clip
                .map_or_else(Vec::new, |d| d.initial_window()),
        }
    }

    /// Learning rate at step `t` (1-based) under the schedule.
    pub fn lr_at(&self, t: u64) -> f64 {
        match self.config.schedule {
            LrSchedule::Constant => self.config.lr,
            LrSchedule::WarmupCosine {
                warmup_steps,
                total_steps,
            } => {
                if t <= warmup_steps && warmup_steps > 0 {
                    self.config.lr * t as f64 / warmup_steps as f64
                } else if total_steps == 0 {
                    self.config.lr
                } else {
                    let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                    let progress = ((t - warmup_steps) as f64 / span).min(1.0);
                    0.5 * self.config.lr * (1.0 + (std::f64::consts::PI * progress).cos())
                }
            }
        }
    }

    /// Clips `grad` in place and applies one Adam update to `params`. Returns the pre-clip global
    /// norm and whether the step was taken (false if the norm is not finite, or with
    /// [`DynamicClip`] above its skip threshold).
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN must fail the check
    pub fn step(&mut self, params: &mut [f64], grad: &mut [f64]) -> (f64, bool) {
        assert_eq!(
            params.len(),
            grad.len(),
            "parameter and gradient lengths differ"
        );
        assert_eq!(
            params.len(),
            self.m.len(),
            "optimiser built for another parameter count"
        );
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        let mut limit = self.config.max_grad_norm;
        let mut skip = !norm.is_finite();
        if let Some(dynamic) = self.config.dynamic_clip {
            // The median of the norms before this one; then this norm enters the window.
            let median = nan_median(&self.grad_norms);
            skip |= !(norm <= dynamic.skip_factor * median);
            let clip = dynamic.clip_factor * median;
            limit = Some(limit.map_or(clip, |l| l.min(clip)));
            if !self.grad_norms.is_empty() {
                self.grad_norms.remove(0);
                self.grad_norms.push(norm);
            }
        }
        if skip {
            return (norm, false);
        }
        if let Some(max) = limit {
            if norm > max {
                let scale = max / (norm + 1e-6);
                grad.iter_mut().for_each(|g| *g *= scale);
            }
        }
        self.t += 1;
        let c = self.config;
        let lr = self.lr_at(self.t);
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        // Zipped slices (no index checks) so the loop runs on SIMD lanes, divisions included.
        let moments = self.m.iter_mut().zip(self.v.iter_mut());
        for ((p, &g), (m, v)) in params.iter_mut().zip(grad.iter()).zip(moments) {
            let g = g + c.weight_decay * *p;
            *m = c.beta1 * *m + (1.0 - c.beta1) * g;
            *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
            let m_hat = *m / bc1;
            let v_hat = *v / bc2;
            *p -= lr * m_hat / (v_hat.sqrt() + c.eps);
        }
        (norm, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_each_parameter_by_lr_against_the_gradient_sign() {
        // After one step m̂ = g and v̂ = g², so the update is lr·g/(|g| + ε) ≈ lr·sign(g).
        let mut adam = Adam::new(
            AdamConfig {
                lr: 0.1,
                max_grad_norm: None,
                dynamic_clip: None,
                ..Default::default()
            },
            2,
        );
        let mut p = [1.0, -1.0];
        let mut g = [3.0, -0.5];
        adam.step(&mut p, &mut g);
        assert!((p[0] - 0.9).abs() < 1e-7 && (p[1] + 0.9).abs() < 1e-7);
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut adam = Adam::new(
            AdamConfig {
                lr: 0.05,
                max_grad_norm: Some(1.0),
                dynamic_clip: None,
                ..Default::default()
            },
            3,
        );
        let target = [1.0, -2.0, 0.5];
        let mut p = [0.0; 3];
        for _ in 0..2000 {
            let mut g: Vec<f64> = p.iter().zip(&target).map(|(a, b)| 2.0 * (a - b)).collect();
            adam.step(&mut p, &mut g);
        }
        for (a, b) in p.iter().zip(&target) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn clipping_scales_to_max_norm_and_non_finite_gradients_skip_the_step() {
        let mut adam = Adam::new(
            AdamConfig {
                max_grad_norm: Some(1.0),
                dynamic_clip: None,
                ..Default::default()
            },
            2,
        );
        let mut p = [0.0, 0.0];
        let mut g = [3.0, 4.0];
        let (norm, taken) = adam.step(&mut p, &mut g);
        assert_eq!(norm, 5.0);
        assert!(taken);
        assert!(((g[0] * g[0] + g[1] * g[1]).sqrt() - 1.0).abs() < 1e-6);
        let mut g = [f64::NAN, 0.0];
        let before = p;
        let (_, taken) = adam.step(&mut p, &mut g);
        assert!(!taken);
        assert_eq!(p, before);
        assert_eq!(adam.t, 1);
    }

    #[test]
    fn dynamic_clip_follows_fab_jax_window_median_clip_and_skip() {
        let window = 6; // ⌊2·6/3⌋ = 4 entries start at 1e30: four steps are never clipped
        let mut adam = Adam::new(
            AdamConfig {
                lr: 0.1,
                max_grad_norm: None,
                dynamic_clip: Some(DynamicClip {
                    window,
                    clip_factor: 2.0,
                    skip_factor: 10.0,
                }),
                ..Default::default()
            },
            1,
        );
        let mut p = [0.0];
        // The window shifts left (the 1e30 entries leave first) and each norm is appended; while
        // the 1e30 entries hold the median up, even a norm of 1e6 passes unclipped.
        for g0 in [1.0, 3.0, 1e6, 2.0] {
            let mut g = [g0];
            let (norm, taken) = adam.step(&mut p, &mut g);
            assert!(taken && norm == g0 && g[0] == g0, "{g0}");
        }
        assert_eq!(nan_median(&adam.grad_norms), 2.5); // [NaN, NaN, 1, 3, 1e6, 2]
        let mut g = [5.0]; // ≤ 2·2.5: neither clipped nor skipped
        assert!(adam.step(&mut p, &mut g).1);
        assert_eq!(g[0], 5.0);
        // Window [NaN, 1, 3, 1e6, 2, 5]: median 3 → clip at 6, skip above 30.
        let t = adam.t;
        let before = p;
        let mut g = [41.0];
        assert_eq!(adam.step(&mut p, &mut g), (41.0, false));
        assert_eq!((adam.t, p), (t, before), "a skipped step changes nothing");
        // The skipped norm still entered the window: [1, 3, 1e6, 2, 5, 41], median 4 → clip at 8.
        let mut g = [-20.0];
        assert!(adam.step(&mut p, &mut g).1);
        assert!((g[0] + 8.0).abs() < 1e-5, "clipped to 2·median: {}", g[0]);
        // Non-finite norms skip and are remembered as they are.
        let mut g = [f64::NAN];
        assert!(!adam.step(&mut p, &mut g).1);
        assert!(adam.grad_norms.last().unwrap().is_nan());
    }

    #[test]
    fn nan_median_ignores_nan_and_averages_the_middle_pair() {
        assert_eq!(nan_median(&[3.0, f64::NAN, 1.0, 2.0]), 2.0);
        assert_eq!(nan_median(&[4.0, 1.0, f64::NAN, 3.0, 2.0]), 2.5);
        assert!(nan_median(&[f64::NAN]).is_nan());
        let w = DynamicClip::default().initial_window();
        assert_eq!(w.len(), 100);
        assert_eq!(w.iter().filter(|v| **v == 1e30).count(), 66);
        assert_eq!(nan_median(&w), 1e30);
    }

    #[test]
    fn warmup_cosine_schedule_ramps_up_then_decays_to_zero() {
        let adam = Adam::new(
            AdamConfig {
                lr: 1.0,
                schedule: LrSchedule::WarmupCosine {
                    warmup_steps: 10,
                    total_steps: 110,
                },
                ..Default::default()
            },
            1,
        );
        assert!((adam.lr_at(5) - 0.5).abs() < 1e-12);
        assert!((adam.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((adam.lr_at(60) - 0.5).abs() < 1e-12);
        assert!(adam.lr_at(110).abs() < 1e-12);
        // Without a total the rate stays at its peak after the warm-up.
        let open = Adam::new(
            AdamConfig {
                lr: 1.0,
                schedule: LrSchedule::WarmupCosine {
                    warmup_steps: 10,
                    total_steps: 0,
                },
                ..Default::default()
            },
            1,
        );
        assert_eq!(open.lr_at(500), 1.0);
    }
}
