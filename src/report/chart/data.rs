//! Reads what a chart plots out of a result's text cells: x positions (dates or numbers),
//! y values, series, bar categories and candles.
//!
//! Dates become fractional days since 1970-01-01 so that every axis is an `f64` axis (the
//! plotters build has no chrono support) and tick labels are turned back into dates when
//! drawn. NULL, `NaN` and infinite cells are skipped; any other cell that cannot be read
//! is an error naming the column and row, because it means the chart points at the wrong
//! column.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveTime};

use super::{ChartKind, ColumnIndices, MAX_BAR_CATEGORIES, MAX_SERIES, SECONDS_PER_DAY};
use crate::report::ReportError;
use crate::table::Table;

/// How a series or category is labelled when its series column is NULL.
const NULL_LABEL: &str = "NULL";

/// A cell that cannot be read as what the chart needs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct UnreadableCell {
    column: String,
    /// 0-based row index.
    row: usize,
    value: String,
    expected: &'static str,
}

impl UnreadableCell {
    pub(super) fn for_chart(self, chart: &str) -> ReportError {
        ReportError::UnplottableValue {
            chart: chart.to_owned(),
            column: self.column,
            row: self.row + 1,
            value: self.value,
            expected: self.expected,
        }
    }
}

/// How x values were read, which decides how tick labels are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum XScale {
    /// Days since 1970-01-01, with the time of day as the fraction.
    Dates {
        /// Whether any value has a time of day other than midnight.
        time_of_day: bool,
    },
    Numbers,
}

/// One line of a line chart, points in x order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct LinePlot {
    pub scale: XScale,
    /// The lines drawn: at most [`MAX_SERIES`], none without points.
    pub lines: Vec<Line>,
    /// Lines with points that were left out for the cap.
    pub hidden_lines: usize,
}

/// Bars sharing a colour: one y column for one series value, one value per category.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BarGroup {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct BarPlot {
    /// Distinct x values in order of first appearance, at most [`MAX_BAR_CATEGORIES`].
    pub categories: Vec<String>,
    pub hidden_categories: usize,
    /// At most [`MAX_SERIES`] groups.
    pub groups: Vec<BarGroup>,
    pub hidden_groups: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Candle {
    pub x: f64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct CandlePlot {
    pub scale: XScale,
    /// Rows with all four prices, in x order.
    pub candles: Vec<Candle>,
    /// The y columns, drawn as lines over the candles.
    pub overlays: Vec<Line>,
}

/// What a chart plots, by kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Plot {
    Lines(LinePlot),
    Bars(BarPlot),
    Candles(CandlePlot),
}

/// Reads what a chart of `kind` plots from the located `columns` of `table`.
pub(super) fn read(
    kind: ChartKind,
    table: &Table,
    columns: &ColumnIndices,
) -> Result<Plot, UnreadableCell> {
    Ok(match kind {
        ChartKind::Line => Plot::Lines(lines(table, columns)?),
        ChartKind::Bar => Plot::Bars(bars(table, columns)?),
        ChartKind::Candlestick => Plot::Candles(candles(table, columns)?),
    })
}

