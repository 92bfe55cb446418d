//! The prioritised replay buffer of FAB (fab-spec §4).
//!
//! A ring of rows (x, log w, log q_old). Sampling is proportional to w = exp(log w) without
//! replacement (Gumbel-top-k): adding i.i.d. Gumbel noise to log w and keeping the k largest values
//! draws k distinct indices with the same law as sequential sampling ∝ w without replacement.
//! After a gradient step on a minibatch, [`PrioritisedBuffer::adjust`] adds the importance ratio
//! log w_adjust = (1 − α)(log q_new − log q_old) to the stored log w and records log q_new, so the
//! stored weights keep targeting p^α q_θ^(1−α) as θ moves.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::{FabError, FabRng, Result};

/// One minibatch drawn from the buffer.
#[derive(Debug, Clone)]
pub struct BufferBatch {
    /// Points, shape `(B, d)`.
    pub x: Array2<f64>,
    /// log q of each point when it was last touched.
    pub log_q_old: Array1<f64>,
    /// Stored (adjusted, unnormalised) log weights, for logging.
    pub log_w: Array1<f64>,
    /// Row indices in the buffer, to pass back to [`PrioritisedBuffer::adjust`].
    pub indices: Vec<usize>,
}

/// Fixed-capacity prioritised replay buffer.
#[derive(Debug, Clone)]
pub struct PrioritisedBuffer {
    x: Array2<f64>,
    log_w: Array1<f64>,
    log_q_old: Array1<f64>,
    min_length: usize,
    /// Next row to write (ring position).
    write_index: usize,
    /// Number of rows ever written (saturates at capacity).
    filled: usize,
}

impl PrioritisedBuffer {
    /// An empty buffer for points of dimension `dim`, holding at most `max_length` rows, that can be
    /// sampled once `min_length` rows were written.
    pub fn new(dim: usize, min_length: usize, max_length: usize) -> Result<Self> {
        if max_length == 0 || min_length > max_length {
            return Err(FabError::invalid(
                "buffer size",
                format!("need 0 < min_length ({min_length}) <= max_length ({max_length})"),
            ));
        }
        crate::memory::ensure_f64s_fit("buffer.max_length", max_length, dim + 2)?;
        Ok(Self {
            x: Array2::zeros((max_length, dim)),
            log_w: Array1::from_elem(max_length, f64::NEG_INFINITY),
            log_q_old: Array1::zeros(max_length),
            min_length,
            write_index: 0,
            filled: 0,
        })
    }

    /// Capacity in rows.
    pub fn max_length(&self) -> usize {
        self.log_w.len()
    }

    /// Number of rows currently held.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// True if no row was written yet.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// True once at least `min_length` rows were written.
    pub fn can_sample(&self) -> bool {
        self.filled >= self.min_length
    }

    /// Writes a batch FIFO. Rows with a non-finite x, log w or log q are stored with log w = −inf so
    /// they are never sampled (they still take their slot, as in fab-jax).
    pub fn add(
        &mut self,
        x: ArrayView2<f64>,
        log_w: ArrayView1<f64>,
        log_q: ArrayView1<f64>,
    ) -> Result<()> {
        let n = x.nrows();
        if log_w.len() != n || log_q.len() != n || x.ncols() != self.x.ncols() {
            return Err(FabError::shape(
                "buffer add",
                format!("x (n, {}) with n log w and n log q", self.x.ncols()),
                format!(
                    "x {:?}, {} log w, {} log q",
                    x.dim(),
                    log_w.len(),
                    log_q.len()
                ),
            ));
        }
        let cap = self.max_length();
        for i in 0..n {
            let row = (self.write_index + i) % cap;
            let valid = log_w[i].is_finite()
                && log_q[i].is_finite()
                && x.row(i).iter().all(|v| v.is_finite());
            self.x.row_mut(row).assign(&x.row(i));
            self.log_w[row] = if valid { log_w[i] } else { f64::NEG_INFINITY };
            self.log_q_old[row] = if valid { log_q[i] } else { 0.0 };
        }
        self.write_index = (self.write_index + n) % cap;
        self.filled = (self.filled + n).min(cap);
        Ok(())
    }

