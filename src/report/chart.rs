//! SVG charts of analysis results, declared per analysis in the job file.
//!
//! A job file declares charts as `[[analysis.chart]]` tables that deserialize straight into
//! [`ChartSpec`]. [`ChartSpec::validate`] checks a declaration on its own (when the job is
//! loaded) and against the result's columns (once the query has run);
//! [`render_chart_svg`] turns a declaration and a result into a standalone SVG document
//! that the HTML report inlines.
//!
//! The work is split in steps: [`data`] reads the result's text cells into points,
//! series and candles (and is where bad cells are reported), [`axis`] picks ticks and
//! their labels, and [`draw`] lays everything out with `plotters`.
//!
//! Plotters is built without its TTF support, so text is emitted as SVG `<text>` for the
//! browser to typeset and text extents are only estimated; this keeps the build free of
//! system font libraries and the output byte-for-byte deterministic.

mod axis;
mod data;
mod draw;

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ReportError;
use crate::table::{Column, Table};

/// Width of every chart, in SVG user units (pixels at 100% zoom).
pub const CHART_WIDTH: u32 = 800;
/// Height of every chart, in SVG user units.
pub const CHART_HEIGHT: u32 = 360;

/// The most lines (series × y columns) or bar groups one chart draws; more would be
/// unreadable, so the rest are left out and the chart says so.
const MAX_SERIES: usize = 12;
/// The most categories a bar chart draws; the rest are left out and the chart says so.
const MAX_BAR_CATEGORIES: usize = 40;

/// Date axes count in days since 1970-01-01; times of day are fractions of a day.
const SECONDS_PER_DAY: f64 = 86_400.0;

/// Candlestick column names used when the declaration does not name them.
const DEFAULT_OHLC: [&str; 4] = ["open", "high", "low", "close"];

/// A chart declared for an analysis (TOML `[[analysis.chart]]`), deserialized directly.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    pub kind: ChartKind,
    /// Caption; defaults to a description built from the column names.
    pub title: Option<String>,
    /// The horizontal axis: dates or numbers for line and candlestick charts, categories
    /// (e.g. symbols) for bar charts.
    pub x: String,
    /// Value columns: one line or bar per column (and per series value). Required for line
    /// and bar charts; optional lines drawn over the candles of a candlestick chart.
    #[serde(default)]
    pub y: Vec<String>,
    /// Column whose distinct values become separate lines/bars (line and bar charts).
    pub series: Option<String>,
    /// Candlestick columns; default to "open", "high", "low", "close".
    pub open: Option<String>,
    pub high: Option<String>,
    pub low: Option<String>,
    pub close: Option<String>,
}

/// What kind of chart to draw.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// One line per y column and series value over a date or number x axis.
    Line,
    /// Bars per category of x, grouped by y column and series value.
    Bar,
    /// Open/high/low/close candles over a date x axis.
    Candlestick,
}

impl fmt::Display for ChartKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ChartKind::Line => "line",
            ChartKind::Bar => "bar",
            ChartKind::Candlestick => "candlestick",
        })
    }
}

/// Where each column a chart uses sits in the result.
#[derive(Debug, Clone, PartialEq)]
struct ColumnIndices {
    x: usize,
    y: Vec<usize>,
    series: Option<usize>,
    /// Open, high, low and close; candlestick charts only.
    ohlc: Option<[usize; 4]>,
}

impl ChartSpec {
    /// The caption: the declared title, or e.g. "close by date" / "OHLC by date".
    pub fn display_title(&self) -> String {
        match self.title.as_deref().map(str::trim) {
            Some(title) if !title.is_empty() => title.to_owned(),
            _ if self.kind == ChartKind::Candlestick => format!("OHLC by {}", self.x),
            _ => format!("{} by {}", self.y.join(", "), self.x),
        }
    }

    /// Checks that the declaration makes sense for its kind (y columns for line and bar
    /// charts, OHLC columns only for candlesticks, …) and, when `table_columns` is given,
    /// that every column it names is in the result. The message names the chart.
    ///
    /// # Errors
    /// [`ReportError::InvalidChart`] with the first [`ChartProblem`].
    pub fn validate(&self, table_columns: Option<&[Column]>) -> Result<(), ReportError> {
        self.check_shape()
            .and_then(|()| match table_columns {
                Some(columns) => self.locate_columns(columns).map(drop),
                None => Ok(()),
            })
            .map_err(|reason| ReportError::InvalidChart {
                chart: self.display_title(),
                reason,
            })
    }

