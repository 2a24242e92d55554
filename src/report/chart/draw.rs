//! Lays out the plots read by [`data`](super::data) as SVG with plotters: axes with
//! readable tick labels, a fixed colour palette, a legend when there is more than one
//! series, and a note in the corner when series or categories were left out.

use std::ops::Range;

use chrono::DateTime;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::{BarPlot, CandlePlot, Line, LinePlot, XScale};
use super::{ChartKind, ChartSpec, CHART_HEIGHT, CHART_WIDTH, MAX_SERIES};
use crate::report::format::{format_count, format_fixed};
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
const LABEL_FONT_SIZE: u32 = 12;
const TITLE_FONT_SIZE: u32 = 13;
const LINE_WIDTH: u32 = 2;

/// Space around the plot; the top leaves room for the note about left-out series.
const MARGIN_TOP: u32 = 28;
const MARGIN_SIDE: u32 = 16;
const X_LABEL_AREA: u32 = 44;
const Y_LABEL_AREA: u32 = 80;
/// Approximate width of the plotting area, for sizing candles and spacing bar labels.
const PLOT_WIDTH: u32 = CHART_WIDTH - Y_LABEL_AREA - 2 * MARGIN_SIDE;
/// Rough width of one label character at [`LABEL_FONT_SIZE`], and room between labels.
const LABEL_CHAR_WIDTH: u32 = 7;
const LABEL_GAP: u32 = 16;
/// Longest category label shown under a bar group before it is shortened with "…".
const MAX_CATEGORY_LABEL_CHARS: usize = 14;

/// Tick labels wanted on the y axis (plotters picks round values up to this count).
const Y_TICKS: usize = 8;
/// Tick labels wanted on a date axis; a date label is about 70 pixels wide.
const DATE_TICKS: usize = 8;
const NUMBER_TICKS: usize = 10;
/// Below this span in days a date axis shows times of day.
const INTRADAY_SPAN_DAYS: f64 = 3.0;
/// Share of the value span added above and below the data.
const VALUE_PADDING: f64 = 0.05;
const SECONDS_PER_DAY: f64 = 86_400.0;
/// Share of each category's slot taken by its bars.
const BAR_SLOT_FILL: f64 = 0.8;

type Area<'svg> = DrawingArea<SVGBackend<'svg>, Shift>;
type Chart<'area, 'svg> =
    ChartContext<'area, SVGBackend<'svg>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

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

/// The axis descriptions: the x column and the value columns.
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

/// How tick labels on the x axis are written.
enum XLabels<'plot> {
    Dates(DateLabels),
    Numbers(NumberFormat),
    /// Category `i` is centred on x = i.
    Categories(&'plot [String]),
}

impl XLabels<'_> {
    fn for_scale(scale: XScale, range: &Range<f64>) -> Self {
        match scale {
            XScale::Dates { time_of_day } => XLabels::Dates(DateLabels {
                with_time: time_of_day && range.end - range.start < INTRADAY_SPAN_DAYS,
                whole_days_only: !time_of_day,
            }),
            XScale::Numbers => XLabels::Numbers(NumberFormat::for_range(range)),
        }
    }

    fn label(&self, value: f64) -> String {
        match self {
            XLabels::Dates(labels) => labels.label(value),
            XLabels::Numbers(format) => format.label(value),
            XLabels::Categories(categories) => category_label(categories, value),
        }
    }

    /// How many labels fit side by side.
    fn max_count(&self) -> usize {
        match self {
            XLabels::Dates(_) => DATE_TICKS,
            XLabels::Numbers(_) => NUMBER_TICKS,
            XLabels::Categories(categories) => {
                let longest = categories
                    .iter()
                    .map(|category| category.chars().count().min(MAX_CATEGORY_LABEL_CHARS))
                    .max()
                    .unwrap_or(1) as u32;
                let fitting = PLOT_WIDTH / (longest * LABEL_CHAR_WIDTH + LABEL_GAP);
                categories.len().min(fitting.max(1) as usize)
            }
        }
    }
}

