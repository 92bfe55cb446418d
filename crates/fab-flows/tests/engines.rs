//! The fused engine against the reference engine (dfdx's own operations), in f64, on random
//! parameters and inputs: log q, the input gradient (HMC), the parameter gradient of a weighted
//! NLL (training), the sampling direction, and the reparameterised gradient, for RealNVP and for
//! spline flows with circular coordinates, circular shifts and relative angles. The fused engine
//! is also the default, so every finite-difference test in the other files checks it directly.

mod common;

use common::perturb;

use fab_core::flow::ReparamCoefficients;
use fab_core::{rng::seeded, Flow, LogDensity};
use fab_flows::spline::SplineConfig;
use fab_flows::{Activation, CircularShift, CouplingFlow, Engine, RealNvpConfig, SplineFlowConfig};
use ndarray::{Array1, Array2};

/// Largest |a − b| / (1 + |b|) over two sequences.
fn rel_err<'a>(a: impl IntoIterator<Item = &'a f64>, b: impl IntoIterator<Item = &'a f64>) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f64::max)
}

/// Checks every pass of `fused` against the same flow on the reference engine.
fn engines_agree(fused: &CouplingFlow, x: &Array2<f64>, what: &str) {
    assert_eq!(fused.engine(), Engine::Fused);
    let reference = fused.clone().with_engine(Engine::Reference);
    let tol = 1e-10;
    let (n, d) = x.dim();

    let lq_f = fused.log_prob(x.view()).unwrap();
    let lq_r = reference.log_prob(x.view()).unwrap();
    assert!(
        lq_r.iter().all(|v| v.is_finite()),
        "{what}: reference log q"
    );
    let e = rel_err(&lq_f, &lq_r);
    assert!(e < tol, "{what}: log q differs by {e:e}");

    let mut g_f = Array2::zeros((n, d));
    let mut g_r = Array2::zeros((n, d));
    let lq_gf = fused.log_prob_and_grad(x.view(), g_f.view_mut()).unwrap();
    reference
        .log_prob_and_grad(x.view(), g_r.view_mut())
        .unwrap();
    let e = rel_err(&lq_gf, &lq_r).max(rel_err(&g_f, &g_r));
    assert!(e < tol, "{what}: log q and input gradient differ by {e:e}");

    // Weighted NLL with coefficients that depend on log q, as FAB's loss.
    let coeff = |lq: ndarray::ArrayView1<f64>| lq.mapv(|v| 0.5 + 0.1 * v.tanh());
    let w_f = fused
        .weighted_nll_grad(x.view(), &mut |lq| coeff(lq))
        .unwrap();
    let w_r = reference
        .weighted_nll_grad(x.view(), &mut |lq| coeff(lq))
        .unwrap();
    let e = rel_err(&w_f.grad, &w_r.grad).max(rel_err([&w_f.loss], [&w_r.loss]));
    assert!(e < tol, "{what}: weighted NLL gradient differs by {e:e}");
    assert!(
        w_r.grad.iter().any(|g| g.abs() > 1e-3),
        "{what}: trivial gradient"
    );

    let (z, ld_f) = fused.inverse(x.view()).unwrap();
    let (x_f, fwd_f) = fused.forward(z.view()).unwrap();
    let (x_r, fwd_r) = reference.forward(z.view()).unwrap();
    let (_, ld_r) = reference.inverse(x.view()).unwrap();
    let e = rel_err(&x_f, &x_r)
        .max(rel_err(&fwd_f, &fwd_r))
        .max(rel_err(&ld_f, &ld_r));
    assert!(e < tol, "{what}: forward / inverse differ by {e:e}");

    // Reparameterised gradient (reverse KL's path): c = 1, g = a fixed direction.
    let mut coeff = |xs: ndarray::ArrayView2<f64>, _: ndarray::ArrayView1<f64>| {
        Ok(ReparamCoefficients {
            c: Array1::from_elem(xs.nrows(), 1.0),
            g: xs.mapv(|v| 0.3 * v.sin()),
            loss: 0.0,
        })
    };
    let r_f = fused.reparam_grad(n, &mut seeded(9), &mut coeff).unwrap();
    let r_r = reference
        .reparam_grad(n, &mut seeded(9), &mut coeff)
        .unwrap();
    let e = rel_err(&r_f.grad, &r_r.grad).max(rel_err(&r_f.log_q, &r_r.log_q));
    assert!(e < tol, "{what}: reparameterised gradient differs by {e:e}");
}

