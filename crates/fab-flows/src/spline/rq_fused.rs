//! The whole rational-quadratic spline of a coupling layer as one dfdx operation, eight rows at a
//! time: spline parameters → softmax widths and heights → cumulative knots, softplus slopes, bin
//! search and the RQ formula, with a hand-written backward pass from the output and log-det back
//! to the parameters and the input.
//!
//! The fused engine's spline flows spent a third of an alanine iteration in the two-stage version
//! (`rq_knots.rs` then `rq_kernel.rs`, kept as the reference engine's path): one row of K = 8 bins
//! at a time is too little work for SIMD, and the knot tensors and their gradients were
//! materialised, zeroed and copied between the stages. Here each block of eight rows is
//! transposed so that every quantity is a `Lanes` vector (one SIMD register in f32), the knots
//! live only on the stack, and the backward pass uses that the RQ formula touches just two knots
//! of each kind: with g_k, g_{k+1} the gradients at knots k and k+1, the gradient of the
//! softmax output a_j is shrink·span·(\[j < k\] g_k + \[j ≤ k\] g_{k+1}).

use dfdx::prelude::*;

use crate::real::{host, Real, M, V};
use crate::spline::rq_formula::{build, rq, Dual, Lanes, Num, LANES, N};
use crate::spline::{Direction, SplineConfig};

type L<E> = Lanes<E>;

/// Constants of one spline shape, in the compute type.
#[derive(Clone, Copy)]
struct Shape<E> {
    /// Bins K and free derivative parameters per row (K − 1 or K).
    k: usize,
    n_free: usize,
    circular: bool,
    /// Knot spacing: knot_{j+1} = knot_j + (a_j·shrink + min_bin)·span, starting at lo = −B.
    lo: E,
    span: E,
    shrink: E,
    min_bin: E,
    /// Softplus shift (zero parameters give slope 1) and minimum slope.
    shift: E,
    min_slope: E,
    bound: E,
}

impl<E: Real> Shape<E> {
    fn new(config: SplineConfig, circular: bool, bound: f64, p: usize) -> Self {
        let k = config.bins;
        Self {
            k,
            n_free: p - 2 * k,
            circular,
            lo: E::of(-bound),
            span: E::of(2.0 * bound),
            shrink: E::of(1.0 - k as f64 * config.min_bin),
            min_bin: E::of(config.min_bin),
            shift: E::of(((1.0 - config.min_slope).exp() - 1.0).ln()),
            min_slope: E::of(config.min_slope),
            bound: E::of(bound),
        }
    }

    /// Lane vectors the backward pass keeps per block: 2K softmax outputs, the softplus slopes
    /// σ(v), the bin index, and the 2 × 7 partial derivatives of output and log-det.
    fn saved_len(&self) -> usize {
        2 * self.k + self.n_free + 1 + 2 * N
    }
}

/// Per-block scratch: the block's parameters transposed (P lane vectors), its knots, and the
/// softplus intermediates e^{−|v|} and ln(1 + e^{−|v|}).
struct Scratch<E> {
    params: Vec<L<E>>,
    xs: Vec<L<E>>,
    ys: Vec<L<E>>,
    ds: Vec<L<E>>,
    e: Vec<L<E>>,
    ln_u: Vec<L<E>>,
}

