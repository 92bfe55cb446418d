//! Z-matrices: which atom is placed from which three reference atoms, and in what order. FAB's
//! hand-written alanine-dipeptide table (boltzgen's `z_matrix`, spec aldp-target.md §3) and one
//! derived from the bond graph of any molecule.
//!
//! Row `r` places `atom` at bond length |atom − refs\[0\]|, angle refs\[1\]–refs\[0\]–atom and dihedral
//! over refs\[2\]–refs\[1\]–refs\[0\]–atom. Three anchor atoms (CA, N, C) fix the frame and carry the 3
//! remaining coordinates (two bond lengths and the angle between them).

use crate::molecule::coordinates::bond_graph::{BondGraph, TopologyError};

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

    /// A Z-matrix derived from the bond graph of any molecule, deterministically:
    ///
    /// - anchors: the middle atom of the backbone ([`BondGraph::backbone`]) at the origin, the
    ///   backbone atom before it on +x, the one after it in the xy-plane (CA, N, C of the central
    ///   residue of a peptide);
    /// - heavy atoms first, breadth-first from the anchors (backbone neighbours before side
    ///   chains, then by atom index), then every hydrogen after all heavy atoms, grouped by its
    ///   heavy atom in that order;
    /// - an atom `a` is placed from its parent `p` (the placed atom it is bonded to) and `p`'s own
    ///   parent `g`; the dihedral's third reference is the earliest placed other neighbour of `p`
    ///   if there is one (an improper dihedral about p–g, fixed by `p`'s local geometry up to
    ///   the mirror image: not circular), else the earliest placed neighbour of `g` other than `p`
    ///   (a proper torsion about the bond p–g, free to rotate: circular).
    ///
    /// So only rotations about bonds are circular; atoms that turn with a rotor (methyl H, Cβ and
    /// Hα with φ, amide O and H with ψ/ω) are measured from a sibling, which is what explicit
    /// relative dihedrals do for the hand-written alanine table, and the configuration of each
    /// stereocentre sits in one improper dihedral.
    pub fn from_bond_graph(graph: &BondGraph) -> Result<Self, TopologyError> {
        let backbone = graph.backbone();
        if backbone.len() < 3 {
            return Err(TopologyError::ShortBackbone(backbone.len()));
        }
        let mid = backbone.len() / 2;
        let anchors = [backbone[mid], backbone[mid - 1], backbone[mid + 1]];
        let on_backbone = {
            let mut v = vec![false; graph.n_atoms()];
            backbone.iter().for_each(|&a| v[a] = true);
            v
        };
        let n = graph.n_atoms();
        // Placement rank of each placed atom and the parent it was placed from.
        let mut rank: Vec<Option<usize>> = vec![None; n];
        let mut parent: Vec<usize> = vec![0; n];
        let [origin, plus_x, plane] = anchors;
        for (k, &a) in anchors.iter().enumerate() {
            rank[a] = Some(k);
        }
        parent[origin] = plus_x;
        parent[plus_x] = origin;
        parent[plane] = origin;
        let mut order: Vec<usize> = anchors.to_vec();
        // Heavy atoms breadth-first, then hydrogens by their heavy atom's order.
        for heavy_pass in [true, false] {
            let mut i = 0;
            while i < order.len() {
                let p = order[i];
                i += 1;
                let mut children: Vec<usize> = graph
                    .neighbours(p)
                    .iter()
                    .copied()
                    .filter(|&c| rank[c].is_none() && graph.is_heavy(c) == heavy_pass)
                    .collect();
                children.sort_by_key(|&c| (!on_backbone[c], c));
                for c in children {
                    rank[c] = Some(order.len());
                    parent[c] = p;
                    order.push(c);
                }
            }
        }
        let earliest = |candidates: &mut dyn Iterator<Item = usize>| {
            candidates
                .filter_map(|c| rank[c].map(|r| (r, c)))
                .min()
                .map(|(_, c)| c)
        };
        let rows = order[3..]
            .iter()
            .map(|&a| {
                let r_a = rank[a].unwrap_or(usize::MAX);
                let (p, g) = (parent[a], parent[parent[a]]);
                let placed_before = |c: &usize| rank[*c].is_some_and(|r| r < r_a);
                let sibling = earliest(
                    &mut graph
                        .neighbours(p)
                        .iter()
                        .copied()
                        .filter(|&c| c != g && c != a)
                        .filter(placed_before),
                );
                let (third, circular) = match sibling {
                    Some(s) => (s, false),
                    None => {
                        let across = earliest(
                            &mut graph
                                .neighbours(g)
                                .iter()
                                .copied()
                                .filter(|&c| c != p)
                                .filter(placed_before),
                        );
                        // The origin's other anchor always qualifies, so this is never the
                        // fallback in a connected molecule with a 3-atom backbone.
                        (
                            across.unwrap_or(if g == origin { plane } else { origin }),
                            true,
                        )
                    }
                };
                ZRow {
                    atom: a,
                    refs: [p, g, third],
                    circular,
                }
            })
            .collect();
        Ok(Self::new(rows, anchors))
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

    /// Pairs (j, i) of circular dihedrals (z indices) that turn about the same bond, for a flow
    /// to model x_j relative to x_i (`relative_angles`): i is the first circular proper torsion
    /// about that bond in z order, j each later one.
    ///
    /// Why they turn together: the row placing `a` from refs [b, c, d] measures the torsion
    /// d–c–b–a about the bond b–c. Two proper torsions about the same bond differ by the
    /// angles between bonded neighbours of b and of c seen along that bond, which the local
    /// geometry (bond angles, a planar amide, a tetrahedral centre) holds near constant, so their
    /// difference is a near-constant while each one sweeps the whole circle with the rotor.
    /// Rows whose chain d–c–b–a is not bonded (impropers) are skipped: they are already
    /// relative to a sibling. With `heavy_only`, only pairs whose j places a heavy atom.
    pub fn shared_axis_dihedrals(
        &self,
        graph: &BondGraph,
        heavy_only: bool,
    ) -> Vec<(usize, usize)> {
        let bonded = |p: usize, q: usize| graph.neighbours(p).contains(&q);
        let mut first_about: Vec<((usize, usize), usize)> = Vec::new();
        let mut pairs = Vec::new();
        for (r, row) in self.rows.iter().enumerate() {
            let [b, c, d] = row.refs;
            if !(row.circular && bonded(row.atom, b) && bonded(b, c) && bonded(c, d)) {
                continue;
            }
            let axis = (b.min(c), b.max(c));
            let z = 5 + 3 * r;
            match first_about.iter().find(|(a, _)| *a == axis) {
                Some(&(_, i)) if !heavy_only || graph.is_heavy(row.atom) => pairs.push((z, i)),
                Some(_) => {}
                None => first_about.push((axis, z)),
            }
        }
        pairs
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

    /// The rows of a Z-matrix as (atom, refs, circular), sorted by atom.
    fn table(zm: &ZMatrix) -> Vec<(usize, [usize; 3], bool)> {
        let mut t: Vec<_> = zm
            .rows
            .iter()
            .map(|r| (r.atom, r.refs, r.circular))
            .collect();
        t.sort();
        t
    }

    /// The derived Z-matrix of alanine dipeptide: the hand-written table's anchors and proper
    /// torsions; it differs only where the table measures an atom that turns with a rotor by a
    /// proper torsion (O of ACE, H of N, Hα, Cβ, H of NME), which it measures from a sibling.
    #[test]
    fn the_derived_alanine_dipeptide_matrix_differs_from_boltzgen_only_at_locked_atoms() {
        use crate::molecule::{Prmtop, ALANINE_DIPEPTIDE_PRMTOP};
        let top = Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "t.prmtop").unwrap();
        let derived = ZMatrix::from_bond_graph(&BondGraph::from_prmtop(&top).unwrap()).unwrap();
        let boltzgen = ZMatrix::alanine_dipeptide();
        assert_eq!(derived.anchors, boltzgen.anchors);
        let differing: Vec<_> = table(&derived)
            .into_iter()
            .zip(table(&boltzgen))
            .filter(|(d, t)| d != t)
            .collect();
        assert_eq!(
            differing,
            [
                ((5, [4, 6, 1], false), (5, [4, 6, 8], true)),
                ((7, [6, 8, 4], false), (7, [6, 8, 4], true)),
                ((9, [8, 6, 14], false), (9, [8, 6, 4], true)),
                ((10, [8, 6, 14], false), (10, [8, 6, 4], true)),
                ((17, [16, 14, 18], false), (17, [16, 14, 15], true)),
            ]
        );
    }

    #[test]
    fn the_tetrapeptide_matrix_is_anchored_at_the_middle_residue_and_builds() {
        use crate::molecule::{Prmtop, ALANINE_TETRAPEPTIDE_PRMTOP};
        let top = Prmtop::parse(ALANINE_TETRAPEPTIDE_PRMTOP, "t.prmtop").unwrap();
        let zm = ZMatrix::from_bond_graph(&BondGraph::from_prmtop(&top).unwrap()).unwrap();
        // CA, N, C of the second ALA.
        assert_eq!(zm.anchors, [18, 16, 24]);
        assert_eq!(zm.dim(), 3 * 42 - 6);
        assert_eq!(zm.build_order.len(), 39);
        // Every reference is bonded in a chain: atom–refs[0] and refs[0]–refs[1] are bonds.
        let graph = BondGraph::from_prmtop(&top).unwrap();
        for row in &zm.rows {
            assert!(graph.neighbours(row.atom).contains(&row.refs[0]), "{row:?}");
            assert!(
                graph.neighbours(row.refs[0]).contains(&row.refs[1]),
                "{row:?}"
            );
        }
        // Circular: the rotors of the chain (φ, ψ, ω of each residue and the 5 methyl groups).
        assert_eq!(zm.circular_indices().len(), 6 + 4 + 5);
    }

    #[test]
    fn shared_axis_dihedrals_of_the_alanine_table_pair_the_rotors_siblings() {
        // FAB's table: HA (z 26) and CB (z 29) turn with φ (z 17) about N–CA; the ACE carbonyl O
        // (z 20) with the ACE methyl C (z 8) about C–N; the NME methyl C (z 50) with the NME H
        // (z 47) about C–N. The H on N (z 23) is an improper (C–CA not bonded): skipped.
        let peptide = crate::molecule::Peptide::alanine_dipeptide();
        let zm = ZMatrix::alanine_dipeptide();
        assert_eq!(
            zm.shared_axis_dihedrals(&peptide.graph, false),
            [(20, 8), (26, 17), (29, 17), (50, 47)]
        );
        assert_eq!(
            zm.shared_axis_dihedrals(&peptide.graph, true),
            [(20, 8), (29, 17), (50, 47)]
        );
        // The bond-graph Z-matrix already measures siblings from each other (impropers): no
        // two circular torsions share a bond.
        let derived = ZMatrix::from_bond_graph(&peptide.graph).unwrap();
        assert!(derived
            .shared_axis_dihedrals(&peptide.graph, false)
            .is_empty());
    }
}
