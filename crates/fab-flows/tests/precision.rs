//! f32 flows compute the same maps as f64 flows: with the same parameters, log q, its input
//! gradient, the parameter gradient of the weighted NLL and the sampling path agree to f32
//! accuracy, the f32 round trip x → z → x closes to f32 accuracy, and `build` honours the
//! config's precision. (The f64 flows themselves are checked against finite differences in
//! spline_flow.rs and realnvp.rs; a difference of the two paths would show a conversion bug.)

mod common;

use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::spline::SplineConfig;
use fab_flows::{
    CircularShift, CouplingFlow, FlowConfig, Precision, RealNvpConfig, SplineFlowConfig,
};
use ndarray::{Array1, Array2};
use rand_distr::{Distribution, Normal};

const PI: f64 = std::f64::consts::PI;
const DIM: usize = 6;
const CIRCULAR: [usize; 3] = [1, 2, 4];

fn spline_config() -> SplineFlowConfig {
    SplineFlowConfig {
        n_layers: 4,
        hidden_units: 16,
        hidden_layers: 2,
        init_seed: 5,
        spline: SplineConfig {
            bins: 6,
            bound: 3.0,
            ..Default::default()
        },
        circular: CIRCULAR.to_vec(),
        circular_shift: CircularShift::Random,
        ..Default::default()
    }
}

/// The same perturbed parameters in both precisions.
fn spline_pair() -> (CouplingFlow<f64>, CouplingFlow<f32>) {
    let mut f64_flow = CouplingFlow::<f64>::spline(DIM, &spline_config()).unwrap();
    let noise = Normal::new(0.0, 0.2).unwrap();
    let mut rng = seeded(11);
    // Parameters representable in f32, so both flows hold exactly the same numbers.
    let p: Vec<f64> = f64_flow
        .params()
        .iter()
        .map(|v| (v + noise.sample(&mut rng)) as f32 as f64)
        .collect();
    f64_flow.set_params(&p).unwrap();
    let mut f32_flow = CouplingFlow::<f32>::spline(DIM, &spline_config()).unwrap();
    f32_flow.set_params(&p).unwrap();
    assert_eq!(
        f32_flow.params(),
        p,
        "f32 parameters hold f32-representable values exactly"
    );
    (f64_flow, f32_flow)
}

/// Test points of this file's flow shape (see `common::points`).
fn points(n: usize, seed: u64) -> Array2<f64> {
    common::points(n, seed, DIM, &CIRCULAR)
}

