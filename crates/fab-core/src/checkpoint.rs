//! Checkpoint files: named f64 tensors plus string metadata in one safetensors file, written
//! atomically (temporary file in the same directory, fsync, rename), so an interrupted write
//! never destroys the previous checkpoint.
//!
//! Reading validates every field the caller asks for and reports the file and field name on error.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayD, IxDyn};
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
        let serialised = safetensors::tensor::serialize(views, &Some(self.metadata.clone()))
            .map_err(|e| self.err("<all>", format!("cannot serialise: {e}")))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
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
        let metadata = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad("<header>", format!("corrupt safetensors data: {e:?}")))?;
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
}
