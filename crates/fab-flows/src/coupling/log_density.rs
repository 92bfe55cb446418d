//! The flow as a [`LogDensity`]: log q and its input gradient, over row chunks on the rayon
//! threads.

use dfdx::prelude::*;
use ndarray::{Array1, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use fab_core::{LogDensity, Result};

use super::chunks::par_chunks;
use super::flow::CouplingFlow;
use crate::kernels::conditioner::ParamGrads;
use crate::real::{host, widen, Real};

impl<E: Real> CouplingFlow<E>
where
    Cpu: Device<E>,
{
    /// log q of the rows of `chunks`, one untaped pass per chunk on the rayon threads, in order.
    pub(super) fn log_prob_chunks(&self, chunks: &[ArrayView2<f64>]) -> Array1<f64> {
        let parts: Vec<Vec<f64>> = chunks
            .par_iter()
            .map(|x| widen(host(&self.log_q(self.to_tensor(*x), ParamGrads::Skip))))
            .collect();
        parts.into_iter().flatten().collect()
    }
}

impl<E: Real> LogDensity for CouplingFlow<E>
where
    Cpu: Device<E>,
{
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.check("flow log_prob", &x)?;
        let mut out = Array1::zeros(x.nrows());
        if x.nrows() == 0 {
            return Ok(out);
        }
        par_chunks(x, None, out.view_mut(), &|x, mut lq, _| {
            let q = self.log_q(self.to_tensor(x), ParamGrads::Skip);
            lq.assign(&Array1::from(widen(host(&q))));
        });
        Ok(out)
    }

    fn log_prob_and_grad(
        &self,
        x: ArrayView2<f64>,
        grad: ArrayViewMut2<f64>,
    ) -> Result<Array1<f64>> {
        fab_core::density::check_dim_and_grad("flow log_prob_and_grad", &x, &grad, self.dim)?;
        let mut out = Array1::zeros(x.nrows());
        if x.nrows() == 0 {
            return Ok(out);
        }
        par_chunks(x, Some(grad), out.view_mut(), &|x, mut lq, grad| {
            let xt = self.to_tensor(x);
            let q = self.log_q(xt.leaky_trace(), ParamGrads::Skip);
            lq.assign(&Array1::from(widen(host(&q))));
            let grads = q.sum::<(), _>().backward();
            let g = host(&grads.get(&xt));
            if let Some(mut grad) = grad {
                grad.iter_mut().zip(g).for_each(|(dst, v)| *dst = v.wide());
            }
        });
        Ok(out)
    }
}
