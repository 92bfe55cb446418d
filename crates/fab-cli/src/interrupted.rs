//! The error a training run returns when a signal stopped it after its checkpoint.

use std::path::PathBuf;

/// A training run stopped by a signal after writing its checkpoint (exit code 130, so scripts
/// can tell it from a finished run).
#[derive(Debug)]
pub struct Interrupted {
    /// The run directory, to resume.
    pub run_dir: PathBuf,
    /// Iterations completed.
    pub iteration: u64,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training interrupted at iteration {}; continue with `fab train --resume` on {}",
            self.iteration,
            self.run_dir.display()
        )
    }
}

impl std::error::Error for Interrupted {}
