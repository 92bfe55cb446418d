//! DCD trajectories (the CHARMM binary layout OpenMM writes, read by mdtraj, MDAnalysis, VMD and
//! PyMOL): conformations as little-endian Fortran records of f32 x, y and z in Å, without a unit
//! cell. fab writes samples and MD frames in it; a topology comes from a PDB file of the same
//! molecule (`fab sample --out top.pdb -n 1`, or the structure of the run).
//!
//! Layout (each record framed by its byte length as i32 before and after):
//! 1. 84 bytes: `CORD`, 9 i32 (frames, first step, interval, last step, 5 zeros), the time step
//!    as f32 in AKMA units, 10 i32 (no unit cell, 8 zeros, CHARMM version 24);
//! 2. the title block: i32 line count (2) and two 80-byte lines;
//! 3. i32 atom count;
//! 4. per frame three records of N f32: all x, all y, all z.
//!
//! No crate on crates.io writes DCD without pulling in a molecular-analysis framework with C/C++
//! build dependencies (molar: GROMACS bindings and 130 crates), so this is written here: the
//! format is four record kinds.

use std::io::Write;

use ndarray::{Array2, ArrayView2};

/// AKMA time unit in ps (CHARMM's time step unit, as OpenMM converts).
const AKMA_PS: f64 = 0.04888821;
/// nm → Å.
const ANGSTROM_PER_NM: f64 = 10.0;

/// A DCD file that cannot be read; names the file and the record.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct DcdError {
    /// The file (or other source) that was read.
    pub origin: String,
    /// What is wrong, and where.
    pub reason: String,
}

/// Writes `frames` (one conformation per row: x₀, y₀, z₀, x₁, … in nm) as a DCD trajectory with
/// time step `dt_ps` between frames (0 for samples that are not a time series).
pub fn write_dcd<W: Write>(mut out: W, frames: ArrayView2<f64>, dt_ps: f64) -> std::io::Result<()> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    if !frames.ncols().is_multiple_of(3) {
        return Err(invalid(format!(
            "DCD frames need 3 columns per atom, got {}",
            frames.ncols()
        )));
    }
    let n_atoms = frames.ncols() / 3;
    let n_frames = i32::try_from(frames.nrows())
        .map_err(|_| invalid(format!("{} frames do not fit a DCD file", frames.nrows())))?;
    let record = |out: &mut W, body: &[u8]| -> std::io::Result<()> {
        let len = (body.len() as i32).to_le_bytes();
        out.write_all(&len)?;
        out.write_all(body)?;
        out.write_all(&len)
    };
    let ints = |v: &[i32]| v.iter().flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>();

    // 1. Header: frame count, first step 0, interval 1, last step = frames.
    let mut header = b"CORD".to_vec();
    header.extend(ints(&[n_frames, 0, 1, n_frames, 0, 0, 0, 0, 0]));
    header.extend(((dt_ps / AKMA_PS) as f32).to_le_bytes());
    header.extend(ints(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 24]));
    record(&mut out, &header)?;
    // 2. Title.
    let mut title = ints(&[2]);
    for line in [
        "Created by fab-rs",
        "conformations in Angstrom, no unit cell",
    ] {
        let mut l = [b' '; 80];
        l[..line.len()].copy_from_slice(line.as_bytes());
        title.extend(l);
    }
    record(&mut out, &title)?;
    // 3. Atom count.
    record(&mut out, &ints(&[n_atoms as i32]))?;
    // 4. Frames.
    let mut body = Vec::with_capacity(4 * n_atoms);
    for row in frames.rows() {
        for c in 0..3 {
            body.clear();
            for a in 0..n_atoms {
                body.extend(((row[3 * a + c] * ANGSTROM_PER_NM) as f32).to_le_bytes());
            }
            record(&mut out, &body)?;
        }
    }
    Ok(())
}

