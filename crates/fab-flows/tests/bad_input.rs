//! The public flow API on hostile input: every bad setting or shape is an error naming what is
//! wrong, never a panic; edge cases that are valid (empty batches, one sample) just work.

use fab_core::rng::seeded;
use fab_flows::{build, FlowConfig, Precision, RealNvpConfig, SplineFlowConfig};
use ndarray::Array2;

fn real_nvp(n_layers: usize, width: usize, precision: Precision) -> FlowConfig {
    FlowConfig::RealNvp(RealNvpConfig {
        n_layers,
        hidden_units_per_dim: width,
        precision,
        ..RealNvpConfig::default()
    })
}

fn spline(edit: impl FnOnce(&mut SplineFlowConfig)) -> FlowConfig {
    let mut c = SplineFlowConfig {
        n_layers: 2,
        hidden_units: 8,
        circular: vec![1],
        ..SplineFlowConfig::default()
    };
    edit(&mut c);
    FlowConfig::SplineCoupling(c)
}

/// `build` must fail, and its message must contain `needle`.
fn refused(config: &FlowConfig, dim: usize, needle: &str) {
    match build(config, dim) {
        Ok(_) => panic!("accepted {config:?} at dimension {dim}"),
        Err(e) => assert!(e.to_string().contains(needle), "{needle}: {e}"),
    }
}

#[test]
fn bad_settings_are_refused_by_name() {
    refused(&real_nvp(0, 2, Precision::F64), 4, "n_layers");
    refused(&real_nvp(2, 0, Precision::F32), 4, "hidden_units");
    refused(&real_nvp(2, 2, Precision::F64), 1, "dimension");
    refused(&real_nvp(2, 2, Precision::F64), 0, "dimension");
    refused(&spline(|_| {}), 1, "dimension");
    refused(&spline(|c| c.spline.bins = 1), 4, "bins");
    refused(&spline(|c| c.spline.bound = f64::NAN), 4, "flow.spline");
    refused(&spline(|c| c.spline.min_bin = 0.4), 4, "flow.spline");
    refused(&spline(|c| c.circular = vec![4]), 4, "out of range");
    refused(&spline(|c| c.circular = vec![1, 1]), 4, "twice");
    refused(
        &spline(|c| c.relative_angles = vec![(9, 1)]),
        4,
        "out of range",
    );
}

#[test]
fn wrong_shapes_are_errors_and_empty_batches_are_empty() {
    for config in [
        real_nvp(2, 2, Precision::F64),
        real_nvp(2, 2, Precision::F32),
        spline(|_| {}),
    ] {
        let mut flow = build(&config, 4).unwrap();
        let mut rng = seeded(1);
        // Three columns for a 4-D flow: an error naming the dimension, in every pass.
        let x = Array2::<f64>::zeros((5, 3));
        let e = flow.log_prob(x.view()).unwrap_err().to_string();
        assert!(e.contains('4') && e.contains('3'), "{e}");
        let mut g = Array2::<f64>::zeros((5, 3));
        assert!(flow.log_prob_and_grad(x.view(), g.view_mut()).is_err());
        assert!(flow
            .weighted_nll_grad(x.view(), &mut |lq| lq.mapv(|_| 1.0))
            .is_err());
        // A gradient buffer of the wrong shape.
        let x = Array2::<f64>::zeros((5, 4));
        let mut g = Array2::<f64>::zeros((4, 4));
        assert!(flow.log_prob_and_grad(x.view(), g.view_mut()).is_err());
        // A coefficient callback returning the wrong length.
        assert!(flow
            .weighted_nll_grad(x.view(), &mut |_| ndarray::Array1::ones(2))
            .is_err());
        // Parameters of the wrong length; the flow keeps its own.
        let before = flow.params();
        assert!(flow.set_params(&before[1..]).is_err());
        assert_eq!(flow.params(), before);
        // Empty batches and single samples are fine.
        let (s, lq) = flow.sample(0, &mut rng).unwrap();
        assert_eq!((s.dim(), lq.len()), ((0, 4), 0));
        assert_eq!(flow.log_prob(s.view()).unwrap().len(), 0);
        let (s, _) = flow.sample(1, &mut rng).unwrap();
        assert!(flow.log_prob(s.view()).unwrap()[0].is_finite());
        // Non-finite points: a number (−inf or NaN) per row, no panic, and the other rows intact.
        let mut x = Array2::<f64>::zeros((3, 4));
        x[[0, 0]] = f64::NAN;
        x[[1, 2]] = f64::INFINITY;
        let lq = flow.log_prob(x.view()).unwrap();
        assert!(!lq[0].is_finite() && !lq[1].is_finite());
        assert!(lq[2].is_finite(), "{lq}");
    }
}
