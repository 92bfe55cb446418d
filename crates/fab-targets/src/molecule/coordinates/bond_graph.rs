//! The bond graph of a molecule read from its prmtop, and what the internal coordinates and the
//! chirality filter derive from it: heavy atoms, the backbone (the longest chain of heavy atoms),
//! stereocentres (atoms with four pairwise different substituents) and the Ramachandran
//! dihedrals φ/ψ of every residue that has N, CA and C.
//!
//! Everything here is deterministic in the atom order of the topology: ties are broken by the
//! smaller atom index, so the same prmtop always gives the same Z-matrix.

use std::collections::{BTreeMap, VecDeque};

use crate::molecule::formats::prmtop::Prmtop;
use crate::molecule::numeric::vec3::{cross, dot, sub, Vec3};

/// A topology from which no internal coordinates can be built.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum TopologyError {
    /// The bonds do not connect every atom to every other.
    #[error("the bonds leave atom {atom} ({name}) unconnected to atom 0; internal coordinates need one molecule")]
    Disconnected {
        /// Index of the atom (0-based, prmtop order).
        atom: usize,
        /// Its prmtop name.
        name: String,
    },
    /// Fewer than three heavy atoms in a chain: no frame for the internal coordinates.
    #[error("the longest chain of heavy atoms has {0} atoms; at least 3 are needed")]
    ShortBackbone(usize),
}

/// Bonds as adjacency lists, with each atom's kind.
#[derive(Debug, Clone, PartialEq)]
pub struct BondGraph {
    /// Bonded neighbours of each atom, ascending.
    neighbours: Vec<Vec<usize>>,
    /// Whether each atom is heavy (not hydrogen, judged by mass > 2 Da).
    heavy: Vec<bool>,
    /// Element-like label of each atom (mass rounded to Da) for telling substituents apart.
    element: Vec<u32>,
}

/// A tetrahedral stereocentre: the centre and its four neighbours in a canonical order (by their
/// substituents, heaviest first), so the sign of [`Stereocentre::signed_volume`] tells the two
/// mirror forms apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stereocentre {
    /// The centre atom.
    pub centre: usize,
    /// Its neighbours by descending canonical rank of their substituent (the first three enter the
    /// volume).
    pub neighbours: [usize; 4],
}

impl Stereocentre {
    /// (n₀ − c)·((n₁ − c) × (n₂ − c)): positive for one mirror form, negative for the other.
    pub fn signed_volume(&self, x: &[Vec3]) -> f64 {
        let c = x[self.centre];
        let [a, b, d, _] = self.neighbours.map(|n| sub(x[n], c));
        dot(a, cross(b, d))
    }
}

/// The backbone dihedrals of one residue (atom indices, IUPAC sign as [`crate::molecule::numeric::vec3::torsion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidueDihedrals {
    /// Residue index in the topology.
    pub residue: usize,
    /// φ = C(i−1), N, CA, C.
    pub phi: [usize; 4],
    /// ψ = N, CA, C, N(i+1).
    pub psi: [usize; 4],
}

impl BondGraph {
    /// The graph of a prmtop's bonds; an error if the molecule is not connected.
    pub fn from_prmtop(top: &Prmtop) -> Result<Self, TopologyError> {
        let n = top.n_atoms();
        let mut neighbours = vec![Vec::new(); n];
        for b in &top.bonds {
            let [i, j] = b.atoms;
            neighbours[i].push(j);
            neighbours[j].push(i);
        }
        for list in &mut neighbours {
            list.sort_unstable();
            list.dedup();
        }
        let graph = Self {
            neighbours,
            heavy: top.masses.iter().map(|&m| m > 2.0).collect(),
            element: top.masses.iter().map(|&m| m.round() as u32).collect(),
        };
        let reached = graph.distances_from(0);
        if let Some(atom) = reached.iter().position(|d| d.is_none()) {
            return Err(TopologyError::Disconnected {
                atom,
                name: top.atom_names[atom].clone(),
            });
        }
        Ok(graph)
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.neighbours.len()
    }

    /// Bonded neighbours of `atom`, ascending.
    pub fn neighbours(&self, atom: usize) -> &[usize] {
        &self.neighbours[atom]
    }

    /// Whether `atom` is heavy (not hydrogen).
    pub fn is_heavy(&self, atom: usize) -> bool {
        self.heavy[atom]
    }

