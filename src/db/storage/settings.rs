//! What a job's `[storage]` section asks for, as checked values: the prices
//! hypertable's chunk interval, compression and its policy, retention, and which
//! OHLCV aggregates to keep. Parsing lives here (not in `job/`) so the storage code
//! and the job planner share one definition of a valid interval.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{Datelike, Days, Months, NaiveDate};

/// Default chunk interval in days. Daily bars for ~8,000 symbols are ~2 M rows
/// (~250 MB) a year: one-year chunks keep the chunk count near 60 for the Kaggle
/// history (1962–2020), loaded 1.3× faster and compressed 2.2× better than one-month
/// chunks in shared/BASELINES.md (5.3× vs 2.4×), and a whole chunk of the index fits in
/// memory while it is being filled. Queries filter by symbol far more than by time, so
/// small chunks would buy little exclusion and cost planning time.
pub const DEFAULT_CHUNK_DAYS: u32 = 365;

/// A calendar interval as PostgreSQL reads it (`'2 years'`), restricted to whole days,
/// weeks, months and years so it means the same in Rust and in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgInterval {
    pub amount: u32,
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Days,
    Weeks,
    Months,
    Years,
}

/// A text that is not an interval [`PgInterval::parse`] accepts; says what is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an interval like `30 days`, `4 weeks`, `6 months` or `2 years`")]
pub struct NotAnInterval {
    pub text: String,
}

impl PgInterval {
    /// `"90 days"`, `"1 week"`, `"6 months"`, `"2 years"`.
    ///
    /// # Errors
    /// [`NotAnInterval`], saying what is accepted.
    pub fn parse(text: &str) -> Result<PgInterval, NotAnInterval> {
        Self::read(text, false).ok_or_else(|| NotAnInterval {
            text: text.to_owned(),
        })
    }

    /// A time-bucket width for the analysis templates: what [`PgInterval::parse`]
    /// accepts, and quarters, read as three months (`"1 quarter"` is `3 months`).
    /// `None` when it is neither; the caller says what it expected.
    pub fn parse_bucket_width(text: &str) -> Option<PgInterval> {
        Self::read(text, true)
    }

    /// `<amount> <unit>[s]`, any case, the amount 1..=100000 (a bound that keeps every
    /// conversion to days or months within `u32`).
    fn read(text: &str, quarters: bool) -> Option<PgInterval> {
        const MAX_AMOUNT: u32 = 100_000;
        let mut parts = text.split_whitespace();
        let amount: u32 = parts
            .next()?
            .parse()
            .ok()
            .filter(|amount| (1..=MAX_AMOUNT).contains(amount))?;
        let unit = parts.next()?.to_ascii_lowercase();
        if parts.next().is_some() {
            return None;
        }
        let (amount, unit) = match unit.trim_end_matches('s') {
            "day" => (amount, Unit::Days),
            "week" => (amount, Unit::Weeks),
            "month" => (amount, Unit::Months),
            "quarter" if quarters => (amount * 3, Unit::Months),
            "year" => (amount, Unit::Years),
            _ => return None,
        };
        Some(PgInterval { amount, unit })
    }

    /// Whole days, with a year as 365 days and a month as 30 (for chunk sizes, where
    /// TimescaleDB itself stores a fixed length).
    pub fn approx_days(self) -> u32 {
        self.amount
            * match self.unit {
                Unit::Days => 1,
                Unit::Weeks => 7,
                Unit::Months => 30,
                Unit::Years => 365,
            }
    }

    /// The first day that is *not* older than this interval before `today`.
    pub fn cutoff(self, today: NaiveDate) -> NaiveDate {
        let n = u64::from(self.amount);
        let back = match self.unit {
            Unit::Days => today.checked_sub_days(Days::new(n)),
            Unit::Weeks => today.checked_sub_days(Days::new(n * 7)),
            Unit::Months => today.checked_sub_months(Months::new(self.amount)),
            Unit::Years => today.checked_sub_months(Months::new(self.amount.saturating_mul(12))),
        };
        back.unwrap_or(NaiveDate::MIN)
    }
}

impl fmt::Display for PgInterval {
    /// PostgreSQL interval input, e.g. `2 years`; always a safe literal body (digits and
    /// a fixed word).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Days => "day",
            Unit::Weeks => "week",
            Unit::Months => "month",
            Unit::Years => "year",
        };
        write!(
            f,
            "{} {unit}{}",
            self.amount,
            if self.amount == 1 { "" } else { "s" }
        )
    }
}

/// The OHLCV aggregates runner can keep: a TimescaleDB continuous aggregate, or a table
/// runner refreshes on plain PostgreSQL, with the same name, columns and rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aggregate {
    Weekly,
    Monthly,
}

impl Aggregate {
    pub const ALL: [Aggregate; 2] = [Aggregate::Weekly, Aggregate::Monthly];

