//! Reader for Amber prmtop topology files (the `%FLAG` / `%FORMAT` layout of Amber 7+).
//!
//! Each section is a Fortran-formatted block: `%FLAG NAME`, `%FORMAT(nTw[.d])`, then values in fixed
//! columns of width w, n per line (strings `a`, integers `I`, reals `E`). Sections are parsed lazily by
//! type, and every error names the section (and file) so a malformed or truncated topology never panics.
//! Values stay in Amber's units (kcal/mol, Å, charge × 18.2223); bond/angle/dihedral atom indices are
//! converted from Amber's coordinate offsets (3·i) to atom indices, with the sign flags of dihedrals
//! (negative third index: no 1-4 interaction; negative fourth index: improper) kept as booleans.

use std::collections::HashMap;

/// Errors from reading a prmtop file.
#[derive(Debug, thiserror::Error)]
pub enum PrmtopError {
    /// A required section is absent.
    #[error("{origin}: section %FLAG {section} is missing")]
    Missing {
        /// The file (or the name given for the text).
        origin: String,
        /// The `%FLAG` section.
        section: String,
    },
    /// A coordinate (.crd) file is malformed.
    #[error("{origin}: coordinates: {reason}")]
    Coordinates {
        /// The file (or the name given for the text).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A section's format line or values are malformed.
    #[error("{origin}: section %FLAG {section}: {reason}")]
    Malformed {
        /// The file (or the name given for the text).
        origin: String,
        /// The `%FLAG` section.
        section: String,
        /// What is wrong.
        reason: String,
    },
}

/// One `%FLAG` section: its Fortran format and raw value lines.
#[derive(Debug, Clone)]
struct Section {
    /// Width of one fixed-width field.
    width: usize,
    lines: Vec<String>,
}

/// A bond between two atoms with force constant k (kcal/mol/Å²) and length r₀ (Å).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bond {
    /// The atoms (0-based).
    pub atoms: [usize; 2],
    /// Force constant (kcal/mol/Å²).
    pub k: f64,
    /// Equilibrium length (Å).
    pub r0: f64,
}

/// An angle i-j-k with force constant k (kcal/mol/rad²) and θ₀ (rad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Angle {
    /// The atoms (0-based).
    pub atoms: [usize; 3],
    /// Force constant (kcal/mol/rad²).
    pub k: f64,
    /// Equilibrium angle (rad).
    pub theta0: f64,
}

/// A torsion term k (1 + cos(n φ − phase)) over atoms i-j-k-l (kcal/mol, rad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dihedral {
    /// The atoms (0-based).
    pub atoms: [usize; 4],
    /// Barrier k (kcal/mol).
    pub k: f64,
    /// Periodicity n.
    pub periodicity: f64,
    /// Phase (rad).
    pub phase: f64,
    /// Amber's negative third index: the 1-4 pair of this quartet is not counted here.
    pub skip_14: bool,
    /// Amber's negative fourth index: an improper torsion.
    pub improper: bool,
    /// Divisor of the 1-4 Coulomb energy of this quartet's end atoms (`SCEE_SCALE_FACTOR`, Amber's
    /// 1.2 when the file has no such section).
    pub scee: f64,
    /// Divisor of the 1-4 Lennard-Jones energy (`SCNB_SCALE_FACTOR`, default 2.0).
    pub scnb: f64,
}

/// Amber's default 1-4 Coulomb divisor, used when a prmtop has no `SCEE_SCALE_FACTOR` section.
pub const DEFAULT_SCEE: f64 = 1.2;
/// Amber's default 1-4 Lennard-Jones divisor (no `SCNB_SCALE_FACTOR` section).
pub const DEFAULT_SCNB: f64 = 2.0;