    /// Draws `n_batches · batch_size` distinct rows ∝ exp(log w) and splits them into `n_batches`
    /// minibatches in random order.
    pub fn sample_n_batches(
        &self,
        batch_size: usize,
        n_batches: usize,
        rng: &mut FabRng,
    ) -> Result<Vec<BufferBatch>> {
        let k = batch_size * n_batches;
        let indices = self.sample_indices(k, rng)?;
        Ok(indices
            .chunks(batch_size)
            .map(|idx| BufferBatch {
                x: self.x.select(Axis(0), idx),
                log_q_old: idx.iter().map(|&i| self.log_q_old[i]).collect(),
                log_w: idx.iter().map(|&i| self.log_w[i]).collect(),
                indices: idx.to_vec(),
            })
            .collect())
    }

    /// k distinct row indices ∝ exp(log w) by the Gumbel-top-k trick, randomly permuted.
    pub fn sample_indices(&self, k: usize, rng: &mut FabRng) -> Result<Vec<usize>> {
        let valid = (0..self.filled)
            .filter(|&i| self.log_w[i].is_finite())
            .count();
        if k > valid {
            return Err(FabError::invalid(
                "buffer sample",
                format!(
                    "requested {k} distinct rows but only {valid} of {} rows have a finite weight",
                    self.filled
                ),
            ));
        }
        let mut keyed: Vec<(f64, usize)> = (0..self.filled)
            .filter(|&i| self.log_w[i].is_finite())
            .map(|i| {
                // Gumbel(0, 1) noise: −ln(−ln U), U ∈ (0, 1).
                let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                (self.log_w[i] - (-u.ln()).ln(), i)
            })
            .collect();
        if k == 0 {
            return Ok(Vec::new());
        }
        // Partial sort: the k largest keys end up (unordered) in keyed[..k].
        keyed.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        let mut idx: Vec<usize> = keyed[..k].iter().map(|&(_, i)| i).collect();
        idx.shuffle(rng);
        Ok(idx)
    }

