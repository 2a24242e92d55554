//! Lays out the plots read by [`data`](super::data) as SVG with plotters: axes with the
//! ticks from [`axis`](super::axis), a fixed colour palette, a legend column right of the
//! plot when there is more than one series, and a note in the corner when series or
//! categories were left out.

use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{shorten, NumberFormat, TickedAxis, XTicks, MAX_CATEGORY_LABEL_CHARS};
use super::data::{BarPlot, CandlePlot, Line, LinePlot, Plot};
use super::{ChartKind, ChartSpec, CHART_HEIGHT, CHART_WIDTH, MAX_SERIES};
use crate::report::format::format_count;
use crate::report::ReportError;

/// Ten Tableau colours plus two, distinguishable and in a fixed order so the same input
/// always gives the same picture.
const PALETTE: [RGBColor; MAX_SERIES] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xBA, 0xB0, 0xAC),
    RGBColor(0x17, 0xBE, 0xCF),
    RGBColor(0x6B, 0x6E, 0xCF),
];
const GAIN_COLOR: RGBColor = RGBColor(0x26, 0xA6, 0x9A);
const LOSS_COLOR: RGBColor = RGBColor(0xEF, 0x53, 0x50);
const TEXT_COLOR: RGBColor = RGBColor(0x33, 0x33, 0x33);
const MUTED_COLOR: RGBColor = RGBColor(0x77, 0x77, 0x77);
const GRID_COLOR: RGBColor = RGBColor(0xE4, 0xE7, 0xEB);
const AXIS_COLOR: RGBColor = RGBColor(0x99, 0x99, 0x99);

const FONT_FAMILY: &str = "sans-serif";
/// Font sizes as plotters takes them; the SVG gets them divided by 1.24.
const LABEL_FONT_SIZE: u32 = 14;
const TITLE_FONT_SIZE: u32 = 15;
const NO_DATA_FONT_SIZE: u32 = 18;
const LINE_WIDTH: u32 = 2;

/// Space around the plot; the top leaves room for the note about left-out series, the
/// right for half a tick label.
const MARGIN_TOP: u32 = 28;
const MARGIN_LEFT: u32 = 16;
const MARGIN_RIGHT: u32 = 40;
const MARGIN_BOTTOM: u32 = 8;
/// Height of tick labels plus the x axis title below the plot.
const X_LABEL_AREA: u32 = 48;
/// Height taken by the x axis title alone.
const X_TITLE_HEIGHT: u32 = 24;
const Y_LABEL_AREA: u32 = 84;
/// Room right of the plot for the legend, when there is one.
const LEGEND_WIDTH: u32 = 150;
const LEGEND_ROW_HEIGHT: u32 = 20;
/// Longest legend label before it is shortened with "…".
const MAX_LEGEND_LABEL_CHARS: usize = 18;
/// Rough width of one label character at [`LABEL_FONT_SIZE`], and room between labels.
const LABEL_CHAR_WIDTH: u32 = 7;
const LABEL_GAP: u32 = 16;
/// Distance between the x axis and a tick label.
const TICK_LABEL_OFFSET: i32 = 8;

/// Tick labels wanted on the y axis (plotters picks round values up to this count).
const Y_TICKS: usize = 8;
/// Share of the value span added above and below the data.
const VALUE_PADDING: f64 = 0.05;
/// Share of each category's slot taken by its bars.
const BAR_SLOT_FILL: f64 = 0.8;
/// Share of the space per candle taken by its body, and the body's width limits in pixels.
const CANDLE_FILL: f64 = 0.6;
const CANDLE_WIDTH_LIMITS: (f64, f64) = (1.0, 12.0);

type Area<'svg> = DrawingArea<SVGBackend<'svg>, Shift>;
type Chart<'area, 'svg> =
    ChartContext<'area, SVGBackend<'svg>, Cartesian2d<TickedAxis, RangedCoordf64>>;

/// A plotters failure, reduced to its message: plotters' error type is generic over the
/// backend and not worth exposing.
#[derive(Debug)]
pub(super) struct DrawFailure(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawFailure {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        Self(error.to_string())
    }
}

