//! The number type of the force-field kernels: one conformation (`f64`) or four conformations at
//! once in SIMD lanes ([`X4`], `wide::f64x4`: AVX when the build targets it, two SSE2 halves
//! otherwise). The kernels in bonded.rs, nonbonded.rs, gb_obc.rs and pair_geometry.rs are written
//! once over [`Lane`]; every lane runs the same arithmetic on its own conformation, and branches
//! become masked selects, so a lane's result equals the scalar result up to the last bits of
//! `wide`'s ln/exp (tests/aldp_forcefield.rs compares them).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

pub use wide::f64x4 as X4;

/// Arithmetic the force-field kernels need, on one value or on a SIMD vector of values.
pub trait Lane:
    Copy
    + Debug
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// Result of a lane-wise comparison.
    type Mask: Copy;
    /// Number of conformations in one value.
    const WIDTH: usize;
    /// `v` in every lane.
    fn splat(v: f64) -> Self;
    /// Lane-wise √.
    fn sqrt(self) -> Self;
    /// Lane-wise natural logarithm.
    fn ln(self) -> Self;
    /// Lane-wise eˣ.
    fn exp(self) -> Self;
    /// Lane-wise |x|.
    fn abs(self) -> Self;
    /// Lane-wise (sin x, cos x).
    fn sin_cos(self) -> (Self, Self);
    /// Lane-wise tanh.
    fn tanh(self) -> Self;
    /// Lane-wise atan2(self, x).
    fn atan2(self, x: Self) -> Self;
    /// Lane-wise maximum.
    fn max(self, o: Self) -> Self;
    /// Lane-wise minimum.
    fn min(self, o: Self) -> Self;
    /// Lane-wise self < o.
    fn lt(self, o: Self) -> Self::Mask;
    /// Lane-wise self > o.
    fn gt(self, o: Self) -> Self::Mask;
    /// Lane-wise `if m { a } else { b }`.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
}

impl Lane for f64 {
    type Mask = bool;
    const WIDTH: usize = 1;
    #[inline(always)]
    fn splat(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn sin_cos(self) -> (Self, Self) {
        f64::sin_cos(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn atan2(self, x: Self) -> Self {
        f64::atan2(self, x)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        f64::max(self, o)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        f64::min(self, o)
    }
    #[inline(always)]
    fn lt(self, o: Self) -> bool {
        self < o
    }
    #[inline(always)]
    fn gt(self, o: Self) -> bool {
        self > o
    }
    #[inline(always)]
    fn select(m: bool, a: Self, b: Self) -> Self {
        if m {
            a
        } else {
            b
        }
    }
}

impl Lane for X4 {
    type Mask = X4;
    const WIDTH: usize = 4;
    #[inline(always)]
    fn splat(v: f64) -> Self {
        X4::splat(v)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        X4::sqrt(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        X4::ln(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        X4::exp(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        X4::abs(self)
    }
    #[inline(always)]
    fn sin_cos(self) -> (Self, Self) {
        X4::sin_cos(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        X4::tanh(self)
    }
    #[inline(always)]
    fn atan2(self, x: Self) -> Self {
        X4::atan2(self, x)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        X4::max(self, o)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        X4::min(self, o)
    }
    #[inline(always)]
    fn lt(self, o: Self) -> X4 {
        self.simd_lt(o)
    }
    #[inline(always)]
    fn gt(self, o: Self) -> X4 {
        self.simd_gt(o)
    }
    #[inline(always)]
    fn select(m: X4, a: Self, b: Self) -> Self {
        m.select(a, b)
    }
}

/// Packs up to four conformations (atoms × 3) into lanes of `out` (one entry per atom); missing
/// conformations repeat the first.
pub fn pack_into<X: AsRef<[[f64; 3]]>>(xs: &[X], out: &mut [[X4; 3]]) {
    for (a, o) in out.iter_mut().enumerate() {
        *o = std::array::from_fn(|d| {
            X4::new(std::array::from_fn(|l| {
                xs.get(l).unwrap_or(&xs[0]).as_ref()[a][d]
            }))
        });
    }
}

/// Writes lane `l` of packed per-atom vectors into `out`.
pub fn unpack_into(v: &[[X4; 3]], l: usize, out: &mut [[f64; 3]]) {
    for (o, a) in out.iter_mut().zip(v) {
        *o = std::array::from_fn(|d| a[d].to_array()[l]);
    }
}
