//! Rational-quadratic spline coupling flows (Durkan et al. 2019) with circular splines on angle
//! coordinates (Rezende et al. 2020), as FAB's alanine-dipeptide flow uses.
//!
//! Layers alternate halves as in RealNVP. Within a layer, the transformed ordinary coordinates get
//! linear-tail RQ splines on [−B, B] and the transformed circular coordinates circular RQ splines on
//! [−π, π]; each kind has its own zero-initialised head, so the flow starts as the identity. After
//! each layer, an optional shift c (fixed, or random per layer) rotates every circular coordinate,
//! x ← wrap(x + c), so bin
//! edges do not stay at the same angles. The base is N(0, 1) on ordinary and U[−π, π) on circular
//! coordinates.

use rand::Rng;
use serde::{Deserialize, Serialize};

use fab_core::{FabError, Result};

use crate::activation::Activation;
use crate::coupling::{Coupling, CouplingFlow, SplinePart, Transform};
use crate::kernels::split::{Split, Subset};
use crate::linear::{hidden_stack, Init, Linear};
use crate::real::{Precision, Real};
use crate::realnvp::halves;
use crate::relative_angles::RelativeAngles;
use crate::spline::{n_params, SplineConfig, SplineConsts};

/// Spline coupling flow settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplineFlowConfig {
    /// Number of coupling layers (alanine: 12).
    pub n_layers: usize,
    /// Width of the conditioner's hidden layers (alanine: 256).
    pub hidden_units: usize,
    /// Hidden layers per conditioner.
    pub hidden_layers: usize,
    /// Seed of the hidden-layer initialisation.
    pub init_seed: u64,
    /// Bins, interval and minimum sizes of the splines (alanine: 8 bins).
    pub spline: SplineConfig,
    /// Indices of circular coordinates (angles in [−π, π)).
    pub circular: Vec<usize>,
    /// Rotation of the circular coordinates after every layer.
    pub circular_shift: CircularShift,
    /// Float type the flow computes in (default F64, as fab-torch's alanine runs).
    pub precision: Precision,
    /// Pairs (j, i) of circular coordinates for which the flow models the angle x_j − x_i
    /// instead of x_j (a fixed shear after the last layer, log-det 0; see
    /// [`crate::relative_angles`]). Default: none, as fab-torch.
    pub relative_angles: Vec<(usize, usize)>,
    /// Derive `relative_angles` from the target's Z-matrix instead of listing them: every
    /// circular torsion about the same bond as an earlier one, relative to that one. The flow
    /// cannot see the Z-matrix, so whoever builds flow and target resolves this into
    /// `relative_angles` first ([`SplineFlowConfig::with_relative_angles`]); default `Off`.
    pub shared_axis_angles: SharedAxisAngles,
    /// Hidden activation of the conditioners: `Relu` (default, fab-torch) or `Gelu` (fab-jax).
    pub activation: Activation,
    /// Rows per chunk of a training batch's parameter gradient (default 256). The chunks are
    /// fixed by the batch size and this setting, never by threads or MPI ranks, and summed in
    /// order, so results do not depend on either; but changing it changes the result's bits. On
    /// many MPI ranks a batch uses at most ⌈batch / rows⌉ ranks for its gradient steps: smaller
    /// chunks let more ranks share them, at the cost of smaller GEMMs and one parameter-sized
    /// gradient per chunk held in memory.
    pub gradient_chunk_rows: usize,
}

/// Which torsions sharing a rotation axis a spline flow models relative to each other (the
/// Z-matrix rule of `fab_targets`' `ZMatrix::shared_axis_dihedrals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SharedAxisAngles {
    /// None derived: only the explicit `relative_angles` list.
    #[default]
    Off,
    /// Every later torsion about a bond relative to the first one about it.
    All,
    /// Only those that place a heavy atom (hydrogens keep their own angle).
    HeavyAtoms,
}

impl SplineFlowConfig {
    /// This config with `pairs` (derived from the target) as its relative angles and the
    /// derivation rule cleared; an error if both an explicit list and a rule were given.
    pub fn with_relative_angles(&self, pairs: Vec<(usize, usize)>) -> Result<Self> {
        if !self.relative_angles.is_empty() {
            return Err(FabError::invalid(
                "flow.shared_axis_angles",
                "give either an explicit relative_angles list or a shared_axis_angles rule, not both",
            ));
        }
        Ok(Self {
            relative_angles: pairs,
            shared_axis_angles: SharedAxisAngles::Off,
            ..self.clone()
        })
    }
}

/// How circular coordinates are rotated between layers, so bin edges do not stay at the same angles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum CircularShift {
    /// No rotation.
    #[default]
    None,
    /// The same angle after every layer.
    Fixed(f64),
    /// An angle drawn uniformly from [−π, π) per layer at construction (from `init_seed`, so the
    /// same config always builds the same flow).
    Random,
}

