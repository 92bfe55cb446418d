//! PDB files of conformations: multi-model export, so samples can be inspected in molecular
//! viewers (PyMOL, VMD, NGLView) — one MODEL per conformation, atom and residue names from the
//! prmtop, coordinates converted from nm to Å — and reading the models of any PDB file back, so
//! a structure or a set of conformations can come from a PDB file.

use std::fmt::Write;

use crate::molecule::formats::prmtop::Prmtop;
use crate::molecule::numeric::vec3::Vec3;

/// Element symbol guessed from an Amber atom name (its first letter for this molecule's C, H, N, O).
fn element(name: &str) -> &str {
    &name[..name.len().min(1)]
}

/// PDB text with one MODEL per conformation of `frames` (each atoms × 3, nm).
pub fn to_pdb(top: &Prmtop, frames: &[Vec<Vec3>]) -> String {
    to_pdb_weighted(top, frames, None)
}

/// [`to_pdb`] for importance-weighted conformations: with `log_w` (one per frame) a REMARK line
/// per model gives its log weight and normalised weight, and the B-factor column holds N × the
/// normalised weight (1 = an average sample; capped at 999.99), so viewers can colour by weight.
/// (The REMARK says SAMPLE k, not MODEL k, so a count of MODEL records stays the model count.)
pub fn to_pdb_weighted(top: &Prmtop, frames: &[Vec<Vec3>], log_w: Option<&[f64]>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "REMARK   1 written by fab-rs: {} conformations",
        frames.len()
    );
    let weights = log_w
        .map(|lw| fab_core::weights::normalised_weights(ndarray::ArrayView1::from(lw)).to_vec());
    for (m, x) in frames.iter().enumerate() {
        let mut b_factor = 0.0;
        if let (Some(lw), Some(w)) = (log_w, &weights) {
            let _ = writeln!(
                out,
                "REMARK   2 SAMPLE {} LOG_WEIGHT {:.6} NORMALISED_WEIGHT {:.6e}",
                m + 1,
                lw[m],
                w[m]
            );
            b_factor = (w[m] * frames.len() as f64).min(999.99);
        }
        let _ = writeln!(out, "MODEL     {:>4}", m + 1);
        for (a, p) in x.iter().enumerate() {
            let name = &top.atom_names[a];
            let res = top.residue_of[a];
            // Atom names shorter than 4 characters start in column 14 (PDB convention).
            let padded = if name.len() < 4 {
                format!(" {name:<3}")
            } else {
                name.clone()
            };
            let _ = writeln!(
                out,
                "ATOM  {:>5} {:<4} {:>3} A{:>4}    {:>8.3}{:>8.3}{:>8.3}  1.00{:>6.2}          {:>2}",
                a + 1,
                padded,
                top.residue_labels[res],
                res + 1,
                10.0 * p[0],
                10.0 * p[1],
                10.0 * p[2],
                b_factor,
                element(name)
            );
        }
        let _ = writeln!(out, "ENDMDL");
    }
    out.push_str("END\n");
    out
}

/// A PDB file that cannot be read as conformations of the expected molecule.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct PdbError {
    /// The file (or other source) that was read.
    pub origin: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The conformations in PDB `text` (one per MODEL, or one if the file has no MODEL records), each
