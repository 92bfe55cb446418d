//! A communicator of threads inside one process, for testing the distributed code without MPI:
//! every collective meets at a barrier, point-to-point messages go through channels.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Barrier, Mutex};

use super::Communicator;

/// A one-way channel between two ranks.
type Link = (Mutex<Sender<Vec<f64>>>, Mutex<Receiver<Vec<f64>>>);

/// What the ranks of one [`ThreadRanks`] group share.
#[derive(Debug)]
struct Hub {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<u8>>>,
    /// `links[from][to]`: the channel from rank `from` to rank `to`.
    links: Vec<Vec<Link>>,
}

/// One rank of a group of threads (see [`ThreadRanks::group`]).
#[derive(Debug, Clone)]
pub(crate) struct ThreadRanks {
    rank: usize,
    size: usize,
    hub: Arc<Hub>,
}

impl ThreadRanks {
    /// The `size` ranks of a new group, one per thread that will use it.
    pub(crate) fn group(size: usize) -> Vec<Self> {
        let links = (0..size)
            .map(|_| {
                (0..size)
                    .map(|_| {
                        let (tx, rx) = channel();
                        (Mutex::new(tx), Mutex::new(rx))
                    })
                    .collect()
            })
            .collect();
        let hub = Arc::new(Hub {
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![Vec::new(); size]),
            links,
        });
        (0..size)
            .map(|rank| Self {
                rank,
                size,
                hub: hub.clone(),
            })
            .collect()
    }

    /// Every rank's bytes, after every rank has put its own.
    fn exchange(&self, local: &[u8]) -> Vec<Vec<u8>> {
        self.hub.slots.lock().unwrap()[self.rank] = local.to_vec();
        self.hub.barrier.wait();
        let all = self.hub.slots.lock().unwrap().clone();
        self.hub.barrier.wait(); // nobody overwrites a slot before all have read
        all
    }
}

fn to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<f64> {
    b.chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

impl Communicator for ThreadRanks {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather_f64(&self, local: &[f64], counts: &[usize]) -> Vec<f64> {
        assert_eq!(local.len(), counts[self.rank], "rank {}'s count", self.rank);
        self.exchange(&to_bytes(local))
            .iter()
            .flat_map(|b| from_bytes(b))
            .collect()
    }

    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        self.exchange(local)
    }

    fn broadcast_f64(&self, root: usize, data: &mut [f64]) {
        let mine = if self.rank == root {
            to_bytes(data)
        } else {
            Vec::new()
        };
        let all = self.exchange(&mine);
        data.copy_from_slice(&from_bytes(&all[root]));
    }

    fn send_f64(&self, to: usize, data: &[f64]) {
        let link = &self.hub.links[self.rank][to].0;
        link.lock().unwrap().send(data.to_vec()).unwrap();
    }

    fn receive_f64(&self, from: usize, data: &mut [f64]) {
        let link = &self.hub.links[from][self.rank].1;
        let message = link.lock().unwrap().recv().unwrap();
        data.copy_from_slice(&message);
    }

    fn any(&self, flag: bool) -> bool {
        self.exchange(&[u8::from(flag)]).iter().any(|b| b[0] == 1)
    }
}

/// Runs `work` on every rank of a new group of `size` threads; the results in rank order.
pub(crate) fn on_ranks<T: Send>(size: usize, work: impl Fn(&ThreadRanks) -> T + Sync) -> Vec<T> {
    let ranks = ThreadRanks::group(size);
    std::thread::scope(|s| {
        let handles: Vec<_> = ranks.iter().map(|r| s.spawn(|| work(r))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};

    use super::on_ranks;
    use crate::distributed::{gather_rows, ordered_sum, share, SplitDensity};
    use crate::{Communicator, FabError, LogDensity, Result};

    /// Parts whose sum rounds differently in another order.
    fn parts(n: usize, len: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|p| {
                (0..len)
                    .map(|j| ((p * 7 + j * 13) as f64).sin() * 10f64.powi((p % 5) as i32 * 4))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_ordered_sum_has_the_bits_of_one_process_for_any_number_of_ranks() {
        let all = parts(7, 200_000); // longer than one pipelined segment
        let mut sequential = vec![0.0; all[0].len()];
        for p in &all {
            sequential.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        for size in 1..=4 {
            // Contiguous shares, and one layout where a middle rank holds nothing.
            let layouts = [
                (0..size)
                    .map(|r| share(all.len(), r, size).len())
                    .collect::<Vec<_>>(),
                {
                    let mut c = vec![0; size];
                    c[0] = all.len();
                    c
                },
            ];
            for counts in layouts {
                let sums = on_ranks(size, |comm| {
                    let start: usize = counts[..comm.rank()].iter().sum();
                    let mine = &all[start..start + counts[comm.rank()]];
                    ordered_sum(comm, mine, &counts, all[0].len())
                });
                for (rank, s) in sums.iter().enumerate() {
                    assert!(
                        s == &sequential,
                        "{size} ranks {counts:?}: rank {rank} differs"
                    );
                }
            }
        }
    }

    /// A density that fails on rows whose first coordinate is negative.
    struct Picky;

    impl LogDensity for Picky {
        fn dim(&self) -> usize {
            2
        }
        fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
            if x.column(0).iter().any(|v| *v < 0.0) {
                return Err(FabError::invalid("x", "negative"));
            }
            Ok(x.rows()
                .into_iter()
                .map(|r| -(r[0] * r[0] + r[1].sin()))
                .collect())
        }
        fn log_prob_and_grad(
            &self,
            x: ArrayView2<f64>,
            mut grad: ArrayViewMut2<f64>,
        ) -> Result<Array1<f64>> {
            for (mut g, r) in grad.rows_mut().into_iter().zip(x.rows()) {
                g[0] = -2.0 * r[0];
                g[1] = -r[1].cos();
            }
            self.log_prob(x)
        }
    }

    #[test]
    fn split_evaluations_equal_one_process_and_a_failure_reaches_every_rank() {
        let x = Array2::from_shape_fn((7, 2), |(i, j)| 0.3 * i as f64 + j as f64);
        let mut g1 = Array2::zeros((7, 2));
        let lp1 = Picky.log_prob_and_grad(x.view(), g1.view_mut()).unwrap();
        for size in 1..=4 {
            let out = on_ranks(size, |comm| {
                let d = SplitDensity::new(&Picky, comm);
                let mut g = Array2::zeros((7, 2));
                let lp = d.log_prob_and_grad(x.view(), g.view_mut()).unwrap();
                (lp, g, d.log_prob(x.view()).unwrap())
            });
            for (lp, g, lp_only) in out {
                assert!(lp == lp1 && g == g1 && lp_only == lp1, "{size} ranks");
            }
        }
        // Row 6 is negative: the rank that owns it fails, every rank gets its message.
        let mut bad = x.clone();
        bad[[6, 0]] = -1.0;
        let errors = on_ranks(3, |comm| {
            SplitDensity::new(&Picky, comm)
                .log_prob(bad.view())
                .unwrap_err()
                .to_string()
        });
        for e in errors {
            assert_eq!(e, "rank 2: invalid x: negative");
        }
        // A wrongly shaped local result is an error too, not a corrupt gather.
        let errors = on_ranks(2, |comm| {
            gather_rows(comm, 4, 1, Ok(Array2::zeros((comm.rank() + 1, 1))))
                .unwrap_err()
                .to_string()
        });
        assert!(
            errors.iter().all(|e| e.starts_with("rank 0:")),
            "{errors:?}"
        );
    }
}