impl Default for SplineFlowConfig {
    fn default() -> Self {
        Self {
            n_layers: 12,
            hidden_units: 256,
            hidden_layers: 2,
            init_seed: 0,
            spline: SplineConfig::default(),
            circular: Vec::new(),
            circular_shift: CircularShift::None,
            precision: Precision::F64,
            relative_angles: Vec::new(),
            shared_axis_angles: SharedAxisAngles::Off,
            activation: Activation::Relu,
            gradient_chunk_rows: 256,
        }
    }
}

impl<E: Real> CouplingFlow<E>
where
    dfdx::prelude::Cpu: dfdx::prelude::Device<E>,
{
    /// A spline coupling flow for dimension `dim` (at least 2), initialised to the identity map,
    /// computing in `E` (`config.precision` is for [`crate::build`], which picks `E`).
    #[allow(clippy::neg_cmp_op_on_partial_ord, clippy::nonminimal_bool)] // NaN-aware: a NaN must fail the check
    pub fn spline(dim: usize, config: &SplineFlowConfig) -> Result<Self> {
        if dim < 2 {
            return Err(FabError::invalid(
                "flow",
                format!("spline flows need dimension >= 2, got {dim}"),
            ));
        }
        if config.n_layers == 0 || config.hidden_units == 0 || config.spline.bins < 2 {
            return Err(FabError::invalid(
                "flow",
                "n_layers and hidden_units must be positive, bins at least 2",
            ));
        }
        crate::coupling::check_gradient_chunk_rows(config.gradient_chunk_rows)?;
        // Widths, heights and slopes of the spline bins per transformed coordinate.
        crate::coupling::check_flow_size(
            dim,
            config.n_layers,
            config.hidden_units,
            config.hidden_layers,
            3 * config.spline.bins.min(1 << 20) + 1,
        )?;
        let c = &config.spline;
        if !(c.bound > 0.0 && c.bound <= 1e6)
            || !(c.min_bin > 0.0 && c.min_bin * c.bins as f64 <= 0.5)
            || !(c.min_slope > 0.0 && c.min_slope < 1.0)
        {
            return Err(FabError::invalid(
                "flow.spline",
                format!(
                    "need 0 < bound ≤ 1e6, 0 < min_bin ≤ 0.5/bins and 0 < min_slope < 1; got bound {}, min_bin {}, min_slope {}",
                    c.bound, c.min_bin, c.min_slope
                ),
            ));
        }
        if config.shared_axis_angles != SharedAxisAngles::Off {
            return Err(FabError::invalid(
                "flow.shared_axis_angles",
                "is derived from a molecule target's Z-matrix and must be resolved before the \
                 flow is built (SplineFlowConfig::with_relative_angles); not a molecule target?",
            ));
        }
        let mut circular = vec![false; dim];
        for &j in &config.circular {
            if j >= dim {
                return Err(FabError::invalid(
                    "flow.circular",
                    format!("index {j} out of range for dimension {dim}"),
                ));
            }
            if circular[j] {
                // Harmless as such, but most likely a typo for another index.
                return Err(FabError::invalid(
                    "flow.circular",
                    format!("index {j} is listed twice"),
                ));
            }
            circular[j] = true;
        }
        let dev = dfdx::prelude::Cpu::default();
        let mut rng = fab_core::rng::seeded(config.init_seed);
        let any_circular = circular.iter().any(|c| *c);
        let layers = (0..config.n_layers)
            .map(|l| {
                let (cond, trans) = halves(dim, l);
                let (hidden, n_in) = hidden_stack(
                    &dev,
                    cond.len(),
                    config.hidden_units,
                    config.hidden_layers,
                    Init::Torch,
                    &mut rng,
                );
                let mut parts = Vec::new();
                for (name, want_circular) in [("spline", false), ("circular_spline", true)] {
                    // Positions within the transformed block of this kind of coordinate.
                    let idx: Vec<usize> = (0..trans.len())
                        .filter(|&j| circular[trans[j]] == want_circular)
                        .collect();
                    if idx.is_empty() {
                        continue;
                    }
                    let p = n_params(c.bins, want_circular);
                    parts.push((
                        name.to_string(),
                        SplinePart {
                            subset: Subset::new(&dev, trans.len(), &idx),
                            consts: SplineConsts::new(*c, want_circular),
                            head: Linear::zeros(&dev, n_in, idx.len() * p),
                            width: idx.len(),
                            n_params: p,
                        },
                    ));
                }
                Coupling {
                    split: Split::new(&dev, dim, &cond, &trans),
                    hidden,
                    activation: config.activation,
                    transform: Transform::Spline { parts },
                    act_norm: None,
                    shift_after: match config.circular_shift {
                        _ if !any_circular => None,
                        CircularShift::None => None,
                        CircularShift::Fixed(c) => Some(c),
                        CircularShift::Random => {
                            Some(rng.gen_range(-std::f64::consts::PI..std::f64::consts::PI))
                        }
                    },
                }
            })
            .collect();
        let relative_angles = RelativeAngles::new(&dev, &circular, &config.relative_angles)?;
        Ok(Self {
            base_affine: None,
            circular,
            dev,
            dim,
            layers,
            relative_angles,
            engine: Default::default(),
            gradient_chunk_rows: config.gradient_chunk_rows,
        })
    }
}