impl DrawFailure {
    pub(super) fn for_chart(self, chart: &str) -> ReportError {
        ReportError::Drawing {
            chart: chart.to_owned(),
            message: self.0,
        }
    }
}

/// The axis titles: the x column and the value columns.
pub(super) struct AxisTitles {
    x: String,
    y: String,
}

impl AxisTitles {
    pub(super) fn new(spec: &ChartSpec) -> Self {
        let y = match spec.kind {
            ChartKind::Line | ChartKind::Bar => spec.y.join(", "),
            ChartKind::Candlestick => spec.ohlc_columns().join("/"),
        };
        Self {
            x: spec.x.clone(),
            y,
        }
    }
}

/// The placeholder for a chart without anything to plot.
pub(super) fn no_data() -> Result<String, DrawFailure> {
    svg_document(|root| {
        let style = (FONT_FAMILY, NO_DATA_FONT_SIZE)
            .into_font()
            .color(&MUTED_COLOR)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let centre = ((CHART_WIDTH / 2) as i32, (CHART_HEIGHT / 2) as i32);
        root.draw(&Text::new("no data", centre, style))?;
        Ok(())
    })
}

/// Draws `plot` as a standalone SVG document, or the "no data" placeholder when it has
/// nothing to show.
pub(super) fn plot(plot: &Plot, titles: &AxisTitles) -> Result<String, DrawFailure> {
    match plot {
        Plot::Lines(lines) => draw_lines(lines, titles),
        Plot::Bars(bars) => draw_bars(bars, titles),
        Plot::Candles(candles) => draw_candles(candles, titles),
    }
}

fn draw_lines(plot: &LinePlot, titles: &AxisTitles) -> Result<String, DrawFailure> {
    let all_points = || plot.lines.iter().flat_map(|line| line.points.iter());
    let ranges = x_range(all_points().map(|p| p.0)).zip(padded_range(all_points().map(|p| p.1)));
    let Some((x_range, y_range)) = ranges.filter(|_| !plot.is_empty()) else {
        return no_data();
    };
    let labels = plot.lines.iter().map(|line| line.label.as_str());
    let frame = Frame {
        x_ticks: XTicks::for_scale(plot.scale, &x_range),
        x_range,
        y_range,
        titles,
        vertical_grid: true,
        legend: legend(labels, LegendMark::Line, titles),
    };
    svg_document(|root| {
        let mut chart = frame.draw(root)?;
        for (index, line) in plot.lines.iter().enumerate() {
            draw_line(&mut chart, line, series_color(index))?;
        }
        let note = left_out_note(plot.lines.len(), plot.hidden_lines, "lines");
        draw_note(root, note.as_slice())
    })
}

fn draw_bars(plot: &BarPlot, titles: &AxisTitles) -> Result<String, DrawFailure> {
    let values = plot
        .groups
        .iter()
        .flat_map(|group| group.values.iter().flatten());
    // Bars grow from zero, so zero is always in view.
    let y_range = padded_range(values.copied().chain([0.0]));
    let Some(y_range) = y_range.filter(|_| !plot.is_empty()) else {
        return no_data();
    };
    let labels = plot.groups.iter().map(|group| group.label.as_str());
    let frame = Frame {
        x_range: -0.5..plot.categories.len() as f64 - 0.5,
        y_range,
        x_ticks: XTicks::categories(&plot.categories),
        titles,
        vertical_grid: false,
        legend: legend(labels, LegendMark::Swatch, titles),
    };
    svg_document(|root| {
        let mut chart = frame.draw(root)?;
        let bar_width = BAR_SLOT_FILL / plot.groups.len() as f64;
        for (index, group) in plot.groups.iter().enumerate() {
            let color = series_color(index);
            let offset = index as f64 * bar_width - BAR_SLOT_FILL / 2.0;
            let bars = group
                .values
                .iter()
                .enumerate()
                .filter_map(|(category, value)| {
                    let left = category as f64 + offset;
                    let corners = [(left, 0.0), (left + bar_width, (*value)?)];
                    Some(Rectangle::new(corners, color.filled()))
                });
            chart.draw_series(bars)?;
        }
        let notes: Vec<String> = [
            left_out_note(plot.categories.len(), plot.hidden_categories, "categories"),
            left_out_note(plot.groups.len(), plot.hidden_groups, "bar groups"),
        ]
        .into_iter()
        .flatten()
        .collect();
        draw_note(root, &notes)
    })
}

