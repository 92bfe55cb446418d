//! Spline coupling flow with circular coordinates, in f64: invertibility including the linear
//! tails, log-det against a finite-difference Jacobian, input and parameter gradients against
//! finite differences, exact identity at initialisation, and a density that is periodic in the
//! circular coordinates.

mod common;

use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::spline::SplineConfig;
use fab_flows::{CircularShift, CouplingFlow, SplineFlowConfig};
use ndarray::{Array1, Array2};

const PI: f64 = std::f64::consts::PI;
const DIM: usize = 4;
const CIRCULAR: [usize; 2] = [1, 2];

fn config() -> SplineFlowConfig {
    SplineFlowConfig {
        n_layers: 4,
        hidden_units: 8,
        hidden_layers: 1,
        init_seed: 2,
        spline: SplineConfig {
            bins: 4,
            bound: 3.0,
            ..Default::default()
        },
        circular: CIRCULAR.to_vec(),
        circular_shift: CircularShift::Fixed(0.7),
        ..Default::default()
    }
}

fn perturbed(scale: f64) -> CouplingFlow {
    let mut flow = CouplingFlow::<f64>::spline(DIM, &config()).unwrap();
    common::perturb(&mut flow, scale, 3);
    flow
}

/// Test points of this file's flow shape (see `common::points`).
fn points(n: usize, seed: u64) -> Array2<f64> {
    common::points(n, seed, DIM, &CIRCULAR)
}

fn max_abs(a: &Array1<f64>) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

#[test]
fn identity_at_initialisation() {
    let flow = CouplingFlow::<f64>::spline(
        DIM,
        &SplineFlowConfig {
            circular_shift: CircularShift::None,
            ..config()
        },
    )
    .unwrap();
    let x = points(64, 1);
    let (z, ld) = flow.inverse(x.view()).unwrap();
    assert!((&z - &x).iter().all(|v| v.abs() < 1e-13));
    assert!(max_abs(&ld) < 1e-12);
    // log q = Gaussian on ordinary coordinates + uniform on circular ones.
    let lq = flow.log_prob(x.view()).unwrap();
    for (r, l) in x.rows().into_iter().zip(lq.iter()) {
        let expect = -0.5 * (r[0] * r[0] + r[3] * r[3]) - (2.0 * PI).ln() - 2.0 * (2.0 * PI).ln();
        assert!((l - expect).abs() < 1e-12);
    }
}

#[test]
fn inverse_undoes_forward_and_samples_are_consistent() {
    let flow = perturbed(0.2);
    let x = points(256, 2);
    let (z, ld_inv) = flow.inverse(x.view()).unwrap();
    let (x_back, ld_fwd) = flow.forward(z.view()).unwrap();
    let err = (&x_back - &x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-10, "round trip error {err}");
    assert!(max_abs(&(&ld_inv + &ld_fwd)) < 1e-10);
    for j in CIRCULAR {
        assert!(
            z.column(j).iter().all(|v| (-PI..=PI).contains(v)),
            "circular coordinate left [−π, π]"
        );
    }
    let (xs, lq) = flow.sample(256, &mut seeded(4)).unwrap();
    assert!(max_abs(&(&lq - &flow.log_prob(xs.view()).unwrap())) < 1e-10);
}

#[test]
fn log_det_matches_finite_difference_jacobian() {
    let flow = perturbed(0.2);
    // Stay away from the wrap-around point of the circular shift so differences are smooth.
    let z = points(6, 5).mapv(|v| v * 0.8);
    let (_, ld) = flow.forward(z.view()).unwrap();
    let h = 1e-6;
    for i in 0..z.nrows() {
        let mut jac = [[0.0f64; DIM]; DIM];
        for j in 0..DIM {
            let mut p = z.row(i).to_owned().insert_axis(ndarray::Axis(0));
            let mut m = p.clone();
            p[[0, j]] += h;
            m[[0, j]] -= h;
            let (xp, _) = flow.forward(p.view()).unwrap();
            let (xm, _) = flow.forward(m.view()).unwrap();
            for k in 0..DIM {
                let mut d = xp[[0, k]] - xm[[0, k]];
                if CIRCULAR.contains(&k) {
                    d -= 2.0 * PI * (d / (2.0 * PI)).round(); // across the wrap
                }
                jac[k][j] = d / (2.0 * h);
            }
        }
        let det = determinant(jac);
        assert!(
            (det.abs().ln() - ld[i]).abs() < 1e-6,
            "row {i}: {} vs {}",
            det.abs().ln(),
            ld[i]
        );
    }
}

