//! exp, ln and tanh over slices, eight f32 or four f64 values per SIMD vector (`wide`'s
//! polynomial approximations, within a few ulp of libm), for the fused kernels: once the matmuls
//! were fused, scalar libm calls in the spline knots and the affine scales were the next cost.
//! Also the conditioners' GELU and its slope in one vector pass (see [`SimdMath::gelu_slice`]).

use wide::{f32x8, f64x4, i32x8};

/// GELU's tanh form, gelu(z) = ½ z (1 + tanh(c (z + κ z³))): c = √(2/π).
pub(crate) const GELU_C: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient κ of the tanh approximation.
pub(crate) const GELU_KAPPA: f64 = 0.044_715;

/// Bound on the exponent in the GELU's logistic form: e^±80 stays a normal number in f32, so
/// no lane falls into slow subnormal arithmetic, and σ(±80) is 0 or 1 to f32 and f64 precision
/// for the GELU's purposes (the product z σ is below 1e-33 |z|).
const GELU_EXP_BOUND: f64 = 80.0;

/// Element-wise transcendental functions over a slice, in place.
pub trait SimdMath: Sized {
    /// v ← eᵛ.
    fn exp_slice(v: &mut [Self]);
    /// v ← ln v.
    fn ln_slice(v: &mut [Self]);
    /// v ← tanh v.
    fn tanh_slice(v: &mut [Self]);
    /// eᵛ of eight values (one f32 vector or two f64 vectors), inlined into the caller's loop.
    fn exp8(v: [Self; 8]) -> [Self; 8];
    /// ln v of eight values.
    fn ln8(v: [Self; 8]) -> [Self; 8];
    /// z ← gelu(z) in its tanh form, and gelu'(z) per value when `keep_slope`, in one pass. Written
    /// through the logistic function, ½ z (1 + tanh u) = z σ(2u) with u = c (z + κ z³), so
    /// one exp and one reciprocal per value replace a tanh plus separate passes for the
    /// activation and its slope: gelu'(z) = σ + 2 z σ (1 − σ) c (1 + 3κ z²), with 1 − σ
    /// computed as e^{−2u} σ. Its absolute error is a few ulp of max(|z|, 1), which is what
    /// the activation needs (it is not a precise tanh near 0, and does not have to be).
    fn gelu_slice(z: &mut [Self], keep_slope: bool) -> Option<Vec<Self>>;
}

macro_rules! simd_math {
    ($t:ty, $w:ty, $lanes:expr, $gelu:ident) => {
        impl SimdMath for $t {
            fn exp_slice(v: &mut [Self]) {
                apply::<$t, $w, $lanes>(v, |x| x.exp());
            }
            fn ln_slice(v: &mut [Self]) {
                apply::<$t, $w, $lanes>(v, |x| x.ln());
            }
            fn tanh_slice(v: &mut [Self]) {
                apply::<$t, $w, $lanes>(v, |x| x.tanh());
            }
            fn gelu_slice(z: &mut [Self], keep_slope: bool) -> Option<Vec<Self>> {
                let kernel = $gelu;
                // Whole vectors through fixed-size arrays (no memcpy calls) and the tail padded
                // with zeros; the slopes go into a buffer sized up front, as pushing them made
                // the compiler spill the vector registers around the push's growth check.
                let one_vector = |chunk: &mut [$t], out: Option<&mut [$t]>| {
                    let mut v = [0.0 as $t; $lanes];
                    v[..chunk.len()].copy_from_slice(chunk);
                    let (a, d) = kernel(<$w>::from(v));
                    let n = chunk.len();
                    chunk.copy_from_slice(&<[$t; $lanes]>::from(a)[..n]);
                    if let Some(out) = out {
                        out.copy_from_slice(&<[$t; $lanes]>::from(d)[..n]);
                    }
                };
                let len = z.len();
                let whole = len - len % $lanes;
                let (body, tail) = z.split_at_mut(whole);
                if keep_slope {
                    // Written in full below before it is read; zeroing it first cost 2-3 % of a
                    // Many Well iteration.
                    let mut slope: Vec<$t> = Vec::with_capacity(len);
                    let spare = &mut slope.spare_capacity_mut()[..len];
                    let (d_body, d_tail) = spare.split_at_mut(whole);
                    for (chunk, out) in body
                        .chunks_exact_mut($lanes)
                        .zip(d_body.chunks_exact_mut($lanes))
                    {
                        let v: [$t; $lanes] = std::array::from_fn(|i| chunk[i]);
                        let (a, d) = kernel(<$w>::from(v));
                        chunk.copy_from_slice(&<[$t; $lanes]>::from(a));
                        let d = <[$t; $lanes]>::from(d);
                        out.iter_mut().zip(d).for_each(|(o, d)| {
                            o.write(d);
                        });
                    }
                    if !tail.is_empty() {
                        let mut d = [0.0 as $t; $lanes];
                        one_vector(tail, Some(&mut d[..tail.len()]));
                        d_tail.iter_mut().zip(d).for_each(|(o, d)| {
                            o.write(d);
                        });
                    }
                    // SAFETY: the loops above wrote all `len` = `whole` + tail elements.
                    unsafe { slope.set_len(len) };
                    Some(slope)
                } else {
                    for chunk in body.chunks_exact_mut($lanes) {
                        let v: [$t; $lanes] = std::array::from_fn(|i| chunk[i]);
                        chunk.copy_from_slice(&<[$t; $lanes]>::from(kernel(<$w>::from(v)).0));
                    }
                    if !tail.is_empty() {
                        one_vector(tail, None);
                    }
                    None
                }
            }
            #[inline(always)]
            fn exp8(v: [Self; 8]) -> [Self; 8] {
                eight::<$t, $w, $lanes>(v, |x| x.exp())
            }
            #[inline(always)]
            fn ln8(v: [Self; 8]) -> [Self; 8] {
                eight::<$t, $w, $lanes>(v, |x| x.ln())
            }
        }
    };
}

