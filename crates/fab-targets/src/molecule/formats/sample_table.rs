//! Samples of a molecule target as a table a chemist can open: per sample the normalised internal
//! coordinates the flow works in, every atom's Cartesian position (nm), φ/ψ of each residue (rad),
//! log q, the log importance weight and the normalised weight.

use ndarray::{s, Array2, ArrayView1, ArrayView2};

use crate::molecule::InternalBoltzmann;

/// Column names and rows (one per sample) of the table for samples `z` (internal coordinates)
/// of `target` with their `log_q` and `log_w`.
///
/// Columns: `z0…` (normalised internal coordinates), `atom{k}_x|y|z` (nm, atoms in the
/// topology's order), `phi_{r}`, `psi_{r}` (residues numbered from 1), `log_q`, `log_w`,
/// `weight` (normalised: sums to 1; NaN or infinite log weights get weight 0). Rows of another
/// width than the target's dimension, or `log_q`/`log_w` of another length, are an error.
pub fn molecule_sample_table(
    target: &InternalBoltzmann,
    z: ArrayView2<f64>,
    log_q: ArrayView1<f64>,
    log_w: ArrayView1<f64>,
) -> fab_core::Result<(Vec<String>, Array2<f64>)> {
    let transform = target.transform();
    fab_core::density::check_dim("samples of the molecule", &z, transform.dim())?;
    // The generic table checks the lengths of log q and log w.
    fab_core::sample_table::sample_table(z, log_q, log_w)?;
    let (n, d, atoms) = (z.nrows(), z.ncols(), transform.n_atoms());
    let residues = target.residues().len();
    let mut names: Vec<String> = (0..d).map(|j| format!("z{j}")).collect();
    for k in 0..atoms {
        names.extend(["x", "y", "z"].map(|c| format!("atom{k}_{c}")));
    }
    for r in 1..=residues {
        names.extend([format!("phi_{r}"), format!("psi_{r}")]);
    }
    names.extend(["log_q", "log_w", "weight"].map(String::from));

    let cartesian = transform.map_cartesian(z, |x| x.concat());
    let torsions = target.backbone_torsions(z);
    let weights = fab_core::weights::normalised_weights(log_w);
    let mut rows = Array2::zeros((n, names.len()));
    for i in 0..n {
        let mut row = rows.row_mut(i);
        row.slice_mut(s![..d]).assign(&z.row(i));
        row.slice_mut(s![d..d + 3 * atoms])
            .assign(&ArrayView1::from(&cartesian[i]));
        let t = d + 3 * atoms;
        row.slice_mut(s![t..t + 2 * residues])
            .assign(&torsions.row(i));
        let last = t + 2 * residues;
        row[last] = log_q[i];
        row[last + 1] = log_w[i];
        row[last + 2] = weights[i];
    }
    Ok((names, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::molecule::numeric::vec3::torsion;
    use ndarray::Array1;

    #[test]
    fn the_table_holds_positions_torsions_and_weights_of_each_sample() {
        let target = InternalBoltzmann::alanine_dipeptide(300.0);
        let mut z = Array2::zeros((3, 60));
        z[[1, 17]] = 0.7; // turn a dihedral so the rows differ
        z[[2, 5]] = -0.3;
        let log_q = Array1::from(vec![-1.0, -2.0, -3.0]);
        let log_w = Array1::from(vec![0.0, 2f64.ln(), f64::NAN]);
        let (names, rows) =
            molecule_sample_table(&target, z.view(), log_q.view(), log_w.view()).unwrap();
        assert_eq!(names.len(), 60 + 66 + 2 + 3);
        assert_eq!(rows.dim(), (3, names.len()));
        let col = |name: &str| names.iter().position(|n| n == name).unwrap();
        // Weights 1 : 2 : 0 → 1/3, 2/3, 0; log q and log w as given.
        assert!((rows[[0, col("weight")]] - 1.0 / 3.0).abs() < 1e-12);
        assert!((rows[[1, col("weight")]] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(rows[[2, col("weight")]], 0.0);
        assert_eq!(rows[[1, col("log_q")]], -2.0);
        // φ of the table is the dihedral of its four atoms' positions in the same row.
        let [a, b, c, d] = target.residues()[0].phi;
        for i in 0..3 {
            let p = |k: usize| {
                let j = col(&format!("atom{k}_x"));
                [rows[[i, j]], rows[[i, j + 1]], rows[[i, j + 2]]]
            };
            let phi = torsion(p(a), p(b), p(c), p(d));
            let got = rows[[i, col("phi_1")]];
            let diff = (phi - got + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
                - std::f64::consts::PI;
            assert!(diff.abs() < 1e-9, "row {i}: {phi} vs {got}");
            assert_eq!(rows[[i, col("z17")]], z[[i, 17]]);
        }
        // Wrong widths and lengths are errors.
        let short = log_q.slice(ndarray::s![..2]);
        assert!(molecule_sample_table(&target, z.view(), short, log_w.view()).is_err());
        let narrow = z.slice(ndarray::s![.., ..59]);
        assert!(molecule_sample_table(&target, narrow, log_q.view(), log_w.view()).is_err());
    }
}