fn max_abs<'a>(v: impl IntoIterator<Item = &'a f64>) -> f64 {
    v.into_iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

fn max_diff<'a>(a: impl IntoIterator<Item = &'a f64>, b: impl IntoIterator<Item = &'a f64>) -> f64 {
    a.into_iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn f32_spline_flow_matches_f64_log_density_and_gradients() {
    let (f64_flow, f32_flow) = spline_pair();
    let x = points(300, 1);
    let mut g64 = Array2::zeros(x.dim());
    let mut g32 = Array2::zeros(x.dim());
    let lq64 = f64_flow
        .log_prob_and_grad(x.view(), g64.view_mut())
        .unwrap();
    let lq32 = f32_flow
        .log_prob_and_grad(x.view(), g32.view_mut())
        .unwrap();
    // f32 carries ~7 digits; through 4 layers of MLP + spline the error stays far below 1e-3.
    let scale = max_abs(&lq64).max(1.0);
    let lq_err = max_diff(&lq64, &lq32);
    assert!(
        lq_err < 1e-4 * scale,
        "log q differs by {lq_err} (scale {scale})"
    );
    let g_err = max_diff(&g64, &g32);
    assert!(
        g_err < 1e-3 * max_abs(&g64),
        "input gradient differs by {g_err}"
    );
    // The parameter gradient of one training step.
    let coeff = Array1::from_shape_fn(x.nrows(), |i| 1.0 + (i % 5) as f64 * 0.1);
    let w64 = f64_flow
        .weighted_nll_grad(x.view(), &mut |_| coeff.clone())
        .unwrap();
    let w32 = f32_flow
        .weighted_nll_grad(x.view(), &mut |_| coeff.clone())
        .unwrap();
    assert!((w64.loss - w32.loss).abs() < 1e-4 * w64.loss.abs().max(1.0));
    let p_err = max_diff(&w64.grad, &w32.grad);
    assert!(
        p_err < 1e-3 * max_abs(&w64.grad),
        "parameter gradient differs by {p_err}"
    );
}

#[test]
fn f32_spline_flow_round_trip_and_sampling_path() {
    let (f64_flow, f32_flow) = spline_pair();
    let x = points(300, 2);
    let (z, ld_inv) = f32_flow.inverse(x.view()).unwrap();
    let (x_back, ld_fwd) = f32_flow.forward(z.view()).unwrap();
    // The inverse spline solves a quadratic, which loses digits where the slope is small; with
    // f32's 1.2e-7 rounding this test measures 1.3e-4 on |x| ≤ 4 (f64: below 1e-10).
    let err = max_diff(&x_back, &x);
    assert!(err < 1e-3, "f32 round trip error {err}");
    assert!(max_abs(&(&ld_inv + &ld_fwd)) < 1e-3);
    // Samples: same base draws give the same points and log q in both precisions.
    let (x64, lq64) = f64_flow.sample(200, &mut seeded(3)).unwrap();
    let (x32, lq32) = f32_flow.sample(200, &mut seeded(3)).unwrap();
    // Angles can land on opposite sides of ±π; compare on the circle.
    let circle_err = x64
        .iter()
        .zip(x32.iter())
        .enumerate()
        .map(|(i, (a, b))| {
            let d = a - b;
            if CIRCULAR.contains(&(i % DIM)) {
                (d - 2.0 * PI * (d / (2.0 * PI)).round()).abs()
            } else {
                d.abs()
            }
        })
        .fold(0.0f64, f64::max);
    assert!(circle_err < 1e-4, "sample paths differ by {circle_err}");
    assert!(max_diff(&lq64, &lq32) < 1e-4 * max_abs(&lq64).max(1.0));
}

#[test]
fn f32_real_nvp_matches_f64() {
    let config = RealNvpConfig {
        n_layers: 4,
        hidden_units_per_dim: 4,
        hidden_layers: 2,
        init_seed: 2,
        ..Default::default()
    };
    let mut a = CouplingFlow::<f64>::real_nvp(4, &config).unwrap();
    let noise = Normal::new(0.0, 0.1).unwrap();
    let mut rng = seeded(7);
    let p: Vec<f64> = a
        .params()
        .iter()
        .map(|v| (v + noise.sample(&mut rng)) as f32 as f64)
        .collect();
    a.set_params(&p).unwrap();
    let mut b = CouplingFlow::<f32>::real_nvp(4, &config).unwrap();
    b.set_params(&p).unwrap();
    let x = Array2::from_shape_fn((200, 4), |(i, j)| ((i * 7 + j * 3) % 17) as f64 / 4.0 - 2.0);
    let (la, lb) = (a.log_prob(x.view()).unwrap(), b.log_prob(x.view()).unwrap());
    assert!(max_diff(&la, &lb) < 1e-4 * max_abs(&la).max(1.0));
}

#[test]
fn build_honours_the_configured_precision() {
    let f64_config = spline_config();
    let f32_config = SplineFlowConfig {
        precision: Precision::F32,
        ..spline_config()
    };
    let a = fab_flows::build(&FlowConfig::SplineCoupling(f64_config), DIM).unwrap();
    let b = fab_flows::build(&FlowConfig::SplineCoupling(f32_config), DIM).unwrap();
    let (pa, pb) = (a.params(), b.params());
    assert_eq!(pa.len(), pb.len());
    // Same initialisation, rounded to f32: equal to ~1e-7 relative, but not bit-equal.
    assert!(pa
        .iter()
        .zip(&pb)
        .all(|(x, y)| (x - y).abs() <= 1e-7 * x.abs()));
    assert!(
        pa.iter().zip(&pb).any(|(x, y)| x != y),
        "the f32 config built an f64 flow"
    );
}
