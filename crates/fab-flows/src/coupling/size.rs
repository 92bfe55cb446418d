//! How much memory a flow of given settings needs, checked before any tensor is allocated.

use fab_core::Result;

/// f64 values held per flow parameter during training: the parameter, its gradient, Adam's two
/// moments and the flat copies the optimiser works on.
const VALUES_PER_PARAMETER: f64 = 6.0;

/// Refuses a coupling flow whose parameters would not fit in memory (or overflow a count):
/// `n_layers` layers on `dim` coordinates, conditioners of `hidden_layers` layers of `width`
/// units, `outputs_per_dim` conditioner outputs per transformed coordinate. Computed in f64, so
/// settings such as 10¹⁸ layers give an error instead of an overflow or an allocation abort.
pub(crate) fn check_flow_size(
    dim: usize,
    n_layers: usize,
    width: usize,
    hidden_layers: usize,
    outputs_per_dim: usize,
) -> Result<()> {
    let (d, w) = (dim as f64, width as f64);
    let per_layer =
        d * w + (hidden_layers.max(1) - 1) as f64 * w * w + w * d * outputs_per_dim as f64;
    let parameters = n_layers as f64 * per_layer;
    fab_core::memory::ensure_fits(
        "flow (n_layers, hidden units, hidden_layers)",
        parameters * VALUES_PER_PARAMETER * 8.0,
        fab_core::memory::available_bytes(),
    )
}