    /// Bond-count distances from `start` over all atoms (`None` where unreachable).
    fn distances_from(&self, start: usize) -> Vec<Option<usize>> {
        self.bfs(start, |_| true).0
    }

    /// Breadth-first search from `start` through atoms where `keep` holds: distances and the
    /// predecessor of each reached atom (neighbours visited in ascending order).
    fn bfs(
        &self,
        start: usize,
        keep: impl Fn(usize) -> bool,
    ) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
        let n = self.n_atoms();
        let (mut dist, mut prev) = (vec![None; n], vec![None; n]);
        dist[start] = Some(0);
        let mut queue = VecDeque::from([start]);
        while let Some(a) = queue.pop_front() {
            let d = dist[a].unwrap_or(0);
            for &b in &self.neighbours[a] {
                if dist[b].is_none() && keep(b) {
                    dist[b] = Some(d + 1);
                    prev[b] = Some(a);
                    queue.push_back(b);
                }
            }
        }
        (dist, prev)
    }

    /// The farthest atom from `start` among heavy atoms (smallest index on ties), with the
    /// predecessors of the search.
    fn farthest_heavy(&self, start: usize) -> (usize, Vec<Option<usize>>) {
        let (dist, prev) = self.bfs(start, |a| self.heavy[a]);
        let far = (0..self.n_atoms())
            .filter(|&a| dist[a].is_some())
            .max_by_key(|&a| (dist[a], std::cmp::Reverse(a)))
            .unwrap_or(start);
        (far, prev)
    }

    /// The backbone: the longest shortest path through heavy atoms (found by two breadth-first
    /// searches, exact for the tree-shaped graphs of acyclic peptides), starting at its end with
    /// the smaller atom index. For a capped peptide it runs from the ACE methyl carbon through
    /// every N–CA–C to the NME methyl carbon.
    pub fn backbone(&self) -> Vec<usize> {
        let Some(first) = (0..self.n_atoms()).find(|&a| self.heavy[a]) else {
            return Vec::new();
        };
        let (one_end, _) = self.farthest_heavy(first);
        let (other_end, prev) = self.farthest_heavy(one_end);
        let mut path = vec![other_end];
        while let Some(p) = prev[*path.last().unwrap_or(&one_end)] {
            path.push(p);
        }
        if path.first() > path.last() {
            path.reverse();
        }
        path
    }

    /// Canonical rank of every atom: element refined by the sorted ranks of its neighbours until
    /// the partition is stable (Morgan's algorithm). Symmetry-equivalent atoms share a rank.
    pub fn canonical_ranks(&self) -> Vec<usize> {
        let n = self.n_atoms();
        let mut rank: Vec<usize> = relabel(
            &self
                .element
                .iter()
                .map(|&e| vec![e as usize])
                .collect::<Vec<_>>(),
        );
        for _ in 0..n {
            let keys: Vec<Vec<usize>> = (0..n)
                .map(|a| {
                    let mut k: Vec<usize> = self.neighbours[a].iter().map(|&b| rank[b]).collect();
                    k.sort_unstable();
                    k.insert(0, rank[a]);
                    k
                })
                .collect();
            let next = relabel(&keys);
            let stable = next.iter().max() == rank.iter().max();
            rank = next;
            if stable {
                break;
            }
        }
        rank
    }

    /// Every atom with four neighbours whose substituents all differ (by canonical rank): the
    /// stereocentres (every Cα of a peptide except glycine's).
    pub fn stereocentres(&self) -> Vec<Stereocentre> {
        let rank = self.canonical_ranks();
        (0..self.n_atoms())
            .filter_map(|c| {
                let nb = &self.neighbours[c];
                let mut four: [usize; 4] = nb.as_slice().try_into().ok()?;
                // Descending rank puts heavy substituents first (the rank starts from the mass),
                // so the volume uses the three heaviest: N, C and Cβ for a Cα, as the usual test;
                // a hydrogen pushed through the plane by noise does not flip the verdict.
                four.sort_by_key(|&a| (std::cmp::Reverse(rank[a]), a));
                let distinct = four.windows(2).all(|w| rank[w[0]] != rank[w[1]]);
                distinct.then_some(Stereocentre {
                    centre: c,
                    neighbours: four,
                })
            })
            .collect()
    }
}

/// Dense ranks 0, 1, … of the sorted distinct keys.
fn relabel(keys: &[Vec<usize>]) -> Vec<usize> {
    let mut order: BTreeMap<&Vec<usize>, usize> = keys.iter().map(|k| (k, 0)).collect();
    for (i, v) in order.values_mut().enumerate() {
        *v = i;
    }
    keys.iter().map(|k| order[k]).collect()
}