impl LinePlot {
    pub(super) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

impl BarPlot {
    pub(super) fn is_empty(&self) -> bool {
        self.groups
            .iter()
            .all(|group| group.values.iter().all(Option::is_none))
    }
}

impl CandlePlot {
    pub(super) fn is_empty(&self) -> bool {
        self.candles.is_empty() && self.overlays.is_empty()
    }
}

/// Reads a line chart: one line per series value and y column.
fn lines(table: &Table, columns: &ColumnIndices) -> Result<LinePlot, UnreadableCell> {
    let (scale, x) = read_x_positions(table, columns.x)?;
    let y_columns = read_y_columns(table, &columns.y)?;
    let groups = group_rows(table, columns.series);
    let mut lines = Vec::new();
    for group in &groups {
        for y in &y_columns {
            lines.push(Line {
                label: series_label(group.label.as_deref(), y.name, y_columns.len()),
                points: sorted_points(&group.rows, &x, &y.values),
            });
        }
    }
    lines.retain(|line| !line.points.is_empty());
    let hidden_lines = lines.len().saturating_sub(MAX_SERIES);
    lines.truncate(MAX_SERIES);
    Ok(LinePlot {
        scale,
        lines,
        hidden_lines,
    })
}

/// Reads a bar chart: categories from x as printed, one bar group per series value and y
/// column. When a category occurs more than once in a group, its first value counts.
fn bars(table: &Table, columns: &ColumnIndices) -> Result<BarPlot, UnreadableCell> {
    let (categories, category_of_row) = distinct_values(table, columns.x);
    let y_columns = read_y_columns(table, &columns.y)?;
    let mut groups = Vec::new();
    for group in &group_rows(table, columns.series) {
        for y in &y_columns {
            let mut values = vec![None; categories.len()];
            for &row in &group.rows {
                let slot = &mut values[category_of_row[row]];
                *slot = slot.or(y.values[row]);
            }
            groups.push(BarGroup {
                label: series_label(group.label.as_deref(), y.name, y_columns.len()),
                values,
            });
        }
    }
    Ok(cap_bars(categories, groups))
}

/// Reads a candlestick chart: rows with all of open, high, low and close become candles;
/// y columns become overlay lines.
fn candles(table: &Table, columns: &ColumnIndices) -> Result<CandlePlot, UnreadableCell> {
    let (scale, x) = read_x_positions(table, columns.x)?;
    let Some([open, high, low, close]) = columns.ohlc else {
        return Ok(CandlePlot {
            scale,
            candles: Vec::new(),
            overlays: Vec::new(),
        });
    };
    let [open, high, low, close] = [
        read_numbers(table, open)?,
        read_numbers(table, high)?,
        read_numbers(table, low)?,
        read_numbers(table, close)?,
    ];
    let mut candles: Vec<Candle> = (0..table.rows.len())
        .filter_map(|row| {
            Some(Candle {
                x: x[row]?,
                open: open[row]?,
                high: high[row]?,
                low: low[row]?,
                close: close[row]?,
            })
        })
        .collect();
    candles.sort_by(|a, b| a.x.total_cmp(&b.x));
    let all_rows: Vec<usize> = (0..table.rows.len()).collect();
    let overlays = read_y_columns(table, &columns.y)?
        .into_iter()
        .map(|y| Line {
            label: y.name.to_owned(),
            points: sorted_points(&all_rows, &x, &y.values),
        })
        .filter(|line| !line.points.is_empty())
        .collect();
    Ok(CandlePlot {
        scale,
        candles,
        overlays,
    })
}

/// Keeps the first [`MAX_BAR_CATEGORIES`] categories and then the first [`MAX_SERIES`]
/// groups with a bar among them.
fn cap_bars(mut categories: Vec<String>, mut groups: Vec<BarGroup>) -> BarPlot {
    let hidden_categories = categories.len().saturating_sub(MAX_BAR_CATEGORIES);
    categories.truncate(MAX_BAR_CATEGORIES);
    for group in &mut groups {
        group.values.truncate(MAX_BAR_CATEGORIES);
    }
    groups.retain(|group| group.values.iter().any(Option::is_some));
    let hidden_groups = groups.len().saturating_sub(MAX_SERIES);
    groups.truncate(MAX_SERIES);
    BarPlot {
        categories,
        hidden_categories,
        groups,
        hidden_groups,
    }
}

/// `"AAPL"` for one y column, `"AAPL close"` for several, `"close"` without a series.
fn series_label(series: Option<&str>, y_name: &str, y_count: usize) -> String {
    match series {
        Some(series) if y_count > 1 => format!("{series} {y_name}"),
        Some(series) => series.to_owned(),
        None => y_name.to_owned(),
    }
}

/// The rows that share one value of the series column.
struct RowGroup {
    /// The series value as printed (NULL as [`NULL_LABEL`]); `None` without a series column.
    label: Option<String>,
    rows: Vec<usize>,
}

/// Rows grouped by series value in order of first appearance, or one group of all rows.
fn group_rows(table: &Table, series: Option<usize>) -> Vec<RowGroup> {
    let Some(series) = series else {
        return vec![RowGroup {
            label: None,
            rows: (0..table.rows.len()).collect(),
        }];
    };
    let (labels, group_of_row) = distinct_values(table, series);
    let mut groups: Vec<RowGroup> = labels
        .into_iter()
        .map(|label| RowGroup {
            label: Some(label),
            rows: Vec::new(),
        })
        .collect();
    for (row, group) in group_of_row.into_iter().enumerate() {
        groups[group].rows.push(row);
    }
    groups
}

/// The distinct texts of a column in order of first appearance (NULL as [`NULL_LABEL`]),
/// and for each row the index of its text among them.
fn distinct_values(table: &Table, column: usize) -> (Vec<String>, Vec<usize>) {
    let mut values: Vec<String> = Vec::new();
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    let value_indices = (0..table.rows.len())
        .map(|row| {
            let text = cell(table, row, column).unwrap_or(NULL_LABEL);
            *index_of.entry(text).or_insert_with(|| {
                values.push(text.to_owned());
                values.len() - 1
            })
        })
        .collect();
    (values, value_indices)
}

/// The (x, y) points of `rows` where both are present, sorted by x (stable, so rows with
/// equal x keep their order).
fn sorted_points(rows: &[usize], x: &[Option<f64>], y: &[Option<f64>]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|&row| Some((x[row]?, y[row]?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn cell(table: &Table, row: usize, column: usize) -> Option<&str> {
    table.rows.get(row)?.get(column)?.as_deref()
}

fn column_name(table: &Table, column: usize) -> String {
    table
        .columns
        .get(column)
        .map(|column| column.name.clone())
        .unwrap_or_default()
}

/// A value column read as numbers, one per row.
struct YColumn<'t> {
    name: &'t str,
    values: Vec<Option<f64>>,
}

fn read_y_columns<'t>(
    table: &'t Table,
    columns: &[usize],
) -> Result<Vec<YColumn<'t>>, UnreadableCell> {
    columns
        .iter()
        .map(|&column| {
            Ok(YColumn {
                name: table.columns.get(column).map_or("", |c| c.name.as_str()),
                values: read_numbers(table, column)?,
            })
        })
        .collect()
}

/// Reads x positions: dates when every non-NULL cell is a date or timestamp, otherwise
/// numbers.
fn read_x_positions(
    table: &Table,
    column: usize,
) -> Result<(XScale, Vec<Option<f64>>), UnreadableCell> {
    let cells = || (0..table.rows.len()).map(|row| cell(table, row, column));
    let all_dates = cells().flatten().all(|text| parse_date(text).is_some());
    if all_dates {
        let days: Vec<Option<f64>> = cells().map(|text| text.and_then(parse_date)).collect();
        let time_of_day = days.iter().flatten().any(|day| day.fract() != 0.0);
        return Ok((XScale::Dates { time_of_day }, days));
    }
    read_values(table, column, "a date or a number").map(|values| (XScale::Numbers, values))
}

/// Reads a column of numbers; NULL, `NaN` and infinities become `None`.
fn read_numbers(table: &Table, column: usize) -> Result<Vec<Option<f64>>, UnreadableCell> {
    read_values(table, column, "a number")
}

fn read_values(
    table: &Table,
    column: usize,
    expected: &'static str,
) -> Result<Vec<Option<f64>>, UnreadableCell> {
    (0..table.rows.len())
        .map(|row| match cell(table, row, column) {
            None => Ok(None),
            Some(text) => match text.trim().parse::<f64>() {
                Ok(value) => Ok(Some(value).filter(|value| value.is_finite())),
                Err(_) => Err(UnreadableCell {
                    column: column_name(table, column),
                    row,
                    value: text.to_owned(),
                    expected,
                }),
            },
        })
        .collect()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date or of a timestamp starting with one
/// (`2024-01-02 09:30:00+00`, `2024-01-02T09:30:00`); the time of day becomes the
/// fraction, fractional seconds and time zone are ignored (the chart shows the wall-clock
/// time PostgreSQL printed).
fn parse_date(text: &str) -> Option<f64> {
    let text = text.trim();
    let date = NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    let time = match text.get(10..)? {
        "" => NaiveTime::MIN,
        rest if rest.starts_with([' ', 'T']) => {
            NaiveTime::parse_from_str(rest.get(1..9)?, "%H:%M:%S").ok()?
        }
        _ => return None,
    };
    let seconds = date.and_time(time).and_utc().timestamp();
    Some(seconds as f64 / SECONDS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indices(x: usize, y: &[usize], series: Option<usize>) -> ColumnIndices {
        ColumnIndices {
            x,
            y: y.to_vec(),
            series,
            ohlc: None,
        }
    }

    #[test]
    fn dates_and_timestamps_become_days() {
        assert_eq!(parse_date("1970-01-02"), Some(1.0));
        assert_eq!(parse_date("1970-01-01 12:00:00+00"), Some(0.5));
        assert_eq!(parse_date("1970-01-01T06:00:00.123456-05"), Some(0.25));
        assert_eq!(parse_date("2024-01-02 BC"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("infinity"), None);
        assert_eq!(parse_date("42"), None);
    }

    #[test]
    fn lines_group_by_series_sort_by_x_and_skip_nulls() {
        let rows = Table::from_text(
            &[("d", "text"), ("s", "text"), ("v", "text")],
            &[
                &[Some("1970-01-03"), Some("B"), Some("3")],
                &[Some("1970-01-02"), Some("A"), Some("2")],
                &[Some("1970-01-01"), Some("B"), Some("1")],
                &[Some("1970-01-04"), None, Some("NaN")],
                &[None, Some("A"), Some("5")],
            ],
        );
        let plot = lines(&rows, &indices(0, &[2], Some(1))).expect("readable");
        assert_eq!(plot.scale, XScale::Dates { time_of_day: false });
        assert_eq!(
            plot.lines,
            [
                Line {
                    label: "B".into(),
                    points: vec![(0.0, 1.0), (2.0, 3.0)]
                },
                Line {
                    label: "A".into(),
                    points: vec![(1.0, 2.0)]
                },
            ]
        );
        assert_eq!(plot.hidden_lines, 0);
    }

    #[test]
    fn numbers_are_an_x_axis_too() {
        let rows = Table::from_text(
            &[("n", "text"), ("v", "text")],
            &[&[Some("2"), Some("1")], &[Some("1e3"), Some("2")]],
        );
        let plot = lines(&rows, &indices(0, &[1], None)).expect("readable");
        assert_eq!(plot.scale, XScale::Numbers);
        assert_eq!(plot.lines[0].label, "v");
        assert_eq!(plot.lines[0].points, [(2.0, 1.0), (1000.0, 2.0)]);
    }

    #[test]
    fn unreadable_cells_are_reported_with_their_row() {
        let rows = Table::from_text(
            &[("d", "text"), ("v", "text")],
            &[
                &[Some("2024-01-02"), Some("1")],
                &[Some("2024-01-03"), Some("n/a")],
            ],
        );
        let error = lines(&rows, &indices(0, &[1], None)).expect_err("n/a is not a number");
        assert_eq!(
            error,
            UnreadableCell {
                column: "v".into(),
                row: 1,
                value: "n/a".into(),
                expected: "a number"
            }
        );
    }

    #[test]
    fn bars_take_categories_in_order_and_group_by_series_and_y() {
        let rows = Table::from_text(
            &[
                ("sym", "text"),
                ("year", "text"),
                ("ret", "text"),
                ("vol", "text"),
            ],
            &[
                &[Some("MSFT"), Some("2023"), Some("0.5"), Some("0.2")],
                &[Some("AAPL"), Some("2023"), Some("0.4"), None],
                &[Some("AAPL"), Some("2024"), Some("0.1"), Some("0.3")],
            ],
        );
        let plot = bars(&rows, &indices(0, &[2, 3], Some(1))).expect("readable");
        assert_eq!(plot.categories, ["MSFT", "AAPL"]);
        let labels: Vec<&str> = plot.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["2023 ret", "2023 vol", "2024 ret", "2024 vol"]);
        assert_eq!(plot.groups[0].values, [Some(0.5), Some(0.4)]);
        assert_eq!(plot.groups[1].values, [Some(0.2), None]);
        assert_eq!(plot.groups[3].values, [None, Some(0.3)]);
    }

    #[test]
    fn candles_need_all_four_prices() {
        let rows = Table::from_text(
            &[
                ("d", "text"),
                ("o", "text"),
                ("h", "text"),
                ("l", "text"),
                ("c", "text"),
            ],
            &[
                &[
                    Some("1970-01-02"),
                    Some("1"),
                    Some("3"),
                    Some("0.5"),
                    Some("2"),
                ],
                &[Some("1970-01-01"), Some("1"), None, Some("0.5"), Some("2")],
            ],
        );
        let columns = ColumnIndices {
            ohlc: Some([1, 2, 3, 4]),
            ..indices(0, &[], None)
        };
        let plot = candles(&rows, &columns).expect("readable");
        assert_eq!(
            plot.candles,
            [Candle {
                x: 1.0,
                open: 1.0,
                high: 3.0,
                low: 0.5,
                close: 2.0
            }]
        );
    }
}