/// Fixed decimals, scaled to thousands/millions/billions/trillions for big values, chosen
/// so that adjacent ticks differ in their labels.
struct NumberFormat {
    divisor: f64,
    suffix: &'static str,
    decimals: usize,
}

impl NumberFormat {
    fn for_range(range: &Range<f64>) -> Self {
        let magnitude = range.start.abs().max(range.end.abs());
        let (divisor, suffix) = [(1e12, "T"), (1e9, "B"), (1e6, "M")]
            .into_iter()
            .find(|(divisor, _)| magnitude >= *divisor)
            .unwrap_or((1.0, ""));
        // Plotters steps by 1, 2 or 5 times a power of ten, at least span / tick count.
        let smallest_step = (range.end - range.start) / divisor / NUMBER_TICKS as f64;
        let decimals = if smallest_step > 0.0 && smallest_step < 1.0 {
            (-smallest_step.log10()).ceil() as usize
        } else {
            0
        };
        Self {
            divisor,
            suffix,
            decimals: decimals.min(10),
        }
    }

    fn label(&self, value: f64) -> String {
        format!(
            "{}{}",
            format_fixed(value / self.divisor, self.decimals),
            self.suffix
        )
    }
}

/// How ticks on a date axis are labelled.
struct DateLabels {
    /// Label with month, day and time instead of the date: intraday data over a short span.
    with_time: bool,
    /// Leave ticks between midnights unlabelled: the data has dates only.
    whole_days_only: bool,
}

impl DateLabels {
    fn label(&self, days: f64) -> String {
        if self.whole_days_only && days.fract().abs() > 1e-9 {
            return String::new();
        }
        let seconds = (days * SECONDS_PER_DAY).round() as i64;
        let pattern = if self.with_time {
            "%m-%d %H:%M"
        } else {
            "%Y-%m-%d"
        };
        DateTime::from_timestamp(seconds, 0)
            .map(|moment| moment.format(pattern).to_string())
            .unwrap_or_default()
    }
}

/// The category centred at `value`; empty between categories.
fn category_label(categories: &[String], value: f64) -> String {
    let nearest = value.round();
    if (value - nearest).abs() > 1e-6 || nearest < 0.0 {
        return String::new();
    }
    categories
        .get(nearest as usize)
        .map(|category| shorten(category, MAX_CATEGORY_LABEL_CHARS))
        .unwrap_or_default()
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max_chars - 1).collect();
    format!("{kept}…")
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

fn label_style() -> TextStyle<'static> {
    (FONT_FAMILY, LABEL_FONT_SIZE)
        .into_font()
        .color(&TEXT_COLOR)
}

fn series_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
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

/// Everything about the axes of one chart.
struct Axes<'plot> {
    x_range: Range<f64>,
    y_range: Range<f64>,
    x_labels: XLabels<'plot>,
    titles: &'plot AxisTitles,
    /// Vertical grid lines; off for bar charts, whose x ticks sit on the bars.
    vertical_grid: bool,
}

/// Builds the cartesian plot with its mesh, tick labels and axis descriptions drawn.
fn plot_area<'area, 'svg>(
    root: &'area Area<'svg>,
    axes: &Axes<'_>,
) -> Result<Chart<'area, 'svg>, DrawFailure> {
    let mut chart = ChartBuilder::on(root)
        .margin_top(MARGIN_TOP)
        .margin_left(MARGIN_SIDE)
        .margin_right(MARGIN_SIDE)
        .margin_bottom(MARGIN_SIDE / 2)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(axes.x_range.clone(), axes.y_range.clone())?;
    let y_format = NumberFormat::for_range(&axes.y_range);
    let x_label = |value: &f64| axes.x_labels.label(*value);
    let y_label = |value: &f64| y_format.label(*value);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(axes.x_labels.max_count())
        .y_labels(Y_TICKS)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(axes.titles.x.as_str())
        .y_desc(axes.titles.y.as_str())
        .label_style(label_style())
        .axis_desc_style(
            (FONT_FAMILY, TITLE_FONT_SIZE)
                .into_font()
                .color(&TEXT_COLOR),
        )
        .axis_style(AXIS_COLOR)
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT);
    if !axes.vertical_grid {
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    Ok(chart)
}