    /// The candlestick columns, defaults filled in: open, high, low, close.
    pub fn ohlc_columns(&self) -> [&str; 4] {
        let [open, high, low, close] = DEFAULT_OHLC;
        [
            self.open.as_deref().unwrap_or(open),
            self.high.as_deref().unwrap_or(high),
            self.low.as_deref().unwrap_or(low),
            self.close.as_deref().unwrap_or(close),
        ]
    }

    fn declares_ohlc(&self) -> bool {
        [&self.open, &self.high, &self.low, &self.close]
            .iter()
            .any(|column| column.is_some())
    }

    /// The rules that need no result: which fields each kind needs or rejects.
    fn check_shape(&self) -> Result<(), ChartProblem> {
        if self.x.trim().is_empty() {
            return Err(ChartProblem::NoX);
        }
        if self.y.iter().any(|column| column.trim().is_empty()) {
            return Err(ChartProblem::EmptyY);
        }
        match self.kind {
            ChartKind::Line | ChartKind::Bar if self.y.is_empty() => {
                Err(ChartProblem::NoY { kind: self.kind })
            }
            ChartKind::Line | ChartKind::Bar if self.declares_ohlc() => {
                Err(ChartProblem::OhlcNotCandlestick { kind: self.kind })
            }
            ChartKind::Candlestick if self.series.is_some() => {
                Err(ChartProblem::SeriesOnCandlestick)
            }
            _ => Ok(()),
        }
    }

    /// Finds every column the chart uses, or names the first one the result lacks.
    fn locate_columns(&self, columns: &[Column]) -> Result<ColumnIndices, ChartProblem> {
        let locate = |name: &str| {
            columns
                .iter()
                .position(|column| column.name == name)
                .ok_or_else(|| ChartProblem::missing_column(name, columns))
        };
        let ohlc = match self.kind {
            ChartKind::Candlestick => {
                let [open, high, low, close] = self.ohlc_columns();
                Some([locate(open)?, locate(high)?, locate(low)?, locate(close)?])
            }
            ChartKind::Line | ChartKind::Bar => None,
        };
        Ok(ColumnIndices {
            x: locate(&self.x)?,
            y: self
                .y
                .iter()
                .map(|name| locate(name))
                .collect::<Result<_, _>>()?,
            series: self.series.as_deref().map(locate).transpose()?,
            ohlc,
        })
    }
}

/// What is wrong with a chart declaration, on its own or against the result's columns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartProblem {
    #[error("`x` must name a column")]
    NoX,
    #[error("`y` contains an empty column name")]
    EmptyY,
    #[error("a {kind} chart needs at least one `y` column")]
    NoY { kind: ChartKind },
    #[error("`open`, `high`, `low` and `close` apply to candlestick charts, not {kind} charts")]
    OhlcNotCandlestick { kind: ChartKind },
    #[error("`series` is not supported for candlestick charts; chart one instrument per analysis")]
    SeriesOnCandlestick,
    /// `available` lists the result's columns, comma-separated.
    #[error("column \"{name}\" is not in the result (its columns: {available})")]
    MissingColumn { name: String, available: String },
}

impl ChartProblem {
    fn missing_column(name: &str, columns: &[Column]) -> Self {
        let available: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
        ChartProblem::MissingColumn {
            name: name.to_owned(),
            available: available.join(", "),
        }
    }
}

