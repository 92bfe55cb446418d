//! The target section of a run configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::molecule::md::replica_exchange::ReplicaExchangeConfig;

/// Which target to train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TargetConfig {
    /// The paper's 40-mode 2-D Gaussian mixture (fab-torch GMM, σ = softplus(1)).
    Gmm40,
    /// fab-jax's `gmm_v1`: 9 modes on the grid {−5, 0, 5}², σ² = 0.3.
    GmmV1,
    /// Neal's funnel (fab-jax: `dim: 10`).
    Funnel {
        /// Dimension.
        dim: usize,
    },
    /// fab-jax's log-Gaussian Cox process on the Finnish pines, 40 × 40 grid (1,600-D).
    Cox,
    /// The same Cox posterior in whitened coordinates w (f = μ₀ + L w, prior N(0, I)); same log Z.
    CoxWhitened,
    /// Many Well in an even dimension (32 in the paper: 16 double wells, 2^16 modes).
    ManyWell {
        /// Dimension.
        dim: usize,
    },
    /// Alanine dipeptide in OBC1 implicit solvent, in FAB's 60 internal coordinates.
    AlanineDipeptide(MoleculeSettings),
    /// Any molecule from an Amber prmtop and a structure, in OBC1 implicit solvent, in internal
    /// coordinates derived from its bond graph (3N − 6 of them).
    Peptide(PeptideConfig),
}

/// Settings of a [`TargetConfig::Peptide`] target. Paths are relative to the working directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeptideConfig {
    /// Amber topology (prmtop) with GB radii and screening factors.
    pub prmtop: PathBuf,
    /// Reference structure (Amber .inpcrd / .crd, Å) in the prmtop's atom order: the means of
    /// the internal coordinates and the handedness of every stereocentre.
    pub coordinates: PathBuf,
    /// Temperature (K).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Keep only the reference's mirror form (every stereocentre) in training batches.
    #[serde(default = "default_true")]
    pub chirality_filter: bool,
    /// Replica-exchange MD for the ground truth; its `t_min` must equal `temperature`.
    #[serde(default)]
    pub ground_truth: ReplicaExchangeConfig,
}

fn default_temperature() -> f64 {
    300.0
}

fn default_true() -> bool {
    true
}

impl PeptideConfig {
    /// Checks the settings (as [`MoleculeSettings::validate`]); the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        MoleculeSettings {
            temperature: self.temperature,
            chirality_filter: self.chirality_filter,
            ground_truth: self.ground_truth.clone(),
        }
        .validate()
    }
}

/// Settings shared by every molecule target (temperature, training filter) and its ground-truth
/// molecular dynamics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoleculeSettings {
    /// Temperature (K); kT = R·T with R = 8.314e-3 kJ/mol/K (fab-torch's value).
    pub temperature: f64,
    /// Keep only L-alanine in training batches (FAB's `filter_chirality: train`).
    pub chirality_filter: bool,
    /// Replica-exchange MD that produces the ground truth (`fab md`); its `t_min` must equal
    /// `temperature`.
    pub ground_truth: ReplicaExchangeConfig,
}

impl Default for MoleculeSettings {
    /// 300 K, chirality filter on, the default replica-exchange run (8 replicas 300–650 K, 20 ns).
    fn default() -> Self {
        Self {
            temperature: 300.0,
            chirality_filter: true,
            ground_truth: ReplicaExchangeConfig::default(),
        }
    }
}

impl MoleculeSettings {
    /// Checks the settings; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "target.temperature must be positive, got {}",
                self.temperature
            ));
        }
        self.ground_truth
            .validate()
            .map_err(|e| format!("target.ground_truth.{e}"))?;
        if (self.ground_truth.t_min - self.temperature).abs() > 1e-9 {
            return Err(format!(
                "target.ground_truth.t_min ({}) must equal target.temperature ({})",
                self.ground_truth.t_min, self.temperature
            ));
        }
        Ok(())
    }
}