fn draw_legend<'area, 'svg: 'area>(chart: &mut Chart<'area, 'svg>) -> Result<(), DrawFailure> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID_COLOR)
        .label_font(label_style())
        .draw()?;
    Ok(())
}

/// A short remark in the top right corner, e.g. that series were left out.
fn draw_note(root: &Area<'_>, note: &str) -> Result<(), DrawFailure> {
    let style = (FONT_FAMILY, LABEL_FONT_SIZE)
        .into_font()
        .color(&MUTED_COLOR)
        .pos(Pos::new(HPos::Right, VPos::Top));
    let corner = ((CHART_WIDTH - MARGIN_SIDE) as i32, 8);
    root.draw(&Text::new(note.to_owned(), corner, style))?;
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

/// The placeholder for a chart without anything to plot.
pub(super) fn no_data() -> Result<String, DrawFailure> {
    svg_document(|root| {
        let style = (FONT_FAMILY, 16)
            .into_font()
            .color(&MUTED_COLOR)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let centre = ((CHART_WIDTH / 2) as i32, (CHART_HEIGHT / 2) as i32);
        root.draw(&Text::new("no data", centre, style))?;
        Ok(())
    })
}

/// Draws `line` in `color`, with a legend entry; a lone point gets a marker so it shows.
fn draw_line<'area, 'svg: 'area>(
    chart: &mut Chart<'area, 'svg>,
    line: &Line,
    color: RGBColor,
) -> Result<(), DrawFailure> {
    let marker_size = if line.points.len() == 1 { 3 } else { 0 };
    chart
        .draw_series(
            LineSeries::new(line.points.iter().copied(), color.stroke_width(LINE_WIDTH))
                .point_size(marker_size),
        )?
        .label(line.label.as_str())
        .legend(move |(x, y)| {
            PathElement::new([(x, y), (x + 16, y)], color.stroke_width(LINE_WIDTH))
        });
    Ok(())
}

pub(super) fn lines(plot: &LinePlot, titles: &AxisTitles) -> Result<String, DrawFailure> {
    let all_points = || plot.lines.iter().flat_map(|line| line.points.iter());
    let ranges = x_range(all_points().map(|p| p.0)).zip(padded_range(all_points().map(|p| p.1)));
    let Some((x_range, y_range)) = ranges.filter(|_| !plot.is_empty()) else {
        return no_data();
    };
    let axes = Axes {
        x_labels: XLabels::for_scale(plot.scale, &x_range),
        x_range,
        y_range,
        titles,
        vertical_grid: true,
    };
    svg_document(|root| {
        let mut chart = plot_area(root, &axes)?;
        for (index, line) in plot.lines.iter().enumerate() {
            draw_line(&mut chart, line, series_color(index))?;
        }
        if plot.lines.len() > 1 {
            draw_legend(&mut chart)?;
        }
        match left_out_note(plot.lines.len(), plot.hidden_lines, "lines") {
            Some(note) => draw_note(root, &note),
            None => Ok(()),
        }
    })
}

