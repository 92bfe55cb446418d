//! Building the run's pieces (target, flow, sampler, trainer) from a configuration, and the
//! checkpoint layout shared by `train`, `eval` and `sample`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use fab_ais::Ais;
use fab_core::checkpoint::Checkpoint;
use fab_core::train::{load_flow, Trainer};
use fab_core::{Flow, Target};
use fab_flows::{FlowConfig, SharedAxisAngles};

use crate::config::RunConfig;

/// File name of the latest checkpoint inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// File name of the configuration copy inside a run directory.
pub const CONFIG_FILE: &str = "config.ron";

/// Everything a run needs.
pub struct Components {
    /// The target density.
    pub target: Box<dyn Target>,
    /// The flow.
    pub flow: Box<dyn Flow>,
    /// The AIS sampler.
    pub ais: Ais,
}

impl Components {
    /// Builds target, flow and sampler from the configuration.
    pub fn build(config: &RunConfig) -> Result<Self> {
        let target = fab_targets::build(&config.target).context("building the target")?;
        check_circular(config)?;
        let flow =
            fab_flows::build(&flow_config(config)?, target.dim()).context("building the flow")?;
        let ais = Ais::new(config.ais).context("building the AIS sampler")?;
        Ok(Self { target, flow, ais })
    }

    /// A fresh trainer for this flow.
    /// (A warm-up-cosine schedule without `total_steps` decays over the whole run.)
    pub fn trainer(&self, config: &RunConfig) -> Result<Trainer> {
        use fab_core::AnnealedSampler;
        let training = config.training.resolved(self.ais.flow_evals_per_sample())?;
        Ok(Trainer::new(training, &*self.flow)?)
    }

    /// Restores flow parameters and AIS step sizes from the checkpoint at `path` (for eval and
    /// sample), after checking that it was written by a run of `config`.
    pub fn load_checkpoint(&mut self, path: &Path, config: &RunConfig) -> Result<Checkpoint> {
        let ck = Checkpoint::read(path)?;
        config.check_matches_checkpoint(&ck)?;
        load_flow(&mut *self.flow, &ck)?;
        use fab_core::AnnealedSampler;
        let n = self.ais.step_sizes().len();
        let steps: Vec<f64> = ck
            .finite_tensor("sampler.step_sizes", &[n])?
            .iter()
            .copied()
            .collect();
        self.ais.set_step_sizes(&steps)?;
        Ok(ck)
    }
}

/// The flow section with `shared_axis_angles` resolved into explicit `relative_angles` from the
/// molecule target's Z-matrix (the flow crate cannot see targets).
pub fn flow_config(config: &RunConfig) -> Result<FlowConfig> {
    let FlowConfig::SplineCoupling(flow) = &config.flow else {
        return Ok(config.flow.clone());
    };
    let heavy_only = match flow.shared_axis_angles {
        SharedAxisAngles::Off => return Ok(config.flow.clone()),
        SharedAxisAngles::All => false,
        SharedAxisAngles::HeavyAtoms => true,
    };
    let molecule = fab_targets::Molecule::from_config(&config.target)?.ok_or_else(|| {
        anyhow::anyhow!(
            "flow.shared_axis_angles derives angle pairs from a molecule's Z-matrix; the target \
             is not a molecule (AlanineDipeptide or Peptide)"
        )
    })?;
    let pairs = molecule.shared_axis_dihedrals(heavy_only);
    Ok(FlowConfig::SplineCoupling(
        flow.with_relative_angles(pairs)?,
    ))
}