/// Applies the spline with parameters `params` (R, P) to `u` (R,): P = 3K − 1 for linear tails on
/// [−bound, bound] (identity outside), 3K for circular splines. Returns (output, log|det|) in
/// `direction`; equal to `rq_knots::knots` followed by `rq_kernel::rq_spline` up to rounding.
/// (No `Cpu: Device<E>` bound, as in `rq_knots::knots`, so the backward pass can index gradient
/// storage.)
pub fn rq_fused<E: Real, T: Tape<E, Cpu>>(
    u: V<E, T>,
    params: M<E, T>,
    config: SplineConfig,
    circular: bool,
    bound: f64,
    direction: Direction,
) -> (V<E, T>, V<E, T>) {
    let (u, t0) = u.split_tape();
    let (params, t1) = params.split_tape();
    let mut tape = t0.merge(t1);
    let r = u.shape().0;
    let (r_p, p) = *params.shape();
    assert_eq!(r, r_p, "one row of spline parameters per input");
    let shape = Shape::<E>::new(config, circular, bound, p);
    let (uv, pv) = (host(&u), host(&params));
    let n_blocks = r.div_ceil(LANES);
    let stride = shape.saved_len();
    let mut saved = if T::OWNS_TAPE {
        vec![L::splat(0.0); n_blocks * stride]
    } else {
        Vec::new()
    };
    let mut out = vec![E::zero(); r];
    let mut ld = vec![E::zero(); r];
    let k1 = shape.k + 1;
    let mut s = Scratch {
        params: vec![L::splat(0.0); p],
        xs: vec![L::splat(0.0); k1],
        ys: vec![L::splat(0.0); k1],
        ds: vec![L::splat(0.0); k1],
        e: vec![L::splat(0.0); shape.n_free],
        ln_u: vec![L::splat(0.0); shape.n_free],
    };
    let mut probs = vec![L::splat(0.0); 2 * shape.k];
    let mut slopes = vec![L::splat(0.0); shape.n_free];
    for b in 0..n_blocks {
        let rows = b * LANES..((b + 1) * LANES).min(r);
        load_block(&pv[rows.start * p..rows.end * p], p, &mut s.params);
        let mut x = L::splat(0.0);
        x.0[..rows.len()].copy_from_slice(&uv[rows.clone()]);
        knots(&shape, &mut s, &mut probs, &mut slopes);
        let (bin, inputs, inside) = gather(&shape, &s, x, direction);
        let (o, l) = if T::OWNS_TAPE {
            let (o, l) = rq(
                build(Dual::splat(0.0), |j| Dual::input(inputs[j], j)),
                direction,
            );
            let block = &mut saved[b * stride..(b + 1) * stride];
            let (a, rest) = block.split_at_mut(2 * shape.k);
            a.copy_from_slice(&probs);
            let (sig, rest) = rest.split_at_mut(shape.n_free);
            sig.copy_from_slice(&slopes);
            rest[0] = bin;
            // Identity rows (tails, NaN): ∂out/∂u = 1, every other partial 0.
            for j in 0..N {
                let identity = if j == 0 { E::one() } else { E::zero() };
                rest[1 + j] = select(inside, o.d[j], identity);
                rest[1 + N + j] = select(inside, l.d[j], E::zero());
            }
            (o.v, l.v)
        } else {
            rq(inputs, direction)
        };
        for (lane, i) in rows.enumerate() {
            let inside_lane = inside.0[lane] != E::zero();
            out[i] = if inside_lane { o.0[lane] } else { x.0[lane] };
            ld[i] = if inside_lane { l.0[lane] } else { E::zero() };
        }
    }
    let dev = u.device().clone();
    let out = dev.tensor_from_vec(out, (r,));
    let ld = dev.tensor_from_vec(ld, (r,));
    let (g_out, g_ld, g_u, g_p) = (out.ghost(), ld.ghost(), u.ghost(), params.ghost());
    tape.add_backward_op(move |grads| {
        let go: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_out)?);
        let gl: Vec<E> = std::mem::take(grads.get_or_alloc_mut(&g_ld)?);
        // w_j = g_out · ∂out/∂input_j + g_ld · ∂ld/∂input_j of block b's lanes.
        let weight = |b: usize, j: usize| -> L<E> {
            let rows = b * LANES..((b + 1) * LANES).min(r);
            let (mut o, mut l) = (L::splat(0.0), L::splat(0.0));
            o.0[..rows.len()].copy_from_slice(&go[rows.clone()]);
            l.0[..rows.len()].copy_from_slice(&gl[rows]);
            let part = &saved[b * stride + 2 * shape.k + shape.n_free + 1..(b + 1) * stride];
            o * part[j] + l * part[N + j]
        };
        {
            // Input u: w_0 only (the gradient buffers cannot be borrowed together).
            let gu = grads.get_or_alloc_mut(&g_u)?;
            for b in 0..n_blocks {
                let w0 = weight(b, 0);
                let rows = b * LANES..((b + 1) * LANES).min(r);
                for (lane, i) in rows.enumerate() {
                    gu[i] += w0.0[lane];
                }
            }
        }
        let gp = grads.get_or_alloc_mut(&g_p)?;
        let mut g_block = vec![L::splat(0.0); p];
        let mut g_a = vec![L::splat(0.0); shape.k];
        for b in 0..n_blocks {
            let w: [L<E>; N] = build(L::splat(0.0), |j| weight(b, j));
            let block = &saved[b * stride..(b + 1) * stride];
            knots_backward(&shape, block, &w, &mut g_a, &mut g_block);
            let rows = b * LANES..((b + 1) * LANES).min(r);
            let dst = &mut gp[rows.start * p..rows.end * p];
            for (lane, row) in dst.chunks_exact_mut(p).enumerate() {
                for (g, gb) in row.iter_mut().zip(&g_block) {
                    *g += gb.0[lane];
                }
            }
        }
        Ok(())
    });
    (out.put_tape(tape), ld.put_tape(T::default()))
}