    /// The name used in job files and in the `ohlcv()` template helper.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Weekly => "weekly",
            Aggregate::Monthly => "monthly",
        }
    }

    /// The relation analyses read.
    pub fn relation(self) -> &'static str {
        match self {
            Aggregate::Weekly => "prices_weekly",
            Aggregate::Monthly => "prices_monthly",
        }
    }

    pub fn from_name(name: &str) -> Option<Aggregate> {
        Aggregate::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The first day of the bucket holding `day`: weeks start on Monday, counted from
    /// 2000-01-03 like `time_bucket`'s default origin; months on the 1st.
    pub fn bucket_start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Aggregate::Weekly => {
                let offset = day.weekday().num_days_from_monday();
                day - Days::new(u64::from(offset))
            }
            Aggregate::Monthly => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first day of the bucket after the one starting at `start`.
    pub fn next_bucket(self, start: NaiveDate) -> NaiveDate {
        match self {
            Aggregate::Weekly => start + Days::new(7),
            Aggregate::Monthly => start
                .checked_add_months(Months::new(1))
                .unwrap_or(NaiveDate::MAX),
        }
    }

    /// The bucket-aligned half-open range `[start, end)` covering `first..=last`.
    pub fn window(self, first: NaiveDate, last: NaiveDate) -> (NaiveDate, NaiveDate) {
        (
            self.bucket_start(first),
            self.next_bucket(self.bucket_start(last)),
        )
    }
}

/// Checked `[storage]` settings; [`Default`] is what a job without the section gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    /// Chunk interval of `daily_prices` in days (TimescaleDB only).
    pub chunk_days: u32,
    /// Compress chunks older than this (TimescaleDB only); `None` = no compression.
    pub compress_after: Option<PgInterval>,
    /// Drop chunks older than this (TimescaleDB only); `None` = keep everything.
    pub retention: Option<PgInterval>,
    /// The OHLCV aggregates to keep.
    pub aggregates: BTreeSet<Aggregate>,
    /// Run `maintain` (VACUUM ANALYZE, compression) right after each ingest.
    pub maintain_after_ingest: bool,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            chunk_days: DEFAULT_CHUNK_DAYS,
            // Older data is read in long scans and rarely changed: compress it. A year
            // keeps the current chunk row-oriented for the daily appends.
            compress_after: Some(PgInterval {
                amount: 1,
                unit: Unit::Years,
            }),
            retention: None,
            aggregates: Aggregate::ALL.into_iter().collect(),
            maintain_after_ingest: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_widths_also_take_quarters() {
        let width = |text| PgInterval::parse_bucket_width(text).map(|w| w.to_string());
        assert_eq!(width("1 quarter").as_deref(), Some("3 months"));
        assert_eq!(width("2 Quarters").as_deref(), Some("6 months"));
        assert_eq!(width("2 WEEKS").as_deref(), Some("2 weeks"));
        assert_eq!(width("1 year").as_deref(), Some("1 year"));
        assert_eq!(width("100001 days"), None);
        assert_eq!(width("4294967295 years"), None);
        assert_eq!(width("1 fortnight"), None);
        assert_eq!(
            PgInterval::parse("1 quarter").map_err(|e| e.to_string()),
            Err(
                "`1 quarter` is not an interval like `30 days`, `4 weeks`, `6 months` or `2 years`"
                    .to_owned()
            )
        );
    }

    #[test]
    fn intervals_parse_and_print_as_postgres_reads_them() {
        assert_eq!(PgInterval::parse("2 years").unwrap().to_string(), "2 years");
        assert_eq!(PgInterval::parse("1 Month").unwrap().to_string(), "1 month");
        assert_eq!(PgInterval::parse("30 days").unwrap().approx_days(), 30);
        assert_eq!(PgInterval::parse("1 year").unwrap().approx_days(), 365);
        for bad in [
            "",
            "2",
            "two years",
            "0 days",
            "1 fortnight",
            "1 day; DROP TABLE x",
            "-1 days",
        ] {
            assert!(PgInterval::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cutoffs_count_calendar_units() {
        assert_eq!(
            PgInterval::parse("1 year").unwrap().cutoff(d("2020-03-31")),
            d("2019-03-31")
        );
        assert_eq!(
            PgInterval::parse("1 month")
                .unwrap()
                .cutoff(d("2020-03-31")),
            d("2020-02-29")
        );
        assert_eq!(
            PgInterval::parse("2 weeks")
                .unwrap()
                .cutoff(d("2020-03-31")),
            d("2020-03-17")
        );
    }

    #[test]
    fn buckets_match_time_bucket() {
        // 2000-01-03 (time_bucket's origin) is a Monday, so ISO weeks line up with it.
        assert_eq!(
            Aggregate::Weekly.bucket_start(d("2000-01-03")),
            d("2000-01-03")
        );
        assert_eq!(
            Aggregate::Weekly.bucket_start(d("2020-04-01")),
            d("2020-03-30")
        );
        assert_eq!(
            Aggregate::Weekly.bucket_start(d("2020-03-29")),
            d("2020-03-23")
        );
        assert_eq!(
            Aggregate::Weekly.window(d("2019-12-31"), d("2020-01-02")),
            (d("2019-12-30"), d("2020-01-06"))
        );
        assert_eq!(
            Aggregate::Monthly.window(d("2019-12-31"), d("2020-02-29")),
            (d("2019-12-01"), d("2020-03-01"))
        );
    }
}
