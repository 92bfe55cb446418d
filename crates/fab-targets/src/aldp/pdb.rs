//! Multi-model PDB export of conformations, so samples can be inspected in molecular viewers
//! (PyMOL, VMD, NGLView): one MODEL per conformation, atom and residue names from the prmtop,
//! coordinates converted from nm to Å.

use std::fmt::Write;

use crate::aldp::prmtop::Prmtop;
use crate::aldp::vec3::Vec3;

/// Element symbol guessed from an Amber atom name (its first letter for this molecule's C, H, N, O).
fn element(name: &str) -> &str {
    &name[..name.len().min(1)]
}

/// PDB text with one MODEL per conformation of `frames` (each atoms × 3, nm).
pub fn to_pdb(top: &Prmtop, frames: &[Vec<Vec3>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "REMARK   1 written by fab-rs: {} conformations",
        frames.len()
    );
    for (m, x) in frames.iter().enumerate() {
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
                "ATOM  {:>5} {:<4} {:>3} A{:>4}    {:>8.3}{:>8.3}{:>8.3}  1.00  0.00          {:>2}",
                a + 1,
                padded,
                top.residue_labels[res],
                res + 1,
                10.0 * p[0],
                10.0 * p[1],
                10.0 * p[2],
                element(name)
            );
        }
        let _ = writeln!(out, "ENDMDL");
    }
    out.push_str("END\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aldp::crd::parse_crd;
    use crate::aldp::{ALANINE_DIPEPTIDE_CRD, ALANINE_DIPEPTIDE_PRMTOP};

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
