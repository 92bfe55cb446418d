//! boltzgen's energy regularisation (spec aldp-target.md §1.4): reduced energies above `cut` are
//! compressed logarithmically and capped at `max`, so a single atom overlap cannot produce an
//! overflowing weight. FAB uses cut = 1e8 and max = 1e20 (kT), the identity for physical structures.

/// Regularisation thresholds in units of kT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyRegularizer {
    /// Above this reduced energy, u ↦ ln(u − cut + 1) + cut.
    pub cut: f64,
    /// Reduced energies are capped here before the log compression.
    pub max: f64,
}

impl Default for EnergyRegularizer {
    /// FAB's values: cut 1e8, max 1e20.
    fn default() -> Self {
        Self {
            cut: 1e8,
            max: 1e20,
        }
    }
}

impl EnergyRegularizer {
    /// The regularised reduced energy and its derivative w.r.t. u; non-finite u gives (NaN, 0).
    pub fn apply(&self, u: f64) -> (f64, f64) {
        if !u.is_finite() {
            return (f64::NAN, 0.0);
        }
        let (capped, slope) = if u < self.max {
            (u, 1.0)
        } else {
            (self.max, 0.0)
        };
        if capped < self.cut {
            (capped, slope)
        } else {
            let t = capped - self.cut + 1.0;
            (t.ln() + self.cut, slope / t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_below_the_cut_compressed_above_and_nan_for_non_finite() {
        let r = EnergyRegularizer::default();
        assert_eq!(r.apply(-70.0), (-70.0, 1.0));
        let (v, s) = r.apply(1e8 + 1e3);
        assert!((v - (1001f64.ln() + 1e8)).abs() < 1e-6 && (s - 1.0 / 1001.0).abs() < 1e-15);
        assert_eq!(r.apply(1e30).1, 0.0);
        assert!(r.apply(f64::NAN).0.is_nan() && r.apply(f64::INFINITY).0.is_nan());
    }
}