/// Reads the frames of a DCD trajectory written by fab, OpenMM or CHARMM (little-endian, with or
/// without unit-cell records) as rows x₀, y₀, z₀, x₁, … in nm. `origin` names the file in errors.
pub fn read_dcd(bytes: &[u8], origin: &str) -> Result<Array2<f64>, DcdError> {
    let err = |reason: String| DcdError {
        origin: origin.into(),
        reason,
    };
    let mut records = Records {
        bytes,
        pos: 0,
        origin,
    };
    let i32_at = |b: &[u8], k: usize| {
        i32::from_le_bytes([b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]])
    };
    let header = records.next("header")?;
    if header.len() != 84 || &header[..4] != b"CORD" {
        return Err(err("header: not a DCD file (no 84-byte CORD record)".into()));
    }
    // Words after CORD: [0] frames … [10] unit-cell flag (word 11 of the record).
    let has_cell = i32_at(&header[4..], 10) != 0;
    records.next("title")?;
    let atoms = records.next("atom count")?;
    if atoms.len() != 4 || i32_at(atoms, 0) <= 0 {
        return Err(err("atom count: not one positive integer".into()));
    }
    let n_atoms = i32_at(atoms, 0) as usize;
    let mut rows: Vec<f64> = Vec::new();
    let mut n_frames = 0usize;
    while records.pos < bytes.len() {
        let frame = n_frames + 1;
        if has_cell {
            records.next(&format!("frame {frame}, unit cell"))?;
        }
        let start = rows.len();
        rows.resize(start + 3 * n_atoms, 0.0);
        for (c, axis) in ["x", "y", "z"].iter().enumerate() {
            let body = records.next(&format!("frame {frame}, {axis}"))?;
            if body.len() != 4 * n_atoms {
                return Err(err(format!(
                    "frame {frame}, {axis}: {} bytes, expected {} for {n_atoms} atoms",
                    body.len(),
                    4 * n_atoms
                )));
            }
            for a in 0..n_atoms {
                let v = f32::from_le_bytes([
                    body[4 * a],
                    body[4 * a + 1],
                    body[4 * a + 2],
                    body[4 * a + 3],
                ]);
                rows[start + 3 * a + c] = f64::from(v) / ANGSTROM_PER_NM;
            }
        }
        n_frames += 1;
    }
    Array2::from_shape_vec((n_frames, 3 * n_atoms), rows).map_err(|e| err(format!("frames: {e}")))
}

/// The Fortran records of a DCD file, read one after the other.
struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    origin: &'a str,
}

impl<'a> Records<'a> {
    /// The next record's body, after checking that its length frames it on both sides.
    fn next(&mut self, what: &str) -> Result<&'a [u8], DcdError> {
        let (bytes, pos) = (self.bytes, self.pos);
        let err = |reason: String| DcdError {
            origin: self.origin.into(),
            reason: format!("{what}: {reason}"),
        };
        let word = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at + 4)?;
            usize::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
        };
        let len = word(pos).ok_or_else(|| err(format!("file ends at byte {pos}")))?;
        let body = bytes
            .get(pos + 4..pos + 4 + len)
            .ok_or_else(|| err(format!("record of {len} bytes cut at byte {pos}")))?;
        if word(pos + 4 + len) != Some(len) {
            return Err(err(format!(
                "record at byte {pos} is not framed by its length {len} (not a little-endian DCD file?)"
            )));
        }
        self.pos += 8 + len;
        Ok(body)
    }
}

/// Writes `frames` (rows of nm, as [`write_dcd`]) to `path` atomically: a temporary file in the
/// same directory renamed over the target, so an interrupted write never leaves half a trajectory.
pub fn write_dcd_file(
    path: &std::path::Path,
    frames: ArrayView2<f64>,
    dt_ps: f64,
) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trajectory.dcd".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let file = std::fs::File::create(&tmp)?;
    let mut w = std::io::BufWriter::new(file);
    write_dcd(&mut w, frames, dt_ps)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The path of the topology PDB that goes with the trajectory at `path`: `<stem>.topology.pdb`.
pub fn topology_path(path: &std::path::Path) -> std::path::PathBuf {
    path.with_extension("topology.pdb")
}

