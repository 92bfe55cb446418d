//! Reader for Amber ASCII coordinate files (.crd / .inpcrd): a title line, the atom count, then
//! coordinates in Å, six 12-character fields per line. Returned in nm.

use crate::molecule::formats::prmtop::PrmtopError;

/// Positions (nm) from crd text; errors name `origin`.
pub fn parse_crd(text: &str, origin: &str) -> Result<Vec<[f64; 3]>, PrmtopError> {
    let bad = |reason: String| PrmtopError::Malformed {
        origin: origin.into(),
        section: "coordinates".into(),
        reason,
    };
    let mut lines = text.lines();
    lines.next().ok_or_else(|| bad("empty file".into()))?;
    let n: usize = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("second line must start with the atom count".into()))?;
    let mut values = Vec::with_capacity(3 * n);
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        for field in chars.chunks(12) {
            let f: String = field.iter().collect();
            if f.trim().is_empty() {
                continue;
            }
            values.push(
                f.trim()
                    .parse::<f64>()
                    .map_err(|_| bad(format!("`{}` is not a number", f.trim())))?,
            );
        }
        if values.len() >= 3 * n {
            break;
        }
    }
    if values.len() < 3 * n {
        return Err(bad(format!(
            "expected {} values for {n} atoms, found {} (truncated file?)",
            3 * n,
            values.len()
        )));
    }
    Ok(values[..3 * n]
        .chunks(3)
        .map(|c| [c[0] / 10.0, c[1] / 10.0, c[2] / 10.0])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::molecule::{ForceField, ALANINE_DIPEPTIDE_CRD};

    #[test]
    fn shipped_crd_has_the_reference_energy() {
        let x = parse_crd(ALANINE_DIPEPTIDE_CRD, "alanine-dipeptide.crd").unwrap();
        assert_eq!(x.len(), 22);
        let e = ForceField::alanine_dipeptide()
            .energy_and_grad(&x, &mut vec![[0.0; 3]; 22])
            .unwrap()
            .total();
        // aldp-target.md: E(crd) = −138.96968726934978 kJ/mol (OpenMM 8.6.1 Reference).
        assert!((e - -138.96968726934978).abs() < 1e-6, "{e}");
        let err = parse_crd("t\n    22\n   1.0000000   2.0000000\n", "short.crd")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("short.crd") && err.contains("truncated"),
            "{err}"
        );
    }
}
