//! The FAB alanine-dipeptide target: the Boltzmann density in the 60 normalised internal
//! coordinates, log p(z) = −reg(E(x(z))/kT) + log|det ∂x/∂z| (spec aldp-target.md §1.5), with
//! ∇_z log p from the force-field gradient pulled back through the transform. Batches run in
//! parallel over conformations with rayon, the force field on four conformations per SIMD vector.
//! kT = R·T with boltzgen's R = 8.314e-3 kJ/mol/K.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use fab_core::density::{check_dim, check_dim_and_grad, par_row_chunks};
use fab_core::target::WeightedSamples;
use fab_core::weights::normalised_weights;
use fab_core::{LogDensity, Result, Target};

use crate::molecule::basins::BasinPopulations;
use crate::molecule::cartesian_boltzmann::GAS_CONSTANT;
use crate::molecule::coordinates::bond_graph::ResidueDihedrals;
use crate::molecule::coordinates::chirality::{ChiralityFilter, MirrorFilter};
use crate::molecule::coordinates::internal::InternalCoordinates;
use crate::molecule::coordinates::ramachandran::{torsions_of_internal, PHI_ATOMS, PSI_ATOMS};
use crate::molecule::forcefield::{ForceField, Workspace};
use crate::molecule::numeric::lanes::{Lane, X4};
use crate::molecule::numeric::vec3::Vec3;
use crate::molecule::regularize::EnergyRegularizer;

/// Boltzmann density of the force field over internal coordinates.
#[derive(Debug, Clone)]
pub struct InternalBoltzmann {
    /// Name in logs and results ("alanine-dipeptide", or the peptide's).
    name: String,
    /// The mirror-image test: reported as a metric, and applied to training batches when
    /// `filter_training` is set.
    mirror: MirrorFilter,
    filter_training: bool,
    /// φ/ψ atoms of each residue, for the basin metrics.
    residues: Vec<ResidueDihedrals>,
    ff: ForceField,
    transform: InternalCoordinates,
    regularizer: EnergyRegularizer,
    kt: f64,
}

/// Everything one evaluation yields, for callers that want more than log p.
#[derive(Debug, Clone, PartialEq)]
pub struct InternalPoint {
    /// log p(z) (−inf when the energy is not finite).
    pub log_prob: f64,
    /// Potential energy of x(z) (kJ/mol).
    pub energy: f64,
    /// log|det ∂x/∂z|.
    pub log_det: f64,
}

impl InternalBoltzmann {
    /// FAB's alanine-dipeptide target at `temperature` K.
    pub fn alanine_dipeptide(temperature: f64) -> Self {
        Self::new(
            ForceField::alanine_dipeptide(),
            InternalCoordinates::alanine_dipeptide(),
            GAS_CONSTANT * temperature,
        )
    }

    /// Alanine dipeptide's target from its parts (FAB's table Z-matrix, its chirality test and
    /// φ/ψ); `kt` in kJ/mol. The training filter starts off.
    pub fn new(ff: ForceField, transform: InternalCoordinates, kt: f64) -> Self {
        Self {
            name: "alanine-dipeptide".into(),
            mirror: MirrorFilter::Dihedrals(ChiralityFilter::default()),
            filter_training: false,
            residues: vec![ResidueDihedrals {
                residue: 1,
                phi: PHI_ATOMS,
                psi: PSI_ATOMS,
            }],
            ff,
            transform,
            regularizer: EnergyRegularizer::default(),
            kt,
        }
    }

    /// A target for any molecule from its parts: `mirror` judges the handedness (and filters
    /// training batches when `filter_training`), `residues` gives the φ/ψ of the basin metrics.
    pub fn molecule(
        name: &str,
        ff: ForceField,
        transform: InternalCoordinates,
        kt: f64,
        mirror: MirrorFilter,
        residues: Vec<ResidueDihedrals>,
    ) -> Self {
        Self {
            name: name.into(),
            mirror,
            residues,
            ..Self::new(ff, transform, kt)
        }
    }

    /// Enables (or disables) FAB's chirality filter on training batches, with `filter`'s
    /// settings (alanine dipeptide's two-dihedral test).
    pub fn with_chirality_filter(mut self, filter: Option<ChiralityFilter>) -> Self {
        self.filter_training = filter.is_some();
        if let Some(f) = filter {
            self.mirror = MirrorFilter::Dihedrals(f);
        }
        self
    }

    /// Enables (or disables) filtering training batches by the target's mirror-image test.
    pub fn with_training_filter(mut self, on: bool) -> Self {
        self.filter_training = on;
        self
    }