/// A parsed prmtop topology (the parts a force field needs).
#[derive(Debug, Clone)]
pub struct Prmtop {
    /// Atom names (`ATOM_NAME`).
    pub atom_names: Vec<String>,
    /// Residue names (`RESIDUE_LABEL`), e.g. ACE, ALA, NME.
    pub residue_labels: Vec<String>,
    /// Residue index of each atom (from `RESIDUE_POINTER`).
    pub residue_of: Vec<usize>,
    /// Amber atom types (`AMBER_ATOM_TYPE`).
    pub atom_types: Vec<String>,
    /// Charges in Amber's internal units (e × 18.2223).
    pub charges: Vec<f64>,
    /// Masses (Da).
    pub masses: Vec<f64>,
    /// Lennard-Jones type of each atom (0-based).
    pub lj_type: Vec<usize>,
    /// Number of LJ types.
    pub n_types: usize,
    /// `NONBONDED_PARM_INDEX` (1-based into the A/B tables, n_types² entries).
    pub nonbonded_parm_index: Vec<i64>,
    /// `LENNARD_JONES_ACOEF` (kcal/mol·Å¹²).
    pub lj_a: Vec<f64>,
    /// `LENNARD_JONES_BCOEF` (kcal/mol·Å⁶).
    pub lj_b: Vec<f64>,
    /// All bonds (with and without hydrogen).
    pub bonds: Vec<Bond>,
    /// All angles.
    pub angles: Vec<Angle>,
    /// All torsion terms.
    pub dihedrals: Vec<Dihedral>,
    /// Excluded partners of each atom (0-based, larger indices only, Amber's list without placeholders).
    pub exclusions: Vec<Vec<usize>>,
    /// Generalised Born radii (`RADII`, Å).
    pub gb_radii: Vec<f64>,
    /// Generalised Born screening factors (`SCREEN`).
    pub gb_screen: Vec<f64>,
}

struct Reader<'a> {
    origin: &'a str,
    sections: HashMap<String, Section>,
}

