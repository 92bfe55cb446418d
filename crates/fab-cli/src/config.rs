//! Run configuration: one RON file with a section per crate (target, flow, ais, training,
//! evaluation, output). Unknown keys are errors; missing keys take the paper's GMM defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use fab_ais::AisConfig;
use fab_core::checkpoint::Checkpoint;
use fab_core::metrics::EvalConfig;
use fab_core::train::TrainConfig;
use fab_flows::{FlowConfig, RealNvpConfig};
use fab_targets::TargetConfig;

/// Where and how often a run writes its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Run directory (metrics, checkpoints, plots), relative to the working directory.
    pub dir: PathBuf,
    /// Write a metrics.csv row every this many iterations.
    pub log_every: u64,
    /// Number of evaluations during training, evenly spaced (fab-torch `n_eval`); 0 = none.
    pub n_evals: u64,
    /// Write a checkpoint every this many iterations (and always at the end or on Ctrl-C).
    pub checkpoint_every: u64,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("runs/gmm"),
            log_every: 10,
            n_evals: 20,
            checkpoint_every: 1000,
        }
    }
}

/// A complete run description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Target density.
    pub target: TargetConfig,
    /// Flow architecture.
    pub flow: FlowConfig,
    /// AIS sampler.
    pub ais: AisConfig,
    /// Training loop.
    pub training: TrainConfig,
    /// Evaluation.
    pub eval: EvalConfig,
    /// Output.
    pub output: OutputConfig,
    /// Worker threads for rayon and dfdx's GEMM; `None` = all cores. Small flows (the 2-D GMM)
    /// run faster on one thread because parallel GEMM on 128×80 matrices costs more than it saves.
    pub threads: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            target: TargetConfig::Gmm40,
            flow: FlowConfig::RealNvp(RealNvpConfig::default()),
            ais: AisConfig::default(),
            training: TrainConfig::default(),
            eval: EvalConfig::default(),
            output: OutputConfig::default(),
            threads: None,
        }
    }
}

impl RunConfig {
    /// Parses a RON string; errors name `origin`, the line and column, and the field path
    /// (e.g. `training.batch_size`).
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let located = |e: ron::error::SpannedError, path: &str| {
            let at = if path.is_empty() || path == "." {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            anyhow::anyhow!(
                "{}:{}:{}{at}: {}",
                origin.display(),
                e.position.line,
                e.position.col,
                e.code
            )
        };
        let mut de = ron::Deserializer::from_str(text).map_err(|e| located(e, ""))?;
        let config: RunConfig = match serde_path_to_error::deserialize(&mut de) {
            Ok(c) => c,
            Err(e) => {
                let path = e.path().to_string();
                return Err(located(de.span_error(e.into_inner()), &path));
            }
        };
        de.end().map_err(|e| located(de.span_error(e), ""))?;
        // A setting out of range: name the file and, when the setting is written in it (not a
        // default), its line.
        let invalid = |e: fab_core::FabError| {
            let line = match &e {
                fab_core::FabError::Invalid { what, .. } => line_of(text, what),
                _ => None,
            };
            let at = line.map_or(String::new(), |l| format!(":{l}"));
            anyhow::Error::new(e).context(format!("invalid config {}{at}", origin.display()))
        };
        config.training.validate().map_err(invalid)?;
        config.ais.validate().map_err(invalid)?;
        config.eval.validate().map_err(invalid)?;
        let invalid = || format!("invalid config {}", origin.display());
        check_threads(config.threads).with_context(invalid)?;
        if config.output.log_every == 0 || config.output.checkpoint_every == 0 {
            anyhow::bail!(
                "invalid config {}: output.log_every and output.checkpoint_every must be positive",
                origin.display()
            );
        }
        Ok(config)
    }

    /// Reads and parses a RON file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// The settings in which `other` differs from this config and that shape the trained model
    /// (everything but [`FREE_TO_CHANGE`]), each as "path: this value ≠ other value".
    pub fn shaping_differences(&self, other: &RunConfig) -> Result<Vec<String>> {
        let mut mine = BTreeMap::new();
        let mut theirs = BTreeMap::new();
        flatten("", &serde_json::to_value(self)?, &mut mine);
        flatten("", &serde_json::to_value(other)?, &mut theirs);
        let free = |path: &str| {
            FREE_TO_CHANGE
                .iter()
                .any(|f| path == *f || path.starts_with(&format!("{f}.")))
        };
        let paths: BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
        let missing = "(absent)".to_string();
        Ok(paths
            .into_iter()
            .filter(|p| !free(p) && mine.get(*p) != theirs.get(*p))
            .map(|p| {
                let a = mine.get(p).unwrap_or(&missing);
                let b = theirs.get(p).unwrap_or(&missing);
                format!("{p}: {a} ≠ {b}")
            })
            .collect())
    }