/// as atom positions in nm in the file's atom order; `origin` names the file in errors. Every
/// model must have `n_atoms` atoms when given (a structure for a known topology).
///
/// Only the coordinates of ATOM/HETATM records are read (fixed columns 31–54, Å). Written here
/// rather than with `pdbtbx`: its 0.12 parser panics on a malformed ATOM record, and a bad file
/// must be an error naming its line.
pub fn read_pdb(
    text: &str,
    origin: &str,
    n_atoms: Option<usize>,
) -> Result<Vec<Vec<Vec3>>, PdbError> {
    let fail = |reason: String| PdbError {
        origin: origin.into(),
        reason,
    };
    let mut models: Vec<Vec<Vec3>> = Vec::new();
    let mut open = false; // inside a MODEL … ENDMDL block
    for (i, line) in text.lines().enumerate() {
        let record = line.get(..6).unwrap_or(line);
        if record.starts_with("MODEL") {
            models.push(Vec::new());
            open = true;
        } else if record.starts_with("ENDMDL") {
            open = false;
        } else if record == "ATOM  " || record == "HETATM" {
            if !open && models.is_empty() {
                models.push(Vec::new()); // a file without MODEL records: one conformation
                open = true;
            }
            let column = |from: usize, axis: &str| -> Result<f64, PdbError> {
                let field = line.get(from..from + 8).ok_or_else(|| {
                    fail(format!(
                        "line {}: no {axis} coordinate in columns {}–{}",
                        i + 1,
                        from + 1,
                        from + 8
                    ))
                })?;
                match field.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(0.1 * v),
                    _ => Err(fail(format!(
                        "line {}: {axis} coordinate `{field}` is not a number",
                        i + 1
                    ))),
                }
            };
            let p = [column(30, "x")?, column(38, "y")?, column(46, "z")?];
            match models.last_mut() {
                Some(m) if open => m.push(p),
                _ => return Err(fail(format!("line {}: atom record outside a MODEL", i + 1))),
            }
        }
    }
    if models.iter().all(|m| m.is_empty()) {
        return Err(fail("no ATOM or HETATM records".into()));
    }
    if let Some(n) = n_atoms {
        if let Some((k, m)) = models.iter().enumerate().find(|(_, m)| m.len() != n) {
            return Err(fail(format!(
                "model {} has {} atoms, the topology {n}",
                k + 1,
                m.len()
            )));
        }
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::molecule::formats::crd::parse_crd;
    use crate::molecule::{ALANINE_DIPEPTIDE_CRD, ALANINE_DIPEPTIDE_PRMTOP};

    #[test]
    fn written_models_read_back_to_within_the_files_precision() {
        let top = Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "p").unwrap();
        let x = parse_crd(ALANINE_DIPEPTIDE_CRD, "crd").unwrap();
        let moved: Vec<Vec3> = x.iter().map(|p| [p[0] + 0.1, p[1], -p[2]]).collect();
        let text = to_pdb(&top, &[x.clone(), moved.clone()]);
        let models = read_pdb(&text, "s.pdb", Some(22)).unwrap();
        assert_eq!(models.len(), 2);
        for (got, want) in models.iter().zip([&x, &moved]) {
            for (a, b) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((a - b).abs() <= 5.1e-5, "{a} vs {b}");
            }
        }
        // The wrong atom count, no atoms, and an unreadable coordinate are errors naming the file.
        let err = read_pdb(&text, "s.pdb", Some(42)).unwrap_err().to_string();
        assert!(err.contains("s.pdb") && err.contains("22 atoms"), "{err}");
        let err = read_pdb("REMARK nothing\nEND\n", "e.pdb", None).unwrap_err();
        assert!(err.to_string().contains("e.pdb"), "{err}");
        let line = text.lines().nth(2).unwrap();
        let broken = text.replacen(line, &format!("{}  xx.xxx{}", &line[..30], &line[38..]), 1);
        let err = read_pdb(&broken, "b.pdb", Some(22))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.pdb: line 3: x coordinate `  xx.xxx`"),
            "{err}"
        );
        let short = text.replacen(line, &line[..40], 1);
        let err = read_pdb(&short, "b.pdb", Some(22)).unwrap_err().to_string();
        assert!(err.contains("line 3: no y coordinate"), "{err}");
    }

    #[test]
    fn weighted_models_carry_their_weights() {
        let top = Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "p").unwrap();
        let x = parse_crd(ALANINE_DIPEPTIDE_CRD, "crd").unwrap();
        // Weights 1 : 3 → normalised 0.25, 0.75; B-factors 0.5 and 1.5.
        let text = to_pdb_weighted(&top, &[x.clone(), x], Some(&[0.0, 3f64.ln()]));
        assert!(text.contains("REMARK   2 SAMPLE 2 LOG_WEIGHT 1.098612 NORMALISED_WEIGHT 7.5"));
        let b: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("ATOM      1 "))
            .map(|l| l[60..66].trim().parse().unwrap())
            .collect();
        assert_eq!(b, [0.5, 1.5]);
        // Still a PDB file the reader takes.
        assert_eq!(read_pdb(&text, "w.pdb", Some(22)).unwrap().len(), 2);
    }

    #[test]
    fn pdb_has_fixed_columns_and_angstrom_coordinates() {
        let top = Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "p").unwrap();
        assert_eq!(top.residue_labels, ["ACE", "ALA", "NME"]);
        assert_eq!(
            (top.residue_of[0], top.residue_of[6], top.residue_of[16]),
            (0, 1, 2)
        );
        let x = parse_crd(ALANINE_DIPEPTIDE_CRD, "crd").unwrap();
        let text = to_pdb(&top, &[x.clone(), x.clone()]);
        assert_eq!(text.matches("MODEL").count(), 2);
        let line = text.lines().find(|l| l.starts_with("ATOM      9")).unwrap();
        // Columns (1-based): name 13–16, residue 18–20, x 31–38.
        assert_eq!(&line[12..16], " CA ");
        assert_eq!(&line[17..20], "ALA");
        let xa: f64 = line[30..38].trim().parse().unwrap();
        assert!((xa - 10.0 * x[8][0]).abs() < 1e-3);
    }
}