    /// (φ, ψ) of the first residue for every row of a batch of internal coordinates, shape (n, 2).
    pub fn phi_psi(&self, z: ArrayView2<f64>) -> Array2<f64> {
        let r = &self.residues[..self.residues.len().min(1)];
        let atoms: Vec<[usize; 4]> = r.iter().flat_map(|r| [r.phi, r.psi]).collect();
        torsions_of_internal(&self.transform, z, &atoms)
    }

    /// φ₁, ψ₁, φ₂, ψ₂, … of every residue for every row of a batch, shape (n, 2 × residues).
    pub fn backbone_torsions(&self, z: ArrayView2<f64>) -> Array2<f64> {
        let atoms: Vec<[usize; 4]> = self.residues.iter().flat_map(|r| [r.phi, r.psi]).collect();
        torsions_of_internal(&self.transform, z, &atoms)
    }

    /// The residues whose φ/ψ the metrics report.
    pub fn residues(&self) -> &[ResidueDihedrals] {
        &self.residues
    }

    /// The mirror-image test.
    pub fn mirror_filter(&self) -> &MirrorFilter {
        &self.mirror
    }

    /// kT in kJ/mol.
    pub fn kt(&self) -> f64 {
        self.kt
    }

    /// The coordinate transform.
    pub fn transform(&self) -> &InternalCoordinates {
        &self.transform
    }

    /// The force field.
    pub fn force_field(&self) -> &ForceField {
        &self.ff
    }

    /// Evaluates one point z; writes ∇_z log p into `grad` when given (zeros if log p is −inf).
    pub fn evaluate(&self, z: &[f64], grad: Option<&mut [f64]>) -> InternalPoint {
        let n = self.transform.n_atoms();
        let mut x: Vec<Vec3> = vec![[0.0; 3]; n];
        let log_det = self.transform.to_cartesian(z, &mut x);
        let mut gx: Vec<Vec3> = vec![[0.0; 3]; n];
        let energy = self
            .ff
            .energy_and_grad(&x, &mut gx)
            .expect("the transform builds the force field's atom count")
            .total();
        self.finish(z, &x, log_det, energy, &mut gx, grad)
    }

    /// log p(z) from the energy E(x(z)) and its Cartesian gradient `gx`; pulls the gradient back
    /// to z (with ∇ log|det|) when `grad` is given.
    fn finish(
        &self,
        z: &[f64],
        x: &[Vec3],
        log_det: f64,
        energy: f64,
        gx: &mut [Vec3],
        grad: Option<&mut [f64]>,
    ) -> InternalPoint {
        let (log_prob, factor) = self.log_prob_and_factor(energy, log_det);
        if let Some(grad) = grad {
            if log_prob.is_finite() {
                gx.iter_mut().flatten().for_each(|g| *g *= factor);
                self.transform.pull_back(z, x, gx, grad, true);
            } else {
                grad.iter_mut().for_each(|g| *g = 0.0);
            }
        }
        InternalPoint {
            log_prob,
            energy,
            log_det,
        }
    }

    /// log p(z) = log|det ∂x/∂z| − u with u = reg(E/kT), and the factor −u′/kT that turns ∂E/∂x
    /// into ∂(−u)/∂x (before the pull-back to z, which adds ∇ log|det|); (−inf, 0) when either
    /// part is not finite, whose gradient is reported as zeros.
    fn log_prob_and_factor(&self, energy: f64, log_det: f64) -> (f64, f64) {
        let (u, slope) = self.regularizer.apply(energy / self.kt);
        if u.is_finite() && log_det.is_finite() {
            (log_det - u, -slope / self.kt)
        } else {
            (f64::NEG_INFINITY, 0.0)
        }
    }

    /// log p of up to four rows at once, one per SIMD lane through the whole chain: z → x, the
    /// force field, and (when `grad` is given) the pull-back of ∇_x to ∇_z. Missing rows of a
    /// short chunk repeat its first row in the unused lanes.
    fn chunk(
        &self,
        scratch: &mut Scratch<'_>,
        rows: ArrayView2<f64>,
        mut out: ArrayViewMut1<f64>,
        grad: Option<ArrayViewMut2<f64>>,
    ) {
        let m = rows.nrows();
        let Scratch { ws, z, x, gx, gz } = scratch;
        for (k, zk) in z.iter_mut().enumerate() {
            *zk = X4::new(std::array::from_fn(|l| {
                rows[[if l < m { l } else { 0 }, k]]
            }));
        }
        let log_det = self.transform.to_cartesian(z, x).to_array();
        let energy = self.ff.energy_and_grad_lanes(x, gx, ws).to_array();
        // Per lane: log p and the gradient factor (0 in padding lanes).
        let mut factor = [0.0; 4];
        for l in 0..m {
            (out[l], factor[l]) = self.log_prob_and_factor(energy[l], log_det[l]);
        }
        if let Some(mut grad) = grad {
            let f = X4::new(factor);
            gx.iter_mut().flatten().for_each(|g| *g *= f);
            self.transform.pull_back(z, x, gx, gz, true);
            for (l, mut row) in grad.rows_mut().into_iter().enumerate() {
                let finite = out[l].is_finite();
                for (o, g) in row.iter_mut().zip(gz.iter()) {
                    *o = if finite { g.to_array()[l] } else { 0.0 };
                }
            }
        }
    }