simd_math!(f32, f32x8, 8, gelu_f32x8);
simd_math!(f64, f64x4, 4, gelu_f64x4);

/// (gelu, gelu') of four f64 values through `wide`'s exp and a division (see
/// [`SimdMath::gelu_slice`]).
#[inline(always)]
fn gelu_f64x4(x: f64x4) -> (f64x4, f64x4) {
    let one = f64x4::ONE;
    let x2 = x * x;
    let u = f64x4::from(GELU_C) * x * f64x4::from(GELU_KAPPA).mul_add(x2, one);
    let bound = f64x4::from(GELU_EXP_BOUND);
    let y = (f64x4::from(-2.0) * u).max(-bound).min(bound);
    let e = y.exp();
    let s = one / (one + e);
    let du = f64x4::from(2.0 * GELU_C) * f64x4::from(3.0 * GELU_KAPPA).mul_add(x2, one);
    // 1 − σ as e σ: the difference would lose its relative precision where σ → 1.
    (x * s, (x * s * (e * s)).mul_add(du, s))
}

/// (gelu, gelu') of eight f32 values, leaner than the f64 form because this is the hot loop of
/// the f32 flows: e^y by 2ⁿ e^f (n = round(y log₂e), |f| ≤ ½ ln 2, Taylor series to f⁶, error
/// below 2e-7 relative) without `wide`'s overflow, subnormal and NaN branches, which the clamp
/// to ±80 makes unnecessary (a NaN in x still reaches both outputs through the factor x), and
/// 1 / (1 + e^y) by the reciprocal estimate and one Newton step (relative error ≈ 1e-7)
/// instead of a division. Measured on the Many Well flow: the f64-style form (exp, division)
/// made GELU a fifth of an iteration.
#[inline(always)]
fn gelu_f32x8(x: f32x8) -> (f32x8, f32x8) {
    let c = |v: f64| f32x8::from(v as f32);
    let one = f32x8::ONE;
    let x2 = x * x;
    let u = c(GELU_C) * x * c(GELU_KAPPA).mul_add(x2, one);
    let y = (c(-2.0) * u)
        .fast_max(c(-GELU_EXP_BOUND))
        .fast_min(c(GELU_EXP_BOUND));
    let n = (y * f32x8::LOG2_E).round();
    // ln 2 split so that n · LN2_HI is exact for |n| < 2⁹.
    let f = n.mul_neg_add(c(0.693_359_375), y);
    let f = n.mul_neg_add(c(-2.121_944_4e-4), f);
    let mut p = c(1.0 / 720.0);
    for k in [120.0, 24.0, 6.0, 2.0, 1.0, 1.0] {
        p = p.mul_add(f, c(1.0 / k));
    }
    let exponent = (n.round_int() + i32x8::from(127)) << 23u32;
    let e = p * wide::bytemuck::cast::<i32x8, f32x8>(exponent);
    let d = one + e;
    let r = d.recip();
    let s = r * d.mul_neg_add(r, c(2.0));
    let du = c(2.0 * GELU_C) * c(3.0 * GELU_KAPPA).mul_add(x2, one);
    (x * s, (x * s * (e * s)).mul_add(du, s))
}

/// Applies `f` to eight values, as 8 / `L` vectors of `L` lanes.
#[inline(always)]
fn eight<T: Copy + Default, W: From<[T; L]> + Into<[T; L]>, const L: usize>(
    v: [T; 8],
    f: impl Fn(W) -> W,
) -> [T; 8] {
    let mut out = [T::default(); 8];
    for (o, i) in out.chunks_exact_mut(L).zip(v.chunks_exact(L)) {
        let lanes: [T; L] = std::array::from_fn(|j| i[j]);
        o.copy_from_slice(&f(W::from(lanes)).into());
    }
    out
}

