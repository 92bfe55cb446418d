//! The directory of a finished ground-truth MD run, written and read as library code (`fab md`
//! and `fab eval --ground-truth` only call these):
//!
//! - `frames_x.npy` (n, 3 × atoms) Cartesian positions in nm, `frames_z.npy` (n, dim) internal
//!   coordinates, `phi_psi.npy` (n, 2k) φ₁, ψ₁, …, φₖ, ψₖ in rad, `energy.npy` (n) kJ/mol;
//! - `frames.dcd` the same frames as a DCD trajectory (Å, 1 frame per saved interval) with
//!   `frames.topology.pdb` (the first frame) as its topology, for mdtraj, MDAnalysis or VMD;
//! - `md.json`, written last: settings, molecule, whether the run passed its checks
//!   (`complete`), exchange acceptance, basin populations per residue, a half-vs-half
//!   convergence check, energy statistics and wall time. Only a complete run is loaded or reused.

use std::path::{Path, PathBuf};

use ndarray::{s, Array2};
use ndarray_npy::WritableElement;

use crate::molecule::basins::BasinPopulations;
use crate::molecule::evaluation::MdFrames;
use crate::molecule::formats::dcd::write_dcd_with_topology;
use crate::molecule::formats::prmtop::Prmtop;
use crate::molecule::md::ground_truth::Frames;
use crate::molecule::md::replica_exchange::ReplicaExchangeConfig;
use crate::molecule::InternalBoltzmann;

/// Name of the summary file; it is written last, so its presence marks a finished run.
pub const MD_SUMMARY: &str = "md.json";
/// The frames as a DCD trajectory.
pub const FRAMES_DCD: &str = "frames.dcd";
/// The first frame as a PDB file: the DCD's topology.
pub const TOPOLOGY_PDB: &str = "frames.topology.pdb";

