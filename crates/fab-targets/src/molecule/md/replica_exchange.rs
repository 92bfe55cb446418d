//! Temperature replica exchange (parallel tempering) over Langevin dynamics, for ground-truth
//! samples of targets with rare transitions (alanine dipeptide's φ > 0 basin).
//!
//! K replicas run BAOAB at temperatures T₁ < … < T_K (in parallel with rayon). Every exchange
//! interval, neighbours (k, k+1) of alternating parity try to swap configurations with the Metropolis
//! probability min(1, exp((β_k − β_{k+1})(U_k − U_{k+1}))), which leaves the product of the K
//! Boltzmann distributions invariant; swapped velocities are rescaled by √(T_new/T_old). The replica
//! at T₁ then samples exp(−U/kT₁) while crossing barriers at the speed of the hot replicas.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use fab_core::rng::seeded;
use fab_core::FabRng;

use crate::molecule::md::langevin::{Langevin, LangevinConfig, LangevinState};

/// Settings of a replica-exchange run (times in ps, temperatures in K).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaExchangeConfig {
    /// Lowest temperature (the one whose samples are kept).
    pub t_min: f64,
    /// Highest temperature.
    pub t_max: f64,
    /// Number of replicas, on a geometric ladder from t_min to t_max.
    pub n_replicas: usize,
    /// Time step (ps).
    pub dt: f64,
    /// Langevin friction (1/ps).
    pub friction: f64,
    /// Time between exchange attempts (ps).
    pub exchange_interval: f64,
    /// Time between saved frames of the lowest replica (ps).
    pub save_interval: f64,
    /// Time discarded at the start (ps).
    pub equilibration: f64,
    /// Production time per replica (ps).
    pub length: f64,
    /// Seed of velocities, noise and exchanges.
    pub seed: u64,
}

impl Default for ReplicaExchangeConfig {
    /// 8 replicas 300–650 K, 1 fs, γ = 1/ps, exchanges and frames every 1 ps, 20 ps equilibration,
    /// 20 ns production.
    fn default() -> Self {
        Self {
            t_min: 300.0,
            t_max: 650.0,
            n_replicas: 8,
            dt: 0.001,
            friction: 1.0,
            exchange_interval: 1.0,
            save_interval: 1.0,
            equilibration: 20.0,
            length: 20_000.0,
            seed: 0,
        }
    }
}

impl ReplicaExchangeConfig {
    /// The temperature ladder T_k = t_min (t_max/t_min)^(k/(K−1)).
    pub fn temperatures(&self) -> Vec<f64> {
        let k = self.n_replicas;
        (0..k)
            .map(|i| {
                if k == 1 {
                    self.t_min
                } else {
                    self.t_min * (self.t_max / self.t_min).powf(i as f64 / (k - 1) as f64)
                }
            })
            .collect()
    }

    /// Steps between exchanges and between frames, rounded to whole steps (at least 1).
    pub fn steps(&self, interval: f64) -> usize {
        ((interval / self.dt).round() as usize).max(1)
    }

    /// Frames a run saves: length / save_interval, rounded.
    pub fn n_frames(&self) -> usize {
        (self.length / self.save_interval).round() as usize
    }

    /// Checks that the settings describe a run; the message names the field.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN must fail the check
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("t_min", self.t_min),
            ("dt", self.dt),
            ("friction", self.friction),
            ("exchange_interval", self.exchange_interval),
            ("save_interval", self.save_interval),
            ("length", self.length),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be positive and finite, got {v}"));
            }
        }
        if !(self.t_max >= self.t_min) {
            return Err(format!(
                "t_max ({}) must be ≥ t_min ({})",
                self.t_max, self.t_min
            ));
        }
        if self.n_frames() == 0 {
            return Err(format!(
                "save_interval ({} ps) is longer than the run (length {} ps): no frame would be saved",
                self.save_interval, self.length
            ));
        }
        if self.dt > self.save_interval || self.dt > self.exchange_interval {
            return Err(format!(
                "dt ({} ps) must not exceed save_interval ({}) or exchange_interval ({})",
                self.dt, self.save_interval, self.exchange_interval
            ));
        }
        if self.n_replicas == 0 {
            return Err("n_replicas must be at least 1".into());
        }
        if !(self.equilibration >= 0.0 && self.equilibration.is_finite()) {
            return Err(format!(
                "equilibration must be ≥ 0 and finite, got {}",
                self.equilibration
            ));
        }
        if !(self.t_max <= MAX_TEMPERATURE) {
            return Err(format!(
                "t_max ({} K) must be finite and at most {MAX_TEMPERATURE} K",
                self.t_max
            ));
        }
        let steps = (self.length + self.equilibration) / self.dt;
        if !(steps <= MAX_STEPS) {
            return Err(format!(
                "(length + equilibration) / dt = {steps:e} time steps; at most {MAX_STEPS:e}"
            ));
        }
        Ok(())
    }
}

