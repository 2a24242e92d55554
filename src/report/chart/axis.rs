//! Where the ticks go and how they are labelled.
//!
//! Plotters' own ticks are round numbers, which on a date axis (days since 1970) land on
//! arbitrary dates. Date axes therefore get calendar ticks chosen here: times of day on
//! round hours, Mondays, month and year starts. Number axes keep plotters' 1-2-5 steps but
//! get labels with thousands separators and M/B/T suffixes.
//!
//! Plotters' `datetime` feature does not do this (checked against plotters 0.3.7): its
//! `RangedDate` ticks every n weeks counted from the first day of the data (a Wednesday
//! start ticks on Wednesdays), `Monthly` starts quarters at the first whole month instead of
//! January/April/July/October, and `Yearly` ticks on the first month of the data, not on
//! January. So the calendar ticks stay here, on a plain `f64` day axis.

use std::ops::Range;

use chrono::{DateTime, Datelike, Months, NaiveDate};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;

use super::data::XScale;
use super::SECONDS_PER_DAY;
use crate::report::format::format_fixed;

/// Most ticks wanted on a date axis; a date label is about 70 pixels wide.
const MAX_DATE_TICKS: usize = 8;
/// Most ticks wanted on a number axis.
pub(super) const MAX_NUMBER_TICKS: usize = 10;
/// Longest category label before it is shortened with "…".
pub(super) const MAX_CATEGORY_LABEL_CHARS: usize = 16;

const MINUTES_PER_DAY: f64 = 1_440.0;
const AVERAGE_DAYS_PER_MONTH: f64 = 30.44;
/// 1970-01-01 was a Thursday, so day 4 was the first Monday.
const FIRST_MONDAY: f64 = 4.0;

/// The tick positions of the x axis and how to label them.
pub(super) struct XTicks<'plot> {
    positions: Vec<f64>,
    labels: TickLabels<'plot>,
}

enum TickLabels<'plot> {
    /// A chrono format pattern for the moment `position` days after 1970-01-01.
    Dates(&'static str),
    Numbers(NumberFormat),
    /// Category `i` is centred on x = i.
    Categories(&'plot [String]),
}

impl<'plot> XTicks<'plot> {
    /// Ticks for a date or number axis over `range`.
    pub(super) fn for_scale(scale: XScale, range: &Range<f64>) -> Self {
        match scale {
            XScale::Dates { time_of_day } => Self::dates(range, time_of_day),
            XScale::Numbers => Self::numbers(range),
        }
    }

    /// One tick per category, at 0, 1, 2, …
    pub(super) fn categories(categories: &'plot [String]) -> Self {
        Self {
            positions: (0..categories.len()).map(|index| index as f64).collect(),
            labels: TickLabels::Categories(categories),
        }
    }

    fn numbers(range: &Range<f64>) -> Self {
        Self {
            positions: RangedCoordf64::from(range.clone()).key_points(MAX_NUMBER_TICKS),
            labels: TickLabels::Numbers(NumberFormat::for_range(range, MAX_NUMBER_TICKS)),
        }
    }

    /// Calendar ticks: the finest [`DateStep`] that needs no more than [`MAX_DATE_TICKS`];
    /// steps within a day only when the data has times of day.
    fn dates(range: &Range<f64>, time_of_day: bool) -> Self {
        let span = range.end - range.start;
        let step = DateStep::ALL
            .into_iter()
            .filter(|step| time_of_day || !step.is_within_a_day())
            .find(|step| span / step.approximate_days() <= MAX_DATE_TICKS as f64)
            .unwrap_or(DateStep::COARSEST);
        let mut positions = step.ticks(range);
        if positions.is_empty() {
            positions.push(range.start);
        }
        Self {
            positions,
            labels: TickLabels::Dates(step.label_pattern(span)),
        }
    }

    pub(super) fn positions(&self) -> Vec<f64> {
        self.positions.clone()
    }

    /// A plotters axis over `range` with these ticks.
    pub(super) fn axis(&self, range: Range<f64>) -> TickedAxis {
        TickedAxis {
            scale: range.into(),
            ticks: self.positions.clone(),
        }
    }

    /// The label of the tick at `position`.
    pub(super) fn label(&self, position: f64) -> String {
        match &self.labels {
            TickLabels::Dates(pattern) => {
                let seconds = (position * SECONDS_PER_DAY).round() as i64;
                DateTime::from_timestamp(seconds, 0)
                    .map(|moment| moment.format(pattern).to_string())
                    .unwrap_or_default()
            }
            TickLabels::Numbers(format) => format.label(position),
            TickLabels::Categories(categories) => category_label(categories, position),
        }
    }
}

/// A plotters `f64` axis with given ticks (grid lines and labels) instead of computed
/// ones. (Plotters' own `WithKeyPoints` lacks the label formatting the mesh needs.)
#[derive(Clone)]
pub(super) struct TickedAxis {
    scale: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.scale.map(value, limit)
    }

    /// The ticks as bold points; no light (minor) points.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.scale.range()
    }
}