fn draw_candles(plot: &CandlePlot, titles: &AxisTitles) -> Result<String, DrawFailure> {
    let overlay_points = || plot.overlays.iter().flat_map(|line| line.points.iter());
    let xs = plot
        .candles
        .iter()
        .map(|c| c.x)
        .chain(overlay_points().map(|p| p.0));
    let prices = plot
        .candles
        .iter()
        .flat_map(|c| [c.low, c.high])
        .chain(overlay_points().map(|p| p.1));
    let ranges = x_range(xs).zip(padded_range(prices));
    let Some((x_range, y_range)) = ranges.filter(|_| !plot.is_empty()) else {
        return no_data();
    };
    let candle_count = plot.candles.len().max(1) as f64;
    // Half a candle spacing on each side keeps the outer candles whole.
    let half_spacing = (x_range.end - x_range.start) / candle_count / 2.0;
    let labels = plot.overlays.iter().map(|line| line.label.as_str());
    let frame = Frame {
        x_ticks: XTicks::for_scale(plot.scale, &x_range),
        x_range: x_range.start - half_spacing..x_range.end + half_spacing,
        y_range,
        titles,
        vertical_grid: true,
        legend: legend(labels, LegendMark::Line, titles),
    };
    let (narrowest, widest) = CANDLE_WIDTH_LIMITS;
    let candle_pixels = f64::from(frame.plot_width()) / candle_count * CANDLE_FILL;
    let candle_width = candle_pixels.clamp(narrowest, widest) as u32;
    svg_document(|root| {
        let mut chart = frame.draw(root)?;
        chart.draw_series(plot.candles.iter().map(|candle| {
            CandleStick::new(
                candle.x,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                GAIN_COLOR.filled(),
                LOSS_COLOR.filled(),
                candle_width,
            )
        }))?;
        for (index, line) in plot.overlays.iter().enumerate() {
            draw_line(&mut chart, line, series_color(index))?;
        }
        Ok(())
    })
}

