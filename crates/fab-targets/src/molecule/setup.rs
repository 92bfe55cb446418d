//! A molecule run's pieces from its target config: the peptide (topology and reference
//! structure), FAB's target density, the system its ground-truth MD simulates and the MD settings.
//!
//! `AlanineDipeptide` is a preset of `Peptide`: the shipped dipeptide files, with FAB's
//! hand-written Z-matrix (means from fab-torch's minimum-energy structure) and its two-dihedral
//! chirality test in place of the bond-graph ones, so the paper's coordinates stay unchanged.

use crate::config::{MoleculeSettings, TargetConfig};
use crate::molecule::md::ground_truth::MdSystem;
use crate::molecule::md::replica_exchange::ReplicaExchangeConfig;
use crate::molecule::{ChiralityFilter, InternalBoltzmann, Peptide};

/// Everything a molecule run builds from its target config.
#[derive(Debug, Clone)]
pub struct Molecule {
    /// Topology, bond graph and reference structure.
    pub peptide: Peptide,
    /// FAB's target over the internal coordinates.
    pub target: InternalBoltzmann,
    /// What the ground-truth MD simulates (force field, masses, start, recorded torsions).
    pub md: MdSystem,
    /// Name under which MD runs of this molecule are cached ("alanine-dipeptide", or the
    /// prmtop's path for a `Peptide`).
    pub md_name: String,
    /// Temperature, training filter and ground-truth settings.
    pub settings: MoleculeSettings,
}

impl Molecule {
    /// The molecule of `config`, or `None` for targets that are not molecules. Errors name the
    /// config field or the file that is wrong.
    pub fn from_config(config: &TargetConfig) -> fab_core::Result<Option<Self>> {
        let invalid = |e: String| fab_core::FabError::invalid("target", e);
        match config {
            TargetConfig::AlanineDipeptide(c) => {
                c.validate().map_err(invalid)?;
                let filter = c.chirality_filter.then(ChiralityFilter::default);
                Ok(Some(Self {
                    peptide: Peptide::alanine_dipeptide(),
                    target: InternalBoltzmann::alanine_dipeptide(c.temperature)
                        .with_chirality_filter(filter),
                    md: MdSystem::alanine_dipeptide(),
                    md_name: "alanine-dipeptide".into(),
                    settings: c.clone(),
                }))
            }
            TargetConfig::Peptide(c) => {
                c.validate().map_err(invalid)?;
                let peptide = Peptide::from_files(&c.prmtop, &c.coordinates)
                    .map_err(|e| invalid(e.to_string()))?;
                let in_topology = |e| invalid(format!("{}: {e}", c.prmtop.display()));
                let target = peptide
                    .target(c.temperature, c.chirality_filter)
                    .map_err(in_topology)?;
                let md = MdSystem::peptide(&peptide).map_err(in_topology)?;
                Ok(Some(Self {
                    peptide,
                    target,
                    md,
                    md_name: c.prmtop.display().to_string(),
                    settings: MoleculeSettings {
                        temperature: c.temperature,
                        chirality_filter: c.chirality_filter,
                        ground_truth: c.ground_truth.clone(),
                    },
                }))
            }
            _ => Ok(None),
        }
    }

    /// Indices of the target's coordinates that are torsions (angles on the circle): what a
    /// flow's `circular` list may name.
    pub fn circular_indices(&self) -> Vec<usize> {
        self.target.transform().circular_indices()
    }

    /// Pairs (j, i) of circular torsions of the target's Z-matrix that turn about the same bond,
    /// for a flow's `relative_angles` ([`crate::molecule::ZMatrix::shared_axis_dihedrals`]; with
    /// `heavy_only`, only pairs whose j places a heavy atom).
    pub fn shared_axis_dihedrals(&self, heavy_only: bool) -> Vec<(usize, usize)> {
        self.target
            .transform()
            .zmatrix()
            .shared_axis_dihedrals(&self.peptide.graph, heavy_only)
    }

    /// The ground-truth MD settings, with the production length replaced by `length_ps` when
    /// given; checked (the message names the field).
    pub fn ground_truth(&self, length_ps: Option<f64>) -> Result<ReplicaExchangeConfig, String> {
        let mut settings = self.settings.clone();
        if let Some(l) = length_ps {
            settings.ground_truth.length = l;
        }
        settings.validate()?;
        Ok(settings.ground_truth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fab_core::LogDensity;

    #[test]
    fn the_dipeptide_preset_keeps_the_papers_coordinates_and_the_peptide_uses_the_bond_graph() {
        let preset =
            Molecule::from_config(&TargetConfig::AlanineDipeptide(MoleculeSettings::default()))
                .unwrap()
                .unwrap();
        // Same density as the target built directly (the paper's table Z-matrix).
        let direct = InternalBoltzmann::alanine_dipeptide(300.0);
        let z =
            ndarray::Array2::from_shape_fn((3, 60), |(i, j)| 0.1 * (i as f64) - 0.01 * j as f64);
        let (a, b) = (
            preset.target.log_prob(z.view()).unwrap(),
            direct.log_prob(z.view()).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(preset.peptide.topology.n_atoms(), 22);
        assert_eq!(preset.md.masses.len(), 22);
        // The preset's MD records φ and ψ; a wrong setting names the field.
        assert_eq!(preset.md.torsions.len(), 2);
        assert_eq!(preset.ground_truth(Some(10.0)).unwrap().length, 10.0);
        let err = preset.ground_truth(Some(-1.0)).unwrap_err();
        assert!(err.contains("target.ground_truth.length"), "{err}");
        // Non-molecules have none.
        assert!(Molecule::from_config(&TargetConfig::GmmV1)
            .unwrap()
            .is_none());
    }
}