/// Writes conformations `frames` (rows of nm) of the molecule `topology` as a DCD trajectory
/// at `path` and its first frame as [`topology_path`], the PDB that mdtraj, MDAnalysis and VMD
/// need to read it (`mdtraj.load_dcd(path, top=...)`). Both are written atomically.
pub fn write_dcd_with_topology(
    path: &std::path::Path,
    frames: ArrayView2<f64>,
    dt_ps: f64,
    topology: &crate::molecule::Prmtop,
) -> std::io::Result<()> {
    if frames.ncols() != 3 * topology.n_atoms() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} columns for a molecule of {} atoms",
                frames.ncols(),
                topology.n_atoms()
            ),
        ));
    }
    write_dcd_file(path, frames, dt_ps)?;
    let first: Vec<Vec<[f64; 3]>> = frames
        .rows()
        .into_iter()
        .take(1)
        .map(|r| r.to_vec().chunks(3).map(|c| [c[0], c[1], c[2]]).collect())
        .collect();
    let pdb = topology_path(path);
    let tmp = pdb.with_extension("pdb.tmp");
    std::fs::write(
        &tmp,
        crate::molecule::formats::pdb::to_pdb(topology, &first),
    )?;
    std::fs::rename(&tmp, &pdb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Array2<f64> {
        // Three frames of the shipped dipeptide structure, shifted apart.
        let x0 =
            crate::molecule::formats::crd::parse_crd(crate::molecule::ALANINE_DIPEPTIDE_CRD, "crd")
                .unwrap();
        let flat: Vec<f64> = x0.iter().flatten().copied().collect();
        let mut a = Array2::zeros((3, flat.len()));
        for (i, mut row) in a.rows_mut().into_iter().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = flat[j] + 0.1 * i as f64 - 0.05 * (j % 3) as f64;
            }
        }
        a
    }

    #[test]
    fn a_written_trajectory_reads_back_to_f32_precision() {
        let x = frames();
        let mut bytes = Vec::new();
        write_dcd(&mut bytes, x.view(), 0.002).unwrap();
        // 84 + title (4 + 160) + atom count 4, each framed by 8 bytes; 3 × 3 records of 22 f32.
        assert_eq!(bytes.len(), 92 + 172 + 12 + 9 * (8 + 4 * 22));
        assert_eq!(&bytes[4..8], b"CORD");
        assert_eq!(i32::from_le_bytes(bytes[8..12].try_into().unwrap()), 3);
        let back = read_dcd(&bytes, "t.dcd").unwrap();
        assert_eq!(back.dim(), x.dim());
        // f32 of values below 10 Å: better than 1e-6 nm.
        let worst = (&back - &x).mapv(f64::abs).fold(0.0, |m: f64, &v| m.max(v));
        assert!(worst < 1e-6, "{worst}");
    }

    #[test]
    fn damaged_files_are_errors_naming_the_file_and_record() {
        let mut bytes = Vec::new();
        write_dcd(&mut bytes, frames().view(), 0.0).unwrap();
        let cut = read_dcd(&bytes[..bytes.len() - 10], "cut.dcd")
            .unwrap_err()
            .to_string();
        assert!(
            cut.contains("cut.dcd") && cut.contains("frame 3, z"),
            "{cut}"
        );
        let not = read_dcd(b"HELLO WORLD, this is no trajectory", "x.dcd")
            .unwrap_err()
            .to_string();
        assert!(not.contains("x.dcd") && not.contains("header"), "{not}");
        let mut swapped = bytes.clone();
        swapped[0..4].copy_from_slice(&84i32.to_be_bytes());
        assert!(read_dcd(&swapped, "be.dcd").is_err());
        // A frame of the wrong width.
        assert!(write_dcd(Vec::new(), Array2::zeros((1, 4)).view(), 0.0).is_err());
    }

    #[test]
    fn an_empty_trajectory_has_no_frames() {
        let mut bytes = Vec::new();
        write_dcd(&mut bytes, Array2::zeros((0, 66)).view(), 0.0).unwrap();
        assert_eq!(read_dcd(&bytes, "e.dcd").unwrap().dim(), (0, 66));
    }
}