/// Renders one SVG document of the chart size on a white background.
fn svg_document(
    draw: impl FnOnce(&Area<'_>) -> Result<(), DrawFailure>,
) -> Result<String, DrawFailure> {
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// Everything around the data: axes, ticks, titles, legend.
struct Frame<'plot> {
    x_range: Range<f64>,
    y_range: Range<f64>,
    x_ticks: XTicks<'plot>,
    titles: &'plot AxisTitles,
    /// Vertical grid lines; off for bar charts, whose x ticks sit on the bars.
    vertical_grid: bool,
    /// Drawn in a column right of the plot, so it never hides data.
    legend: Vec<LegendEntry<'plot>>,
}

impl Frame<'_> {
    /// Draws the frame and returns the plot to draw the data into.
    fn draw<'area, 'svg>(
        &self,
        root: &'area Area<'svg>,
    ) -> Result<Chart<'area, 'svg>, DrawFailure> {
        let rotated_labels = self.needs_rotated_labels();
        let x_label_area = if rotated_labels {
            self.rotated_label_height() + X_TITLE_HEIGHT
        } else {
            X_LABEL_AREA
        };
        let x_axis = self.x_ticks.axis(self.x_range.clone());
        let mut chart = ChartBuilder::on(root)
            .margin_top(MARGIN_TOP)
            .margin_left(MARGIN_LEFT)
            .margin_right(self.margin_right())
            .margin_bottom(MARGIN_BOTTOM)
            .x_label_area_size(x_label_area)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x_axis, self.y_range.clone())?;
        let y_format = NumberFormat::for_range(&self.y_range, Y_TICKS);
        // Rotated labels are drawn separately, after the mesh.
        let x_label = |position: &f64| {
            if rotated_labels {
                String::new()
            } else {
                self.x_ticks.label(*position)
            }
        };
        let y_label = |value: &f64| y_format.label(*value);
        let mut mesh = chart.configure_mesh();
        mesh.y_labels(Y_TICKS)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(self.titles.x.as_str())
            .y_desc(self.titles.y.as_str())
            .label_style(label_style())
            .axis_desc_style(
                (FONT_FAMILY, TITLE_FONT_SIZE)
                    .into_font()
                    .color(&TEXT_COLOR),
            )
            .axis_style(AXIS_COLOR)
            .bold_line_style(GRID_COLOR)
            .light_line_style(TRANSPARENT);
        if !self.vertical_grid {
            mesh.disable_x_mesh();
        }
        mesh.draw()?;
        if rotated_labels {
            self.draw_rotated_labels(root, &chart)?;
        }
        draw_legend(root, &self.legend)?;
        Ok(chart)
    }

    fn margin_right(&self) -> u32 {
        if self.legend.is_empty() {
            MARGIN_RIGHT
        } else {
            LEGEND_WIDTH
        }
    }

    /// Approximate width of the plotting area, for sizing candles and spacing labels.
    fn plot_width(&self) -> u32 {
        CHART_WIDTH - Y_LABEL_AREA - MARGIN_LEFT - self.margin_right()
    }

    fn longest_label_chars(&self) -> u32 {
        let positions = self.x_ticks.positions();
        let longest = positions
            .iter()
            .map(|p| self.x_ticks.label(*p).chars().count());
        longest.max().unwrap_or(0) as u32
    }

    /// Whether the tick labels would overlap side by side, so they are turned to run
    /// downwards (only category labels are that dense).
    fn needs_rotated_labels(&self) -> bool {
        let label_width = self.longest_label_chars() * LABEL_CHAR_WIDTH + LABEL_GAP;
        let tick_count = self.x_ticks.positions().len() as u32;
        tick_count * label_width > self.plot_width()
    }

    fn rotated_label_height(&self) -> u32 {
        let longest = self
            .longest_label_chars()
            .min(MAX_CATEGORY_LABEL_CHARS as u32);
        longest * LABEL_CHAR_WIDTH + 2 * TICK_LABEL_OFFSET as u32
    }

    /// Tick labels turned 90° clockwise, starting just below their tick.
    fn draw_rotated_labels(
        &self,
        root: &Area<'_>,
        chart: &Chart<'_, '_>,
    ) -> Result<(), DrawFailure> {
        let style = label_style()
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for position in self.x_ticks.positions() {
            let (x, axis_y) = chart.backend_coord(&(position, self.y_range.start));
            let label = self.x_ticks.label(position);
            root.draw(&Text::new(
                label,
                (x, axis_y + TICK_LABEL_OFFSET),
                style.clone(),
            ))?;
        }
        Ok(())
    }
}

/// What a legend entry shows next to its label.
#[derive(Clone, Copy)]
enum LegendMark {
    Line,
    Swatch,
}

struct LegendEntry<'plot> {
    label: &'plot str,
    color: RGBColor,
    mark: LegendMark,
}

/// Legend entries for `labels` in palette order, or none when the y axis title already
/// names the only series.
fn legend<'plot>(
    labels: impl Iterator<Item = &'plot str>,
    mark: LegendMark,
    titles: &AxisTitles,
) -> Vec<LegendEntry<'plot>> {
    let labels: Vec<&str> = labels.collect();
    if labels.iter().all(|label| *label == titles.y) {
        return Vec::new();
    }
    labels
        .into_iter()
        .enumerate()
        .map(|(index, label)| LegendEntry {
            label,
            color: series_color(index),
            mark,
        })
        .collect()
}

