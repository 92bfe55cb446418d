//! FAB's chirality check for alanine dipeptide (spec aldp-target.md §4): the L and D enantiomers map
//! to different internal coordinates, and the flow can put mass on D-alanine, which has the same
//! energy but is a different molecule. The check reads two dihedrals about N–CA, both measured from
//! C(ACE): C (z\[17\]) and HA (z\[26\]). Their difference is ≈ 0 for L and ≈ ±2.1 rad for D.
//! [`StereoFilter`] is the same check for any molecule: the handedness of every stereocentre of
//! the bond graph against a reference structure, on Cartesian coordinates.

use std::f64::consts::PI;

use ndarray::{ArrayView1, ArrayView2};

use crate::molecule::coordinates::bond_graph::{BondGraph, Stereocentre};
use crate::molecule::coordinates::internal::InternalCoordinates;
use crate::molecule::numeric::vec3::Vec3;

/// The L-form test on normalised internal coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiralityFilter {
    /// The two z coordinates compared (both circular, std 1, so differences are radians).
    pub coords: (usize, usize),
    /// Difference of the L reference structure.
    pub mean_diff: f64,
    /// L iff |difference − mean_diff| < threshold.
    pub threshold: f64,
    /// Training batches are filtered only if more than this fraction is L (else used unfiltered).
    pub min_l_fraction: f64,
}

impl Default for ChiralityFilter {
    /// fab-torch's values: z\[17\] − z\[26\], mean −0.043, threshold 0.8 rad, filter if > 10 % are L.
    fn default() -> Self {
        Self {
            coords: (17, 26),
            mean_diff: -0.043,
            threshold: 0.8,
            min_l_fraction: 0.1,
        }
    }
}

impl ChiralityFilter {
    /// The wrapped difference z\[a\] − z\[b\]: whichever of d, d + 2π, d − 2π is smallest in magnitude.
    pub fn difference(&self, z: ArrayView1<f64>) -> f64 {
        let d = z[self.coords.0] - z[self.coords.1];
        [d, d + 2.0 * PI, d - 2.0 * PI]
            .into_iter()
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(d)
    }

    /// Whether `z` is the L enantiomer (false for non-finite input).
    pub fn is_l(&self, z: ArrayView1<f64>) -> bool {
        (self.difference(z) - self.mean_diff).abs() < self.threshold
    }

    /// The L test for every row of a batch.
    pub fn mask(&self, z: ArrayView2<f64>) -> Vec<bool> {
        z.rows().into_iter().map(|r| self.is_l(r)).collect()
    }

    /// FAB's training rule: the rows to keep (only the L ones) if more than `min_l_fraction` of the
    /// batch is L; `None` (keep everything) otherwise, so training cannot stall on an all-D batch.
    pub fn training_mask(&self, z: ArrayView2<f64>) -> Option<Vec<bool>> {
        keep_if_enough(self.mask(z), self.min_l_fraction)
    }
}

/// FAB's rule for filtering a training batch: `mask` if more than `min_fraction` of its rows pass,
/// else `None` (keep everything).
fn keep_if_enough(mask: Vec<bool>, min_fraction: f64) -> Option<Vec<bool>> {
    let n = mask.iter().filter(|&&m| m).count();
    (n as f64 > min_fraction * mask.len() as f64).then_some(mask)
}

/// The mirror-image test a target uses: FAB's two-dihedral test of alanine dipeptide, or the
/// stereocentres of any molecule.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorFilter {
    /// [`ChiralityFilter`] on two z coordinates (alanine dipeptide's table Z-matrix).
    Dihedrals(ChiralityFilter),
    /// [`StereoFilter`] on the conformations rebuilt from z.
    Stereocentres(StereoFilter),
}

impl MirrorFilter {
    /// Whether each row of z has the wanted handedness.
    pub fn mask(&self, transform: &InternalCoordinates, z: ArrayView2<f64>) -> Vec<bool> {
        match self {
            Self::Dihedrals(f) => f.mask(z),
            Self::Stereocentres(f) => f.mask_internal(transform, z),
        }
    }

    /// FAB's training rule ([`ChiralityFilter::training_mask`]) with this test; the
    /// stereocentre test uses the same 10 % threshold.
    pub fn training_mask(
        &self,
        transform: &InternalCoordinates,
        z: ArrayView2<f64>,
    ) -> Option<Vec<bool>> {
        let min = match self {
            Self::Dihedrals(f) => f.min_l_fraction,
            Self::Stereocentres(_) => ChiralityFilter::default().min_l_fraction,
        };
        keep_if_enough(self.mask(transform, z), min)
    }
}

/// The mirror-image check for any molecule: every stereocentre found in the bond graph must have
/// the handedness it has in a reference structure (for a peptide built from L amino acids: all
/// L). Works on Cartesian coordinates, so it needs no knowledge of the Z-matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct StereoFilter {
    centres: Vec<Stereocentre>,
    /// Sign of each centre's signed volume in the reference structure.
    reference_positive: Vec<bool>,
}

impl StereoFilter {
    /// The stereocentres of `graph` with the handedness they have in `reference` (atoms × 3).
    pub fn from_reference(graph: &BondGraph, reference: &[Vec3]) -> Self {
        let centres = graph.stereocentres();
        let reference_positive = centres
            .iter()
            .map(|c| c.signed_volume(reference) > 0.0)
            .collect();
        Self {
            centres,
            reference_positive,
        }
    }

    /// The stereocentres checked.
    pub fn centres(&self) -> &[Stereocentre] {
        &self.centres
    }

    /// Per stereocentre: whether `x` has the reference handedness there (false if not finite).
    pub fn matches(&self, x: &[Vec3]) -> Vec<bool> {
        self.centres
            .iter()
            .zip(&self.reference_positive)
            .map(|(c, &positive)| {
                let v = c.signed_volume(x);
                v.is_finite() && v != 0.0 && (v > 0.0) == positive
            })
            .collect()
    }

    /// Whether every stereocentre of `x` has the reference handedness.
    pub fn is_reference_form(&self, x: &[Vec3]) -> bool {
        self.matches(x).into_iter().all(|m| m)
    }

    /// [`Self::is_reference_form`] of every row of a batch of internal coordinates (rebuilt to
    /// Cartesian coordinates by `transform`), in parallel.
    pub fn mask_internal(&self, transform: &InternalCoordinates, z: ArrayView2<f64>) -> Vec<bool> {
        transform.map_cartesian(z, |x| self.is_reference_form(x))
    }
}