#[test]
fn realnvp_fused_equals_reference() {
    for (dim, hidden_layers, activation, roll) in [
        (5, 2, Activation::Relu, false),
        (2, 1, Activation::Relu, false),
        (6, 0, Activation::Relu, false),
        (5, 2, Activation::Gelu, true),
    ] {
        let config = RealNvpConfig {
            n_layers: 4,
            hidden_units_per_dim: 3,
            hidden_layers,
            init_seed: 1,
            activation,
            roll,
            act_norm: roll,
            ..Default::default()
        };
        let mut flow = CouplingFlow::<f64>::real_nvp(dim, &config).unwrap();
        perturb(&mut flow, 0.3, 2);
        let x = common::points(37, 4, dim, &[]);
        engines_agree(
            &flow,
            &x,
            &format!("RealNVP dim {dim}, {hidden_layers} hidden, {activation:?}, roll {roll}"),
        );
    }
}

#[test]
fn spline_fused_equals_reference() {
    let dim = 7;
    let circular = vec![1, 3, 4, 6];
    for (relative_angles, activation) in [
        (vec![], Activation::Relu),
        (vec![(4, 1), (6, 1)], Activation::Relu),
        (vec![(4, 1)], Activation::Gelu),
    ] {
        let config = SplineFlowConfig {
            n_layers: 4,
            hidden_units: 9,
            hidden_layers: 2,
            init_seed: 3,
            spline: SplineConfig {
                bins: 5,
                bound: 3.0,
                ..Default::default()
            },
            circular: circular.clone(),
            circular_shift: CircularShift::Random,
            relative_angles: relative_angles.clone(),
            activation,
            ..Default::default()
        };
        let mut flow = CouplingFlow::<f64>::spline(dim, &config).unwrap();
        perturb(&mut flow, 0.2, 5);
        let x = common::points(41, 6, dim, &circular);
        engines_agree(
            &flow,
            &x,
            &format!("spline, relative {relative_angles:?}, {activation:?}"),
        );
    }
}

#[test]
fn chunked_training_gradient_on_two_threads_equals_one_pass() {
    // Batches of ≥ 128 rows split over the rayon threads; the fused engine must give the same
    // gradient as the unsplit reference pass.
    let config = RealNvpConfig {
        n_layers: 3,
        hidden_units_per_dim: 4,
        ..Default::default()
    };
    let mut flow = CouplingFlow::<f64>::real_nvp(4, &config).unwrap();
    perturb(&mut flow, 0.3, 8);
    let x = common::points(300, 1, 4, &[]);
    let reference = flow.clone().with_engine(Engine::Reference);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let coeff = |lq: ndarray::ArrayView1<f64>| lq.mapv(|v| 1.0 + 0.01 * v);
    let g1 = one.install(|| {
        reference
            .weighted_nll_grad(x.view(), &mut |lq| coeff(lq))
            .unwrap()
    });
    let g2 = two.install(|| {
        flow.weighted_nll_grad(x.view(), &mut |lq| coeff(lq))
            .unwrap()
    });
    let e = rel_err(&g2.grad, &g1.grad);
    assert!(e < 1e-10, "chunked fused gradient differs by {e:e}");
}

