//! RealNVP (Dinh et al. 2017) as used by FAB's GMM and Many Well experiments: affine coupling
//! layers that alternate which half of the coordinates conditions (fab-jax's swap), a conditioner
//! MLP with ReLU hidden layers of width dim × `hidden_units_per_dim` (fab-torch's
//! `layer_nodes_per_dim`), zero-initialised heads (identity at start), and a Gaussian base with
//! trainable location and log-scale (fab-torch's base), both starting at N(0, I). Options closer
//! to fab-jax: GELU conditioners, ActNorm before every pair of couplings, and halves that roll by
//! one coordinate every two layers.

use serde::{Deserialize, Serialize};

use fab_core::{FabError, Result};

use crate::activation::Activation;
use crate::coupling::{Coupling, CouplingFlow, Transform};
use crate::kernels::split::Split;
use crate::linear::{hidden_stack, Init, Linear};
use crate::real::{Precision, Real};

/// RealNVP settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealNvpConfig {
    /// Number of coupling layers (paper GMM: 15).
    pub n_layers: usize,
    /// Hidden units per data dimension; width = dim · this (paper GMM: 40 → 80 for d = 2).
    pub hidden_units_per_dim: usize,
    /// Hidden layers of each conditioner MLP.
    pub hidden_layers: usize,
    /// Seed of the random initialisation of the hidden layers.
    pub init_seed: u64,
    /// Float type the flow computes in (default F64).
    pub precision: Precision,
    /// Conditioner width in units, overriding dim · `hidden_units_per_dim` (fab-jax gives widths
    /// this way: [128, 128] for Many Well, [256, 256] for the 1,600-D Cox process).
    pub hidden_units: Option<usize>,
    /// Hidden activation of the conditioners: `Relu` (default, fab-torch) or `Gelu` (fab-jax).
    pub activation: Activation,
    /// Rotate which coordinates form the two halves by one position every two layers (as
    /// fab-jax's `Permute(roll 1)` between coupling pairs), so every pair of coordinates is
    /// eventually split across the halves and one can condition the other. Without it the halves
    /// are always {0..d/2} and {d/2..d}: in Neal's funnel, x₁..x₄ then never see x₀ directly.
    /// Default false (fab-torch).
    pub roll: bool,
    /// A trainable elementwise affine layer (fab-jax's ActNorm, identity at start) before every
    /// pair of couplings, as fab-jax's flow "layer" = ActNorm + two couplings. Default false.
    pub act_norm: bool,
    /// How the conditioners' hidden layers start: `Torch` (default; PyTorch's uniform weights and
    /// biases, fresh per layer) or `FabJax` (LeCun-normal weights, zero biases, one pair of
    /// couplings drawn and copied to every pair).
    pub init: Init,
    /// Rows per chunk of a training batch's parameter gradient (default 256). The chunks are
    /// fixed by the batch size and this setting, never by threads or MPI ranks, and summed in
    /// order, so results do not depend on either; but changing it changes the result's bits. On
    /// many MPI ranks a batch uses at most ⌈batch / rows⌉ ranks for its gradient steps: smaller
    /// chunks let more ranks share them, at the cost of smaller GEMMs and one parameter-sized
    /// gradient per chunk held in memory.
    pub gradient_chunk_rows: usize,
}

impl Default for RealNvpConfig {
    fn default() -> Self {
        Self {
            n_layers: 15,
            hidden_units_per_dim: 40,
            hidden_layers: 2,
            init_seed: 0,
            precision: Precision::F64,
            hidden_units: None,
            activation: Activation::Relu,
            roll: false,
            act_norm: false,
            init: Init::Torch,
            gradient_chunk_rows: 256,
        }
    }
}

/// The half-split of layer `l` with the coordinates rolled by one position every two layers:
/// (conditioning, transformed) coordinates. Equivalent to a fixed permutation x ← roll(x, 1)
/// between layer pairs, without moving any data.
pub(crate) fn rolled_halves(dim: usize, l: usize) -> (Vec<usize>, Vec<usize>) {
    let r = (l / 2) % dim;
    let (cond, trans) = halves(dim, l);
    let roll = |v: Vec<usize>| v.into_iter().map(|i| (i + r) % dim).collect();
    (roll(cond), roll(trans))
}

/// The half-split of layer `l`: (conditioning, transformed) coordinates.
pub(crate) fn halves(dim: usize, l: usize) -> (Vec<usize>, Vec<usize>) {
    let k = dim / 2;
    let (first, second): (Vec<usize>, Vec<usize>) = ((0..k).collect(), (k..dim).collect());
    if l.is_multiple_of(2) {
        (first, second)
    } else {
        (second, first)
    }
}

