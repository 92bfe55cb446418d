//! PNG plots: samples over the target's density (one panel per sample set) and training curves.
//!
//! Text uses a bundled DejaVu Sans Mono (assets/, with its licence), so plots need no system fonts.

use std::path::Path;

use anyhow::{anyhow, Result};
use ndarray::{Array2, ArrayView2};
use plotters::prelude::*;
use plotters::style::FontStyle;

use fab_core::Target;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("bundled font could not be loaded"))
}

fn shade(t: f64) -> RGBColor {
    // White (low density) to dark blue (high density).
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t) as u8;
    RGBColor(lerp(255.0, 20.0), lerp(255.0, 60.0), lerp(255.0, 140.0))
}

/// Plots each sample set (one column each, at most 2,000 points) over a shaded map of the
/// target's 2-D marginal log density, one row per plot view of the target, into a PNG at `path`.
pub fn samples_over_target(
    target: &dyn Target,
    panels: &[(&str, ArrayView2<f64>)],
    path: &Path,
) -> Result<()> {
    register_font()?;
    let views = target.plot_views();
    if views.is_empty() {
        return Err(anyhow!("target has no 2-D plot view"));
    }
    let res = 160;
    let cols = panels.len();
    let root =
        BitMapBackend::new(path, (480 * cols as u32, 480 * views.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((views.len(), cols));
    for (r, view) in views.iter().enumerate() {
        let ((x0, x1), (y0, y1)) = (view.x, view.y);
        let (dx, dy) = ((x1 - x0) / res as f64, (y1 - y0) / res as f64);
        let grid = Array2::from_shape_fn((res * res, 2), |(k, c)| {
            if c == 0 {
                x0 + ((k / res) as f64 + 0.5) * dx
            } else {
                y0 + ((k % res) as f64 + 0.5) * dy
            }
        });
        let log_p = target.marginal_log_prob(view.coords, grid.view())?;
        let max = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Shade log p over a window of 25 nats below the maximum.
        let window = 25.0;
        let (a, b) = view.coords;
        for (c, (title, x)) in panels.iter().enumerate() {
            let caption = if views.len() > 1 {
                format!("{title}: x{a} vs x{b}")
            } else {
                title.to_string()
            };
            let mut chart = ChartBuilder::on(&areas[r * cols + c])
                .caption(caption, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            chart.configure_mesh().disable_mesh().draw()?;
            chart.draw_series((0..res * res).map(|k| {
                let (cx, cy) = (x0 + (k / res) as f64 * dx, y0 + (k % res) as f64 * dy);
                let t = (log_p[k] - (max - window)) / window;
                Rectangle::new([(cx, cy), (cx + dx, cy + dy)], shade(t).filled())
            }))?;
            let step = (x.nrows() / 2000).max(1);
            chart.draw_series(
                x.rows()
                    .into_iter()
                    .step_by(step)
                    .filter(|p| p[a].is_finite() && p[b].is_finite())
                    .map(|p| Circle::new((p[a], p[b]), 2, RED.mix(0.6).filled())),
            )?;
        }
    }
    root.present()?;
    Ok(())
}

/// Plots named series against the iteration (one panel per series) into a PNG.
pub fn curves(series: &[(&str, Vec<(f64, f64)>)], path: &Path) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (420 * series.len() as u32, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, (name, points)) in root.split_evenly((1, series.len())).iter().zip(series) {
        let finite: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect();
        if finite.is_empty() {
            continue;
        }
        let (xmin, xmax) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let (ymin, ymax) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        let pad = ((ymax - ymin) * 0.05).max(1e-9);
        let mut chart = ChartBuilder::on(area)
            .caption(*name, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(xmin..xmax.max(xmin + 1.0), (ymin - pad)..(ymax + pad))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .x_labels(5)
            .y_labels(6)
            .disable_x_mesh()
            .y_label_formatter(&|v| format!("{v:.3}"))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        chart.draw_series(LineSeries::new(finite, &BLUE))?;
    }
    root.present()?;
    Ok(())
}

/// One Ramachandran panel: a title, (φ, ψ) rows (rad) and optional importance weights.
pub struct RamachandranPanel<'a> {
    /// Caption.
    pub title: &'a str,
    /// (n, 2) angles in rad.
    pub phi_psi: ArrayView2<'a, f64>,
    /// Importance weights (any scale), or `None` for plain samples.
    pub weights: Option<ndarray::ArrayView1<'a, f64>>,
}

/// Ramachandran plots side by side: 64 × 64 histograms on [−π, π)², shaded by log density over
/// 8 nats (white = empty), so the rare φ > 0 basin stays visible next to the dominant β basin.
pub fn ramachandran(panels: &[RamachandranPanel<'_>], path: &Path) -> Result<()> {
    use std::f64::consts::PI;
    register_font()?;
    let bins = 64;
    let root = BitMapBackend::new(path, (440 * panels.len() as u32, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, panel) in root.split_evenly((1, panels.len())).iter().zip(panels) {
        let h = fab_core::histogram::density_2d(panel.phi_psi, panel.weights, bins, (-PI, PI));
        let max = h.iter().copied().fold(0.0, f64::max);
        let width = 2.0 * PI / bins as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(-PI..PI, -PI..PI)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("φ")
            .y_desc("ψ")
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;
        let window = 8.0;
        chart.draw_series(
            h.indexed_iter()
                .filter(|(_, &d)| d > 0.0)
                .map(|((a, b), &d)| {
                    let (x, y) = (-PI + a as f64 * width, -PI + b as f64 * width);
                    let t = ((d / max).ln() + window) / window;
                    Rectangle::new(
                        [(x, y), (x + width, y + width)],
                        shade(0.15 + 0.85 * t).filled(),
                    )
                }),
        )?;
    }
    root.present()?;
    Ok(())
}

/// Densities overlaid in one panel with a legend, on a log scale so small basins stay visible
/// (zero-density points are left out).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN must fail the check
pub fn overlaid_densities(
    series: &[(&str, Vec<(f64, f64)>)],
    x_desc: &str,
    path: &Path,
) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let points: Vec<&(f64, f64)> = series
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(|p| p.0.is_finite() && p.1 > 0.0)
        .collect();
    if points.is_empty() {
        return Err(anyhow!("nothing to plot"));
    }
    let (x0, x1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let y1 = points.iter().map(|p| p.1).fold(0.0, f64::max) * 2.0;
    let y0 = (y1 * 1e-5).max(points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min));
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_desc)
        .y_desc("density")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    let colours = [BLACK, BLUE, RED, GREEN, MAGENTA];
    for (k, (name, pts)) in series.iter().enumerate() {
        let colour = colours[k % colours.len()];
        // Bins with no mass (or below the plotted range) break the line instead of being bridged.
        let runs: Vec<Vec<(f64, f64)>> = pts
            .split(|p| !(p.1 >= y0))
            .filter(|run| !run.is_empty())
            .map(|run| run.to_vec())
            .collect();
        for (r, run) in runs.into_iter().enumerate() {
            let drawn = chart.draw_series(LineSeries::new(run, colour.stroke_width(2)))?;
            if r == 0 {
                drawn.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// How the y axis of [`overlaid_curves`] maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YAxis {
    /// Linear from 0 (or the smallest value, if negative): ESS and other fractions.
    Linear,
    /// Logarithmic (base 10), positive values only: errors that fall by orders of magnitude.
    Log10,
}

/// Curves overlaid in one panel with a legend, x linear and y as `y_axis` says (ESS or log Z
/// error against wall time).
pub fn overlaid_curves(
    series: &[(&str, Vec<(f64, f64)>)],
    x_desc: &str,
    y_desc: &str,
    y_axis: YAxis,
    path: &Path,
) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    // On the log axis the curves are drawn as log10 values on a linear axis whose labels show
    // 10^v, which keeps one chart type for both axes.
    let series: Vec<(&str, Vec<(f64, f64)>)> = match y_axis {
        YAxis::Linear => series.to_vec(),
        YAxis::Log10 => series
            .iter()
            .map(|(name, pts)| {
                let logged = pts
                    .iter()
                    .filter(|p| p.1 > 0.0)
                    .map(|&(x, y)| (x, y.log10()))
                    .collect();
                (*name, logged)
            })
            .collect(),
    };
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let points: Vec<&(f64, f64)> = series
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(finite)
        .collect();
    if points.is_empty() {
        return Err(anyhow!("nothing to plot"));
    }
    let range = |f: fn(&(f64, f64)) -> f64| {
        points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(f(p)), b.max(f(p)))
            })
    };
    let (x0, x1) = range(|p| p.0);
    let (y0, y1) = range(|p| p.1);
    let y_range = match y_axis {
        YAxis::Linear => y0.min(0.0)..y1.max(y0 + 1e-9) * 1.05,
        YAxis::Log10 => {
            let pad = 0.05 * (y1 - y0).max(0.2);
            (y0 - pad)..(y1 + pad)
        }
    };
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), y_range)?;
    let y_label = |v: &f64| match y_axis {
        YAxis::Linear => format!("{v:.2}"),
        YAxis::Log10 => format!("{:.2e}", 10f64.powf(*v)),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(&y_label)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let colours = [BLACK, BLUE, RED, GREEN, MAGENTA];
    for (k, (name, pts)) in series.iter().enumerate() {
        let colour = colours[k % colours.len()];
        let pts: Vec<(f64, f64)> = pts.iter().filter(finite).copied().collect();
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        // Away from where the curves usually are: rising ESS ends upper right, falling errors
        // lower right.
        .position(match y_axis {
            YAxis::Linear => SeriesLabelPosition::LowerRight,
            YAxis::Log10 => SeriesLabelPosition::UpperRight,
        })
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