    /// Checks that the config stored in checkpoint `ck` (by `fab train`) describes the same model
    /// and training as this one; the error names the file and every differing setting.
    pub fn check_matches_checkpoint(&self, ck: &Checkpoint) -> Result<()> {
        let stored = RunConfig::parse(ck.meta("config")?, &ck.path)
            .with_context(|| format!("the run config stored in {}", ck.path.display()))?;
        let diffs = stored.shaping_differences(self)?;
        if !diffs.is_empty() {
            anyhow::bail!(
                "{} was written by a run with other settings (checkpoint ≠ this config):\n  {}\n\
                 use that run's own config, or train into a new output.dir",
                ck.path.display(),
                diffs.join("\n  ")
            );
        }
        Ok(())
    }

    /// The configuration as pretty RON (saved next to the results).
    pub fn to_ron(&self) -> Result<String> {
        Ok(ron::ser::to_string_pretty(
            self,
            ron::ser::PrettyConfig::default(),
        )?)
    }
}

/// The 1-based line of the setting at dotted `path` (e.g. `training.optimizer.eps`) in RON
/// `text`: each component is looked up as a key (`name:` or `name(`) after the previous one, so
/// `eps` is found inside `optimizer` inside `training`. `None` if a component is not written
/// (the setting has its default).
fn line_of(text: &str, path: &str) -> Option<usize> {
    let mut from = 0;
    for key in path.split('.') {
        let mut found = None;
        for (i, _) in text[from..].match_indices(key) {
            let at = from + i;
            let before = text[..at].chars().next_back();
            let after = text[at + key.len()..].trim_start().chars().next();
            let word_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if word_start && matches!(after, Some(':') | Some('(')) {
                found = Some(at);
                break;
            }
        }
        from = found?;
    }
    Some(text[..from].lines().count().max(1) + usize::from(text[..from].ends_with('\n')))
}

/// The most worker threads a run may ask for: far above any machine's cores, far below the
/// number whose start-up alone would stall the run (10⁵ threads hang for minutes).
pub const MAX_THREADS: usize = 1024;

/// Checks a thread count (`threads` in a config or `--threads`): `None` means one per core.
pub fn check_threads(threads: Option<usize>) -> Result<()> {
    match threads {
        Some(n) if n == 0 || n > MAX_THREADS => {
            anyhow::bail!("threads: Some({n}) must lie in 1..={MAX_THREADS} (None: one per core)")
        }
        _ => Ok(()),
    }
}

/// Settings that may change between a checkpoint and the run that resumes or evaluates it:
/// where and how often the run writes, how it is evaluated, its thread count and its length.
pub const FREE_TO_CHANGE: [&str; 4] = ["output", "eval", "threads", "training.iterations"];