/// Draws the legend entries top-down in the column right of the plot.
fn draw_legend(root: &Area<'_>, entries: &[LegendEntry<'_>]) -> Result<(), DrawFailure> {
    let left = (CHART_WIDTH - LEGEND_WIDTH + MARGIN_LEFT) as i32;
    let text_style = label_style().pos(Pos::new(HPos::Left, VPos::Center));
    for (row, entry) in entries.iter().enumerate() {
        let y = (MARGIN_TOP + LEGEND_ROW_HEIGHT / 2 + row as u32 * LEGEND_ROW_HEIGHT) as i32;
        match entry.mark {
            LegendMark::Line => root.draw(&PathElement::new(
                [(left, y), (left + 16, y)],
                entry.color.stroke_width(LINE_WIDTH),
            ))?,
            LegendMark::Swatch => root.draw(&Rectangle::new(
                [(left + 2, y - 6), (left + 14, y + 6)],
                entry.color.filled(),
            ))?,
        }
        let label = shorten(entry.label, MAX_LEGEND_LABEL_CHARS);
        root.draw(&Text::new(label, (left + 22, y), text_style.clone()))?;
    }
    Ok(())
}

/// Short remarks in the top right corner, e.g. that series were left out.
fn draw_note(root: &Area<'_>, notes: &[String]) -> Result<(), DrawFailure> {
    if notes.is_empty() {
        return Ok(());
    }
    let style = label_style()
        .color(&MUTED_COLOR)
        .pos(Pos::new(HPos::Right, VPos::Top));
    let corner = ((CHART_WIDTH - MARGIN_LEFT) as i32, 8);
    root.draw(&Text::new(notes.join("; "), corner, style))?;
    Ok(())
}

/// `"showing 12 of 15 lines"` when something was left out.
fn left_out_note(shown: usize, hidden: usize, what: &str) -> Option<String> {
    (hidden > 0).then(|| {
        format!(
            "showing {} of {} {what}",
            format_count(shown),
            format_count(shown + hidden)
        )
    })
}

/// Draws `line` in `color`; a lone point gets a marker so it shows.
fn draw_line<'area, 'svg: 'area>(
    chart: &mut Chart<'area, 'svg>,
    line: &Line,
    color: RGBColor,
) -> Result<(), DrawFailure> {
    let marker_size = if line.points.len() == 1 { 3 } else { 0 };
    let style = color.stroke_width(LINE_WIDTH);
    chart
        .draw_series(LineSeries::new(line.points.iter().copied(), style).point_size(marker_size))?;
    Ok(())
}

fn label_style() -> TextStyle<'static> {
    (FONT_FAMILY, LABEL_FONT_SIZE)
        .into_font()
        .color(&TEXT_COLOR)
}

fn series_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// The smallest and largest of `values`, or `None` without values.
fn bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().fold(None, |bounds, value| match bounds {
        None => Some((value, value)),
        Some((low, high)) => Some((f64::min(low, value), f64::max(high, value))),
    })
}

/// The range of `values` padded by [`VALUE_PADDING`] of their span (of the value itself
/// when all are equal), or `None` without values.
fn padded_range(values: impl IntoIterator<Item = f64>) -> Option<Range<f64>> {
    let (low, high) = bounds(values)?;
    let span = high - low;
    let padding = if span > 0.0 {
        span * VALUE_PADDING
    } else {
        low.abs().max(1.0) * VALUE_PADDING
    };
    Some(low - padding..high + padding)
}

/// The range of `values` exactly, widened by one unit each way around a single value.
fn x_range(values: impl IntoIterator<Item = f64>) -> Option<Range<f64>> {
    let (low, high) = bounds(values)?;
    Some(if high > low {
        low..high
    } else {
        low - 1.0..high + 1.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_padded_and_never_empty() {
        assert_eq!(padded_range([1.0, 3.0]), Some(0.9..3.1));
        assert_eq!(padded_range([10.0]), Some(9.5..10.5));
        assert_eq!(padded_range(std::iter::empty()), None);
        assert_eq!(x_range([1.0, 3.0]), Some(1.0..3.0));
        assert_eq!(x_range([5.0]), Some(4.0..6.0));
    }

    #[test]
    fn a_legend_only_when_the_axis_title_does_not_say_it_all() {
        let titles = AxisTitles {
            x: "date".into(),
            y: "close".into(),
        };
        assert!(legend(["close"].into_iter(), LegendMark::Line, &titles).is_empty());
        let per_symbol = legend(["AAPL", "MSFT"].into_iter(), LegendMark::Line, &titles);
        assert_eq!(per_symbol.len(), 2);
        assert_eq!(per_symbol[1].color, PALETTE[1]);
    }
}