/// Transposes up to eight rows of P parameters into P lane vectors (missing rows are zero).
fn load_block<E: Real>(rows: &[E], p: usize, dst: &mut [L<E>]) {
    for v in dst.iter_mut() {
        *v = L::splat(0.0);
    }
    for (lane, row) in rows.chunks_exact(p).enumerate() {
        for (v, &x) in dst.iter_mut().zip(row) {
            v.0[lane] = x;
        }
    }
}

/// `a` where `mask` ≠ 0, else `b`, lane by lane.
#[inline(always)]
fn select<E: Real>(mask: L<E>, a: L<E>, b: E) -> L<E> {
    Lanes(build(E::zero(), |l| {
        if mask.0[l] != E::zero() {
            a.0[l]
        } else {
            b
        }
    }))
}

/// Knots and slopes of a block from its transposed parameters; keeps the softmax outputs and
/// the softplus slopes σ(v) for the backward pass.
fn knots<E: Real>(sh: &Shape<E>, s: &mut Scratch<E>, probs: &mut [L<E>], slopes: &mut [L<E>]) {
    let k = sh.k;
    for (part, knots) in [(0, &mut s.xs), (1, &mut s.ys)] {
        let logits = &s.params[part * k..(part + 1) * k];
        let a = &mut probs[part * k..(part + 1) * k];
        let max = logits[1..].iter().fold(logits[0], |m, &v| {
            m.zip(v, |m, v| if v > m { v } else { m })
        });
        for (a, &v) in a.iter_mut().zip(logits) {
            *a = v - max;
        }
        a.iter_mut().for_each(|v| v.0 = E::exp8(v.0));
        let sum = a[1..].iter().fold(a[0], |acc, &v| acc + v);
        let inv = L::splat(1.0) / sum;
        knots[0] = Lanes([sh.lo; LANES]);
        for j in 0..k {
            a[j] = a[j] * inv;
            let width = a[j].map(|v| (v * sh.shrink + sh.min_bin) * sh.span);
            knots[j + 1] = knots[j] + width;
        }
    }
    // Softplus slopes: softplus(v) = max(v, 0) + ln(1 + e^{−|v|}) with v = parameter + shift, the
    // logarithm as ln(u)·e/(u − 1), u = 1 + e, exact where u rounds to 1; σ(v) its derivative.
    let free = &s.params[2 * k..];
    let (e, ln_u) = (&mut s.e, &mut s.ln_u);
    for (e, &p) in e.iter_mut().zip(free) {
        *e = p.map(|p| -(p + sh.shift).abs());
    }
    e.iter_mut().for_each(|v| v.0 = E::exp8(v.0));
    for (l, &e) in ln_u.iter_mut().zip(e.iter()) {
        *l = e.map(|e| E::one() + e);
    }
    ln_u.iter_mut().for_each(|v| v.0 = E::ln8(v.0));
    let (zero, one) = (E::zero(), E::one());
    for j in 0..sh.n_free {
        // Whole-vector steps with selects (no per-lane branches), so they stay on SIMD lanes.
        let v = free[j] + Lanes([sh.shift; LANES]);
        let (e, ln_u) = (e[j], ln_u[j]);
        let u = e + L::splat(1.0);
        let u_minus_1 = u - L::splat(1.0);
        let ratio = ln_u * e / u_minus_1;
        // ln(1 + e) = ln(u)·e/(u − 1), or e where u rounds to 1.
        let log1p = Lanes(build(zero, |l| {
            if u_minus_1.0[l] == zero {
                e.0[l]
            } else {
                ratio.0[l]
            }
        }));
        let value = v.relu() + log1p + Lanes([sh.min_slope; LANES]);
        let sigma = v.zip(e, |v, e| if v >= zero { one } else { e }) / u;
        slopes[j] = sigma;
        if sh.circular {
            s.ds[j] = value;
        } else {
            s.ds[j + 1] = value;
        }
    }
    if sh.circular {
        s.ds[k] = s.ds[0];
    } else {
        s.ds[0] = L::splat(1.0);
        s.ds[k] = L::splat(1.0);
    }
}

