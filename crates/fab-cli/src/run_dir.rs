//! A training run's directory kept consistent with its checkpoint: an exclusive lock while one
//! `fab train` writes into it, and on resume the logs cut back to the checkpoint's iteration.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Name of the lock file inside a run directory.
const LOCK_FILE: &str = ".lock";

/// Holds the run directory's exclusive lock until dropped (the OS releases it with the file,
/// also when the process is killed).
pub struct RunLock {
    _file: File,
}

/// Takes the exclusive lock of `run_dir`, or fails at once if another process holds it.
pub fn lock(run_dir: &Path) -> Result<RunLock> {
    let path = run_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => bail!(
            "{} is in use by another `fab train` (it holds {}); wait for it to finish, or train into another output.dir",
            run_dir.display(),
            path.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Cuts `metrics.csv` and `eval.jsonl` in `run_dir` back to the rows of iterations up to
/// `iteration` (the checkpoint being resumed), dropping rows torn by a crash or a full disk, so
/// the resumed run appends exactly the rows that follow.
pub fn cut_logs(run_dir: &Path, iteration: u64) -> Result<()> {
    let metrics = run_dir.join("metrics.csv");
    if let Some(text) = read_if_exists(&metrics)? {
        let mut lines = complete_lines(&text);
        match lines.next() {
            Some(header) => {
                let expected = metrics_header()?;
                if header != expected {
                    anyhow::bail!(
                        "{} does not start with a training log's header (`{expected}`): it is not this run's log, and rows appended to it could not be read; move it away to resume (the checkpoint is intact)",
                        metrics.display()
                    );
                }
                let fields = header.split(',').count();
                let rows = lines.filter(|l| {
                    l.split(',').count() == fields
                        && leading_iteration(l.split(',').next()).is_some_and(|i| i <= iteration)
                });
                let kept: Vec<&str> = std::iter::once(header).chain(rows).collect();
                rewrite(&metrics, &kept)?;
            }
            // Not even a whole header: start the file afresh (with its header).
            None => std::fs::remove_file(&metrics)
                .with_context(|| format!("cannot remove {}", metrics.display()))?,
        }
    }
    let evals = run_dir.join("eval.jsonl");
    if let Some(text) = read_if_exists(&evals)? {
        let kept: Vec<&str> = complete_lines(&text)
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("iteration").and_then(|i| i.as_u64()))
                    .is_some_and(|i| i <= iteration)
            })
            .collect();
        rewrite(&evals, &kept)?;
    }
    Ok(())
}

/// The header line `fab train` writes to metrics.csv (the fields of one logged iteration).
fn metrics_header() -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(fab_core::train::IterInfo::default())?;
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(text.lines().next().unwrap_or_default().to_string())
}

fn read_if_exists(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The lines of `text` that end in a newline (a last line without one was torn mid-write).
fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().filter(|l| !l.is_empty())
}

fn leading_iteration(field: Option<&str>) -> Option<u64> {
    field?.trim().parse().ok()
}

/// Replaces `path` by `lines` atomically (temporary file, then rename).
fn rewrite(path: &Path, lines: &[&str]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write next to {}", path.display()))?;
    for line in lines {
        writeln!(tmp, "{line}").with_context(|| format!("cannot rewrite {}", path.display()))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rewrite {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_cut_to_the_checkpoint_and_torn_rows_dropped() {
        let dir = tempfile::tempdir().unwrap();
        // Rows of as many fields as the header (the values do not matter here).
        let header = metrics_header().unwrap();
        let fields = header.split(',').count();
        let row = |it: u64| format!("{it}{}", ",1.5".repeat(fields - 1));
        let metrics = format!(
            "{header}\n{}\n{}\n{}\n{}\n4",
            row(10),
            row(20),
            row(30),
            row(40)
        );
        std::fs::write(dir.path().join("metrics.csv"), metrics).unwrap();
        let evals = "{\"iteration\":20,\"ess\":0.1}\n{\"iteration\":40,\"ess\":0.2}\n{\"itera";
        std::fs::write(dir.path().join("eval.jsonl"), evals).unwrap();
        cut_logs(dir.path(), 30).unwrap();
        let m = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(
            m,
            format!("{header}\n{}\n{}\n{}\n", row(10), row(20), row(30))
        );
        let e = std::fs::read_to_string(dir.path().join("eval.jsonl")).unwrap();
        assert_eq!(e, "{\"iteration\":20,\"ess\":0.1}\n");
        // A row torn inside the header leaves no file, so the resumed run writes a fresh header.
        std::fs::write(dir.path().join("metrics.csv"), "iterat").unwrap();
        cut_logs(dir.path(), 30).unwrap();
        assert!(!dir.path().join("metrics.csv").exists());
    }

    #[test]
    fn a_locked_run_directory_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let msg = match lock(dir.path()) {
            Ok(_) => panic!("second lock granted"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("in use by another"), "{msg}");
        drop(held);
        assert!(lock(dir.path()).is_ok());
    }
}
