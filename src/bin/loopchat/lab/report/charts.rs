//! The report's two kinds of figure, drawn as SVG text with `plotters`: lines (several
//! series against a shared x, on linear or logarithmic axes) and grouped bars. A figure
//! is one or more panels stacked top to bottom.
//!
//! A logarithmic axis is drawn by plotting log10 of the values on a linear axis and
//! labelling each tick with the value it stands for, so that one drawing routine serves
//! every combination of axes.

use plotters::prelude::*;

/// The colours of the servers compared, the same as docs/BENCHMARKS.md's.
pub const LOOPCHAT: RGBColor = RGBColor(0xd9, 0x5f, 0x02);
/// Node's `ws`.
pub const WS: RGBColor = RGBColor(0x1b, 0x9e, 0x77);
/// Bun.
pub const BUN: RGBColor = RGBColor(0x75, 0x70, 0xb3);
/// A reference line: the floor, a baseline.
pub const REFERENCE: RGBColor = RGBColor(0x66, 0x66, 0x66);
/// A fourth party (Socket.IO, a second policy).
pub const OTHER: RGBColor = RGBColor(0xe7, 0x29, 0x8a);

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its colour.
    pub color: RGBColor,
    /// Its points, in x order; points that cannot be drawn (not positive on a log axis,
    /// not finite) are left out.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed and without dots, as a reference rather than a measurement.
    pub reference: bool,
}

/// A panel of lines.
#[derive(Debug, Clone)]
pub struct LinePanel {
    /// Its caption.
    pub caption: String,
    /// What the x axis measures, with its unit.
    pub x_desc: String,
    /// What the y axis measures, with its unit.
    pub y_desc: String,
    /// Whether x is logarithmic.
    pub log_x: bool,
    /// Whether y is logarithmic.
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
}

/// A panel of grouped bars: for each group (a column of the x axis), one bar per series.
#[derive(Debug, Clone)]
pub struct BarPanel {
    /// Its caption.
    pub caption: String,
    /// What the bars measure, with its unit.
    pub y_desc: String,
    /// Whether y is logarithmic.
    pub log_y: bool,
    /// The groups' names, left to right.
    pub groups: Vec<String>,
    /// Each series: its name, colour, and value in each group (none: no bar).
    pub series: Vec<(String, RGBColor, Vec<Option<f64>>)>,
}

/// Height of one panel, in pixels.
const PANEL_HEIGHT: u32 = 380;
/// Width of a figure.
const WIDTH: u32 = 900;
/// Height of the figure's title.
const TITLE_HEIGHT: u32 = 40;

/// The most points a line has dots for.
const MAX_DOTS: usize = 40;

type Result<T> = std::result::Result<T, String>;

/// A figure of line panels, as SVG text.
pub fn lines(title: &str, panels: &[LinePanel]) -> Result<String> {
    figure(title, panels)
}

/// A figure of bar panels, as SVG text.
pub fn bars(title: &str, panels: &[BarPanel]) -> Result<String> {
    figure(title, panels)
}

type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// A panel that draws itself in an area of a figure.
trait Panel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, plotters::coord::Shift>) -> Drawn
    where
        DB::ErrorType: 'static;
}

impl Panel for LinePanel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, plotters::coord::Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        line_panel(area, self)
    }
}

impl Panel for BarPanel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, plotters::coord::Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        bar_panel(area, self)
    }
}

