//! Checkpoint files: named f64 tensors plus string metadata in one safetensors file, written
//! atomically (temporary file in the same directory, fsync, rename), so an interrupted write
//! never destroys the previous checkpoint.
//!
//! Reading validates every field the caller asks for and reports the file and field name on error.
//! Every file carries a CRC-32 of its tensors (names, shapes, bytes) and metadata under the
//! metadata key `checksum`; reading recomputes it, so flipped bytes anywhere in the data or
//! metadata are reported instead of loaded (a damaged header fails to parse). A file without a
//! checksum is refused too: otherwise one flipped letter in the key would disable the check.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayD, Dimension, IxDyn};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{FabError, Result};

/// An in-memory checkpoint: named f64 tensors and string metadata.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Where it was read from (for error messages); empty for a new checkpoint.
    pub path: PathBuf,
    tensors: HashMap<String, ArrayD<f64>>,
    metadata: HashMap<String, String>,
}

impl Checkpoint {
    /// An empty checkpoint to fill before [`Checkpoint::write_atomic`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a tensor under `name`.
    pub fn put_tensor(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        data: Vec<f64>,
    ) -> Result<()> {
        let name = name.into();
        let array = ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| {
            FabError::shape(format!("checkpoint tensor {name}"), format!("{shape:?}"), e)
        })?;
        self.tensors.insert(name, array);
        Ok(())
    }

    /// Stores a string under `key`.
    pub fn put_meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    fn err(&self, field: &str, reason: impl Into<String>) -> FabError {
        FabError::Checkpoint {
            path: self.path.clone(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// The metadata string `key`, or an error naming the file and key.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.err(key, "missing metadata entry"))
    }

    /// Deserialises the JSON metadata entry `key`.
    pub fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_str(self.meta(key)?).map_err(|e| self.err(key, format!("malformed: {e}")))
    }

    /// Tensor `name` with exactly `shape`, or an error naming the file, tensor and both shapes.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<&ArrayD<f64>> {
        let t = self.tensors.get(name).ok_or_else(|| {
            self.err(
                name,
                "tensor missing (checkpoint from another model or run type?)",
            )
        })?;
        if t.shape() != shape {
            return Err(self.err(
                name,
                format!(
                    "shape {:?} in file, but the current model needs {:?}",
                    t.shape(),
                    shape
                ),
            ));
        }
        Ok(t)
    }

    /// Tensor `name` with exactly `shape` and only finite values (weights, optimiser moments,
    /// step sizes): a NaN or infinity in the file is reported with its position, not loaded.
    pub fn finite_tensor(&self, name: &str, shape: &[usize]) -> Result<&ArrayD<f64>> {
        let t = self.tensor(name, shape)?;
        if let Some((at, v)) = t.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(self.err(
                name,
                format!(
                    "value {v} at {:?}: weights and optimiser state must be finite",
                    at.as_array_view().to_vec()
                ),
            ));
        }
        Ok(t)
    }

    /// Tensor `name` as a 1-D array, of any length.
    pub fn tensor1(&self, name: &str) -> Result<Array1<f64>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.err(name, "tensor missing"))?;
        t.clone()
            .into_dimensionality()
            .map_err(|_| self.err(name, format!("expected 1-D, got shape {:?}", t.shape())))
    }

    /// Tensor `name` as a 2-D array with `cols` columns and any number of rows.
    pub fn tensor2(&self, name: &str, cols: usize) -> Result<Array2<f64>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.err(name, "tensor missing"))?;
        if t.ndim() != 2 || t.shape()[1] != cols {
            return Err(self.err(
                name,
                format!("expected shape (n, {cols}), got {:?}", t.shape()),
            ));
        }
        Ok(t.clone().into_dimensionality().expect("checked 2-D"))
    }

    /// Whether a tensor `name` is present.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Writes the checkpoint to `path` atomically: the old file stays intact until the new one is
    /// complete on disk.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let io = |source| FabError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        // Tensors as little-endian f64 bytes; safetensors sorts them by name.
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let data = t.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.clone(), data, t.shape().to_vec())
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(name, data, shape)| {
                TensorView::new(Dtype::F64, shape.clone(), data).map(|v| (name.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err("<all>", format!("cannot serialise: {e}")))?;
        let mut metadata = self.metadata.clone();
        metadata.remove(CHECKSUM_KEY);
        let sum = checksum(
            bytes
                .iter()
                .map(|(n, d, s)| (n.as_str(), s.as_slice(), d.as_slice())),
            &metadata,
        );
        metadata.insert(CHECKSUM_KEY.to_string(), format!("{sum:08x}"));
        let serialised = safetensors::tensor::serialize(views, &Some(metadata))
            .map_err(|e| self.err("<all>", format!("cannot serialise: {e}")))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            .suffix(PARTIAL_SUFFIX)
            .tempfile_in(dir)
            .map_err(io)?;
        tmp.write_all(&serialised).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Reads a checkpoint written by [`Checkpoint::write_atomic`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| FabError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |field: &str, reason: String| FabError::Checkpoint {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            bad(
                "<header>",
                format!("not a valid checkpoint (safetensors header): {e:?}"),
            )
        })?;
        let mut metadata = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad("<header>", format!("corrupt safetensors data: {e:?}")))?;
        let stored = metadata.remove(CHECKSUM_KEY).ok_or_else(|| {
            bad(
                CHECKSUM_KEY,
                "missing: the file is damaged, or was written by a fab-rs without checksums (before 2026-12)".into(),
            )
        })?;
        {
            let views = st.tensors();
            let sum = checksum(
                views.iter().map(|(n, v)| (n.as_str(), v.shape(), v.data())),
                &metadata,
            );
            if format!("{sum:08x}") != stored {
                return Err(bad(
                    CHECKSUM_KEY,
                    format!(
                        "stored {stored}, contents give {sum:08x}: the file is damaged (restore it from a copy, or start a new run)"
                    ),
                ));
            }
        }
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F64 {
                return Err(bad(
                    &name,
                    format!("dtype {:?}, expected F64", view.dtype()),
                ));
            }
            let data: Vec<f64> = view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect();
            let array = ArrayD::from_shape_vec(IxDyn(view.shape()), data)
                .map_err(|e| bad(&name, format!("data does not fit shape: {e}")))?;
            tensors.insert(name, array);
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
            metadata,
        })
    }
}

