//! RQ spline properties in f64: invertibility (inside and in the linear tails), log-det against
//! finite differences, gradients w.r.t. inputs and parameters against finite differences (both
//! directions), identity at zero parameters, and periodicity of the circular spline.

use dfdx::prelude::*;
use fab_core::rng::seeded;
use fab_flows::spline::{n_params, Direction, SplineConfig, SplineConsts};
use rand::Rng;
use rand_distr::{Distribution, Normal};

const K: usize = 5;

fn setup(circular: bool, rows: usize, seed: u64) -> (Cpu, SplineConsts, Vec<f64>, Vec<f64>) {
    let dev = Cpu::default();
    let config = SplineConfig {
        bins: K,
        bound: 3.0,
        ..Default::default()
    };
    let consts = SplineConsts::new(config, circular);
    let mut rng = seeded(seed);
    let p = n_params(K, circular);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let params: Vec<f64> = (0..rows * p).map(|_| normal.sample(&mut rng)).collect();
    let lim = if circular { std::f64::consts::PI } else { 4.0 };
    let x: Vec<f64> = (0..rows).map(|_| rng.gen_range(-lim..lim)).collect();
    (dev, consts, params, x)
}

fn eval(
    dev: &Cpu,
    c: &SplineConsts,
    params: &[f64],
    x: &[f64],
    dir: Direction,
) -> (Vec<f64>, Vec<f64>) {
    let r = x.len();
    let p = params.len() / r;
    let xt = dev.tensor_from_vec(x.to_vec(), (r,));
    let pt = dev.tensor_from_vec(params.to_vec(), (r, p));
    let (y, ld) = c.apply(xt, pt, dir);
    (y.as_vec(), ld.as_vec())
}

#[test]
fn inverse_undoes_forward_to_1e_10_including_tails() {
    for circular in [false, true] {
        let (dev, c, params, x) = setup(circular, 400, 1);
        if !circular {
            assert!(
                x.iter().any(|v| v.abs() > 3.0),
                "test needs points in the tails"
            );
        }
        let (y, ld_f) = eval(&dev, &c, &params, &x, Direction::Forward);
        let (x_back, ld_i) = eval(&dev, &c, &params, &y, Direction::Inverse);
        for i in 0..x.len() {
            assert!(
                (x_back[i] - x[i]).abs() < 1e-10,
                "circular {circular}: row {i}: {} vs {}",
                x_back[i],
                x[i]
            );
            assert!(
                (ld_f[i] + ld_i[i]).abs() < 1e-10,
                "circular {circular}: log-dets {} {}",
                ld_f[i],
                ld_i[i]
            );
        }
    }
}

#[test]
fn log_det_matches_finite_difference_derivative() {
    for circular in [false, true] {
        let (dev, c, params, x) = setup(circular, 100, 2);
        let (_, ld) = eval(&dev, &c, &params, &x, Direction::Forward);
        let h = 1e-6;
        let xp: Vec<f64> = x.iter().map(|v| v + h).collect();
        let xm: Vec<f64> = x.iter().map(|v| v - h).collect();
        let (yp, _) = eval(&dev, &c, &params, &xp, Direction::Forward);
        let (ym, _) = eval(&dev, &c, &params, &xm, Direction::Forward);
        for i in 0..x.len() {
            // Skip points within h of a knot, where the one-sided derivatives may differ slightly.
            let fd = ((yp[i] - ym[i]) / (2.0 * h)).ln();
            assert!(
                (fd - ld[i]).abs() < 1e-5,
                "circular {circular}: row {i}: {fd} vs {}",
                ld[i]
            );
        }
    }
}

#[test]
fn zero_parameters_give_the_identity() {
    for circular in [false, true] {
        let (dev, c, params, x) = setup(circular, 50, 3);
        let zeros = vec![0.0; params.len()];
        let (y, ld) = eval(&dev, &c, &zeros, &x, Direction::Forward);
        for i in 0..x.len() {
            assert!(
                (y[i] - x[i]).abs() < 1e-14 && ld[i].abs() < 1e-12,
                "circular {circular}: {} → {} ({})",
                x[i],
                y[i],
                ld[i]
            );
        }
    }
}

#[test]
fn circular_spline_is_periodic() {
    let (dev, c, params, _) = setup(true, 30, 4);
    let pi = std::f64::consts::PI;
    let (y_lo, ld_lo) = eval(&dev, &c, &params, &vec![-pi; 30], Direction::Forward);
    let (y_hi, ld_hi) = eval(&dev, &c, &params, &vec![pi; 30], Direction::Forward);
    for i in 0..30 {
        assert!((y_lo[i] + pi).abs() < 1e-12 && (y_hi[i] - pi).abs() < 1e-12);
        assert!(
            (ld_lo[i] - ld_hi[i]).abs() < 1e-12,
            "slopes at ±π differ: {} {}",
            ld_lo[i],
            ld_hi[i]
        );
    }
}