/// Draws `spec` over `table` as a standalone SVG document of
/// [`CHART_WIDTH`] × [`CHART_HEIGHT`].
///
/// A result without rows, or without a single plottable point, gives a chart that says
/// "no data" rather than an error. Fails when the declaration does not fit the result (a
/// missing column, see [`ChartSpec::validate`]) or a cell cannot be read as the date or
/// number the chart needs; NULL, `NaN` and infinite cells are skipped.
pub fn render_chart_svg(spec: &ChartSpec, table: &Table) -> Result<String, ReportError> {
    let chart = spec.display_title();
    if table.rows.is_empty() {
        return draw::no_data().map_err(|failure| failure.for_chart(&chart));
    }
    let columns = spec
        .check_shape()
        .and_then(|()| spec.locate_columns(&table.columns))
        .map_err(|reason| ReportError::InvalidChart {
            chart: chart.clone(),
            reason,
        })?;
    let plot = data::read(spec.kind, table, &columns).map_err(|cell| cell.for_chart(&chart))?;
    draw::plot(&plot, &draw::AxisTitles::new(spec)).map_err(|failure| failure.for_chart(&chart))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ChartKind, x: &str, y: &[&str]) -> ChartSpec {
        ChartSpec {
            kind,
            title: None,
            x: x.into(),
            y: y.iter().map(|column| column.to_string()).collect(),
            series: None,
            open: None,
            high: None,
            low: None,
            close: None,
        }
    }

    fn columns(names: &[&str]) -> Vec<Column> {
        names
            .iter()
            .map(|name| Column::new(*name, "numeric"))
            .collect()
    }

    /// How many `<rect>` elements of `svg` are filled with `color` (`#RRGGBB`).
    fn rects_filled(svg: &str, color: &str) -> usize {
        let fill = format!("fill=\"{color}\"");
        svg.lines()
            .filter(|line| line.starts_with("<rect") && line.contains(&fill))
            .count()
    }

    fn prices() -> Table {
        Table::from_text(
            &[
                ("date", "date"),
                ("symbol", "text"),
                ("open", "numeric"),
                ("high", "numeric"),
                ("low", "numeric"),
                ("close", "numeric"),
                ("sma", "numeric"),
            ],
            &[
                &[
                    Some("2024-01-02"),
                    Some("AAPL"),
                    Some("10"),
                    Some("12"),
                    Some("9"),
                    Some("11"),
                    None,
                ],
                &[
                    Some("2024-01-03"),
                    Some("AAPL"),
                    Some("11"),
                    Some("11.5"),
                    Some("9.5"),
                    Some("10"),
                    Some("10.5"),
                ],
                &[
                    Some("2024-01-04"),
                    Some("AAPL"),
                    Some("10"),
                    Some("13"),
                    Some("10"),
                    Some("12.5"),
                    Some("11"),
                ],
                &[
                    Some("2024-01-02"),
                    Some("MSFT"),
                    Some("20"),
                    Some("21"),
                    Some("19"),
                    Some("20.5"),
                    None,
                ],
                &[
                    Some("2024-01-03"),
                    Some("MSFT"),
                    None,
                    None,
                    None,
                    Some("21"),
                    Some("20.75"),
                ],
            ],
        )
    }

    #[test]
    fn deserializes_from_job_file_fields() {
        let spec: ChartSpec = serde_json::from_str(
            r#"{"kind": "candlestick", "x": "day", "close": "last", "title": "Bars"}"#,
        )
        .expect("valid declaration");
        assert_eq!(spec.kind, ChartKind::Candlestick);
        assert_eq!(spec.ohlc_columns(), ["open", "high", "low", "last"]);
        assert!(spec.y.is_empty());
        let unknown = serde_json::from_str::<ChartSpec>(r#"{"kind": "line", "x": "d", "z": 1}"#);
        assert!(unknown.is_err());
        let kind = serde_json::from_str::<ChartSpec>(r#"{"kind": "pie", "x": "d"}"#);
        assert!(kind.is_err());
    }

    #[test]
    fn validate_checks_shape_per_kind() {
        let validate = |spec: &ChartSpec, columns: Option<&[Column]>| {
            spec.validate(columns).map_err(|e| e.to_string())
        };
        assert_eq!(
            validate(&spec(ChartKind::Line, "date", &[]), None),
            Err("chart \" by date\": a line chart needs at least one `y` column".into())
        );
        let mut bar = spec(ChartKind::Bar, "symbol", &["ret"]);
        assert_eq!(validate(&bar, None), Ok(()));
        bar.open = Some("o".into());
        assert!(validate(&bar, None).is_err_and(|m| m.contains("apply to candlestick")));
        let mut candles = spec(ChartKind::Candlestick, "date", &[]);
        assert_eq!(validate(&candles, None), Ok(()));
        candles.series = Some("symbol".into());
        assert!(validate(&candles, None).is_err_and(|m| m.contains("`series`")));
        assert!(spec(ChartKind::Line, " ", &["y"]).validate(None).is_err());
    }

    #[test]
    fn validate_names_a_missing_column() {
        let mut line = spec(ChartKind::Line, "date", &["clse"]);
        line.title = Some("Close".into());
        assert_eq!(
            line.validate(Some(&columns(&["date", "close"])))
                .map_err(|e| e.to_string()),
            Err("chart \"Close\": column \"clse\" is not in the result \
                 (its columns: date, close)"
                .into())
        );
        let candles = spec(ChartKind::Candlestick, "date", &[]);
        let error = candles.validate(Some(&columns(&["date", "open", "high", "low"])));
        assert!(error.is_err_and(|e| e.to_string().contains("\"close\"")));
    }

    #[test]
    fn each_kind_renders_its_marks() {
        let mut line = spec(ChartKind::Line, "date", &["close"]);
        line.series = Some("symbol".into());
        let line_svg = render_chart_svg(&line, &prices()).expect("line chart");
        // Two lines and their two legend entries; axes and ticks are 1 wide.
        let series_strokes = line_svg.matches("stroke-width=\"2\" points=").count();
        assert_eq!(series_strokes, 2 + 2, "{line_svg}");

        let bar_svg = render_chart_svg(&spec(ChartKind::Bar, "symbol", &["close"]), &prices())
            .expect("bar chart");
        // One bar per symbol in the first series colour; the background is a white rect.
        assert_eq!(rects_filled(&bar_svg, "#4E79A7"), 2, "{bar_svg}");
        assert_eq!(bar_svg.matches("<rect").count(), 1 + 2, "{bar_svg}");
        assert!(bar_svg.contains(">\nAAPL\n</text>") && bar_svg.contains(">\nMSFT\n</text>"));

        let mut candles = spec(ChartKind::Candlestick, "date", &["sma"]);
        candles.title = Some("AAPL".into());
        let mut aapl = prices();
        aapl.rows.truncate(3);
        let candle_svg = render_chart_svg(&candles, &aapl).expect("candlestick chart");
        // One body per row: 01-02 and 01-04 close above their open, 01-03 below.
        assert_eq!(rects_filled(&candle_svg, "#26A69A"), 2, "{candle_svg}");
        assert_eq!(rects_filled(&candle_svg, "#EF5350"), 1, "{candle_svg}");
        assert_eq!(candle_svg.matches("<rect").count(), 1 + 3, "{candle_svg}");
        assert!(
            candle_svg.contains(">\n2024-01-03\n</text>"),
            "{candle_svg}"
        );
    }

    #[test]
    fn every_svg_is_one_well_formed_root_of_the_declared_size() {
        let svg = render_chart_svg(&spec(ChartKind::Line, "date", &["close"]), &prices())
            .expect("line chart");
        assert!(
            svg.starts_with("<svg width=\"800\" height=\"360\""),
            "{svg}"
        );
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn rendering_is_deterministic() {
        let mut line = spec(ChartKind::Line, "date", &["close", "sma"]);
        line.series = Some("symbol".into());
        let first = render_chart_svg(&line, &prices()).expect("line chart");
        let second = render_chart_svg(&line, &prices()).expect("line chart");
        assert_eq!(first, second);
    }

    #[test]
    fn an_empty_result_draws_no_data() {
        let empty = Table::default();
        for kind in [ChartKind::Line, ChartKind::Bar, ChartKind::Candlestick] {
            let svg = render_chart_svg(&spec(kind, "date", &["close"]), &empty)
                .expect("an empty result is not an error");
            assert!(svg.contains(">\nno data\n</text>"), "{svg}");
        }
        let all_null = Table::from_text(
            &[("date", "date"), ("close", "numeric")],
            &[&[Some("2024-01-02"), None]],
        );
        let svg = render_chart_svg(&spec(ChartKind::Line, "date", &["close"]), &all_null)
            .expect("NULLs only is not an error");
        assert!(svg.contains(">\nno data\n</text>"), "{svg}");
    }

    #[test]
    fn errors_name_chart_and_column() {
        let line = spec(ChartKind::Line, "date", &["volume"]);
        let error = render_chart_svg(&line, &prices()).expect_err("no volume column");
        assert!(
            matches!(error, ReportError::InvalidChart { .. }),
            "{error:?}"
        );
        assert!(error
            .to_string()
            .starts_with("chart \"volume by date\": column \"volume\""));

        let by_symbol = spec(ChartKind::Line, "symbol", &["close"]);
        let error = render_chart_svg(&by_symbol, &prices()).expect_err("symbols are no dates");
        assert_eq!(
            error.to_string(),
            "chart \"close by symbol\": column \"symbol\" row 1 holds \"AAPL\", which is not \
             a date or a number"
        );
    }

    #[test]
    fn too_many_series_are_capped_with_a_note() {
        let rows: Vec<Vec<Option<String>>> = (0..15)
            .flat_map(|series| {
                (1..=3).map(move |day| {
                    vec![
                        Some(format!("2024-01-0{day}")),
                        Some(format!("S{series:02}")),
                        Some(format!("{}", series * 10 + day)),
                    ]
                })
            })
            .collect();
        let many = Table {
            columns: columns(&["date", "symbol", "close"]),
            rows,
        };
        let mut line = spec(ChartKind::Line, "date", &["close"]);
        line.series = Some("symbol".into());
        let svg = render_chart_svg(&line, &many).expect("line chart");
        assert!(svg.contains("showing 12 of 15 lines"), "{svg}");
        assert!(svg.contains(">\nS11\n</text>") && !svg.contains(">\nS12\n</text>"));
    }
}