fn determinant(mut a: [[f64; DIM]; DIM]) -> f64 {
    let mut det = 1.0;
    for c in 0..DIM {
        let p = (c..DIM)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        if p != c {
            a.swap(p, c);
            det = -det;
        }
        det *= a[c][c];
        for r in c + 1..DIM {
            let f = a[r][c] / a[c][c];
            // Row r −= f · row c (c < r, so the pivot row sits in the upper part).
            let (upper, lower) = a.split_at_mut(r);
            for (x, &y) in lower[0][c..].iter_mut().zip(&upper[c][c..]) {
                *x -= f * y;
            }
        }
    }
    det
}

#[test]
fn density_is_periodic_in_the_circular_coordinates() {
    let flow = perturbed(0.2);
    let mut lo = points(32, 6);
    let mut hi = lo.clone();
    lo.column_mut(1).fill(-PI);
    hi.column_mut(1).fill(PI);
    let d = &flow.log_prob(lo.view()).unwrap() - &flow.log_prob(hi.view()).unwrap();
    assert!(
        max_abs(&d) < 1e-9,
        "log q differs at −π and π by {}",
        max_abs(&d)
    );
}

/// ∇ₓ log q from `log_prob_and_grad` against central differences of `log_prob` (step 1e-6).
fn assert_input_gradient_matches_fd(flow: &CouplingFlow, x: &Array2<f64>) {
    let mut g = Array2::zeros(x.dim());
    flow.log_prob_and_grad(x.view(), g.view_mut()).unwrap();
    let h = 1e-6;
    for i in 0..x.nrows() {
        for j in 0..DIM {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[[i, j]] += h;
            xm[[i, j]] -= h;
            let fd = (flow.log_prob(xp.view()).unwrap()[i] - flow.log_prob(xm.view()).unwrap()[i])
                / (2.0 * h);
            assert!(
                (fd - g[[i, j]]).abs() < 1e-5 * (1.0 + fd.abs()),
                "({i},{j}) {fd} vs {}",
                g[[i, j]]
            );
        }
    }
}

#[test]
fn input_and_parameter_gradients_match_finite_differences() {
    let mut flow = perturbed(0.2);
    let x = points(6, 7).mapv(|v| v * 0.8);
    assert_input_gradient_matches_fd(&flow, &x);
    let c = Array1::from_iter((0..6).map(|i| 0.3 + 0.1 * i as f64));
    let wg = flow
        .weighted_nll_grad(x.view(), &mut |_| c.clone())
        .unwrap();
    let loss = |f: &CouplingFlow| -(f.log_prob(x.view()).unwrap() * &c).mean().unwrap();
    let worst = common::worst_fd_error(&mut flow, &wg.grad, &mut |f| loss(f));
    assert!(
        worst < 1e-5,
        "worst relative parameter-gradient error {worst}"
    );
}

#[test]
fn random_circular_shifts_are_reproducible_and_keep_the_flow_invertible() {
    let cfg = SplineFlowConfig {
        circular_shift: CircularShift::Random,
        ..config()
    };
    let perturb = |mut f: CouplingFlow| {
        let p: Vec<f64> = f
            .params()
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.1 * ((i % 5) as f64 - 2.0))
            .collect();
        f.set_params(&p).unwrap();
        f
    };
    let (a, b) = (
        perturb(CouplingFlow::<f64>::spline(DIM, &cfg).unwrap()),
        perturb(CouplingFlow::<f64>::spline(DIM, &cfg).unwrap()),
    );
    let x = points(64, 9);
    assert_eq!(a.log_prob(x.view()).unwrap(), b.log_prob(x.view()).unwrap());
    let (z, _) = a.inverse(x.view()).unwrap();
    let (x_back, _) = a.forward(z.view()).unwrap();
    assert!((&x_back - &x).iter().all(|v| v.abs() < 1e-10));
    // A different seed draws different shifts, hence a different (identity-initialised) map.
    let c = CouplingFlow::<f64>::spline(
        DIM,
        &SplineFlowConfig {
            init_seed: 99,
            ..cfg.clone()
        },
    )
    .unwrap();
    let i = CouplingFlow::<f64>::spline(
        DIM,
        &SplineFlowConfig {
            init_seed: 98,
            ..cfg
        },
    )
    .unwrap();
    assert_ne!(
        c.forward(x.view()).unwrap().0,
        i.forward(x.view()).unwrap().0
    );
}