/// Applies `f` to `v` one vector of `L` lanes at a time; the tail is padded with ones.
fn apply<T: Copy + From<u8>, W: From<[T; L]> + Into<[T; L]>, const L: usize>(
    v: &mut [T],
    f: impl Fn(W) -> W,
) {
    let mut chunks = v.chunks_exact_mut(L);
    for chunk in &mut chunks {
        let lanes: [T; L] = std::array::from_fn(|i| chunk[i]);
        chunk.copy_from_slice(&f(W::from(lanes)).into());
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut lanes = [T::from(1u8); L];
        lanes[..tail.len()].copy_from_slice(tail);
        let out: [T; L] = f(W::from(lanes)).into();
        tail.copy_from_slice(&out[..tail.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst relative error of `simd` against `scalar` over `xs`.
    fn worst<T: SimdMath + Copy + Into<f64>>(
        xs: &[T],
        simd: fn(&mut [T]),
        scalar: impl Fn(f64) -> f64,
    ) -> f64 {
        let mut v = xs.to_vec();
        simd(&mut v);
        xs.iter()
            .zip(&v)
            .map(|(&x, &y)| {
                let want = scalar(x.into());
                (y.into() - want).abs() / want.abs().max(1e-30)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn vector_functions_match_libm() {
        // 1001 points (not a multiple of the lane count, so the padded tail is covered).
        let xs: Vec<f64> = (0..1001).map(|i| -20.0 + 0.04 * i as f64).collect();
        let pos: Vec<f64> = (0..1001).map(|i| 1e-6 * 1.03f64.powi(i)).collect();
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let pos32: Vec<f32> = pos.iter().map(|&x| x as f32).collect();
        let small = |x: &f64| x.abs() > 1e-3;
        let xs_nz: Vec<f64> = xs.iter().copied().filter(small).collect();
        let xs32_nz: Vec<f32> = xs_nz.iter().map(|&x| x as f32).collect();
        assert!(worst(&xs, f64::exp_slice, f64::exp) < 1e-14);
        assert!(worst(&pos, f64::ln_slice, f64::ln) < 1e-14);
        assert!(worst(&xs_nz, f64::tanh_slice, f64::tanh) < 1e-14);
        assert!(worst(&xs32, f32::exp_slice, f64::exp) < 1e-6);
        assert!(worst(&pos32, f32::ln_slice, f64::ln) < 1e-6);
        assert!(worst(&xs32_nz, f32::tanh_slice, f64::tanh) < 1e-6);
    }

    /// Worst |error| / max(|z|, 1) of `gelu_slice` (value and slope) against the tanh form in
    /// f64 libm, over `zs`; also checks that the pass without slopes gives the same values.
    fn gelu_worst<T: SimdMath + Copy + Into<f64> + PartialEq + std::fmt::Debug>(zs: &[T]) -> f64 {
        let (c, k) = (GELU_C, GELU_KAPPA);
        let mut a = zs.to_vec();
        let d = T::gelu_slice(&mut a, true).expect("slopes kept");
        assert_eq!(d.len(), zs.len());
        let mut a_only = zs.to_vec();
        assert!(T::gelu_slice(&mut a_only, false).is_none());
        assert_eq!(a, a_only);
        zs.iter()
            .zip(a.iter().zip(&d))
            .map(|(&z, (&a, &d))| {
                let z: f64 = z.into();
                let t = (c * (z + k * z * z * z)).tanh();
                let want_a = 0.5 * z * (1.0 + t);
                let want_d =
                    0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3.0 * k * z * z);
                let scale = z.abs().max(1.0);
                ((a.into() - want_a).abs() / scale).max((d.into() - want_d).abs() / scale)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn gelu_pass_matches_the_tanh_form() {
        // 1003 points over [−30, 30] (a padded tail in both lane counts), plus the extremes.
        let mut zs: Vec<f64> = (0..1001).map(|i| -30.0 + 0.06 * i as f64).collect();
        zs.extend([-1e4, 1e4]);
        let zs32: Vec<f32> = zs.iter().map(|&z| z as f32).collect();
        assert!(gelu_worst(&zs) < 1e-14);
        let w32 = gelu_worst(&zs32);
        assert!(w32 < 1e-6, "f32 worst {w32}");
        // A NaN input reaches both outputs (the flow's invalid-point checks rely on it).
        let mut v = [f32::NAN; 3];
        let d = f32::gelu_slice(&mut v, true).expect("slopes kept");
        assert!(v.iter().chain(&d).all(|x| x.is_nan()));
        let mut v = [f64::NAN; 3];
        let d = f64::gelu_slice(&mut v, true).expect("slopes kept");
        assert!(v.iter().chain(&d).all(|x| x.is_nan()));
    }

    #[test]
    fn eight_value_forms_equal_the_slice_forms() {
        let xs: [f64; 8] = std::array::from_fn(|i| -3.0 + 0.9 * i as f64);
        let pos: [f64; 8] = std::array::from_fn(|i| 0.01 + 2.3 * i as f64);
        let mut v = xs;
        f64::exp_slice(&mut v);
        assert_eq!(f64::exp8(xs), v);
        let mut v = pos;
        f64::ln_slice(&mut v);
        assert_eq!(f64::ln8(pos), v);
        let xs32 = xs.map(|x| x as f32);
        let pos32 = pos.map(|x| x as f32);
        let mut v = xs32;
        f32::exp_slice(&mut v);
        assert_eq!(f32::exp8(xs32), v);
        let mut v = pos32;
        f32::ln_slice(&mut v);
        assert_eq!(f32::ln8(pos32), v);
    }
}
