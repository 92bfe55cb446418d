//! FAB's Boltzmann target for any molecule given as an Amber prmtop and a structure: the force
//! field from the topology, internal coordinates from its bond graph (means from the structure),
//! the stereocentres' handedness from the structure, φ/ψ of every residue with N, CA and C.
//! Alanine tetrapeptide is the shipped example (`data/tetrapeptide/`).

use std::path::{Path, PathBuf};

use crate::molecule::cartesian_boltzmann::GAS_CONSTANT;
use crate::molecule::coordinates::bond_graph::{backbone_dihedrals, BondGraph, TopologyError};
use crate::molecule::coordinates::chirality::{MirrorFilter, StereoFilter};
use crate::molecule::coordinates::internal::{DefaultStd, InternalCoordinates};
use crate::molecule::coordinates::zmatrix::ZMatrix;
use crate::molecule::forcefield::ForceField;
use crate::molecule::formats::crd::parse_crd;
use crate::molecule::formats::pdb::read_pdb;
use crate::molecule::formats::prmtop::{Prmtop, PrmtopError};
use crate::molecule::internal_boltzmann::InternalBoltzmann;
use crate::molecule::numeric::vec3::Vec3;

/// Why a molecule could not be made into a target; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PeptideError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The topology or coordinates are malformed.
    #[error(transparent)]
    Parse(#[from] PrmtopError),
    /// A PDB structure could not be read or does not fit the topology.
    #[error(transparent)]
    Pdb(#[from] crate::molecule::formats::pdb::PdbError),
    /// The bond graph admits no internal coordinates.
    #[error("{origin}: {source}")]
    Topology {
        /// The topology file.
        origin: String,
        /// The underlying error.
        source: TopologyError,
    },
    /// A bond of the topology has a length in the structure far from its equilibrium length:
    /// atoms listed in another order than the topology's, or a broken structure.
    #[error("{coordinates}: {bond}: the structure must list the topology's atoms in its order, with sensible positions")]
    BondLength {
        /// The structure file.
        coordinates: String,
        /// The bond, its length and its equilibrium length.
        bond: String,
    },
    /// The structure and the topology disagree on the atom count.
    #[error("{coordinates} has {got} atoms, {prmtop} has {expected}")]
    AtomCount {
        /// The structure file.
        coordinates: String,
        /// The topology file.
        prmtop: String,
        /// Atoms in the structure.
        got: usize,
        /// Atoms in the topology.
        expected: usize,
    },
}

/// How far (Å) a bond of a reference structure may be from its equilibrium length: thermal
/// fluctuations are about 0.05 Å, an atom in another atom's place is off by 1 Å or more.
const MAX_BOND_STRETCH: f64 = 0.5;

/// A molecule's topology and reference structure, from which its target is built.
#[derive(Debug, Clone)]
pub struct Peptide {
    /// The parsed topology.
    pub topology: Prmtop,
    /// Its bond graph.
    pub graph: BondGraph,
    /// The reference structure (nm): the means of the internal coordinates and the handedness
    /// of every stereocentre.
    pub reference: Vec<Vec3>,
    force_field: ForceField,
    name: String,
}

impl Peptide {
    /// Reads a prmtop and a structure: an Amber coordinate file (.inpcrd / .crd, Å) or a PDB file
    /// (.pdb, its first model; atoms in the prmtop's order).
    pub fn from_files(prmtop: &Path, coordinates: &Path) -> Result<Self, PeptideError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| PeptideError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let name = prmtop
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "peptide".into());
        Self::from_text(
            &read(prmtop)?,
            &prmtop.display().to_string(),
            &read(coordinates)?,
            &coordinates.display().to_string(),
            &name,
        )
    }

    /// From prmtop and coordinate text; the origins name the files in errors (and the structure's
    /// extension, .pdb or anything else for Amber coordinates, its format), `name` the target.
    pub fn from_text(
        prmtop: &str,
        prmtop_origin: &str,
        coordinates: &str,
        coordinates_origin: &str,
        name: &str,
    ) -> Result<Self, PeptideError> {
        let topology = Prmtop::parse(prmtop, prmtop_origin)?;
        let force_field = ForceField::from_prmtop_text(prmtop, prmtop_origin)?;
        let graph = BondGraph::from_prmtop(&topology).map_err(|source| PeptideError::Topology {
            origin: prmtop_origin.into(),
            source,
        })?;
        let reference = if coordinates_origin.to_ascii_lowercase().ends_with(".pdb") {
            let mut models = read_pdb(coordinates, coordinates_origin, Some(topology.n_atoms()))?;
            models.swap_remove(0)
        } else {
            parse_crd(coordinates, coordinates_origin)?
        };
        if reference.len() != topology.n_atoms() {
            return Err(PeptideError::AtomCount {
                coordinates: coordinates_origin.into(),
                prmtop: prmtop_origin.into(),
                got: reference.len(),
                expected: topology.n_atoms(),
            });
        }
        // Atoms in another order (or a broken structure) show as bonds of absurd length; the
        // target would otherwise train on a molecule the topology does not describe.
        for bond in &topology.bonds {
            let [i, j] = bond.atoms;
            let length = 10.0
                * (0..3)
                    .map(|a| (reference[i][a] - reference[j][a]).powi(2))
                    .sum::<f64>()
                    .sqrt();
            // Written so that a NaN length (non-finite coordinates) fails too.
            let sensible = (length - bond.r0).abs() <= MAX_BOND_STRETCH;
            if !sensible {
                return Err(PeptideError::BondLength {
                    coordinates: coordinates_origin.into(),
                    bond: format!(
                        "the bond between atom {} ({}) and atom {} ({}) of {prmtop_origin} is {length:.3} Å long, its equilibrium length {:.3} Å",
                        i + 1,
                        topology.atom_names[i].trim(),
                        j + 1,
                        topology.atom_names[j].trim(),
                        bond.r0
                    ),
                });
            }
        }
        Ok(Self {
            topology,
            graph,
            reference,
            force_field,
            name: name.into(),
        })
    }

    /// The shipped alanine dipeptide (ACE-ALA-NME, 22 atoms, 60 internal coordinates from its
    /// bond graph; FAB's hand-written table is the `AlanineDipeptide` preset, see
    /// [`crate::molecule::Molecule`]).
    pub fn alanine_dipeptide() -> Self {
        Self::shipped(
            "alanine-dipeptide",
            crate::molecule::ALANINE_DIPEPTIDE_PRMTOP,
            crate::molecule::ALANINE_DIPEPTIDE_CRD,
            "crd",
        )
    }

    /// The shipped alanine tetrapeptide (ACE-(ALA)₃-NME, 42 atoms, 120 internal coordinates).
    pub fn alanine_tetrapeptide() -> Self {
        Self::shipped(
            "alanine-tetrapeptide",
            crate::molecule::ALANINE_TETRAPEPTIDE_PRMTOP,
            crate::molecule::ALANINE_TETRAPEPTIDE_INPCRD,
            "inpcrd",
        )
    }

    /// A molecule from the files shipped in the crate (`name`.prmtop and `name`.`extension`).
    fn shipped(name: &str, prmtop: &str, coordinates: &str, extension: &str) -> Self {
        Self::from_text(
            prmtop,
            &format!("{name}.prmtop"),
            coordinates,
            &format!("{name}.{extension}"),
            name,
        )
        .expect("the shipped files parse (checked by tests)")
    }

    /// The molecule's force field.
    pub fn force_field(&self) -> &ForceField {
        &self.force_field
    }

    /// The internal-coordinate transform: Z-matrix from the bond graph, means from the reference.
    pub fn internal_coordinates(&self) -> Result<InternalCoordinates, TopologyError> {
        let zm = ZMatrix::from_bond_graph(&self.graph)?;
        Ok(InternalCoordinates::from_reference(
            zm,
            &self.reference,
            DefaultStd::default(),
        ))
    }

    /// FAB's target at `temperature` K; `filter_training` keeps only the reference's mirror form
    /// in training batches.
    pub fn target(
        &self,
        temperature: f64,
        filter_training: bool,
    ) -> Result<InternalBoltzmann, TopologyError> {
        let filter = StereoFilter::from_reference(&self.graph, &self.reference);
        Ok(InternalBoltzmann::molecule(
            &self.name,
            self.force_field.clone(),
            self.internal_coordinates()?,
            GAS_CONSTANT * temperature,
            MirrorFilter::Stereocentres(filter),
            backbone_dihedrals(&self.topology, &self.graph),
        )
        .with_training_filter(filter_training))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fab_core::LogDensity;

    #[test]
    fn the_tetrapeptide_target_has_120_coordinates_and_finite_density_at_its_reference() {
        let p = Peptide::alanine_tetrapeptide();
        let t = p.target(300.0, true).unwrap();
        assert_eq!(t.dim(), 120);
        assert_eq!(t.residues().len(), 3);
        // The reference structure maps to z = 0 (up to wrapping) with a finite log density.
        let z = ndarray::Array2::zeros((1, 120));
        let lp = t.log_prob(z.view()).unwrap();
        assert!(lp[0].is_finite(), "{lp}");
        use fab_core::Target;
        assert_eq!(t.training_mask(z.view()), Some(vec![true]));
    }

    #[test]
    fn the_structure_may_come_from_a_pdb_file() {
        let from_crd = Peptide::alanine_tetrapeptide();
        let from_pdb = Peptide::from_text(
            crate::molecule::ALANINE_TETRAPEPTIDE_PRMTOP,
            "alanine-tetrapeptide.prmtop",
            crate::molecule::ALANINE_TETRAPEPTIDE_PDB,
            "alanine-tetrapeptide.pdb",
            "alanine-tetrapeptide",
        )
        .unwrap();
        // Same atoms in the same order; the PDB has three decimals in Å (rounding 5e-5 nm).
        let worst = from_crd
            .reference
            .iter()
            .flatten()
            .zip(from_pdb.reference.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 5.1e-5, "largest difference {worst} nm");
    }

    #[test]
    fn a_structure_with_atoms_in_another_order_is_refused_naming_a_bond() {
        let lines: Vec<&str> = crate::molecule::ALANINE_TETRAPEPTIDE_PDB.lines().collect();
        let atoms: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("ATOM") || lines[i].starts_with("HETATM"))
            .collect();
        for (a, b) in [(0, 1), (1, 4)] {
            let mut swapped = lines.clone();
            swapped.swap(atoms[a], atoms[b]);
            let err = Peptide::from_text(
                crate::molecule::ALANINE_TETRAPEPTIDE_PRMTOP,
                "tetra.prmtop",
                &swapped.join("\n"),
                "swapped.pdb",
                "x",
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("swapped.pdb") && err.contains("tetra.prmtop") && err.contains("bond"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_all_zero_amber_structure_is_refused_naming_the_file_and_a_bond() {
        let zeros: String = crate::molecule::ALANINE_DIPEPTIDE_CRD
            .lines()
            .enumerate()
            .map(|(k, l)| {
                if k < 2 {
                    l.to_string()
                } else {
                    "   0.0000000".repeat(l.len() / 12)
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let err = Peptide::from_text(
            crate::molecule::ALANINE_DIPEPTIDE_PRMTOP,
            "di.prmtop",
            &zeros,
            "zeros.crd",
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("zeros.crd") && err.contains("0.000 Å long"),
            "{err}"
        );
    }

    #[test]
    fn a_structure_of_another_molecule_is_refused_naming_both_files() {
        let err = Peptide::from_text(
            crate::molecule::ALANINE_TETRAPEPTIDE_PRMTOP,
            "tetra.prmtop",
            crate::molecule::ALANINE_DIPEPTIDE_CRD,
            "di.crd",
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("di.crd") && err.contains("tetra.prmtop") && err.contains("22"),
            "{err}"
        );
        // A PDB file of the other molecule, and one that is not a PDB file at all.
        let pdb = crate::molecule::formats::pdb::to_pdb(
            &Prmtop::parse(crate::molecule::ALANINE_DIPEPTIDE_PRMTOP, "di").unwrap(),
            &[crate::molecule::formats::crd::parse_crd(
                crate::molecule::ALANINE_DIPEPTIDE_CRD,
                "di",
            )
            .unwrap()],
        );
        let tetra = |text: &str| {
            let top = crate::molecule::ALANINE_TETRAPEPTIDE_PRMTOP;
            Peptide::from_text(top, "tetra.prmtop", text, "s.pdb", "x")
                .unwrap_err()
                .to_string()
        };
        let err = tetra(&pdb);
        assert!(err.contains("s.pdb") && err.contains("22 atoms"), "{err}");
        let err = tetra("HELLO\nATOM  garbage\n");
        assert!(err.contains("s.pdb"), "{err}");
        let err = Peptide::from_files(Path::new("/nonexistent/x.prmtop"), Path::new("y.inpcrd"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/x.prmtop"), "{err}");
    }
}
