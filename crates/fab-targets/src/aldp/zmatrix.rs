//! The Z-matrix of FAB's alanine-dipeptide internal coordinates (boltzgen's `z_matrix`, spec
//! aldp-target.md §3): which atom is placed from which three reference atoms, and in what order.
//!
//! Row `r` places `atom` at bond length |atom − refs[0]|, angle refs[1]–refs[0]–atom and dihedral
//! over refs[2]–refs[1]–refs[0]–atom. Three anchor atoms (CA, N, C) fix the frame and carry the 3
//! remaining coordinates (two bond lengths and the angle between them).

/// One Z-matrix row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZRow {
    /// The atom this row places.
    pub atom: usize,
    /// Bond, angle and dihedral reference atoms.
    pub refs: [usize; 3],
    /// Whether the dihedral is a circular coordinate of the flow (std 1, periodic).
    pub circular: bool,
}

/// A Z-matrix with its anchors and the order in which rows can be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZMatrix {
    /// Rows in the order of the coordinate vector (z[3 + 3r ..] belongs to row r).
    pub rows: Vec<ZRow>,
    /// The anchor atoms: origin (CA), the atom on +x (N), the atom in the xy-plane (C).
    pub anchors: [usize; 3],
    /// Row indices in an order where every row's references are already placed.
    pub build_order: Vec<usize>,
}

impl ZMatrix {
    /// Checks `rows` and `anchors` and derives the build order by boltzgen's rule: repeated passes
    /// over the rows in order, taking each row whose references are already placed (including rows
    /// placed earlier in the same pass). Panics on a Z-matrix that
    /// cannot be built; only called with the constant below.
    fn new(rows: Vec<ZRow>, anchors: [usize; 3]) -> Self {
        let n_atoms = rows.len() + 3;
        let mut placed = vec![false; n_atoms];
        anchors.iter().for_each(|&a| placed[a] = true);
        let mut build_order = Vec::with_capacity(rows.len());
        while build_order.len() < rows.len() {
            let before = build_order.len();
            for (r, row) in rows.iter().enumerate() {
                if !placed[row.atom] && row.refs.iter().all(|&a| placed[a]) {
                    placed[row.atom] = true;
                    build_order.push(r);
                }
            }
            assert!(
                build_order.len() > before,
                "Z-matrix has rows that can never be built"
            );
        }
        Self {
            rows,
            anchors,
            build_order,
        }
    }

    /// FAB's Z-matrix for alanine dipeptide (prmtop atom order), anchors CA (8), N (6), C (14), with
    /// the 12 circular dihedrals of `make_aldp_model` (z indices 5, 8, 17, 20, 23, 26, 29, 32, 44,
    /// 47, 50, 53).
    pub fn alanine_dipeptide() -> Self {
        const ROWS: [(usize, [usize; 3], bool); 19] = [
            (0, [1, 4, 6], true),
            (1, [4, 6, 8], true),
            (2, [1, 4, 0], false),
            (3, [1, 4, 0], false),
            (4, [6, 8, 14], true),
            (5, [4, 6, 8], true),
            (7, [6, 8, 4], true),
            (9, [8, 6, 4], true),
            (10, [8, 6, 4], true),
            (11, [10, 8, 6], true),
            (12, [10, 8, 11], false),
            (13, [10, 8, 11], false),
            (15, [14, 8, 16], false),
            (16, [14, 8, 6], true),
            (17, [16, 14, 15], true),
            (18, [16, 14, 8], true),
            (19, [18, 16, 14], true),
            (20, [18, 16, 19], false),
            (21, [18, 16, 19], false),
        ];
        let rows = ROWS
            .iter()
            .map(|&(atom, refs, circular)| ZRow {
                atom,
                refs,
                circular,
            })
            .collect();
        Self::new(rows, [8, 6, 14])
    }

    /// Number of atoms (rows + 3 anchors).
    pub fn n_atoms(&self) -> usize {
        self.rows.len() + 3
    }

    /// Dimension of the internal coordinates: 3 per row plus 3 for the anchors (3N − 6).
    pub fn dim(&self) -> usize {
        3 * self.rows.len() + 3
    }

    /// Indices of the circular coordinates in the z vector.
    pub fn circular_indices(&self) -> Vec<usize> {
        (0..self.rows.len())
            .filter(|&r| self.rows[r].circular)
            .map(|r| 5 + 3 * r)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alanine_dipeptide_build_order_and_circular_indices_match_boltzgen() {
        let zm = ZMatrix::alanine_dipeptide();
        let order: Vec<usize> = zm.build_order.iter().map(|&r| zm.rows[r].atom).collect();
        assert_eq!(
            order,
            [4, 5, 7, 9, 10, 11, 12, 13, 16, 18, 19, 20, 21, 1, 15, 17, 0, 2, 3]
        );
        assert_eq!(
            zm.circular_indices(),
            [5, 8, 17, 20, 23, 26, 29, 32, 44, 47, 50, 53]
        );
        assert_eq!(zm.dim(), 60);
    }
}