/// Metadata key of the checksum.
const CHECKSUM_KEY: &str = "checksum";
/// Name prefix and suffix of a checkpoint being written (see [`remove_partial_files`]).
const PARTIAL_PREFIX: &str = ".checkpoint-";
const PARTIAL_SUFFIX: &str = ".partial";

/// CRC-32 over the tensors (name, shape, bytes) in name order, then the metadata (key, value) in
/// key order, each item length-prefixed so no two different contents hash the same stream.
fn checksum<'a>(
    tensors: impl Iterator<Item = (&'a str, &'a [usize], &'a [u8])>,
    metadata: &HashMap<String, String>,
) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let mut item = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let mut tensors: Vec<_> = tensors.collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (name, shape, data) in tensors {
        item(name.as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        item(&dims);
        item(data);
    }
    let mut keys: Vec<_> = metadata.iter().collect();
    keys.sort();
    for (k, v) in keys {
        item(k.as_bytes());
        item(v.as_bytes());
    }
    h.finalize()
}

/// Removes checkpoints left half-written in `dir` by a process killed while writing (they are
/// never read). Call it only while no other process writes checkpoints there (under the run
/// directory's lock). Returns how many were removed.
pub fn remove_partial_files(dir: &Path) -> Result<usize> {
    let io = |source| FabError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PARTIAL_PREFIX) && name.ends_with(PARTIAL_SUFFIX) {
            std::fs::remove_file(entry.path()).map_err(|source| FabError::Io {
                path: entry.path(),
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let mut ck = Checkpoint::new();
        ck.put_tensor(
            "layer0.w",
            &[2, 3],
            (0..6).map(|v| v as f64 * 0.5).collect(),
        )
        .unwrap();
        ck.put_meta("state", "{\"iteration\":3}");
        ck.write_atomic(&path).unwrap();

        let back = Checkpoint::read(&path).unwrap();
        assert_eq!(back.tensor("layer0.w", &[2, 3]).unwrap()[[1, 2]], 2.5);
        assert_eq!(back.meta("state").unwrap(), "{\"iteration\":3}");
        let msg = back.tensor("layer0.w", &[3, 3]).unwrap_err().to_string();
        assert!(
            msg.contains("ck.safetensors") && msg.contains("layer0.w") && msg.contains("[3, 3]"),
            "{msg}"
        );
        assert!(back
            .tensor("layer1.w", &[1])
            .unwrap_err()
            .to_string()
            .contains("layer1.w"));

        // A truncated file is reported, not a panic; the good file can be rewritten over it.
        let bytes = std::fs::read(&path).unwrap();
        let corrupt = dir.path().join("corrupt.safetensors");
        std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
        let msg = Checkpoint::read(&corrupt).unwrap_err().to_string();
        assert!(msg.contains("corrupt.safetensors"), "{msg}");
        std::fs::write(&corrupt, b"garbage").unwrap();
        assert!(Checkpoint::read(&corrupt).is_err());
    }

    #[test]
    fn any_flipped_byte_outside_the_header_padding_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let mut ck = Checkpoint::new();
        ck.put_tensor("w", &[4], vec![1.0, -2.0, 0.5, 3.25])
            .unwrap();
        ck.put_tensor("b", &[2], vec![0.0, 7.0]).unwrap();
        ck.put_meta("trainer", "{\"iteration\":12}");
        ck.write_atomic(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Every single-bit flip (at one bit per byte, cycling over bits) either fails to parse
        // or fails the checksum; none loads.
        let mut loaded = Vec::new();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << (i % 8);
            let p = dir.path().join("flipped.safetensors");
            std::fs::write(&p, &bad).unwrap();
            if Checkpoint::read(&p).is_ok() {
                loaded.push(i);
            }
        }
        // The only harmless flips are inside the JSON header's whitespace padding.
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = &bytes[8..8 + header_len];
        for &i in &loaded {
            assert!(
                (8..8 + header_len).contains(&i) && header[i - 8] == b' ',
                "flipped byte {i} loaded silently"
            );
        }
        let msg = {
            let mut bad = bytes.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            Checkpoint::read(&path).unwrap_err().to_string()
        };
        assert!(msg.contains("checksum") && msg.contains("damaged"), "{msg}");
    }

    #[test]
    fn partial_files_of_killed_writers_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".checkpoint-abc123.partial"), b"half").unwrap();
        std::fs::write(dir.path().join("metrics.csv"), b"iteration\n").unwrap();
        let mut ck = Checkpoint::new();
        ck.put_meta("k", "v");
        ck.write_atomic(&dir.path().join("checkpoint.safetensors"))
            .unwrap();
        assert_eq!(remove_partial_files(dir.path()).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["checkpoint.safetensors", "metrics.csv"]);
    }
}