#[test]
fn smaller_gradient_chunks_change_the_gradient_only_by_rounding() {
    // gradient_chunk_rows sets how many chunk gradients are summed (300 rows: 1 chunk at 512,
    // 2 at 256, 6 at 50): the same gradient up to rounding, and each setting bit-stable.
    let x = common::points(300, 1, 4, &[]);
    let coeff = |lq: ndarray::ArrayView1<f64>| lq.mapv(|v| 1.0 + 0.01 * v);
    let grad = |rows: usize| {
        let config = RealNvpConfig {
            n_layers: 3,
            hidden_units_per_dim: 4,
            gradient_chunk_rows: rows,
            ..Default::default()
        };
        let mut flow = CouplingFlow::<f64>::real_nvp(4, &config).unwrap();
        perturb(&mut flow, 0.3, 8);
        flow.weighted_nll_grad(x.view(), &mut |lq| coeff(lq))
            .unwrap()
    };
    let whole = grad(512);
    for rows in [256, 50] {
        let g = grad(rows);
        let e = rel_err(&g.grad, &whole.grad);
        assert!(e < 1e-12, "{rows}-row chunks: gradient differs by {e:e}");
        assert!((g.loss - whole.loss).abs() < 1e-12 * whole.loss.abs().max(1.0));
        assert_eq!(g.grad, grad(rows).grad, "{rows}-row chunks not bit-stable");
    }
    let config = RealNvpConfig {
        gradient_chunk_rows: 0,
        ..Default::default()
    };
    let err = CouplingFlow::<f64>::real_nvp(4, &config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gradient_chunk_rows"), "{err}");
}

#[test]
fn empty_batches_give_empty_results_on_both_engines() {
    let config = SplineFlowConfig {
        n_layers: 2,
        hidden_units: 4,
        circular: vec![1],
        ..Default::default()
    };
    for flow in [
        CouplingFlow::<f64>::spline(3, &config).unwrap(),
        CouplingFlow::<f64>::spline(3, &config)
            .unwrap()
            .with_engine(Engine::Reference),
    ] {
        let (x, lq) = flow.sample(0, &mut seeded(1)).unwrap();
        assert_eq!((x.dim(), lq.len()), ((0, 3), 0));
        assert_eq!(flow.log_prob(x.view()).unwrap().len(), 0);
        let mut g = Array2::zeros((0, 3));
        assert_eq!(
            flow.log_prob_and_grad(x.view(), g.view_mut())
                .unwrap()
                .len(),
            0
        );
    }
}

#[test]
fn every_pass_is_bit_identical_on_one_two_and_three_threads() {
    // 300 rows: split into per-thread chunks for log q and the input gradient, into batch-size
    // chunks for the parameter gradient. f32 (the fast configs) and f64, RealNVP and splines.
    let realnvp = RealNvpConfig {
        n_layers: 3,
        hidden_units_per_dim: 4,
        precision: fab_flows::Precision::F32,
        ..Default::default()
    };
    let spline = SplineFlowConfig {
        n_layers: 2,
        hidden_units: 16,
        circular: vec![1],
        ..Default::default()
    };
    let flows: Vec<(&str, Box<dyn Flow>)> = vec![
        (
            "realnvp f32",
            fab_flows::build(&fab_flows::FlowConfig::RealNvp(realnvp), 4).unwrap(),
        ),
        (
            "spline f64",
            fab_flows::build(&fab_flows::FlowConfig::SplineCoupling(spline), 4).unwrap(),
        ),
    ];
    for (what, mut flow) in flows {
        perturb(flow.as_mut(), 0.1, 6);
        let x = common::points(300, 4, 4, &[1]);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let lq = flow.log_prob(x.view()).unwrap();
                let mut gx = Array2::zeros(x.dim());
                let lq2 = flow.log_prob_and_grad(x.view(), gx.view_mut()).unwrap();
                let g = flow
                    .weighted_nll_grad(x.view(), &mut |lq| lq.mapv(|v| 1.0 + 0.01 * v))
                    .unwrap();
                (lq, lq2, gx, g.grad)
            })
        };
        let one = run(1);
        assert!(one.0 == one.1, "{what}: taped and untaped log q differ");
        for threads in [2, 3] {
            let other = run(threads);
            assert!(one.0 == other.0, "{what}: log q, 1 vs {threads} threads");
            assert!(
                one.1 == other.1,
                "{what}: log q (taped), 1 vs {threads} threads"
            );
            assert!(one.2 == other.2, "{what}: ∇ₓ log q, 1 vs {threads} threads");
            assert!(
                one.3 == other.3,
                "{what}: parameter gradient, 1 vs {threads} threads"
            );
        }
    }
}
