//! The flow's parameters as one flat vector (fab-core's optimiser and checkpoints see only that):
//! their names and order, mutable access, gradients in the same order, and the f64 ↔ `E`
//! conversions at the API boundary.

use dfdx::prelude::*;

use super::flow::CouplingFlow;
use super::layer::Transform;
use crate::linear::Linear;
use crate::real::{host, widen, Real, M, V};

/// Borrowed parameter tensor of either rank.
pub(super) enum Param<'a, E: Real> {
    M(&'a M<E>),
    V(&'a V<E>),
}

/// Mutably borrowed parameter tensor.
pub(super) enum ParamMut<'a, E: Real> {
    M(&'a mut M<E>),
    V(&'a mut V<E>),
}

impl<E: Real> CouplingFlow<E>
where
    Cpu: Device<E>,
{
    pub(super) fn named_params(&self) -> Vec<(String, Param<'_, E>)> {
        let mut out = Vec::new();
        if let Some((loc, log_scale)) = &self.base_affine {
            out.push(("base.loc".to_string(), Param::V(loc)));
            out.push(("base.log_scale".to_string(), Param::V(log_scale)));
        }
        for (l, c) in self.layers.iter().enumerate() {
            if let Some((loc, log_scale)) = &c.act_norm {
                out.push((format!("layer{l}.act_norm.loc"), Param::V(loc)));
                out.push((format!("layer{l}.act_norm.log_scale"), Param::V(log_scale)));
            }
            let mut lins: Vec<(String, &Linear<E>)> = c
                .hidden
                .iter()
                .enumerate()
                .map(|(j, lin)| (format!("hidden{j}"), lin))
                .collect();
            match &c.transform {
                Transform::Affine { shift, scale } => {
                    lins.push(("shift".into(), shift));
                    lins.push(("scale".into(), scale));
                }
                Transform::Spline { parts } => {
                    lins.extend(parts.iter().map(|(name, p)| (name.clone(), &p.head)))
                }
            }
            for (name, lin) in lins {
                out.push((format!("layer{l}.{name}.w"), Param::M(&lin.w)));
                out.push((format!("layer{l}.{name}.b"), Param::V(&lin.b)));
            }
        }
        out
    }

    pub(super) fn params_mut(&mut self) -> Vec<ParamMut<'_, E>> {
        let mut out = Vec::new();
        if let Some((loc, log_scale)) = self.base_affine.as_mut() {
            out.push(ParamMut::V(loc));
            out.push(ParamMut::V(log_scale));
        }
        for c in self.layers.iter_mut() {
            if let Some((loc, log_scale)) = c.act_norm.as_mut() {
                out.push(ParamMut::V(loc));
                out.push(ParamMut::V(log_scale));
            }
            let mut lins: Vec<&mut Linear<E>> = c.hidden.iter_mut().collect();
            match &mut c.transform {
                Transform::Affine { shift, scale } => {
                    lins.push(shift);
                    lins.push(scale);
                }
                Transform::Spline { parts } => {
                    lins.extend(parts.iter_mut().map(|(_, p)| &mut p.head))
                }
            }
            for lin in lins {
                out.push(ParamMut::M(&mut lin.w));
                out.push(ParamMut::V(&mut lin.b));
            }
        }
        out
    }

    /// Number of scalar parameters (the length of [`Flow::params`]).
    pub(super) fn n_params(&self) -> usize {
        self.named_params()
            .iter()
            .map(|(_, p)| match p {
                Param::M(t) => t.shape().num_elements(),
                Param::V(t) => t.shape().num_elements(),
            })
            .sum()
    }

    /// Flat gradient of all parameters, in [`Flow::params`] order.
    pub(super) fn flat_grad(&self, grads: &Gradients<E, Cpu>) -> Vec<f64> {
        let mut grad = Vec::new();
        for (_, p) in self.named_params() {
            match p {
                Param::M(t) => grad.extend(widen(host(&grads.get(t)))),
                Param::V(t) => grad.extend(widen(host(&grads.get(t)))),
            }
        }
        grad
    }
}