/// A figure: its title, then `panels` stacked top to bottom.
fn figure(title: &str, panels: &[impl Panel]) -> Result<String> {
    let mut svg = String::new();
    {
        let height = TITLE_HEIGHT + PANEL_HEIGHT * panels.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(fail)?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            panel.draw(area).map_err(fail)?;
        }
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

fn fail(e: impl std::fmt::Display) -> String {
    format!("cannot draw: {e}")
}

/// An axis: linear, or log10 of the values.
#[derive(Clone, Copy)]
struct Axis {
    log: bool,
}

impl Axis {
    fn to_plot(self, v: f64) -> Option<f64> {
        match self.log {
            true if v > 0.0 && v.is_finite() => Some(v.log10()),
            true => None,
            false => v.is_finite().then_some(v),
        }
    }

    /// How many tick labels: on a log axis, about one a power of ten, so that the ticks
    /// fall on 1, 10, 100 rather than on arbitrary values.
    fn labels(self, (lo, hi): (f64, f64)) -> usize {
        if self.log {
            ((hi - lo).ceil() as usize + 1).max(3)
        } else {
            10
        }
    }

    fn label(self, plotted: f64) -> String {
        if self.log {
            human(10f64.powf(plotted))
        } else {
            human(plotted)
        }
    }

    /// The plotted range covering `values`, with a margin; linear axes start at zero.
    fn range(self, values: impl Iterator<Item = f64>) -> (f64, f64) {
        let plotted: Vec<f64> = values.filter_map(|v| self.to_plot(v)).collect();
        let lo = plotted.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = plotted.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if plotted.is_empty() {
            return (0.0, 1.0);
        }
        if self.log {
            let pad = ((hi - lo) * 0.08).max(0.1);
            (lo - pad, hi + pad)
        } else {
            let lo = lo.min(0.0);
            let hi = if hi > lo { hi * 1.12 } else { lo + 1.0 };
            (lo, hi)
        }
    }
}

fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &LinePanel,
) -> std::result::Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (x, y) = (Axis { log: panel.log_x }, Axis { log: panel.log_y });
    let all = || panel.series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = x.range(all().map(|p| p.0));
    let (y0, y1) = y.range(all().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(84)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_desc)
        .y_desc(&panel.y_desc)
        .x_labels(x.labels((x0, x1)))
        .y_labels(y.labels((y0, y1)))
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| y.label(*v))
        .draw()?;
    for s in &panel.series {
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|&(px, py)| Some((x.to_plot(px)?, y.to_plot(py)?)))
            .collect();
        let color = s.color;
        let style = color.stroke_width(2);
        if s.reference {
            chart
                .draw_series(DashedLineSeries::new(points, 8, 5, style))?
                .label(&s.name)
                .legend(move |(lx, ly)| PathElement::new([(lx, ly), (lx + 18, ly)], color));
        } else {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(&s.name)
                .legend(move |(lx, ly)| PathElement::new([(lx, ly), (lx + 18, ly)], color));
            // A dot marks each measurement, unless they are so many (a time series) that
            // the dots would hide the line.
            if points.len() <= MAX_DOTS {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &BarPanel,
) -> std::result::Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let y = Axis { log: panel.log_y };
    let values = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.2.iter().flatten().copied())
    };
    let (mut y0, mut y1) = y.range(values());
    // Bars grow from a whole power of ten below the smallest, and leave room above the
    // tallest for the legend.
    if y.log {
        y0 = y0.floor();
        y1 += (y1 - y0) * 0.3;
    } else {
        y1 *= 1.3;
    }
    let groups = panel.groups.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(84)
        .build_cartesian_2d(0.0..groups as f64, y0..y1)?;
    let names = panel.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|v| {
            // A label under the middle of each group only.
            let i = (*v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(&panel.y_desc)
        .y_labels(y.labels((y0, y1)))
        .y_label_formatter(&|v| y.label(*v))
        .draw()?;
    let n = panel.series.len().max(1) as f64;
    let width = 0.8 / n;
    for (k, (name, color, values)) in panel.series.iter().enumerate() {
        let color = *color;
        let bars = values.iter().enumerate().filter_map(|(g, v)| {
            let top = y.to_plot((*v)?)?;
            let left = g as f64 + 0.1 + k as f64 * width;
            Some(Rectangle::new(
                [(left, y0), (left + width * 0.92, top)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(name)
            .legend(move |(lx, ly)| {
                Rectangle::new([(lx, ly - 5), (lx + 14, ly + 5)], color.filled())
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

/// A tick label: 1.5M, 20k, 350, 0.25.
pub fn human(value: f64) -> String {
    match value.abs() {
        v if v >= 1e9 => format!("{:.1}G", value / 1e9),
        v if v >= 1e6 => format!("{:.1}M", value / 1e6),
        v if v >= 1e4 => format!("{:.0}k", value / 1e3),
        v if v >= 1e3 => format!("{:.1}k", value / 1e3),
        v if v >= 10.0 || v == 0.0 || (v - v.round()).abs() < 1e-6 => format!("{value:.0}"),
        v if v >= 1.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_figure_has_its_captions_legend_and_points() {
        let svg = lines(
            "title here",
            &[LinePanel {
                caption: "cost per frame".into(),
                x_desc: "frames per write".into(),
                y_desc: "ns".into(),
                log_x: true,
                log_y: true,
                series: vec![
                    Series {
                        name: "measured".into(),
                        color: LOOPCHAT,
                        points: vec![(1.0, 5000.0), (10.0, 600.0), (100.0, 90.0)],
                        reference: false,
                    },
                    Series {
                        name: "floor".into(),
                        color: REFERENCE,
                        points: vec![(1.0, 4000.0), (0.0, 1.0), (100.0, 50.0)],
                        reference: true,
                    },
                ],
            }],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "title here",
            "cost per frame",
            "frames per write",
            "measured",
            "floor",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        // Three dots for the measured series; the reference has none.
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
    }

    #[test]
    fn a_bar_figure_draws_a_bar_per_value_given() {
        let svg = bars(
            "memory",
            &[BarPanel {
                caption: "bytes per idle connection".into(),
                y_desc: "bytes".into(),
                log_y: false,
                groups: vec!["plain".into(), "deflate".into()],
                series: vec![
                    ("loopchat".into(), LOOPCHAT, vec![Some(600.0), Some(700.0)]),
                    ("Bun".into(), BUN, vec![Some(2000.0), None]),
                ],
            }],
        )
        .unwrap();
        for text in [
            "plain",
            "deflate",
            "loopchat",
            "Bun",
            "bytes per idle connection",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        // Three bars, two legend swatches, and the background: rectangles drawn filled.
        assert!(svg.matches("<rect").count() >= 5, "{svg}");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(human(2_890_000.0), "2.9M");
        assert_eq!(human(46_000.0), "46k");
        assert_eq!(human(1_500.0), "1.5k");
        assert_eq!(human(245.0), "245");
        assert_eq!(human(3.16), "3.2");
        assert_eq!(human(0.25), "0.25");
        assert_eq!(human(1.0000000001), "1");
    }
}