/// Refuses a spline flow whose `circular` list names coordinates of a molecule target that are
/// not torsions (bond lengths and angles are not periodic).
pub(crate) fn check_circular(config: &RunConfig) -> Result<()> {
    let FlowConfig::SplineCoupling(flow) = &config.flow else {
        return Ok(());
    };
    if flow.circular.is_empty() {
        return Ok(());
    }
    let Some(molecule) = fab_targets::Molecule::from_config(&config.target)? else {
        return Ok(());
    };
    let torsions = molecule.circular_indices();
    if let Some(bad) = flow.circular.iter().find(|i| !torsions.contains(i)) {
        anyhow::bail!(
            "invalid flow.circular: coordinate {bad} of the molecule is a bond length or angle, not a torsion; its torsions are {torsions:?}"
        );
    }
    Ok(())
}

/// Loads the configuration saved in a run directory.
pub fn load_run_config(run_dir: &Path) -> Result<RunConfig> {
    RunConfig::load(&run_dir.join(CONFIG_FILE)).with_context(|| {
        format!(
            "{} does not look like a run directory of `fab train`",
            run_dir.display()
        )
    })
}

/// Path of the checkpoint of a run directory, or the explicit one.
pub fn checkpoint_path(run_dir: &Path, explicit: Option<&PathBuf>) -> PathBuf {
    explicit
        .cloned()
        .unwrap_or_else(|| run_dir.join(CHECKPOINT_FILE))
}

/// The components of a trained run with its checkpoint (or `checkpoint`) loaded.
pub fn load_trained(
    run: &Path,
    config: &RunConfig,
    checkpoint: Option<&PathBuf>,
) -> Result<Components> {
    let mut parts = Components::build(config)?;
    let path = checkpoint_path(run, checkpoint);
    if !path.exists() {
        bail!(
            "checkpoint {} not found (train first, or pass --checkpoint)",
            path.display()
        );
    }
    parts.load_checkpoint(&path, config)?;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_rule(target: &str, rule: &str, explicit: &str) -> Result<FlowConfig> {
        let text = format!(
            "(target: {target}, flow: SplineCoupling((n_layers: 2, hidden_units: 8, \
             circular: [5, 8, 17, 20, 23, 26, 29, 32, 44, 47, 50, 53], \
             relative_angles: [{explicit}], shared_axis_angles: {rule})))"
        );
        flow_config(&RunConfig::parse(&text, Path::new("t.ron"))?)
    }

    #[test]
    fn shared_axis_angles_resolve_to_the_z_matrix_pairs_and_refuse_other_targets() {
        let pairs = |f: FlowConfig| match f {
            FlowConfig::SplineCoupling(c) => {
                assert_eq!(c.shared_axis_angles, SharedAxisAngles::Off);
                c.relative_angles
            }
            other => panic!("{other:?}"),
        };
        let aldp = "AlanineDipeptide(())";
        assert_eq!(
            pairs(with_rule(aldp, "All", "").unwrap()),
            [(20, 8), (26, 17), (29, 17), (50, 47)]
        );
        assert_eq!(
            pairs(with_rule(aldp, "HeavyAtoms", "").unwrap()),
            [(20, 8), (29, 17), (50, 47)]
        );
        assert_eq!(
            pairs(with_rule(aldp, "Off", "(26, 17)").unwrap()),
            [(26, 17)]
        );
        // The resolved flow builds (pairs valid for its circular list); the unresolved one not.
        let config = RunConfig::parse(
            "(target: AlanineDipeptide(()), flow: SplineCoupling((n_layers: 2, hidden_units: 8, \
             circular: [5, 8, 17, 20, 23, 26, 29, 32, 44, 47, 50, 53], shared_axis_angles: All)))",
            Path::new("t.ron"),
        )
        .unwrap();
        assert!(Components::build(&config).is_ok());
        let err = fab_flows::build(&config.flow, 60)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("flow.shared_axis_angles"), "{err}");
        let both = with_rule(aldp, "All", "(26, 17)").unwrap_err().to_string();
        assert!(both.contains("not both"), "{both}");
        let gmm = with_rule("GmmV1", "All", "").unwrap_err().to_string();
        assert!(gmm.contains("not a molecule"), "{gmm}");
    }
}