pub(super) fn bars(plot: &BarPlot, titles: &AxisTitles) -> Result<String, DrawFailure> {
    let values = plot
        .groups
        .iter()
        .flat_map(|group| group.values.iter().flatten());
    // Bars grow from zero, so zero is always in view.
    let y_range = padded_range(values.copied().chain([0.0]));
    let Some(y_range) = y_range.filter(|_| !plot.is_empty()) else {
        return no_data();
    };
    let axes = Axes {
        x_range: -0.5..plot.categories.len() as f64 - 0.5,
        y_range,
        x_labels: XLabels::Categories(&plot.categories),
        titles,
        vertical_grid: false,
    };
    svg_document(|root| {
        let mut chart = plot_area(root, &axes)?;
        let bar_width = BAR_SLOT_FILL / plot.groups.len() as f64;
        for (index, group) in plot.groups.iter().enumerate() {
            let color = series_color(index);
            let left_edge = index as f64 * bar_width - BAR_SLOT_FILL / 2.0;
            let bars = group
                .values
                .iter()
                .enumerate()
                .filter_map(|(category, value)| {
                    let x0 = category as f64 + left_edge;
                    let value = (*value)?;
                    Some(Rectangle::new(
                        [(x0, 0.0), (x0 + bar_width, value)],
                        color.filled(),
                    ))
                });
            chart
                .draw_series(bars)?
                .label(group.label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        if plot.groups.len() > 1 {
            draw_legend(&mut chart)?;
        }
        let notes: Vec<String> = [
            left_out_note(plot.categories.len(), plot.hidden_categories, "categories"),
            left_out_note(plot.groups.len(), plot.hidden_groups, "bar groups"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if notes.is_empty() {
            return Ok(());
        }
        draw_note(root, &notes.join("; "))
    })
}

pub(super) fn candles(plot: &CandlePlot, titles: &AxisTitles) -> Result<String, DrawFailure> {
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
    let candle_count = plot.candles.len().max(1);
    // Half a candle spacing on each side keeps the outer candles whole.
    let half_spacing = (x_range.end - x_range.start) / candle_count as f64 / 2.0;
    let axes = Axes {
        x_labels: XLabels::for_scale(plot.scale, &x_range),
        x_range: x_range.start - half_spacing..x_range.end + half_spacing,
        y_range,
        titles,
        vertical_grid: true,
    };
    let candle_width = (PLOT_WIDTH as f64 / candle_count as f64 * 0.6).clamp(1.0, 12.0) as u32;
    svg_document(|root| {
        let mut chart = plot_area(root, &axes)?;
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
        if !plot.overlays.is_empty() {
            draw_legend(&mut chart)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_ticks_get_enough_decimals_and_scale_suffixes() {
        let small = NumberFormat::for_range(&(0.0..1.0));
        assert_eq!(
            (small.label(0.2), small.label(-0.0)),
            ("0.2".into(), "0.0".into())
        );
        let tiny = NumberFormat::for_range(&(0.01..0.05));
        assert_eq!(tiny.label(0.015), "0.015");
        let big = NumberFormat::for_range(&(0.0..2_500.0));
        assert_eq!(big.label(1500.0), "1,500");
        let volume = NumberFormat::for_range(&(0.0..2_500_000.0));
        assert_eq!(volume.label(1_500_000.0), "1.5M");
        let billions = NumberFormat::for_range(&(1e9..3e9));
        assert_eq!(billions.label(2e9), "2.0B");
    }

    #[test]
    fn date_ticks_read_as_dates_or_times() {
        let dates = DateLabels {
            with_time: false,
            whole_days_only: true,
        };
        assert_eq!(dates.label(19_724.0), "2024-01-02");
        assert_eq!(dates.label(19_724.5), "");
        let times = DateLabels {
            with_time: true,
            whole_days_only: false,
        };
        assert_eq!(times.label(19_724.5), "01-02 12:00");
    }

    #[test]
    fn category_ticks_sit_on_category_centres() {
        let categories = ["AAPL".to_owned(), "A very long category name".to_owned()];
        assert_eq!(category_label(&categories, 0.0), "AAPL");
        assert_eq!(category_label(&categories, 1.0), "A very long c…");
        assert_eq!(category_label(&categories, 0.5), "");
        assert_eq!(category_label(&categories, 2.0), "");
        assert_eq!(category_label(&categories, -1.0), "");
    }

    #[test]
    fn ranges_are_padded_and_never_empty() {
        assert_eq!(padded_range([1.0, 3.0]), Some(0.9..3.1));
        assert_eq!(padded_range([10.0]), Some(9.5..10.5));
        assert_eq!(padded_range(std::iter::empty()), None);
        assert_eq!(x_range([1.0, 3.0]), Some(1.0..3.0));
        assert_eq!(x_range([5.0]), Some(4.0..6.0));
    }
}
