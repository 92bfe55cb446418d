//! Writers of `fab sample`'s output formats: CSV and .npy tables for any target, PDB and DCD for
//! molecules.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Writes `out` through `<out>.<ext>.tmp`: `write` fills the temporary file, which then replaces
/// `out`. On any error the temporary file is removed (a full disk leaves nothing behind) and the
/// error names the file.
fn via_temp(out: &Path, ext: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = out.with_extension(format!("{ext}.tmp"));
    let done = write(&tmp)
        .with_context(|| format!("cannot write {}", out.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))
        });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Writes a table as CSV with a header, atomically (temporary file, then rename).
pub fn write_csv(header: &[String], rows: &ndarray::Array2<f64>, out: &Path) -> Result<()> {
    via_temp(out, "csv", |tmp| {
        let mut w = csv::Writer::from_path(tmp)?;
        w.write_record(header)?;
        for row in rows.rows() {
            w.write_record(row.iter().map(|v| v.to_string()))?;
        }
        w.flush()?;
        Ok(())
    })
}

/// Writes a table as an (n, columns) float64 .npy array, atomically, and its column names one
/// per line to `<stem>.columns.txt` (numpy arrays carry no names).
pub fn write_npy_table(header: &[String], rows: &ndarray::Array2<f64>, out: &Path) -> Result<()> {
    via_temp(out, "npy", |tmp| Ok(ndarray_npy::write_npy(tmp, rows)?))?;
    let names = out.with_extension("columns.txt");
    std::fs::write(&names, header.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", names.display()))?;
    eprintln!(
        "columns of {} ({} × {}) are listed in {}",
        out.display(),
        rows.nrows(),
        rows.ncols(),
        names.display()
    );
    Ok(())
}

/// The molecule of a run whose samples go to a molecule-only format (`out` names it in the error).
fn molecule_for_output(
    target: &fab_targets::TargetConfig,
    out: &Path,
) -> Result<fab_targets::Molecule> {
    match fab_targets::Molecule::from_config(target)? {
        Some(m) => Ok(m),
        None => bail!(
            "{} output ({}) is for molecule targets, not {target:?}",
            out.extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_uppercase(),
            out.display()
        ),
    }
}

/// Writes molecule samples as a DCD trajectory (Cartesian, Å), with `<stem>.topology.pdb` (the
/// first sample, for mdtraj/MDAnalysis/VMD) and `<stem>.weights.csv` (log q, log w and the
/// normalised weight of each frame; DCD has no place for them).
pub fn write_dcd(
    target: &fab_targets::TargetConfig,
    z: ndarray::ArrayView2<f64>,
    log_q: ndarray::ArrayView1<f64>,
    log_w: ndarray::ArrayView1<f64>,
    out: &Path,
) -> Result<()> {
    let molecule = molecule_for_output(target, out)?;
    let x = molecule.target.transform().cartesian_of_rows(z)?;
    let top = fab_targets::molecule::formats::dcd::topology_path(out);
    fab_targets::molecule::formats::dcd::write_dcd_with_topology(
        out,
        x.view(),
        0.0,
        &molecule.peptide.topology,
    )
    .with_context(|| format!("cannot write {} and {}", out.display(), top.display()))?;
    // The table of log q, log w and weight with the frame number as its "point".
    let frames = ndarray::Array2::from_shape_fn((z.nrows(), 1), |(i, _)| i as f64);
    let (mut header, table) = fab_core::sample_table::sample_table(frames.view(), log_q, log_w)?;
    header[0] = "frame".into();
    write_csv(&header, &table, &out.with_extension("weights.csv"))?;
    eprintln!(
        "wrote {} frames to {} (topology {}, weights {})",
        z.nrows(),
        out.display(),
        top.display(),
        out.with_extension("weights.csv").display()
    );
    Ok(())
}

/// Writes internal-coordinate samples of a molecule target (alanine dipeptide or a `Peptide`) as
/// a multi-model PDB file, with their importance weights (REMARKs and B-factors).
pub fn write_pdb(
    target: &fab_targets::TargetConfig,
    z: ndarray::ArrayView2<f64>,
    log_w: ndarray::ArrayView1<f64>,
    out: &Path,
) -> Result<()> {
    let molecule = molecule_for_output(target, out)?;
    let (top, transform) = (&molecule.peptide.topology, molecule.target.transform());
    let frames: Vec<Vec<[f64; 3]>> = transform.map_cartesian(z, |x| x.to_vec());
    let log_w = log_w.to_vec();
    let text = fab_targets::molecule::formats::pdb::to_pdb_weighted(top, &frames, Some(&log_w));
    via_temp(out, "pdb", |tmp| Ok(std::fs::write(tmp, &text)?))?;
    eprintln!("wrote {} conformations to {}", frames.len(), out.display());
    Ok(())
}