    /// After a gradient step on the rows `indices`: log w += log w_adjust and log q_old ← log q_new
    /// (log q_new evaluated with the parameters *before* the step). A non-finite adjustment or log q
    /// kills the row (log w = −inf).
    pub fn adjust(
        &mut self,
        indices: &[usize],
        log_w_adjust: ArrayView1<f64>,
        log_q_new: ArrayView1<f64>,
    ) -> Result<()> {
        if log_w_adjust.len() != indices.len() || log_q_new.len() != indices.len() {
            return Err(FabError::shape(
                "buffer adjust",
                indices.len(),
                format!(
                    "{} adjustments, {} log q",
                    log_w_adjust.len(),
                    log_q_new.len()
                ),
            ));
        }
        for (j, &i) in indices.iter().enumerate() {
            if i >= self.filled {
                return Err(FabError::invalid(
                    "buffer adjust",
                    format!("row {i} was never written"),
                ));
            }
            let (a, lq) = (log_w_adjust[j], log_q_new[j]);
            if a.is_finite() && lq.is_finite() {
                self.log_w[i] += a;
                self.log_q_old[i] = lq;
            } else {
                self.log_w[i] = f64::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// The stored rows (x, log w, log q_old) of the filled part, for checkpoints and inspection.
    pub fn contents(
        &self,
    ) -> (
        ArrayView2<'_, f64>,
        ArrayView1<'_, f64>,
        ArrayView1<'_, f64>,
    ) {
        let n = self.filled;
        (
            self.x.slice(ndarray::s![..n, ..]),
            self.log_w.slice(ndarray::s![..n]),
            self.log_q_old.slice(ndarray::s![..n]),
        )
    }

    /// Ring write position, saved in checkpoints.
    pub fn write_index(&self) -> usize {
        self.write_index
    }

    /// Restores a buffer from its checkpointed contents (see [`Self::contents`]).
    pub fn restore(
        &mut self,
        x: ArrayView2<f64>,
        log_w: ArrayView1<f64>,
        log_q_old: ArrayView1<f64>,
        write_index: usize,
    ) -> Result<()> {
        let n = x.nrows();
        if n > self.max_length()
            || x.ncols() != self.x.ncols()
            || log_w.len() != n
            || log_q_old.len() != n
            || write_index >= self.max_length()
        {
            return Err(FabError::shape(
                "buffer restore",
                format!(
                    "at most {} rows of dimension {}",
                    self.max_length(),
                    self.x.ncols()
                ),
                format!(
                    "x {:?}, {} log w, write index {write_index}",
                    x.dim(),
                    log_w.len()
                ),
            ));
        }
        self.x.slice_mut(ndarray::s![..n, ..]).assign(&x);
        self.log_w.slice_mut(ndarray::s![..n]).assign(&log_w);
        self.log_q_old
            .slice_mut(ndarray::s![..n])
            .assign(&log_q_old);
        self.filled = n;
        self.write_index = write_index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use ndarray::array;

    fn buffer_with_weights(w: &[f64]) -> PrioritisedBuffer {
        let n = w.len();
        let mut b = PrioritisedBuffer::new(1, 1, n).unwrap();
        let x = Array2::from_shape_fn((n, 1), |(i, _)| i as f64);
        let log_w: Array1<f64> = w.iter().map(|v| v.ln()).collect();
        b.add(x.view(), log_w.view(), Array1::zeros(n).view())
            .unwrap();
        b
    }

    #[test]
    fn single_draw_frequencies_are_proportional_to_weights() {
        // With k = 1, Gumbel-top-k is exact categorical sampling ∝ w.
        let w = [1.0, 2.0, 3.0, 4.0];
        let b = buffer_with_weights(&w);
        let mut rng = seeded(11);
        let trials = 40_000;
        let mut counts = [0usize; 4];
        for _ in 0..trials {
            counts[b.sample_indices(1, &mut rng).unwrap()[0]] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            let p = w[i] / 10.0;
            let se = (p * (1.0 - p) / trials as f64).sqrt();
            let freq = c as f64 / trials as f64;
            // 5 standard errors: fails with probability < 1e-6 if the sampler is right.
            assert!((freq - p).abs() < 5.0 * se, "row {i}: freq {freq} vs {p}");
        }
    }

    #[test]
    fn draws_without_replacement_follow_the_sequential_law() {
        // k = 2 of weights (1, 1, 2): P(row 2 included) = 1/2 + 2·(1/4)·(2/3) = 5/6.
        let b = buffer_with_weights(&[1.0, 1.0, 2.0]);
        let mut rng = seeded(3);
        let trials = 30_000;
        let mut with_2 = 0;
        for _ in 0..trials {
            let idx = b.sample_indices(2, &mut rng).unwrap();
            assert_ne!(idx[0], idx[1]);
            if idx.contains(&2) {
                with_2 += 1;
            }
        }
        let p = 5.0 / 6.0;
        let se = (p * (1.0 - p) / trials as f64).sqrt();
        assert!((with_2 as f64 / trials as f64 - p).abs() < 5.0 * se);
    }

    #[test]
    fn ring_overwrites_oldest_and_invalid_rows_are_never_sampled() {
        let mut b = PrioritisedBuffer::new(1, 2, 3).unwrap();
        let x = array![[1.0], [2.0]];
        b.add(x.view(), array![0.0, 0.0].view(), array![0.0, 0.0].view())
            .unwrap();
        assert!(b.can_sample());
        b.add(
            array![[3.0], [f64::NAN]].view(),
            array![0.0, 0.0].view(),
            array![0.0, 0.0].view(),
        )
        .unwrap();
        let (xs, lw, _) = b.contents();
        assert!(xs[[0, 0]].is_nan()); // row 0 (oldest) was overwritten by the NaN row
        assert_eq!(lw[0], f64::NEG_INFINITY);
        assert_eq!(xs[[2, 0]], 3.0);
        let mut rng = seeded(0);
        for _ in 0..100 {
            assert!(!b.sample_indices(2, &mut rng).unwrap().contains(&0));
        }
        assert!(b.sample_indices(3, &mut rng).is_err());
    }

    #[test]
    fn adjust_adds_the_unclipped_ratio_and_kills_non_finite_rows() {
        let mut b = buffer_with_weights(&[1.0, 1.0, 1.0]);
        b.adjust(
            &[0, 2],
            array![0.7, f64::NAN].view(),
            array![-3.0, -1.0].view(),
        )
        .unwrap();
        let (_, lw, lq) = b.contents();
        assert!((lw[0] - 0.7).abs() < 1e-15);
        assert_eq!(lq[0], -3.0);
        assert_eq!(lw[2], f64::NEG_INFINITY);
        assert_eq!(lw[1], 0.0);
    }
}