/// φ/ψ of every residue with atoms named N, CA and C whose N is bonded to the previous residue's C
/// and whose C is bonded to the next residue's N (the ALA residues of a capped peptide).
pub fn backbone_dihedrals(top: &Prmtop, graph: &BondGraph) -> Vec<ResidueDihedrals> {
    let n_res = top.residue_labels.len();
    let find = |res: usize, name: &str| {
        (0..top.n_atoms()).find(|&a| top.residue_of[a] == res && top.atom_names[a] == name)
    };
    let bonded = |a: usize, b: usize| graph.neighbours(a).contains(&b);
    (1..n_res.saturating_sub(1))
        .filter_map(|r| {
            let (n, ca, c) = (find(r, "N")?, find(r, "CA")?, find(r, "C")?);
            let c_prev = graph
                .neighbours(n)
                .iter()
                .copied()
                .find(|&a| top.residue_of[a] == r - 1)?;
            let n_next = graph
                .neighbours(c)
                .iter()
                .copied()
                .find(|&a| top.residue_of[a] == r + 1)?;
            (bonded(n, ca) && bonded(ca, c)).then_some(ResidueDihedrals {
                residue: r,
                phi: [c_prev, n, ca, c],
                psi: [n, ca, c, n_next],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::molecule::{ALANINE_DIPEPTIDE_PRMTOP, ALANINE_TETRAPEPTIDE_PRMTOP};

    fn graph(text: &str) -> (Prmtop, BondGraph) {
        let top = Prmtop::parse(text, "t.prmtop").unwrap();
        let g = BondGraph::from_prmtop(&top).unwrap();
        (top, g)
    }

    #[test]
    fn backbones_run_through_every_n_ca_c() {
        let (_, g) = graph(ALANINE_DIPEPTIDE_PRMTOP);
        assert_eq!(g.backbone(), [1, 4, 6, 8, 14, 16, 18]);
        let (_, g) = graph(ALANINE_TETRAPEPTIDE_PRMTOP);
        assert_eq!(
            g.backbone(),
            [1, 4, 6, 8, 14, 16, 18, 24, 26, 28, 34, 36, 38]
        );
    }

    #[test]
    fn the_stereocentres_are_the_alpha_carbons() {
        let (top, g) = graph(ALANINE_DIPEPTIDE_PRMTOP);
        let centres: Vec<usize> = g.stereocentres().iter().map(|s| s.centre).collect();
        assert_eq!(centres, [8]);
        assert_eq!(top.atom_names[8], "CA");
        let (_, g) = graph(ALANINE_TETRAPEPTIDE_PRMTOP);
        let centres: Vec<usize> = g.stereocentres().iter().map(|s| s.centre).collect();
        assert_eq!(centres, [8, 18, 28]);
    }

    #[test]
    fn phi_psi_atoms_match_the_data_files() {
        let (top, g) = graph(ALANINE_DIPEPTIDE_PRMTOP);
        let d = backbone_dihedrals(&top, &g);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].phi, d[0].psi),
            (
                crate::molecule::coordinates::ramachandran::PHI_ATOMS,
                crate::molecule::coordinates::ramachandran::PSI_ATOMS
            )
        );
        // The tetrapeptide README's table.
        let (top, g) = graph(ALANINE_TETRAPEPTIDE_PRMTOP);
        let d = backbone_dihedrals(&top, &g);
        let phi: Vec<[usize; 4]> = d.iter().map(|r| r.phi).collect();
        let psi: Vec<[usize; 4]> = d.iter().map(|r| r.psi).collect();
        assert_eq!(phi, [[4, 6, 8, 14], [14, 16, 18, 24], [24, 26, 28, 34]]);
        assert_eq!(psi, [[6, 8, 14, 16], [16, 18, 24, 26], [26, 28, 34, 36]]);
    }

    #[test]
    fn a_disconnected_topology_is_an_error_naming_the_atom() {
        let mut top = Prmtop::parse(ALANINE_DIPEPTIDE_PRMTOP, "t.prmtop").unwrap();
        top.bonds.retain(|b| !b.atoms.contains(&21));
        let err = BondGraph::from_prmtop(&top).unwrap_err();
        assert!(
            matches!(err, TopologyError::Disconnected { atom: 21, .. }),
            "{err}"
        );
    }
}
