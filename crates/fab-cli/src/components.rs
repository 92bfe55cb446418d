//! Building the run's pieces (target, flow, sampler, trainer) from a configuration, and the
//! checkpoint layout shared by `train`, `eval` and `sample`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use fab_ais::Ais;
use fab_core::checkpoint::Checkpoint;
use fab_core::train::{load_flow, Trainer};
use fab_core::{Flow, Target};

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
        let flow = fab_flows::build(&config.flow, target.dim()).context("building the flow")?;
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
