//! exp, ln and tanh over slices, eight f32 or four f64 values per SIMD vector (`wide`'s
//! polynomial approximations, within a few ulp of libm), for the fused kernels: once the matmuls
//! were fused, scalar libm calls in the spline knots and the affine scales were the next cost.

use wide::{f32x8, f64x4};

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
}

macro_rules! simd_math {
    ($t:ty, $w:ty, $lanes:expr) => {
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

simd_math!(f32, f32x8, 8);
simd_math!(f64, f64x4, 4);

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