/// Why an MD directory cannot be written or read; every variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum MdFilesError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An array file is not the float64 array of the expected shape.
    #[error("{path}: {reason}")]
    Array {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory holds no finished, checked MD run.
    #[error("{dir}: {reason}")]
    NotGroundTruth {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
}

/// One finished replica-exchange run, as [`write_md_run`] stores it.
#[derive(Debug, Clone, Copy)]
pub struct MdRun<'a> {
    /// Its settings (the cache key together with `molecule`).
    pub settings: &'a ReplicaExchangeConfig,
    /// The molecule's name in md.json.
    pub molecule: &'a str,
    /// The saved frames of the target-temperature replica.
    pub frames: &'a Frames,
    /// Exchange acceptance of each neighbouring pair of replicas.
    pub acceptance: &'a [f64],
    /// Wall time of the run (s).
    pub wall_seconds: f64,
    /// The molecule's topology, for the PDB that goes with the DCD.
    pub topology: &'a Prmtop,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> MdFilesError + '_ {
    move |source| MdFilesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to `dir/name` through a temporary file, so a crash never leaves half a file.
fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<(), MdFilesError> {
    let (path, tmp) = (dir.join(name), dir.join(format!(".{name}.tmp")));
    let done = std::fs::write(&tmp, contents)
        .map_err(io_error(&path))
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(io_error(&path)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp); // a full disk leaves no partial file behind
    }
    done
}

fn write_npy<A, D>(
    dir: &Path,
    name: &str,
    array: &ndarray::ArrayBase<A, D>,
) -> Result<(), MdFilesError>
where
    A: ndarray::Data,
    A::Elem: WritableElement,
    D: ndarray::Dimension,
{
    let (path, tmp) = (dir.join(name), dir.join(format!(".{name}.tmp")));
    let done = ndarray_npy::write_npy(&tmp, array)
        .map_err(|e| MdFilesError::Array {
            path: path.clone(),
            reason: e.to_string(),
        })
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(io_error(&path)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Writes the frames, the trajectory and md.json of `run` into `out` (created if missing) and
/// returns the summary. `complete` in md.json records whether the frames passed
/// [`Frames::check`]; the summary is written last.
pub fn write_md_run(out: &Path, run: &MdRun) -> Result<serde_json::Value, MdFilesError> {
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    let (md, frames) = (run.settings, run.frames);
    let verdict = frames.check(md);
    write_npy(out, "frames_z.npy", &frames.z)?;
    write_npy(out, "frames_x.npy", &frames.x)?;
    write_npy(out, "phi_psi.npy", &frames.phi_psi)?;
    write_npy(out, "energy.npy", &frames.energy)?;
    let dcd = out.join(FRAMES_DCD);
    write_dcd_with_topology(&dcd, frames.x.view(), md.save_interval, run.topology)
        .map_err(io_error(&dcd))?;
    let n_residues = frames.phi_psi.ncols() / 2;
    let pair = |k: usize| frames.phi_psi.slice(s![.., 2 * k..2 * k + 2]).to_owned();
    let by_residue: Vec<BasinPopulations> = (0..n_residues)
        .map(|k| BasinPopulations::of(&pair(k), None))
        .collect();
    let n = frames.energy.len().max(1) as f64;
    let mean = frames.energy.sum() / n;
    let std = (frames.energy.mapv(|e| (e - mean) * (e - mean)).sum() / n).sqrt();
    let steps_per_replica = md.steps(md.equilibration) as f64
        + frames.z.nrows() as f64 * md.steps(md.save_interval) as f64;
    let summary = serde_json::json!({
        "settings": md,
        "complete": verdict.is_ok(),
        "check": verdict.as_ref().err().cloned().unwrap_or_else(|| "passed".into()),
        "frames": frames.z.nrows(),
        "kinetic_temperature_mean_k": frames.temperature.mean().unwrap_or(f64::NAN),
        "temperatures_k": md.temperatures(),
        "exchange_acceptance": run.acceptance,
        "molecule": run.molecule,
        "populations": by_residue.first(),
        "populations_by_residue": by_residue,
        "halves": half_comparison(&pair(0)),
        "energy_mean_kj_per_mol": mean,
        "energy_std_kj_per_mol": std,
        "force_evaluations": steps_per_replica * md.n_replicas as f64,
        "wall_seconds": run.wall_seconds,
        "ns_per_day_per_replica": steps_per_replica * md.dt * 1e-3 / run.wall_seconds * 86_400.0,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| MdFilesError::Array {
        path: out.join(MD_SUMMARY),
        reason: e.to_string(),
    })?;
    write_atomic(out, MD_SUMMARY, text.as_bytes())?;
    Ok(summary)
}

/// Convergence check (spec aldp-target.md §7.3): KL(first half ‖ second half) of the φ, ψ and
/// Ramachandran histograms of one residue's (φ, ψ) and the basin populations of each half. The KL
/// values are a floor for any model comparison against these frames.
pub fn half_comparison(phi_psi: &Array2<f64>) -> serde_json::Value {
    use fab_core::histogram::{density_1d, density_2d, kl_divergence};
    use std::f64::consts::PI;
    let n = phi_psi.nrows() / 2;
    if n == 0 {
        return serde_json::Value::Null;
    }
    let (a, b) = (phi_psi.slice(s![..n, ..]), phi_psi.slice(s![n..2 * n, ..]));
    let kl1 = |col: usize| {
        let p = density_1d(a.column(col), None, 200, (-PI, PI));
        let q = density_1d(b.column(col), None, 200, (-PI, PI));
        kl_divergence(p.iter(), q.iter(), 2.0 * PI / 200.0)
    };
    let p = density_2d(a, None, 64, (-PI, PI));
    let q = density_2d(b, None, 64, (-PI, PI));
    serde_json::json!({
        "kld_phi": kl1(0),
        "kld_psi": kl1(1),
        "kld_ramachandran": kl_divergence(p.iter(), q.iter(), (2.0 * PI / 64.0).powi(2)),
        "populations_first_half": BasinPopulations::of(&a.to_owned(), None),
        "populations_second_half": BasinPopulations::of(&b.to_owned(), None),
    })
}

/// The summary of the complete run in `dir`, if there is one.
fn complete_summary(dir: &Path) -> Result<serde_json::Value, MdFilesError> {
    let path = dir.join(MD_SUMMARY);
    let not = |reason: String| MdFilesError::NotGroundTruth {
        dir: dir.to_path_buf(),
        reason,
    };
    if !path.exists() {
        return Err(not(format!(
            "no {MD_SUMMARY}: not a finished `fab md` run (run `fab md --config …` first)"
        )));
    }
    let summary: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| not(format!("{MD_SUMMARY} is unreadable")))?;
    if summary["complete"] != serde_json::Value::Bool(true) {
        return Err(not(format!(
            "not a complete ground truth ({}); rerun `fab md`",
            summary["check"].as_str().unwrap_or("stopped early")
        )));
    }
    Ok(summary)
}

/// Whether `out` holds a complete run of `molecule` with exactly the settings `md` (the cache
/// key of `fab md --reuse`).
pub fn is_cached(md: &ReplicaExchangeConfig, molecule: &str, out: &Path) -> bool {
    let Ok(summary) = complete_summary(out) else {
        return false;
    };
    let same = serde_json::to_value(md).is_ok_and(|v| v == summary["settings"]);
    // md.json files written before other molecules existed have no "molecule": the dipeptide.
    let recorded = summary["molecule"].as_str().unwrap_or("alanine-dipeptide");
    same && recorded == molecule
}

fn read_npy2(path: &Path, cols: usize) -> Result<Array2<f64>, MdFilesError> {
    let bad = |reason: String| MdFilesError::Array {
        path: path.to_path_buf(),
        reason,
    };
    let a: Array2<f64> = ndarray_npy::read_npy(path)
        .map_err(|e| bad(format!("not an (n, {cols}) float64 array: {e}")))?;
    if a.ncols() != cols || a.nrows() == 0 {
        return Err(bad(format!(
            "shape {:?}, expected (n > 0, {cols}) for this molecule",
            a.shape()
        )));
    }
    Ok(a)
}

/// Reads the frames of the complete MD run in `dir` as ground truth for `target`: the Cartesian
/// frames mapped through the target's own internal coordinates (the MD may have run under
/// another Z-matrix of the same molecule, e.g. the hand-written alanine table vs. the bond-graph
/// one, and its frames_z.npy would then compare different coordinates) and the torsions.
pub fn load_ground_truth(dir: &Path, target: &InternalBoltzmann) -> Result<MdFrames, MdFilesError> {
    complete_summary(dir)?;
    let transform = target.transform();
    let x_path = dir.join("frames_x.npy");
    let x = read_npy2(&x_path, 3 * transform.n_atoms())?;
    let z = transform
        .internal_of_rows(x.view())
        .map_err(|e| MdFilesError::Array {
            path: x_path,
            reason: e.to_string(),
        })?;
    let torsions = read_npy2(&dir.join("phi_psi.npy"), 2 * target.residues().len())?;
    if z.nrows() != torsions.nrows() {
        return Err(MdFilesError::NotGroundTruth {
            dir: dir.to_path_buf(),
            reason: "frames_x.npy and phi_psi.npy have different lengths".into(),
        });
    }
    Ok(MdFrames { z, torsions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::molecule::formats::dcd::read_dcd;
    use crate::molecule::md::ground_truth::{replica_exchange_of, MdSystem};

    #[test]
    fn a_short_run_is_written_read_back_and_recognised_by_its_settings() {
        let dir = std::env::temp_dir().join(format!("fab-md-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let md = ReplicaExchangeConfig {
            n_replicas: 2,
            equilibration: 0.5,
            length: 4.0,
            save_interval: 0.5,
            exchange_interval: 0.5,
            seed: 3,
            ..Default::default()
        };
        let system = MdSystem::alanine_dipeptide();
        let (frames, acceptance) = replica_exchange_of(&system, &md, &mut |_| true);
        let top = Prmtop::parse(crate::molecule::ALANINE_DIPEPTIDE_PRMTOP, "top").unwrap();
        let run = MdRun {
            settings: &md,
            molecule: "alanine-dipeptide",
            frames: &frames,
            acceptance: &acceptance,
            wall_seconds: 1.0,
            topology: &top,
        };
        let summary = write_md_run(&dir, &run).unwrap();
        // 8 frames from a fixed seed pass the ground-truth checks.
        assert_eq!(
            summary["complete"],
            serde_json::Value::Bool(true),
            "{summary}"
        );
        // The DCD holds the same frames (f32 in Å: 1e-6 nm), the PDB the first one.
        let dcd = read_dcd(&std::fs::read(dir.join(FRAMES_DCD)).unwrap(), "dcd").unwrap();
        assert_eq!(dcd.dim(), frames.x.dim());
        let worst = (&dcd - &frames.x)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, &v| m.max(v));
        assert!(worst < 1e-5, "{worst}");
        let pdb = std::fs::read_to_string(dir.join(TOPOLOGY_PDB)).unwrap();
        let first = crate::molecule::formats::pdb::read_pdb(&pdb, "pdb", Some(22)).unwrap();
        assert!((first[0][5][1] - frames.x[[0, 16]]).abs() < 1e-4);
        assert!(is_cached(&md, "alanine-dipeptide", &dir));
        {
            let other = ReplicaExchangeConfig {
                seed: 4,
                ..md.clone()
            };
            assert!(!is_cached(&other, "alanine-dipeptide", &dir));
            assert!(!is_cached(&md, "tetrapeptide", &dir));
            let target = InternalBoltzmann::alanine_dipeptide(300.0);
            let truth = load_ground_truth(&dir, &target).unwrap();
            assert_eq!(truth.z.dim(), (frames.z.nrows(), 60));
            // The table target's z of the frames are the frames' own z (same transform).
            let worst = (&truth.z - &frames.z)
                .mapv(f64::abs)
                .fold(0.0, |m: f64, &v| m.max(v));
            assert!(worst < 1e-9, "{worst}");
        }
        // A damaged array is an error naming its file; so is a directory without a run.
        std::fs::write(dir.join("frames_x.npy"), b"garbage").unwrap();
        {
            let err = load_ground_truth(&dir, &InternalBoltzmann::alanine_dipeptide(300.0))
                .unwrap_err()
                .to_string();
            assert!(err.contains("frames_x.npy"), "{err}");
        }
        let err = load_ground_truth(
            &dir.join("none"),
            &InternalBoltzmann::alanine_dipeptide(300.0),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("md.json") && err.contains("none"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
