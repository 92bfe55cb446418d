//! Gradients of the baseline losses (reverse KL, α = 2 with flow samples) through the RealNVP
//! sampling path, against central finite differences of the loss itself at fixed base noise.
//! (The FAB and forward-KL losses are weighted NLLs, checked in realnvp.rs.)

use fab_core::flow::ReparamCoefficients;
use fab_core::loss::{alpha2_nis_coefficients, reverse_kl_coefficients};
use fab_core::{rng::seeded, Flow, LogDensity, Result};
use fab_flows::{CouplingFlow, RealNvpConfig};
use ndarray::{Array1, ArrayView2, ArrayViewMut2, Axis};
use rand_distr::{Distribution, Normal};

/// Unnormalised N((1, −0.5), 0.7² I) with log Z = 0.3.
struct Gauss;

impl LogDensity for Gauss {
    fn dim(&self) -> usize {
        2
    }
    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        Ok(x.map_axis(Axis(1), |r| {
            0.3 - 0.5 * ((r[0] - 1.0).powi(2) + (r[1] + 0.5).powi(2)) / 0.49
        }))
    }
    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        mut g: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        for (mut gi, r) in g.rows_mut().into_iter().zip(x.rows()) {
            gi[0] = -(r[0] - 1.0) / 0.49;
            gi[1] = -(r[1] + 0.5) / 0.49;
        }
        self.log_prob(x)
    }
}

fn flow() -> CouplingFlow {
    let mut f = CouplingFlow::<f64>::real_nvp(
        2,
        &RealNvpConfig {
            n_layers: 3,
            hidden_units_per_dim: 3,
            hidden_layers: 1,
            init_seed: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let noise = Normal::new(0.0, 0.3).unwrap();
    let mut rng = seeded(9);
    let p: Vec<f64> = f
        .params()
        .iter()
        .map(|v| v + noise.sample(&mut rng))
        .collect();
    f.set_params(&p).unwrap();
    f
}

const N: usize = 16;

/// Loss value at the current parameters with base noise from seed 5, via the sample callback.
fn loss_value(
    f: &CouplingFlow,
    value: &mut dyn FnMut(ArrayView2<f64>, ndarray::ArrayView1<f64>) -> f64,
) -> f64 {
    let mut out = 0.0;
    f.reparam_grad(N, &mut seeded(5), &mut |x, lq| {
        out = value(x, lq);
        Ok(ReparamCoefficients {
            c: Array1::zeros(N),
            g: ndarray::Array2::zeros((N, 2)),
            loss: 0.0,
        })
    })
    .unwrap();
    out
}

fn assert_fd(
    mut f: CouplingFlow,
    grad: &[f64],
    value: &mut dyn FnMut(ArrayView2<f64>, ndarray::ArrayView1<f64>) -> f64,
) {
    let params = f.params();
    let h = 1e-5;
    let mut worst = 0.0f64;
    for k in 0..params.len() {
        let mut p = params.clone();
        p[k] += h;
        f.set_params(&p).unwrap();
        let lp = loss_value(&f, value);
        p[k] -= 2.0 * h;
        f.set_params(&p).unwrap();
        let lm = loss_value(&f, value);
        let fd = (lp - lm) / (2.0 * h);
        worst = worst.max((fd - grad[k]).abs() / (1e-2 + fd.abs()));
    }
    assert!(worst < 1e-5, "worst relative error {worst}");
}

#[test]
fn reverse_kl_gradient_matches_finite_differences_of_the_loss() {
    let f = flow();
    let r = f
        .reparam_grad(N, &mut seeded(5), &mut |x, lq| {
            reverse_kl_coefficients(&Gauss, x, lq)
        })
        .unwrap();
    let mut kl = |x: ArrayView2<f64>, lq: ndarray::ArrayView1<f64>| {
        (&lq - &Gauss.log_prob(x).unwrap()).mean().unwrap()
    };
    // The reported loss is the reverse KL itself (up to log Z).
    assert!((r.loss - kl(r.x.view(), r.log_q.view())).abs() < 1e-12);
    assert_fd(f, &r.grad, &mut kl);
}

#[test]
fn alpha_two_nis_gradient_matches_finite_differences_with_frozen_weights() {
    let f = flow();
    let r = f
        .reparam_grad(N, &mut seeded(5), &mut |x, lq| {
            alpha2_nis_coefficients(&Gauss, x, lq)
        })
        .unwrap();
    // Weights are a stop-gradient: freeze them at the current parameters.
    let w = (&Gauss.log_prob(r.x.view()).unwrap() - &r.log_q).mapv(|v| (2.0 * v).exp());
    let mut frozen = |_: ArrayView2<f64>, lq: ndarray::ArrayView1<f64>| -(&w * &lq).mean().unwrap();
    assert!((r.loss - frozen(r.x.view(), r.log_q.view())).abs() < 1e-9 * (1.0 + r.loss.abs()));
    assert_fd(f, &r.grad, &mut frozen);
}