/// Large batches are split across rayon threads: the result must equal row-by-row evaluation.
#[test]
fn batched_evaluation_on_a_two_thread_pool_equals_row_by_row() {
    let flow = perturbed(0.3);
    let (x, _) = flow.sample(300, &mut seeded(9)).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let (lq, grad) = pool.install(|| {
        let mut grad = Array2::zeros(x.raw_dim());
        let lq = flow.log_prob_and_grad(x.view(), grad.view_mut()).unwrap();
        assert_eq!(flow.log_prob(x.view()).unwrap(), lq);
        (lq, grad)
    });
    for i in (0..300).step_by(37) {
        let row = x.slice(ndarray::s![i..i + 1, ..]);
        let mut g = Array2::zeros(row.raw_dim());
        let l = flow.log_prob_and_grad(row, g.view_mut()).unwrap();
        assert!(
            (l[0] - lq[i]).abs() < 1e-10,
            "row {i}: {} vs {}",
            l[0],
            lq[i]
        );
        for k in 0..DIM {
            assert!(
                (g[[0, k]] - grad[[i, k]]).abs() < 1e-9,
                "row {i} coordinate {k}"
            );
        }
    }
}

/// The training gradient of a large batch is computed in row chunks on a 2-thread pool: loss,
/// log q and parameter gradient must equal the single-pass result on one thread.
#[test]
fn chunked_training_gradient_equals_single_pass() {
    let flow = perturbed(0.3);
    let (x, _) = flow.sample(300, &mut seeded(10)).unwrap();
    // Coefficients that depend on the whole batch, as the FAB loss's normalised weights do.
    let coeff = |lq: ndarray::ArrayView1<f64>| {
        let max = lq.fold(f64::NEG_INFINITY, |m, v| m.max(*v));
        let w = lq.mapv(|v| (v - max).exp());
        &w / w.sum() * lq.len() as f64
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            flow.weighted_nll_grad(x.view(), &mut |lq| coeff(lq))
                .unwrap()
        })
    };
    let (one, two) = (run(1), run(2));
    assert!(max_abs(&(&one.log_q - &two.log_q)) < 1e-10);
    assert!(max_abs(&(&one.coefficients - &two.coefficients)) < 1e-10);
    assert!((one.loss - two.loss).abs() < 1e-10 * one.loss.abs().max(1.0));
    let scale = one.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = one
        .grad
        .iter()
        .zip(&two.grad)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        scale > 0.0 && err < 1e-10 * scale,
        "gradient differs by {err} (scale {scale})"
    );
}

/// Wraps an angle into [−π, π).
fn wrap(v: f64) -> f64 {
    v - 2.0 * PI * ((v + PI) / (2.0 * PI)).floor()
}

/// A flow that models angle 2 relative to angle 1 is the plain flow followed by the torus shear
/// x₂ = wrap(h₂ + h₁), whose Jacobian determinant is 1: log q_rel(x) = log q(x with x₂ − x₁) for
/// the same parameters. It inverts its samples, its input gradient matches finite differences,
/// and invalid pairs are refused with the field named.
#[test]
fn relative_angles_shear_the_torus_without_changing_volume() {
    let plain = perturbed(0.2);
    let rel_config = SplineFlowConfig {
        relative_angles: vec![(2, 1)],
        ..config()
    };
    let mut rel = CouplingFlow::<f64>::spline(DIM, &rel_config).unwrap();
    rel.set_params(&plain.params()).unwrap();
    let x = points(64, 8);
    let mut h = x.clone();
    for mut r in h.rows_mut() {
        r[2] = wrap(r[2] - r[1]);
    }
    let d = &rel.log_prob(x.view()).unwrap() - &plain.log_prob(h.view()).unwrap();
    assert!(max_abs(&d) < 1e-10, "log q differs by {}", max_abs(&d));
    // Round trip, and samples with their own log q.
    let (z, _) = rel.inverse(x.view()).unwrap();
    let (x_back, _) = rel.forward(z.view()).unwrap();
    let err = (&x_back - &x)
        .iter()
        .fold(0.0f64, |m, v| m.max(wrap(*v).abs()));
    assert!(err < 1e-10, "round trip error {err}");
    let (xs, lq) = rel.sample(256, &mut seeded(9)).unwrap();
    assert!(xs.column(2).iter().all(|v| (-PI..PI).contains(v)));
    assert!(max_abs(&(&lq - &rel.log_prob(xs.view()).unwrap())) < 1e-10);
    // ∇ₓ log q against central differences (away from the wrap-around).
    assert_input_gradient_matches_fd(&rel, &points(6, 10).mapv(|v| v * 0.4));
    for bad in [
        vec![(3, 1)],
        vec![(2, 1), (1, 2)],
        vec![(2, 2)],
        vec![(2, 1), (2, 1)],
    ] {
        let err = CouplingFlow::<f64>::spline(
            DIM,
            &SplineFlowConfig {
                relative_angles: bad.clone(),
                ..config()
            },
        )
        .err()
        .unwrap_or_else(|| panic!("{bad:?} accepted"))
        .to_string();
        assert!(err.contains("relative_angles"), "{bad:?}: {err}");
    }
}
