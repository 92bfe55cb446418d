//! Collective steps that every rank enters even when its own part failed, so one rank's error
//! reaches all ranks as an error instead of leaving the others waiting.

use ndarray::Array2;

use super::{share, Communicator};
use crate::{FabError, Result};

/// Assembles an `(n, width)` array whose rows were split over the ranks by [`share`]: `local`
/// holds this rank's rows (or its error). On success every rank gets the whole array; if any rank
/// failed every rank returns [`FabError::Rank`] naming the first failed rank and its message.
pub fn gather_rows(
    comm: &dyn Communicator,
    n: usize,
    width: usize,
    local: Result<Array2<f64>>,
) -> Result<Array2<f64>> {
    let size = comm.size();
    let mine = share(n, comm.rank(), size);
    let local = local.and_then(|a| {
        if a.dim() == (mine.len(), width) {
            Ok(a)
        } else {
            Err(FabError::shape(
                "rows computed by this rank",
                format!("({}, {width})", mine.len()),
                format!("{:?}", a.dim()),
            ))
        }
    });
    if size == 1 {
        return local;
    }
    // Each rank sends a status word (0 ok, 1 failed) ahead of its rows.
    let counts: Vec<usize> = (0..size)
        .map(|r| share(n, r, size).len() * width + 1)
        .collect();
    let mut send = Vec::with_capacity(counts[comm.rank()]);
    match &local {
        Ok(a) => {
            send.push(0.0);
            send.extend(a.iter());
        }
        Err(_) => {
            send.push(1.0);
            send.resize(counts[comm.rank()], f64::NAN);
        }
    }
    let all = comm.all_gather_f64(&send, &counts);
    let mut data = Vec::with_capacity(n * width);
    let mut failed = false;
    let mut offset = 0;
    for count in &counts {
        failed |= all[offset] != 0.0;
        data.extend_from_slice(&all[offset + 1..offset + count]);
        offset += count;
    }
    if failed {
        agree(comm, local.map(|_| ()))?;
        return Err(FabError::Backend("a rank failed without a message".into()));
    }
    Array2::from_shape_vec((n, width), data).map_err(|e| FabError::Backend(e.to_string()))
}

/// Makes a per-rank outcome collective: `Ok` on every rank only if every rank's `local` is
/// `Ok`; otherwise every rank (the failed one too) returns [`FabError::Rank`] with the first
/// failed rank and its message, so that one rank (rank 0) can report it for all. Used where
/// ranks read files or check settings: a file only some ranks can read stops all of them with
/// one message instead of a hang. With one process `local` is returned as it is.
pub fn agree<T>(comm: &dyn Communicator, local: Result<T>) -> Result<T> {
    if comm.size() == 1 {
        return local;
    }
    let message = match &local {
        Ok(_) => Vec::new(),
        // A leading byte marks a failure, so an empty message still counts.
        Err(e) => std::iter::once(b'!')
            .chain(e.to_string().into_bytes())
            .collect(),
    };
    let all = comm.all_gather_bytes(&message);
    match all.iter().position(|m| !m.is_empty()) {
        None => local,
        Some(rank) => Err(FabError::Rank {
            rank,
            message: String::from_utf8_lossy(&all[rank][1..]).into_owned(),
        }),
    }
}