/// Highest replica temperature accepted (K): far above where a peptide force field means
/// anything, low enough to refuse typos and infinities.
const MAX_TEMPERATURE: f64 = 10_000.0;

/// Most time steps a run may take (about 10⁴ core-years of alanine dipeptide): refuses lengths
/// such as 1e300 ps before anything is allocated.
const MAX_STEPS: f64 = 1e12;

/// The replicas, their integrators and exchange statistics.
pub struct ReplicaExchange<'a> {
    temperatures: Vec<f64>,
    integrators: Vec<Langevin<'a>>,
    states: Vec<LangevinState>,
    rngs: Vec<FabRng>,
    exchange_rng: FabRng,
    attempts: Vec<u64>,
    accepts: Vec<u64>,
    parity: usize,
    /// Boltzmann constant in the potential's energy unit per K (kT = k_B T).
    k_b: f64,
}

impl<'a> ReplicaExchange<'a> {
    /// Replicas at `temperatures` (K), all starting from `x0` with Maxwell-Boltzmann velocities;
    /// `k_b` converts K to the potential's energy unit, `atom_masses` are per atom.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        temperatures: Vec<f64>,
        k_b: f64,
        dt: f64,
        friction: f64,
        atom_masses: &[f64],
        potential: &'a (dyn Fn(&[f64], &mut [f64]) -> f64 + Sync),
        x0: &[f64],
        seed: u64,
    ) -> Self {
        let mut rngs: Vec<FabRng> = (0..temperatures.len())
            .map(|k| seeded(seed.wrapping_mul(1_000_003).wrapping_add(k as u64 + 1)))
            .collect();
        let integrators: Vec<Langevin<'a>> = temperatures
            .iter()
            .map(|t| {
                let config = LangevinConfig {
                    dt,
                    friction,
                    kt: k_b * t,
                };
                Langevin::new(config, atom_masses, potential)
            })
            .collect();
        let states = integrators
            .iter()
            .zip(&mut rngs)
            .map(|(lang, rng)| lang.init(x0.to_vec(), rng))
            .collect();
        let n_pairs = temperatures.len().saturating_sub(1);
        Self {
            temperatures,
            integrators,
            states,
            rngs,
            exchange_rng: seeded(seed.wrapping_mul(1_000_003)),
            attempts: vec![0; n_pairs],
            accepts: vec![0; n_pairs],
            parity: 0,
            k_b,
        }
    }

    /// Advances every replica by `steps` Langevin steps, in parallel.
    pub fn run(&mut self, steps: usize) {
        self.states
            .par_iter_mut()
            .zip(self.rngs.par_iter_mut())
            .zip(self.integrators.par_iter())
            .for_each(|((state, rng), lang)| lang.run(state, steps, rng));
    }

    /// One round of exchange attempts between neighbours of the current parity (0-1, 2-3, … or
    /// 1-2, 3-4, …); the parity alternates between calls.
    pub fn exchange(&mut self) {
        let mut k = self.parity;
        while k + 1 < self.states.len() {
            let (bi, bj) = (
                1.0 / (self.k_b * self.temperatures[k]),
                1.0 / (self.k_b * self.temperatures[k + 1]),
            );
            let delta = (bi - bj) * (self.states[k].energy - self.states[k + 1].energy);
            self.attempts[k] += 1;
            let u: f64 = self.exchange_rng.gen();
            if delta.is_finite() && (delta >= 0.0 || u < delta.exp()) {
                self.accepts[k] += 1;
                self.states.swap(k, k + 1);
                let ratio = (self.temperatures[k + 1] / self.temperatures[k]).sqrt();
                self.states[k].v.iter_mut().for_each(|v| *v /= ratio);
                self.states[k + 1].v.iter_mut().for_each(|v| *v *= ratio);
            }
            k += 2;
        }
        self.parity = 1 - self.parity;
    }

    /// The state of replica k (k = 0 is the lowest temperature).
    pub fn state(&self, k: usize) -> &LangevinState {
        &self.states[k]
    }

    /// The temperatures (K).
    pub fn temperatures(&self) -> &[f64] {
        &self.temperatures
    }

    /// Fraction of accepted swaps for each neighbouring pair (k, k+1); NaN before any attempt.
    pub fn acceptance_rates(&self) -> Vec<f64> {
        self.attempts
            .iter()
            .zip(&self.accepts)
            .map(|(&n, &a)| a as f64 / n as f64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tilted double well U = h(x² − 1)² + c·x in 1-D (one "atom" with 3 coordinates, only the
    /// first carries the double well, the others are harmonic): its low-temperature populations
    /// need barrier crossings that plain Langevin at kT = 1 almost never makes.
    fn double_well(x: &[f64], g: &mut [f64]) -> f64 {
        let (h, c) = (6.0, 0.8);
        g[0] = 4.0 * h * x[0] * (x[0] * x[0] - 1.0) + c;
        g[1] = x[1];
        g[2] = x[2];
        h * (x[0] * x[0] - 1.0).powi(2) + c * x[0] + 0.5 * (x[1] * x[1] + x[2] * x[2])
    }

    #[test]
    fn lowest_replica_has_the_exact_double_well_population() {
        // Exact P(x > 0) at kT = 1 by quadrature.
        let (mut right, mut total) = (0.0, 0.0);
        for i in 0..200_000 {
            let x = -3.0 + 6.0 * (i as f64 + 0.5) / 200_000.0;
            let w = (-(6.0 * (x * x - 1.0f64).powi(2) + 0.8 * x)).exp();
            total += w;
            if x > 0.0 {
                right += w;
            }
        }
        let exact = right / total;
        let config = ReplicaExchangeConfig {
            t_min: 1.0,
            t_max: 8.0,
            n_replicas: 6,
            ..Default::default()
        };
        let potential = double_well;
        let mut remd = ReplicaExchange::new(
            config.temperatures(),
            1.0,
            0.01,
            2.0,
            &[1.0],
            &potential,
            &[1.0, 0.0, 0.0],
            3,
        );
        remd.run(500);
        let (mut n_right, mut n) = (0.0, 0.0);
        for _ in 0..20_000 {
            remd.run(20);
            remd.exchange();
            n_right += f64::from(remd.state(0).x[0] > 0.0);
            n += 1.0;
        }
        let p = n_right / n;
        // exact ≈ 0.17. 20,000 frames 0.2 time units apart with well switches through the ladder
        // every few exchanges: a few thousand effective samples, SE ≲ 0.01; tolerance 0.03.
        assert!((p - exact).abs() < 0.03, "P(x > 0) = {p}, exact {exact}");
        let rates = remd.acceptance_rates();
        assert!(rates.iter().all(|&r| r > 0.2), "acceptance {rates:?}");
    }

    #[test]
    fn ladder_is_geometric_and_validation_names_the_field() {
        let t = ReplicaExchangeConfig::default().temperatures();
        assert_eq!(t.len(), 8);
        assert!((t[0] - 300.0).abs() < 1e-12 && (t[7] - 650.0).abs() < 1e-9);
        assert!((t[1] / t[0] - t[7] / t[6]).abs() < 1e-12);
        let bad = ReplicaExchangeConfig {
            dt: 0.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("dt"));
        // Infinite or absurd durations and temperatures are refused with their field.
        for (field, config) in [
            (
                "equilibration",
                ReplicaExchangeConfig {
                    equilibration: f64::INFINITY,
                    ..Default::default()
                },
            ),
            (
                "t_max",
                ReplicaExchangeConfig {
                    t_max: f64::INFINITY,
                    ..Default::default()
                },
            ),
            (
                "length",
                ReplicaExchangeConfig {
                    length: 1e300,
                    ..Default::default()
                },
            ),
            (
                "equilibration",
                ReplicaExchangeConfig {
                    equilibration: 1e300,
                    ..Default::default()
                },
            ),
        ] {
            let err = config.validate().unwrap_err();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