impl<'a> Reader<'a> {
    fn parse(text: &str, origin: &'a str) -> Result<Self, PrmtopError> {
        let mut sections = HashMap::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(name) = line.strip_prefix("%FLAG") else {
                continue;
            };
            let name = name.trim().to_string();
            let bad = |reason: String| PrmtopError::Malformed {
                origin: origin.to_string(),
                section: name.clone(),
                reason,
            };
            let format = lines
                .next()
                .ok_or_else(|| bad("file ends before its %FORMAT line".into()))?;
            let spec = format
                .trim()
                .strip_prefix("%FORMAT(")
                .and_then(|f| f.strip_suffix(')'))
                .ok_or_else(|| bad(format!("expected %FORMAT(...), found `{}`", format.trim())))?;
            // e.g. 20a4, 10I8, 5E16.8: count, letter, width[.decimals]
            let pos = spec
                .find(|c: char| c.is_ascii_alphabetic())
                .ok_or_else(|| bad(format!("unreadable format `{spec}`")))?;
            let width: usize = spec[pos + 1..]
                .split('.')
                .next()
                .and_then(|w| w.parse().ok())
                .filter(|w| *w > 0)
                .ok_or_else(|| bad(format!("unreadable field width in `{spec}`")))?;
            let mut body = Vec::new();
            while let Some(next) = lines.peek() {
                if next.starts_with('%') {
                    break;
                }
                body.push(lines.next().unwrap_or_default().to_string());
            }
            sections.insert(name, Section { width, lines: body });
        }
        Ok(Self { origin, sections })
    }

    /// Whether the file has a section (for optional ones such as `SCEE_SCALE_FACTOR`).
    fn has(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    /// An optional per-type real section, or `default` for every type when the file lacks it.
    /// Values must be finite and positive (they divide energies).
    fn optional_positive_reals(
        &self,
        name: &str,
        expected: usize,
        default: f64,
    ) -> Result<Vec<f64>, PrmtopError> {
        if !self.has(name) {
            return Ok(vec![default; expected]);
        }
        let v = self.reals(name, expected)?;
        if let Some(bad) = v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(self.malformed(name, format!("{bad} is not a positive scale factor")));
        }
        Ok(v)
    }

    fn section(&self, name: &str) -> Result<&Section, PrmtopError> {
        self.sections.get(name).ok_or_else(|| PrmtopError::Missing {
            origin: self.origin.into(),
            section: name.into(),
        })
    }

    fn malformed(&self, name: &str, reason: impl Into<String>) -> PrmtopError {
        PrmtopError::Malformed {
            origin: self.origin.into(),
            section: name.into(),
            reason: reason.into(),
        }
    }

    /// The fixed-width fields of a section, trimmed, empty trailing fields dropped.
    fn fields(&self, name: &str) -> Result<Vec<String>, PrmtopError> {
        let s = self.section(name)?;
        let mut out = Vec::new();
        for line in &s.lines {
            let chars: Vec<char> = line.chars().collect();
            for chunk in chars.chunks(s.width) {
                let f: String = chunk.iter().collect();
                if !f.trim().is_empty() {
                    out.push(f.trim().to_string());
                }
            }
        }
        Ok(out)
    }

    fn ints(&self, name: &str, expected: usize) -> Result<Vec<i64>, PrmtopError> {
        let v = self
            .fields(name)?
            .iter()
            .map(|f| {
                f.parse::<i64>()
                    .map_err(|_| self.malformed(name, format!("`{f}` is not an integer")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.check_len(name, v.len(), expected)?;
        Ok(v)
    }

    fn reals(&self, name: &str, expected: usize) -> Result<Vec<f64>, PrmtopError> {
        let v = self
            .fields(name)?
            .iter()
            .map(|f| match f.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(self.malformed(name, format!("`{f}` is not a finite number"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.check_len(name, v.len(), expected)?;
        Ok(v)
    }

    fn check_len(&self, name: &str, got: usize, expected: usize) -> Result<(), PrmtopError> {
        if got != expected {
            return Err(self.malformed(
                name,
                format!("expected {expected} values, found {got} (truncated file?)"),
            ));
        }
        Ok(())
    }

    /// Atom index from Amber's coordinate offset 3·i (sign removed).
    fn atom(&self, name: &str, v: i64, n_atoms: usize) -> Result<usize, PrmtopError> {
        let a = v.unsigned_abs() as usize;
        if !a.is_multiple_of(3) || a / 3 >= n_atoms {
            return Err(self.malformed(
                name,
                format!("atom offset {v} is not 3·i for an atom i < {n_atoms}"),
            ));
        }
        Ok(a / 3)
    }

    /// 0-based parameter index from a 1-based entry.
    fn param(&self, name: &str, v: i64, n: usize) -> Result<usize, PrmtopError> {
        if v < 1 || v as usize > n {
            return Err(self.malformed(name, format!("parameter index {v} outside 1..={n}")));
        }
        Ok(v as usize - 1)
    }
}

impl Prmtop {
    /// Parses prmtop text; `origin` (a file name) appears in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PrmtopError> {
        let r = Reader::parse(text, origin)?;
        let pointers = r.fields("POINTERS")?;
        let pointer = |i: usize| -> Result<usize, PrmtopError> {
            pointers
                .get(i)
                .and_then(|p| p.parse::<usize>().ok())
                .ok_or_else(|| r.malformed("POINTERS", format!("entry {i} missing or not a count")))
        };
        let (n_atoms, n_types) = (pointer(0)?, pointer(1)?);
        let (nbonh, mbona, ntheth, mtheta, nphih, mphia) = (
            pointer(2)?,
            pointer(3)?,
            pointer(4)?,
            pointer(5)?,
            pointer(6)?,
            pointer(7)?,
        );
        let (nnb, numbnd, numang, nptra) = (pointer(10)?, pointer(15)?, pointer(16)?, pointer(17)?);

        let names = |s: &str| -> Result<Vec<String>, PrmtopError> {
            let v = r.fields(s)?;
            r.check_len(s, v.len(), n_atoms)?;
            Ok(v)
        };
        let atom_names = names("ATOM_NAME")?;
        let atom_types = names("AMBER_ATOM_TYPE")?;
        let n_residues = pointer(11)?;
        let residue_labels = r.fields("RESIDUE_LABEL")?;
        r.check_len("RESIDUE_LABEL", residue_labels.len(), n_residues)?;
        let starts = r.ints("RESIDUE_POINTER", n_residues)?;
        let mut residue_of = vec![0; n_atoms];
        for (k, &start) in starts.iter().enumerate() {
            let first = r.param("RESIDUE_POINTER", start, n_atoms)?;
            residue_of[first..].iter_mut().for_each(|v| *v = k);
        }
        let charges = r.reals("CHARGE", n_atoms)?;
        // Amber stores charges × 18.2223; no atom carries more than a few elementary charges.
        if let Some(q) = charges.iter().find(|q| q.abs() > 10.0 * 18.2223) {
            return Err(r.malformed(
                "CHARGE",
                format!(
                    "{q} is {:.0} e; an atom's charge must be within ±10 e",
                    q / 18.2223
                ),
            ));
        }
        let masses = r.reals("MASS", n_atoms)?;
        let lj_type = r
            .ints("ATOM_TYPE_INDEX", n_atoms)?
            .iter()
            .map(|&t| r.param("ATOM_TYPE_INDEX", t, n_types))
            .collect::<Result<Vec<_>, _>>()?;
        let nonbonded_parm_index = r.ints("NONBONDED_PARM_INDEX", n_types * n_types)?;
        let n_pairs = n_types * (n_types + 1) / 2;
        let lj_a = r.reals("LENNARD_JONES_ACOEF", n_pairs)?;
        let lj_b = r.reals("LENNARD_JONES_BCOEF", n_pairs)?;

        let bond_k = r.reals("BOND_FORCE_CONSTANT", numbnd)?;
        let bond_r = r.reals("BOND_EQUIL_VALUE", numbnd)?;
        let mut bonds = Vec::new();
        for (sec, n) in [
            ("BONDS_INC_HYDROGEN", nbonh),
            ("BONDS_WITHOUT_HYDROGEN", mbona),
        ] {
            for c in r.ints(sec, 3 * n)?.chunks(3) {
                let p = r.param(sec, c[2], numbnd)?;
                bonds.push(Bond {
                    atoms: [r.atom(sec, c[0], n_atoms)?, r.atom(sec, c[1], n_atoms)?],
                    k: bond_k[p],
                    r0: bond_r[p],
                });
            }
        }
        let angle_k = r.reals("ANGLE_FORCE_CONSTANT", numang)?;
        let angle_t = r.reals("ANGLE_EQUIL_VALUE", numang)?;
        let mut angles = Vec::new();
        for (sec, n) in [
            ("ANGLES_INC_HYDROGEN", ntheth),
            ("ANGLES_WITHOUT_HYDROGEN", mtheta),
        ] {
            for c in r.ints(sec, 4 * n)?.chunks(4) {
                let p = r.param(sec, c[3], numang)?;
                let atoms = [
                    r.atom(sec, c[0], n_atoms)?,
                    r.atom(sec, c[1], n_atoms)?,
                    r.atom(sec, c[2], n_atoms)?,
                ];
                angles.push(Angle {
                    atoms,
                    k: angle_k[p],
                    theta0: angle_t[p],
                });
            }
        }
        let dih_k = r.reals("DIHEDRAL_FORCE_CONSTANT", nptra)?;
        let dih_n = r.reals("DIHEDRAL_PERIODICITY", nptra)?;
        let dih_p = r.reals("DIHEDRAL_PHASE", nptra)?;
        // Per-type 1-4 divisors: written by ParmEd and newer tleap, absent in older files.
        let dih_scee = r.optional_positive_reals("SCEE_SCALE_FACTOR", nptra, DEFAULT_SCEE)?;
        let dih_scnb = r.optional_positive_reals("SCNB_SCALE_FACTOR", nptra, DEFAULT_SCNB)?;
        let mut dihedrals = Vec::new();
        for (sec, n) in [
            ("DIHEDRALS_INC_HYDROGEN", nphih),
            ("DIHEDRALS_WITHOUT_HYDROGEN", mphia),
        ] {
            for c in r.ints(sec, 5 * n)?.chunks(5) {
                let p = r.param(sec, c[4], nptra)?;
                let mut atoms = [0; 4];
                for (a, &v) in atoms.iter_mut().zip(&c[..4]) {
                    *a = r.atom(sec, v, n_atoms)?;
                }
                dihedrals.push(Dihedral {
                    atoms,
                    k: dih_k[p],
                    periodicity: dih_n[p],
                    phase: dih_p[p],
                    skip_14: c[2] < 0,
                    improper: c[3] < 0,
                    scee: dih_scee[p],
                    scnb: dih_scnb[p],
                });
            }
        }
        let counts = r.ints("NUMBER_EXCLUDED_ATOMS", n_atoms)?;
        let list = r.ints("EXCLUDED_ATOMS_LIST", nnb)?;
        let mut exclusions = Vec::with_capacity(n_atoms);
        let mut offset = 0usize;
        for &c in &counts {
            let c = usize::try_from(c)
                .map_err(|_| r.malformed("NUMBER_EXCLUDED_ATOMS", "negative count"))?;
            let part = list.get(offset..offset + c).ok_or_else(|| {
                r.malformed(
                    "EXCLUDED_ATOMS_LIST",
                    "shorter than NUMBER_EXCLUDED_ATOMS says",
                )
            })?;
            // Entries are 1-based; 0 is Amber's placeholder for "no exclusions".
            let mut ex = Vec::new();
            for &e in part {
                if e > 0 {
                    ex.push(r.param("EXCLUDED_ATOMS_LIST", e, n_atoms)?);
                }
            }
            exclusions.push(ex);
            offset += c;
        }
        Ok(Self {
            atom_names,
            residue_labels,
            residue_of,
            atom_types,
            charges,
            masses,
            lj_type,
            n_types,
            nonbonded_parm_index,
            lj_a,
            lj_b,
            bonds,
            angles,
            dihedrals,
            exclusions,
            gb_radii: r.reals("RADII", n_atoms)?,
            gb_screen: r.reals("SCREEN", n_atoms)?,
        })
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.atom_names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::molecule::ALANINE_DIPEPTIDE_PRMTOP as TEXT;

    #[test]
    fn reads_the_alanine_dipeptide_topology() {
        let top = Prmtop::parse(TEXT, "alanine-dipeptide.prmtop").unwrap();
        assert_eq!(top.n_atoms(), 22);
        assert_eq!(top.atom_names[1], "CH3");
        assert_eq!(top.atom_types[8], "CT");
        // POINTERS: 12 + 9 bonds, 25 + 11 angles, 35 + 17 torsion terms; 7 LJ types.
        assert_eq!(
            (
                top.bonds.len(),
                top.angles.len(),
                top.dihedrals.len(),
                top.n_types
            ),
            (21, 36, 52, 7)
        );
        // A neutral molecule: charges (× 18.2223) sum to zero.
        assert!(top.charges.iter().sum::<f64>().abs() < 1e-6);
        assert!((top.masses.iter().sum::<f64>() - 144.176).abs() < 1e-3);
        // Every bond is between distinct atoms, with the N-H bond length of ff96 present.
        assert!(top
            .bonds
            .iter()
            .all(|b| b.atoms[0] != b.atoms[1] && b.k > 0.0));
        assert!(top.bonds.iter().any(|b| (b.r0 - 1.01).abs() < 1e-9));
        // Impropers (negative fourth index) and 1-4 skips exist; the spec's phase quirk 3.141594.
        assert!(top.dihedrals.iter().any(|d| d.improper));
        assert!(top.dihedrals.iter().any(|d| d.skip_14 && !d.improper));
        assert!(top.dihedrals.iter().any(|d| d.phase == 3.141594));
        // 98 excluded pairs (the 99-entry list holds one placeholder 0 for the last atom).
        assert_eq!(top.exclusions.iter().map(Vec::len).sum::<usize>(), 98);
        assert!(top.exclusions[21].is_empty());
        assert_eq!(top.gb_radii[0], 1.2);
        assert_eq!(top.gb_radii.len(), 22);
    }

    #[test]
    fn malformed_and_truncated_files_name_the_section() {
        // Truncate inside the SCREEN section.
        let cut = &TEXT[..TEXT.len() - 60];
        let err = Prmtop::parse(cut, "cut.prmtop").unwrap_err().to_string();
        assert!(
            err.contains("cut.prmtop") && err.contains("SCREEN"),
            "{err}"
        );
        // A missing section.
        let without = TEXT.replace("%FLAG RADII", "%FLAG RADII_RENAMED");
        let err = Prmtop::parse(&without, "x.prmtop").unwrap_err().to_string();
        assert!(err.contains("RADII") && err.contains("missing"), "{err}");
        // A bad number and a bad format line.
        let bad = TEXT.replacen("  1.00800000E+00", "  1.0080000XE+00", 1);
        assert!(Prmtop::parse(&bad, "b.prmtop")
            .unwrap_err()
            .to_string()
            .contains("MASS"));
        let bad = TEXT.replacen("%FORMAT(5E16.8)", "%FORMAT(garbage", 1);
        assert!(Prmtop::parse(&bad, "f.prmtop")
            .unwrap_err()
            .to_string()
            .contains("CHARGE"));
        // Not a prmtop at all.
        assert!(Prmtop::parse("hello", "h.prmtop")
            .unwrap_err()
            .to_string()
            .contains("POINTERS"));
    }
}