/// A calendar interval between date ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DateStep {
    Minutes(u32),
    Days(u32),
    /// Weeks starting on Monday.
    Weeks(u32),
    /// Months starting on the 1st; multiples of 12 start in January of years divisible
    /// by the number of years.
    Months(u32),
}

impl DateStep {
    /// From finest to coarsest.
    const ALL: [DateStep; 23] = [
        DateStep::Minutes(5),
        DateStep::Minutes(15),
        DateStep::Minutes(30),
        DateStep::Minutes(60),
        DateStep::Minutes(120),
        DateStep::Minutes(180),
        DateStep::Minutes(360),
        DateStep::Minutes(720),
        DateStep::Days(1),
        DateStep::Days(2),
        DateStep::Weeks(1),
        DateStep::Weeks(2),
        DateStep::Months(1),
        DateStep::Months(2),
        DateStep::Months(3),
        DateStep::Months(6),
        DateStep::Months(12),
        DateStep::Months(24),
        DateStep::Months(60),
        DateStep::Months(120),
        DateStep::Months(240),
        DateStep::Months(600),
        DateStep::COARSEST,
    ];

    const COARSEST: DateStep = DateStep::Months(1200);

    fn is_within_a_day(self) -> bool {
        matches!(self, DateStep::Minutes(_))
    }

    fn approximate_days(self) -> f64 {
        match self {
            DateStep::Minutes(minutes) => f64::from(minutes) / MINUTES_PER_DAY,
            DateStep::Days(days) => f64::from(days),
            DateStep::Weeks(weeks) => f64::from(weeks) * 7.0,
            DateStep::Months(months) => f64::from(months) * AVERAGE_DAYS_PER_MONTH,
        }
    }

    fn label_pattern(self, span_days: f64) -> &'static str {
        match self {
            DateStep::Minutes(_) if span_days <= 1.0 => "%H:%M",
            DateStep::Minutes(_) => "%m-%d %H:%M",
            DateStep::Days(_) | DateStep::Weeks(_) => "%Y-%m-%d",
            DateStep::Months(months) if months < 12 => "%b %Y",
            DateStep::Months(_) => "%Y",
        }
    }

    /// The tick positions (days since 1970-01-01) within `range`.
    fn ticks(self, range: &Range<f64>) -> Vec<f64> {
        match self {
            DateStep::Minutes(minutes) => {
                evenly_spaced(range, f64::from(minutes) / MINUTES_PER_DAY, 0.0)
            }
            DateStep::Days(days) => evenly_spaced(range, f64::from(days), 0.0),
            DateStep::Weeks(weeks) => evenly_spaced(range, f64::from(weeks) * 7.0, FIRST_MONDAY),
            DateStep::Months(months) => month_starts(range, months),
        }
    }
}

/// Multiples of `step` (shifted by `offset`) within `range`, ends included despite
/// rounding errors.
fn evenly_spaced(range: &Range<f64>, step: f64, offset: f64) -> Vec<f64> {
    const TOLERANCE: f64 = 1e-9;
    let first = ((range.start - offset) / step - TOLERANCE).ceil() as i64;
    let last = ((range.end - offset) / step + TOLERANCE).floor() as i64;
    (first..=last)
        .map(|multiple| offset + multiple as f64 * step)
        .collect()
}

/// The first days of every `months`-th month within `range`, aligned so that e.g. quarter
/// ticks fall on January, April, July and October.
fn month_starts(range: &Range<f64>, months: u32) -> Vec<f64> {
    let Some(start) = date_at(range.start.floor()) else {
        return Vec::new();
    };
    let months_since_year_zero = start.year() * 12 + start.month0() as i32;
    let step = months as i32;
    let first_month = months_since_year_zero.div_euclid(step) * step;
    let first = NaiveDate::from_ymd_opt(first_month.div_euclid(12), 1, 1).and_then(|january| {
        january.checked_add_months(Months::new(first_month.rem_euclid(12) as u32))
    });
    std::iter::successors(first, |date| date.checked_add_months(Months::new(months)))
        .map(days_since_epoch)
        .skip_while(|days| *days < range.start)
        .take_while(|days| *days <= range.end)
        .collect()
}

fn date_at(days: f64) -> Option<NaiveDate> {
    DateTime::from_timestamp((days * SECONDS_PER_DAY).round() as i64, 0)
        .map(|moment| moment.date_naive())
}

fn days_since_epoch(date: NaiveDate) -> f64 {
    date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() as f64 / SECONDS_PER_DAY
}

/// Fixed decimals, scaled to millions/billions/trillions for big values, chosen so that
/// adjacent ticks differ in their labels.
pub(super) struct NumberFormat {
    divisor: f64,
    suffix: &'static str,
    decimals: usize,
}

