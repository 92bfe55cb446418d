//! Adam with global gradient-norm clipping and a learning-rate schedule, over a flat parameter vector.
//!
//! Matches PyTorch's `Adam` (bias-corrected moments, L2 weight decay added to the gradient) and
//! `clip_grad_norm_` (scale by max/(‖g‖ + 1e-6) when ‖g‖ > max). A step is skipped when the gradient
//! norm is not finite, as in fab-torch.

use serde::{Deserialize, Serialize};

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum LrSchedule {
    /// lr at every step (fab-torch GMM / Many Well).
    #[default]
    Constant,
    /// Linear warm-up from 0 over `warmup_steps`, then half-cosine decay to 0 at `total_steps`.
    WarmupCosine { warmup_steps: u64, total_steps: u64 },
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
    /// Global gradient-norm clip; `None` disables clipping.
    pub max_grad_norm: Option<f64>,
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
            max_grad_norm: Some(100.0),
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
}

impl Adam {
    /// Fresh optimiser for `n_params` parameters.
    pub fn new(config: AdamConfig, n_params: usize) -> Self {
        Self {
            config,
            t: 0,
            m: vec![0.0; n_params],
            v: vec![0.0; n_params],
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
                } else {
                    let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                    let progress = ((t - warmup_steps) as f64 / span).min(1.0);
                    0.5 * self.config.lr * (1.0 + (std::f64::consts::PI * progress).cos())
                }
            }
        }
    }

    /// Clips `grad` in place and applies one Adam update to `params`. Returns the pre-clip global
    /// norm and whether the step was taken (false if the norm is not finite).
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
        if !norm.is_finite() {
            return (norm, false);
        }
        if let Some(max) = self.config.max_grad_norm {
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
        for i in 0..params.len() {
            let g = grad[i] + c.weight_decay * params[i];
            self.m[i] = c.beta1 * self.m[i] + (1.0 - c.beta1) * g;
            self.v[i] = c.beta2 * self.v[i] + (1.0 - c.beta2) * g * g;
            let m_hat = self.m[i] / bc1;
            let v_hat = self.v[i] / bc2;
            params[i] -= lr * m_hat / (v_hat.sqrt() + c.eps);
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
    }
}
