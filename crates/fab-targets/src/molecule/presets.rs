//! The molecules that ship with fab-rs: alanine dipeptide (openmmtools' files, the paper's target)
//! and alanine tetrapeptide, as text compiled into the library so that they need no data path.

/// The shipped topology file (openmmtools, MIT; see `data/aldp/README.md`).
pub const ALANINE_DIPEPTIDE_PRMTOP: &str = include_str!("../../data/aldp/alanine-dipeptide.prmtop");

/// The shipped starting coordinates (openmmtools, MIT; Å in the file).
pub const ALANINE_DIPEPTIDE_CRD: &str = include_str!("../../data/aldp/alanine-dipeptide.crd");

/// Alanine tetrapeptide ACE-(ALA)₃-NME, ff96 with mbondi2 radii, a ParmEd-written prmtop made for
/// this project (see `data/tetrapeptide/README.md`): the second molecule of the force field.
pub const ALANINE_TETRAPEPTIDE_PRMTOP: &str =
    include_str!("../../data/tetrapeptide/alanine-tetrapeptide.prmtop");

/// The tetrapeptide's starting structure (Amber inpcrd, Å; vacuum-minimised build).
pub const ALANINE_TETRAPEPTIDE_INPCRD: &str =
    include_str!("../../data/tetrapeptide/alanine-tetrapeptide.inpcrd");

/// The same structure as a PDB file written by OpenMM (Å to three decimals).
pub const ALANINE_TETRAPEPTIDE_PDB: &str =
    include_str!("../../data/tetrapeptide/alanine-tetrapeptide.pdb");
