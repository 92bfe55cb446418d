//! Importance-weighted samples as a table for files (CSV, .npy): one row per sample with its
//! point, log q, log w and normalised weight, so a user can reweight without recomputing.

use ndarray::{s, Array2, ArrayView1, ArrayView2};

use crate::weights::normalised_weights;
use crate::{FabError, Result};

/// Column names and rows of the table of samples `x` with their `log_q` and `log_w`: columns
/// `x0…`, `log_q`, `log_w`, `weight` (normalised to sum 1; NaN or infinite log weights get 0).
/// `log_q` and `log_w` of another length than the batch are an error.
pub fn sample_table(
    x: ArrayView2<f64>,
    log_q: ArrayView1<f64>,
    log_w: ArrayView1<f64>,
) -> Result<(Vec<String>, Array2<f64>)> {
    for (what, len) in [("log_q", log_q.len()), ("log_w", log_w.len())] {
        if len != x.nrows() {
            return Err(FabError::shape(
                format!("sample table, {what}"),
                format!("{} entries (one per sample)", x.nrows()),
                len,
            ));
        }
    }
    let mut names: Vec<String> = (0..x.ncols()).map(|j| format!("x{j}")).collect();
    names.extend(["log_q", "log_w", "weight"].map(String::from));
    let weights = normalised_weights(log_w);
    let d = x.ncols();
    let mut rows = Array2::zeros((x.nrows(), d + 3));
    rows.slice_mut(s![.., ..d]).assign(&x);
    rows.column_mut(d).assign(&log_q);
    rows.column_mut(d + 1).assign(&log_w);
    rows.column_mut(d + 2).assign(&weights);
    Ok((names, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rows_hold_the_point_its_densities_and_the_normalised_weight() {
        let x = array![[1.0, 2.0], [3.0, 4.0]];
        let (names, rows) = sample_table(
            x.view(),
            array![-1.0, -2.0].view(),
            array![0.0, 3f64.ln()].view(),
        )
        .unwrap();
        assert_eq!(names, ["x0", "x1", "log_q", "log_w", "weight"]);
        assert_eq!(rows.row(1).to_vec()[..3], [3.0, 4.0, -2.0]);
        assert!((rows[[0, 4]] - 0.25).abs() < 1e-12 && (rows[[1, 4]] - 0.75).abs() < 1e-12);
        let short = sample_table(x.view(), array![1.0].view(), array![0.0, 0.0].view());
        assert!(short.unwrap_err().to_string().contains("log_q"));
    }
}