    /// One thread's buffers for [`Self::chunk`].
    fn scratch(&self) -> Scratch<'_> {
        let (n, dim) = (self.transform.n_atoms(), self.transform.dim());
        let zero = X4::splat(0.0);
        Scratch {
            ws: self.ff.workspace(),
            z: vec![zero; dim],
            x: vec![[zero; 3]; n],
            gx: vec![[zero; 3]; n],
            gz: vec![zero; dim],
        }
    }
}

/// Per-thread buffers of a batch evaluation, in SIMD lanes: the force field's workspace, z,
/// the Cartesian conformations, ∂/∂x and ∂/∂z.
struct Scratch<'a> {
    ws: Workspace<'a>,
    z: Vec<X4>,
    x: Vec<[X4; 3]>,
    gx: Vec<[X4; 3]>,
    gz: Vec<X4>,
}

impl LogDensity for InternalBoltzmann {
    fn dim(&self) -> usize {
        self.transform.dim()
    }

    fn log_prob(&self, z: ArrayView2<f64>) -> Result<Array1<f64>> {
        check_dim(
            &format!("{} (internal) log_prob", self.name),
            &z,
            self.dim(),
        )?;
        Ok(par_row_chunks(
            z,
            None,
            X4::WIDTH,
            || self.scratch(),
            |s, r, o, g| self.chunk(s, r, o, g),
        ))
    }

    fn log_prob_and_grad(
        &self,
        z: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        check_dim_and_grad(
            &format!("{} (internal) log_prob_and_grad", self.name),
            &z,
            &grad,
            self.dim(),
        )?;
        Ok(par_row_chunks(
            z,
            Some(grad),
            X4::WIDTH,
            || self.scratch(),
            |s, r, o, g| self.chunk(s, r, o, g),
        ))
    }
}

impl Target for InternalBoltzmann {
    fn name(&self) -> &str {
        &self.name
    }

    fn training_mask(&self, z: ArrayView2<f64>) -> Option<Vec<bool>> {
        self.filter_training
            .then(|| self.mirror.training_mask(&self.transform, z))
            .flatten()
    }

    /// Population of the rare φ > 0 basin of each residue (raw flow samples,
    /// importance-reweighted flow samples, reweighted AIS samples; names carry the residue's
    /// number when there are several) and the fraction of flow samples in the wanted mirror form.
    fn extra_metrics(
        &self,
        flow: WeightedSamples<'_>,
        ais: WeightedSamples<'_>,
    ) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let flow_angles = self.backbone_torsions(flow.x);
        let ais_angles = (ais.x.nrows() > 0)
            .then(|| (self.backbone_torsions(ais.x), normalised_weights(ais.log_w)));
        let w_flow = normalised_weights(flow.log_w);
        for k in 0..self.residues.len() {
            let suffix = if self.residues.len() > 1 {
                format!("_{}", k + 1)
            } else {
                String::new()
            };
            let pair = |a: &Array2<f64>| a.slice(ndarray::s![.., 2 * k..2 * k + 2]).to_owned();
            let flow_k = pair(&flow_angles);
            out.push((
                format!("phi_positive_flow{suffix}"),
                BasinPopulations::of(&flow_k, None).phi_positive,
            ));
            out.push((
                format!("phi_positive_flow_reweighted{suffix}"),
                BasinPopulations::of(&flow_k, w_flow.as_slice()).phi_positive,
            ));
            if let Some((a, w_ais)) = &ais_angles {
                out.push((
                    format!("phi_positive_ais_reweighted{suffix}"),
                    BasinPopulations::of(&pair(a), w_ais.as_slice()).phi_positive,
                ));
            }
        }
        let l = self
            .mirror
            .mask(&self.transform, flow.x)
            .iter()
            .filter(|&&m| m)
            .count();
        out.push((
            "l_form_fraction_flow".into(),
            l as f64 / flow.x.nrows().max(1) as f64,
        ));
        out
    }
}
