//! Reading a run's metrics.csv (one row per logged iteration, written by the training observer)
//! back as numeric columns, with errors naming the file, the row and the column.

use anyhow::{Context, Result};
use fab_core::learning_curve::LearningCurve;
use std::path::{Path, PathBuf};

/// The numeric columns of one metrics.csv.
pub struct MetricsCsv {
    path: PathBuf,
    headers: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl MetricsCsv {
    /// Reads `path`; cells that do not parse as numbers (e.g. an empty cell) read as NaN.
    pub fn read(path: &Path) -> Result<Self> {
        let mut reader = csv::Reader::from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers = reader
            .headers()
            .with_context(|| format!("{}: no header row", path.display()))?
            .iter()
            .map(str::to_string)
            .collect();
        let rows = reader
            .records()
            .enumerate()
            .map(|(line, rec)| {
                let rec =
                    rec.with_context(|| format!("{}: malformed row {}", path.display(), line + 2))?;
                Ok(rec
                    .iter()
                    .map(|cell| cell.parse().unwrap_or(f64::NAN))
                    .collect())
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            headers,
            rows,
        })
    }

    /// True when the file has a column called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h == name)
    }

    /// The column called `name`, one value per row.
    pub fn column(&self, name: &str) -> Result<Vec<f64>> {
        let c = self
            .headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column `{name}`", self.path.display()))?;
        Ok(self
            .rows
            .iter()
            .map(|r| r.get(c).copied().unwrap_or(f64::NAN))
            .collect())
    }

    /// Column `name` against the training wall time (column `wall_seconds`), each row with its
    /// iteration number (column `iteration`), so that windows count iterations whatever
    /// `log_every` was.
    pub fn curve(&self, name: &str) -> Result<LearningCurve> {
        let iterations: Vec<u64> = self
            .column("iteration")?
            .iter()
            .map(|&i| {
                if i.is_finite() && i >= 0.0 {
                    i as u64
                } else {
                    0
                }
            })
            .collect();
        LearningCurve::new(self.column("wall_seconds")?, self.column(name)?)
            .and_then(|c| c.with_iterations(iterations))
            .with_context(|| format!("{}: column `{name}`", self.path.display()))
    }
}