/// Bin search and gather: per lane the bin k (as a float), the formula's seven inputs, and a
/// mask (1 inside [−B, B], 0 outside or NaN, where the row is the identity). Rows outside get
/// safe inputs (u at the first knot) so the formula stays finite; their results are discarded.
fn gather<E: Real>(
    sh: &Shape<E>,
    s: &Scratch<E>,
    x: L<E>,
    direction: Direction,
) -> (L<E>, [L<E>; N], L<E>) {
    let search = match direction {
        Direction::Forward => &s.xs,
        Direction::Inverse => &s.ys,
    };
    let mut inside = L::splat(0.0);
    let mut bin = L::splat(0.0);
    let mut inputs = [L::splat(0.0); N];
    for l in 0..LANES {
        let v = x.0[l];
        let ok = v >= -sh.bound && v <= sh.bound;
        let k = if ok {
            search[1..sh.k].iter().filter(|kn| kn.0[l] <= v).count()
        } else {
            0
        };
        inside.0[l] = if ok { E::one() } else { E::zero() };
        bin.0[l] = E::of(k as f64);
        inputs[0].0[l] = if ok { v } else { search[0].0[l] };
        inputs[1].0[l] = s.xs[k].0[l];
        inputs[2].0[l] = s.xs[k + 1].0[l];
        inputs[3].0[l] = s.ys[k].0[l];
        inputs[4].0[l] = s.ys[k + 1].0[l];
        inputs[5].0[l] = s.ds[k].0[l];
        inputs[6].0[l] = s.ds[k + 1].0[l];
    }
    (bin, inputs, inside)
}

/// Gradient of one block's parameters (transposed, into `g`) from the weighted partials `w` of
/// the formula's inputs and the saved softmax outputs, slopes and bins.
fn knots_backward<E: Real>(
    sh: &Shape<E>,
    block: &[L<E>],
    w: &[L<E>; N],
    g_a: &mut [L<E>],
    g: &mut [L<E>],
) {
    let k = sh.k;
    let (probs, rest) = block.split_at(2 * k);
    let (sigma, rest) = rest.split_at(sh.n_free);
    let bin = rest[0];
    let ss = sh.shrink * sh.span;
    for (part, (w_lo, w_hi)) in [(0, (w[1], w[2])), (1, (w[3], w[4]))] {
        let a = &probs[part * k..(part + 1) * k];
        // ∂/∂a_j: knot k depends on the widths before it, knot k+1 on those up to j = k.
        let mut dot = L::splat(0.0);
        for j in 0..k {
            let jf = E::of(j as f64);
            g_a[j] = Lanes(build(E::zero(), |l| {
                let kb = bin.0[l];
                let lo = if jf < kb { w_lo.0[l] } else { E::zero() };
                let hi = if jf <= kb { w_hi.0[l] } else { E::zero() };
                (lo + hi) * ss
            }));
            dot = dot + a[j] * g_a[j];
        }
        // Softmax backward: g_u = a ⊙ (g_a − a·g_a).
        for j in 0..k {
            g[part * k + j] = a[j] * (g_a[j] - dot);
        }
    }
    // Knot slopes: d_k gets w5, d_{k+1} gets w6; free parameter j is d_{j+1} (linear tails) or
    // d_j (circular, where d_K is d_0 again).
    let offset = if sh.circular { 0 } else { 1 };
    let last = E::of(k as f64 - 1.0);
    for j in 0..sh.n_free {
        let knot = E::of((j + offset) as f64);
        let g_slope = Lanes(build(E::zero(), |l| {
            let kb = bin.0[l];
            let mut v = E::zero();
            if kb == knot {
                v += w[5].0[l];
            }
            if kb + E::one() == knot {
                v += w[6].0[l];
            }
            if sh.circular && j == 0 && kb == last {
                v += w[6].0[l];
            }
            v
        }));
        g[2 * k + j] = g_slope * sigma[j];
    }
}
