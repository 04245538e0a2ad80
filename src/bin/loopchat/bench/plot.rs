//! The sweep's plot: deliveries/s and p99 latency against the number of clients, two
//! panels one above the other, logarithmic client axis, written as SVG with `plotters`.

use super::report::Report;
use plotters::prelude::*;
use std::path::Path;

/// One point of the sweep, as plotted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// Clients connected (asked for).
    pub clients: f64,
    /// Deliveries per second in the measured window.
    pub deliveries_per_s: f64,
    /// 99th-percentile latency, microseconds.
    pub p99_us: f64,
}

impl SweepPoint {
    /// The plotted figures of one broadcast report.
    pub fn of(report: &Report) -> SweepPoint {
        SweepPoint {
            clients: report.clients.unwrap_or(0) as f64,
            deliveries_per_s: report.deliveries_per_s.unwrap_or(0.0),
            p99_us: report.latency_us.map_or(0.0, |l| l.p99),
        }
    }
}

/// Writes the plot of `points` to `path` (creating its folder), titled with `title`.
pub fn write_svg(path: &Path, title: &str, points: &[SweepPoint]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    draw(path, title, points).map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

fn draw(path: &Path, title: &str, points: &[SweepPoint]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(370);

    // A log axis needs a range that is not a single value.
    let (lo, hi) = points.iter().fold((f64::MAX, 0f64), |(lo, hi), p| {
        (lo.min(p.clients), hi.max(p.clients))
    });
    let (lo, hi) = if points.is_empty() {
        (1.0, 10.0)
    } else {
        ((lo / 1.5).max(1.0), hi * 1.5)
    };

    panel(
        &top,
        "deliveries per second",
        "deliveries/s",
        lo..hi,
        points.iter().map(|p| (p.clients, p.deliveries_per_s)),
        &BLUE,
    )?;
    panel(
        &bottom,
        "p99 latency",
        "p99 latency (µs)",
        lo..hi,
        points.iter().map(|p| (p.clients, p.p99_us)),
        &RED,
    )?;
    root.present()?;
    Ok(())
}

/// One panel: a line with a dot at each point.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    x_range: std::ops::Range<f64>,
    series: impl Iterator<Item = (f64, f64)> + Clone,
    color: &RGBColor,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let y_max = series.clone().map(|(_, y)| y).fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.log_scale(), 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("clients")
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| human(*y))
        .draw()?;
    chart.draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?;
    chart.draw_series(series.map(|(x, y)| Circle::new((x, y), 4, color.filled())))?;
    Ok(())
}

/// A tick label: 1.5M, 20k, 350.
fn human(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{:.1}M", value / 1e6),
        v if v >= 1e3 => format!("{:.0}k", value / 1e3),
        _ => format!("{value:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_both_panels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sweep.svg");
        let points = [
            SweepPoint {
                clients: 100.0,
                deliveries_per_s: 900_000.0,
                p99_us: 250.0,
            },
            SweepPoint {
                clients: 1000.0,
                deliveries_per_s: 1_500_000.0,
                p99_us: 2_000.0,
            },
        ];
        write_svg(&path, "loopchat broadcast", &points).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in [
            "deliveries per second",
            "p99 latency",
            "clients",
            "loopchat broadcast",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        // One point, and none, still draw.
        write_svg(&path, "one", &points[..1]).unwrap();
        write_svg(&path, "none", &[]).unwrap();
    }
}
