//! The error a command returns when a signal stopped it after it kept what it had.

use std::path::Path;

/// A run stopped by a signal after writing what it had (a training checkpoint, the MD frames so
/// far): exit code 130, so scripts can tell it from a finished run.
#[derive(Debug)]
pub struct Interrupted {
    message: String,
}

impl Interrupted {
    /// Training stopped after its checkpoint at `iteration`.
    pub fn training(run_dir: &Path, iteration: u64) -> Self {
        Self {
            message: format!(
                "training interrupted at iteration {iteration}; continue with `fab train --resume` on {}",
                run_dir.display()
            ),
        }
    }

    /// `fab md` stopped with `frames` frames written to `out` (marked incomplete).
    pub fn md(out: &Path, frames: usize) -> Self {
        Self {
            message: format!(
                "MD interrupted after {frames} frames; {} holds them, marked incomplete (run `fab md` again to redo it)",
                out.display()
            ),
        }
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}
