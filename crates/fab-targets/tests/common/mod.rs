//! Helpers shared by the molecule tests: reading OpenMM reference JSON and a log-determinant for
//! finite-difference Jacobians.
#![allow(dead_code)] // each test file uses a subset

use ndarray::Array2;
use serde_json::Value;

/// A JSON array of [x, y, z] triples (positions or forces).
pub fn triples(v: &Value) -> Vec<[f64; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = p.as_array().unwrap();
            [
                p[0].as_f64().unwrap(),
                p[1].as_f64().unwrap(),
                p[2].as_f64().unwrap(),
            ]
        })
        .collect()
}

/// (label, positions in nm, the whole entry) of every conformation of an OpenMM reference file.
pub fn conformations(text: &str) -> Vec<(String, Vec<[f64; 3]>, Value)> {
    let data: Value = serde_json::from_str(text).unwrap();
    data["conformations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["label"].as_str().unwrap().to_string(),
                triples(&c["positions_nm"]),
                c.clone(),
            )
        })
        .collect()
}

/// log|det A| by Gaussian elimination with partial pivoting.
pub fn log_abs_det(mut a: Array2<f64>) -> f64 {
    let n = a.nrows();
    let mut ld = 0.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[[i, c]].abs().total_cmp(&a[[j, c]].abs()))
            .unwrap();
        if p != c {
            for k in 0..n {
                a.swap([p, k], [c, k]);
            }
        }
        let piv = a[[c, c]];
        ld += piv.abs().ln();
        for i in c + 1..n {
            let f = a[[i, c]] / piv;
            for k in c..n {
                a[[i, k]] -= f * a[[c, k]];
            }
        }
    }
    ld
}
