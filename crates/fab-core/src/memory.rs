//! Memory checks before large allocations, so a size that cannot fit is refused with a message
//! ("needs 12.0 GiB, 3.1 GiB available") instead of aborting the process.

use crate::{FabError, Result};

/// Bytes of memory the system can still hand out (Linux `MemAvailable`); `None` where unknown.
pub fn available_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Checks that a table of `rows` × `cols` f64 values for `what` fits in memory: an error if the
/// byte count overflows or exceeds what is available (unknown availability passes).
pub fn ensure_f64s_fit(what: &str, rows: usize, cols: usize) -> Result<()> {
    let bytes = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(8))
        .ok_or_else(|| FabError::invalid(what, "size overflows the address space"))?;
    ensure_fits(what, bytes as f64, available_bytes())
}

/// Checks `bytes` needed for `what` against `available` bytes (unknown passes).
pub fn ensure_fits(what: &str, bytes: f64, available: Option<f64>) -> Result<()> {
    match available {
        Some(free) if bytes > free => Err(FabError::invalid(
            what,
            format!(
                "needs {:.1} GiB, {:.1} GiB of memory available",
                bytes / GIB,
                free / GIB
            ),
        )),
        _ => Ok(()),
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_memory_or_the_address_space_are_refused_by_name() {
        let msg = ensure_fits("buffer", 3.0 * GIB, Some(1.0 * GIB))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("buffer") && msg.contains("needs 3.0 GiB"),
            "{msg}"
        );
        assert!(ensure_fits("buffer", 0.5 * GIB, Some(1.0 * GIB)).is_ok());
        assert!(ensure_fits("buffer", 1e30, None).is_ok());
        let msg = ensure_f64s_fit("samples", usize::MAX / 4, 1)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("samples") && msg.contains("overflows"),
            "{msg}"
        );
        if available_bytes().is_some() {
            // A petabyte does not fit on any machine this runs on.
            assert!(ensure_f64s_fit("samples", 1 << 40, 128).is_err());
        }
    }
}