impl NumberFormat {
    /// The format for ticks over `range` when there are at most `max_ticks` of them.
    pub(super) fn for_range(range: &Range<f64>, max_ticks: usize) -> Self {
        let magnitude = range.start.abs().max(range.end.abs());
        let (divisor, suffix) = [(1e12, "T"), (1e9, "B"), (1e6, "M")]
            .into_iter()
            .find(|(divisor, _)| magnitude >= *divisor)
            .unwrap_or((1.0, ""));
        // Plotters steps by 1, 2 or 5 times a power of ten, at least span / tick count.
        let smallest_step = (range.end - range.start) / divisor / max_ticks as f64;
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

    pub(super) fn label(&self, value: f64) -> String {
        let scaled = format_fixed(value / self.divisor, self.decimals);
        format!("{scaled}{}", self.suffix)
    }
}

/// The category centred at `position`; empty between categories.
fn category_label(categories: &[String], position: f64) -> String {
    let nearest = position.round();
    if (position - nearest).abs() > 1e-6 || nearest < 0.0 {
        return String::new();
    }
    categories
        .get(nearest as usize)
        .map(|category| shorten(category, MAX_CATEGORY_LABEL_CHARS))
        .unwrap_or_default()
}

/// `text` cut to `max_chars` characters, the last one replaced by "…" if it was cut.
pub(super) fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(year: i32, month: u32, day: u32) -> f64 {
        days_since_epoch(NaiveDate::from_ymd_opt(year, month, day).expect("valid date"))
    }

    fn labels(ticks: &XTicks) -> Vec<String> {
        ticks
            .positions()
            .into_iter()
            .map(|p| ticks.label(p))
            .collect()
    }

    #[test]
    fn half_a_year_of_daily_data_ticks_on_month_starts() {
        let ticks = XTicks::dates(&(day(2024, 1, 2)..day(2024, 6, 28)), false);
        assert_eq!(
            labels(&ticks),
            ["Feb 2024", "Mar 2024", "Apr 2024", "May 2024", "Jun 2024"]
        );
    }

    #[test]
    fn a_quarter_of_daily_data_ticks_on_every_other_monday() {
        let ticks = XTicks::dates(&(day(2024, 1, 2)..day(2024, 3, 31)), false);
        assert_eq!(
            labels(&ticks),
            [
                "2024-01-08",
                "2024-01-22",
                "2024-02-05",
                "2024-02-19",
                "2024-03-04",
                "2024-03-18"
            ]
        );
    }

    #[test]
    fn a_month_of_daily_data_ticks_on_mondays() {
        let ticks = XTicks::dates(&(day(2024, 1, 2)..day(2024, 1, 31)), false);
        assert_eq!(
            labels(&ticks),
            ["2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"]
        );
    }

    #[test]
    fn years_of_data_tick_on_year_starts() {
        let ticks = XTicks::dates(&(day(2015, 6, 1)..day(2024, 6, 1)), false);
        assert_eq!(labels(&ticks), ["2016", "2018", "2020", "2022", "2024"]);
    }

    #[test]
    fn intraday_data_ticks_on_round_hours() {
        let start = day(2024, 3, 4) + 9.5 / 24.0;
        let ticks = XTicks::dates(&(start..start + 6.5 / 24.0), true);
        assert_eq!(
            labels(&ticks),
            ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
        );
        let two_days = XTicks::dates(&(start..start + 1.3), true);
        assert_eq!(labels(&two_days)[0], "03-04 12:00");
    }

    #[test]
    fn dates_without_times_never_tick_between_midnights() {
        let ticks = XTicks::dates(&(day(2024, 1, 1)..day(2024, 1, 3)), false);
        assert_eq!(labels(&ticks), ["2024-01-01", "2024-01-02", "2024-01-03"]);
    }

    #[test]
    fn number_labels_get_enough_decimals_and_scale_suffixes() {
        let label =
            |range: Range<f64>, value: f64| NumberFormat::for_range(&range, 10).label(value);
        assert_eq!(label(0.0..1.0, 0.2), "0.2");
        assert_eq!(label(0.0..1.0, -0.0), "0.0");
        assert_eq!(label(0.01..0.05, 0.015), "0.015");
        assert_eq!(label(0.0..2_500.0, 1500.0), "1,500");
        assert_eq!(label(0.0..2_500_000.0, 1_500_000.0), "1.5M");
        assert_eq!(label(1e9..3e9, 2e9), "2.0B");
    }

    #[test]
    fn category_ticks_sit_on_category_centres() {
        let categories = ["AAPL".to_owned(), "A very long category name".to_owned()];
        let ticks = XTicks::categories(&categories);
        assert_eq!(ticks.positions(), [0.0, 1.0]);
        assert_eq!(labels(&ticks), ["AAPL", "A very long cat…"]);
        assert_eq!(ticks.label(0.5), "");
        assert_eq!(ticks.label(2.0), "");
        assert_eq!(ticks.label(-1.0), "");
    }
}