/// Every leaf of `value` under its dotted path (`flow.SplineCoupling.n_layers`).
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
            if items.is_empty() {
                out.insert(prefix.to_string(), "[]".into());
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_range_setting_is_named_with_its_file_and_line() {
        let text = "(\n    target: Gmm40,\n    ais: (init_step_size: 1.0, adaptation: (factor: 1.05)),\n    \
                    training: (\n        batch_size: 4,\n        optimizer: (\n            lr: 1e-3,\n            \
                    eps: -1.0,\n        ),\n    ),\n)";
        let err = RunConfig::parse(text, Path::new("run.ron")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("run.ron:8") && msg.contains("training.optimizer.eps"),
            "{msg}"
        );
        // `factor` inside `adaptation` inside `ais`, on line 3.
        let bad = text
            .replace("eps: -1.0", "eps: 1e-8")
            .replace("factor: 1.05", "factor: 0.5");
        let msg = format!(
            "{:#}",
            RunConfig::parse(&bad, Path::new("run.ron")).unwrap_err()
        );
        assert!(
            msg.contains("run.ron:3") && msg.contains("ais.adaptation.factor"),
            "{msg}"
        );
        // A setting not written in the file keeps its default: no line to give.
        assert_eq!(line_of(text, "eval.log_z_groups"), None);
        assert_eq!(line_of(text, "training.batch_size"), Some(5));
        // `lr` is not found inside `eps` or another word.
        assert_eq!(line_of("(a: (xlr: 1,\n lr: 2))", "a.lr"), Some(2));
    }

    #[test]
    fn shipped_configs_parse() {
        // Every config under configs/ and its subfolders, so a new profile cannot ship broken.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut n = 0;
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "ron") {
                    let config = RunConfig::load(&path)
                        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                    // Derived flow settings resolve against the config's own target.
                    crate::components::flow_config(&config)
                        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                    // Peptide files are named relative to the repository root (checked in the
                    // next test); the other targets' circular lists are checked here.
                    if !matches!(config.target, TargetConfig::Peptide(_)) {
                        crate::components::check_circular(&config)
                            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                    }
                    n += 1;
                }
            }
        }
        assert!(n >= 9, "found only {n} configs in {}", root.display());
    }

    /// A peptide config's circular list is the rotors of the target's Z-matrix: written by hand
    /// from `peptide_info`, so checked here.
    #[test]
    fn the_peptide_configs_list_the_targets_circular_coordinates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for file in [
            "configs/tetrapeptide-quick.ron",
            "configs/tetrapeptide.ron",
            "configs/alanine-quick-bond-graph.ron",
        ] {
            let config = RunConfig::load(&root.join(file)).unwrap();
            let TargetConfig::Peptide(p) = &config.target else {
                panic!("{file}: not a Peptide target: {:?}", config.target)
            };
            let peptide = fab_targets::molecule::Peptide::from_files(
                &root.join(&p.prmtop),
                &root.join(&p.coordinates),
            )
            .unwrap();
            let want = peptide.internal_coordinates().unwrap().circular_indices();
            let fab_flows::FlowConfig::SplineCoupling(flow) = &config.flow else {
                panic!("{file}: not a spline flow")
            };
            assert_eq!(flow.circular, want, "{file}");
        }
    }

    #[test]
    fn out_of_range_settings_are_refused_at_load_naming_the_field() {
        for (text, field) in [
            (
                "(ais: (adaptation: (factor: NaN)))",
                "ais.adaptation.factor",
            ),
            (
                "(ais: (adaptation: (target_accept: 2.0)))",
                "ais.adaptation.target_accept",
            ),
            (
                "(training: (optimizer: (max_grad_norm: Some(0.0))))",
                "optimizer.max_grad_norm",
            ),
            ("(training: (optimizer: (eps: -1.0)))", "optimizer.eps"),
            (
                "(training: (buffer: (w_adjust_clip: Some(-1.0))))",
                "buffer.w_adjust_clip",
            ),
            ("(eval: (n_samples: 0))", "eval.n_samples"),
            ("(training: (optimizer: (lr: 1e30)))", "optimizer.lr"),
            (
                "(training: (optimizer: (schedule: WarmupCosine(warmup_steps: 10, total_steps: 5))))",
                "optimizer.schedule.total_steps",
            ),
        ] {
            let err = RunConfig::parse(text, Path::new("z.ron")).unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.contains(field) && msg.contains("z.ron"),
                "{text}: {msg}"
            );
        }
    }

    #[test]
    fn unknown_key_is_named_with_file_and_position() {
        let err = RunConfig::parse("(training: (bach_size: 3))", Path::new("x.ron"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.ron:1:") && err.contains("bach_size"),
            "{err}"
        );
        let err = RunConfig::parse("(training: (batch_size: \"a\"))", Path::new("y.ron"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("y.ron:1:") && err.contains("`training.batch_size`"),
            "{err}"
        );
        let err = RunConfig::parse("(training: (batch_size: 0))", Path::new("z.ron")).unwrap_err();
        assert!(
            format!("{err:#}").contains("training.batch_size"),
            "{err:#}"
        );
    }

    #[test]
    fn spline_flows_and_smc_are_configurable() {
        let text =
            "(target: ManyWell(dim: 4), flow: SplineCoupling((n_layers: 2, hidden_units: 8, \
                    spline: (bins: 4, bound: 4.0), circular: [1], circular_shift: Fixed(1.0))), \
                    ais: (resample_below_ess: Some(0.3)))";
        let c = RunConfig::parse(text, Path::new("s.ron")).unwrap();
        let flow = fab_flows::build(&c.flow, 4).unwrap();
        assert_eq!(fab_core::LogDensity::dim(&*flow), 4);
        assert_eq!(c.ais.resample_below_ess, Some(0.3));
        let err = RunConfig::parse("(flow: SplineCoupling((bins: 4)))", Path::new("t.ron"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.ron") && err.contains("bins"), "{err}");
    }

    #[test]
    fn config_round_trips_through_ron() {
        let c = RunConfig::default();
        assert_eq!(
            RunConfig::parse(&c.to_ron().unwrap(), Path::new("-")).unwrap(),
            c
        );
    }
}