impl<E: Real> CouplingFlow<E>
where
    dfdx::prelude::Cpu: dfdx::prelude::Device<E>,
{
    /// A RealNVP flow for dimension `dim` (at least 2), initialised to the identity map, computing
    /// in `E` (`config.precision` is for [`crate::build`], which picks `E`).
    pub fn real_nvp(dim: usize, config: &RealNvpConfig) -> Result<Self> {
        if dim < 2 {
            return Err(FabError::invalid(
                "flow",
                format!("RealNVP needs dimension >= 2, got {dim}"),
            ));
        }
        let width = config
            .hidden_units
            .unwrap_or(dim.saturating_mul(config.hidden_units_per_dim));
        if config.n_layers == 0 || width == 0 {
            return Err(FabError::invalid(
                "flow",
                "n_layers and hidden_units_per_dim (or hidden_units) must be positive",
            ));
        }
        crate::coupling::check_gradient_chunk_rows(config.gradient_chunk_rows)?;
        // Shift and scale per transformed coordinate.
        crate::coupling::check_flow_size(dim, config.n_layers, width, config.hidden_layers, 2)?;
        let dev = dfdx::prelude::Cpu::default();
        let mut rng = fab_core::rng::seeded(config.init_seed);
        let mut layers: Vec<Coupling<E>> = (0..config.n_layers)
            .map(|l| {
                let (cond, trans) = if config.roll {
                    rolled_halves(dim, l)
                } else {
                    halves(dim, l)
                };
                let (hidden, n_in) = hidden_stack(
                    &dev,
                    cond.len(),
                    width,
                    config.hidden_layers,
                    config.init,
                    &mut rng,
                );
                Coupling {
                    split: Split::new(&dev, dim, &cond, &trans),
                    hidden,
                    activation: config.activation,
                    transform: Transform::Affine {
                        shift: Linear::zeros(&dev, n_in, trans.len()),
                        scale: Linear::zeros(&dev, n_in, trans.len()),
                    },
                    shift_after: None,
                    act_norm: None,
                }
            })
            .collect();
        if config.init == Init::FabJax {
            // Every later pair starts as a copy of the first pair (fresh tensors, own gradients).
            for l in 2..layers.len() {
                let first = layers[l % 2].hidden.iter().map(Linear::deep_copy).collect();
                layers[l].hidden = first;
            }
        }
        use dfdx::prelude::TensorFromVec;
        let zeros = || dev.tensor_from_vec(vec![E::zero(); dim], (dim,));
        if config.act_norm {
            for c in layers.iter_mut().step_by(2) {
                c.act_norm = Some((zeros(), zeros()));
            }
        }
        Ok(Self {
            base_affine: Some((zeros(), zeros())),
            circular: vec![false; dim],
            dev: dev.clone(),
            dim,
            layers,
            relative_angles: None,
            engine: Default::default(),
            gradient_chunk_rows: config.gradient_chunk_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_halves_partition_and_let_every_coordinate_condition_every_other() {
        let dim = 10;
        // seen[i][j]: some layer transforms j conditioned on i.
        let mut seen = vec![vec![false; dim]; dim];
        for l in 0..2 * dim {
            let (cond, trans) = rolled_halves(dim, l);
            let mut all: Vec<usize> = cond.iter().chain(&trans).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..dim).collect::<Vec<_>>(), "layer {l}");
            for &i in &cond {
                for &j in &trans {
                    seen[i][j] = true;
                }
            }
        }
        for (i, row) in seen.iter().enumerate() {
            for (j, &s) in row.iter().enumerate() {
                assert_eq!(s, i != j, "{i} -> {j}");
            }
        }
        // Without the roll, x₁ is never transformed conditioned on x₀ (same half).
        assert!((0..2 * dim).all(|l| {
            let (cond, trans) = halves(dim, l);
            !(cond.contains(&0) && trans.contains(&1))
        }));
    }

    /// The named parameter blocks of a flow with their values.
    fn blocks(flow: &CouplingFlow<f64>) -> Vec<(String, Vec<f64>)> {
        use fab_core::Flow;
        let params = flow.params();
        let mut at = 0;
        flow.param_layout()
            .into_iter()
            .map(|(name, shape)| {
                let len: usize = shape.iter().product();
                at += len;
                (name, params[at - len..at].to_vec())
            })
            .collect()
    }

    #[test]
    fn fab_jax_init_copies_the_first_pair_into_independent_parameters() {
        use fab_core::Flow;
        let config = RealNvpConfig {
            n_layers: 6,
            hidden_units: Some(16),
            init: Init::FabJax,
            ..Default::default()
        };
        let mut flow = CouplingFlow::<f64>::real_nvp(5, &config).expect("flow");
        let value = |flow: &CouplingFlow<f64>, name: &str| {
            blocks(flow)
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .expect(name)
        };
        // Layers 0 and 1 differ (their inputs differ: 2 and 3 coordinates for dim 5); every later
        // pair repeats them; biases start at zero.
        for l in 2..6 {
            for j in 0..2 {
                let (a, b) = (
                    format!("layer{l}.hidden{j}.w"),
                    format!("layer{}.hidden{j}.w", l % 2),
                );
                assert_eq!(value(&flow, &a), value(&flow, &b), "{a}");
            }
        }
        assert_ne!(
            value(&flow, "layer0.hidden0.w").len(),
            value(&flow, "layer1.hidden0.w").len()
        );
        assert!(value(&flow, "layer3.hidden1.b").iter().all(|&b| b == 0.0));
        // Changing layer 0 leaves its copies alone: they are parameters of their own.
        let params: Vec<f64> = blocks(&flow)
            .into_iter()
            .flat_map(|(name, mut v)| {
                if name == "layer0.hidden0.w" {
                    v.iter_mut().for_each(|p| *p += 1.0);
                }
                v
            })
            .collect();
        let before = value(&flow, "layer2.hidden0.w");
        flow.set_params(&params).expect("set");
        assert_eq!(value(&flow, "layer2.hidden0.w"), before);
        assert_ne!(value(&flow, "layer0.hidden0.w"), before);
    }
}