/// L = Σ aᵢ yᵢ + Σ bᵢ log-detᵢ with fixed random a, b; gradients w.r.t. x and params vs FD.
#[test]
fn gradients_match_finite_differences_in_both_directions() {
    for circular in [false, true] {
        for dir in [Direction::Forward, Direction::Inverse] {
            let rows = 12;
            let (dev, c, params, x) = setup(circular, rows, 5);
            let mut rng = seeded(6);
            let a: Vec<f64> = (0..rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let bw: Vec<f64> = (0..rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let loss = |p: &[f64], x: &[f64]| {
                let (y, ld) = eval(&dev, &c, p, x, dir);
                (0..rows).map(|i| a[i] * y[i] + bw[i] * ld[i]).sum::<f64>()
            };
            let p = params.len() / rows;
            let xt = dev.tensor_from_vec(x.clone(), (rows,));
            let pt = dev.tensor_from_vec(params.clone(), (rows, p));
            let (y, ld) = c.apply(xt.leaky_trace(), pt.retaped::<OwnedTape<f64, Cpu>>(), dir);
            let at = dev.tensor_from_vec(a.clone(), (rows,));
            let bt = dev.tensor_from_vec(bw.clone(), (rows,));
            let total = (y * at).sum::<(), _>() + (ld * bt).sum::<(), _>();
            let grads = total.backward();
            let gx = grads.get(&xt).as_vec();
            let gp = grads.get(&pt).as_vec();
            let h = 1e-6;
            let mut worst = 0.0f64;
            for i in 0..rows {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let fd = (loss(&params, &xp) - loss(&params, &xm)) / (2.0 * h);
                worst = worst.max((fd - gx[i]).abs() / (1e-3 + fd.abs()));
            }
            for k in 0..params.len() {
                let (mut pp, mut pm) = (params.clone(), params.clone());
                pp[k] += h;
                pm[k] -= h;
                let fd = (loss(&pp, &x) - loss(&pm, &x)) / (2.0 * h);
                worst = worst.max((fd - gp[k]).abs() / (1e-3 + fd.abs()));
            }
            assert!(
                worst < 1e-5,
                "circular {circular}, {dir:?}: worst relative error {worst}"
            );
        }
    }
}

/// Values and gradients (of Σ aᵢyᵢ + Σ bᵢ log-detᵢ w.r.t. x and params) of `apply` or
/// `apply_fused`.
fn eval_with_grads(
    dev: &Cpu,
    c: &SplineConsts,
    params: &[f64],
    x: &[f64],
    dir: Direction,
    fused: bool,
) -> [Vec<f64>; 4] {
    let rows = x.len();
    let p = params.len() / rows;
    let mut rng = seeded(8);
    let a: Vec<f64> = (0..rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let bw: Vec<f64> = (0..rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let xt = dev.tensor_from_vec(x.to_vec(), (rows,));
    let pt = dev.tensor_from_vec(params.to_vec(), (rows, p));
    let (xs, ps) = (xt.leaky_trace(), pt.retaped::<OwnedTape<f64, Cpu>>());
    let (y, ld) = if fused {
        c.apply_fused(xs, ps, dir)
    } else {
        c.apply(xs, ps, dir)
    };
    let (yv, ldv) = (y.as_vec(), ld.as_vec());
    let at = dev.tensor_from_vec(a, (rows,));
    let bt = dev.tensor_from_vec(bw, (rows,));
    let grads = ((y * at).sum::<(), _>() + (ld * bt).sum::<(), _>()).backward();
    [yv, ldv, grads.get(&xt).as_vec(), grads.get(&pt).as_vec()]
}

/// The fused eight-rows-at-a-time kernel (the fused engine's spline) against the two-stage
/// knots + RQ kernels, in both directions, with rows in the tails, exactly on the bounds, a NaN
/// row, and a row count that is not a multiple of eight; then the same without a tape.
#[test]
fn fused_kernel_equals_two_stage_kernels_with_gradients() {
    for circular in [false, true] {
        for dir in [Direction::Forward, Direction::Inverse] {
            let rows = 203;
            let (dev, c, params, mut x) = setup(circular, rows, 9);
            let b = c.bound();
            x[3] = b;
            x[4] = -b;
            x[5] = f64::NAN;
            if !circular {
                assert!(x.iter().filter(|v| v.abs() > 3.0).count() > 10);
            }
            let fused = eval_with_grads(&dev, &c, &params, &x, dir, true);
            let staged = eval_with_grads(&dev, &c, &params, &x, dir, false);
            assert!(
                fused[0][5].is_nan() && fused[1][5] == 0.0,
                "NaN row passes through"
            );
            for (what, (f, s)) in ["y", "log-det", "grad x", "grad params"]
                .iter()
                .zip(fused.iter().zip(&staged))
            {
                let worst = f
                    .iter()
                    .zip(s)
                    .filter(|(a, b)| !(a.is_nan() && b.is_nan()))
                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                    .fold(0.0, f64::max);
                assert!(
                    worst < 1e-12,
                    "circular {circular}, {dir:?}, {what}: differs by {worst:e}"
                );
            }
            let xt = dev.tensor_from_vec(x.clone(), (rows,));
            let pt = dev.tensor_from_vec(params.clone(), (rows, params.len() / rows));
            let (y, ld) = c.apply_fused(xt, pt, dir);
            let (y, ld) = (y.as_vec(), ld.as_vec());
            for i in (0..rows).filter(|&i| i != 5) {
                assert_eq!(
                    y[i], fused[0][i],
                    "plain and taped values agree bit for bit"
                );
                assert_eq!(ld[i], fused[1][i]);
            }
        }
    }
}
