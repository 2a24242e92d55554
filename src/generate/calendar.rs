//! A compact NYSE trading calendar, so synthetic dates look like real ones.
//!
//! The Kaggle files contain one row per NYSE session: weekdays, minus the
//! exchange's full-day holidays. This module reproduces the standing holiday
//! rules (New Year's Day, Martin Luther King Jr. Day from 1998, Presidents'
//! Day, Good Friday, Memorial Day, Independence Day, Labor Day, Thanksgiving,
//! Christmas) with the NYSE weekend-observance conventions. One-off closures
//! (national days of mourning, 9/11, hurricane Sandy) are deliberately not
//! modelled: a rule-based calendar is enough for realistic-looking data.

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

/// First year the NYSE closed for Martin Luther King Jr. Day.
const FIRST_MLK_CLOSURE_YEAR: i32 = 1998;

/// The trading sessions of a history window, with their CSV date text
/// pre-rendered once so that writing a row never formats a date.
#[derive(Debug, Clone)]
pub struct TradingDays {
    dates: Vec<NaiveDate>,
    labels: Vec<String>,
}

impl TradingDays {
    /// Sessions in the window of `years` calendar years that ends at `last`
    /// (inclusive) and starts just after the same date `years` years earlier.
    ///
    /// Returns `None` when the window falls outside chrono's date range or
    /// contains no session.
    pub fn in_window(last: NaiveDate, years: u32) -> Option<Self> {
        let exclusive_start = last.checked_sub_months(Months::new(years.checked_mul(12)?))?;
        let dates: Vec<NaiveDate> = exclusive_start
            .iter_days()
            .skip(1)
            .take_while(|date| *date <= last)
            .filter(|date| is_trading_day(*date))
            .collect();
        if dates.is_empty() {
            return None;
        }
        let labels = dates
            .iter()
            .map(|date| date.format("%Y-%m-%d").to_string())
            .collect();
        Some(TradingDays { dates, labels })
    }

    /// Number of sessions in the window.
    pub fn len(&self) -> usize {
        self.dates.len()
    }

    /// Session `index` (0 = first of the window).
    pub fn date(&self, index: usize) -> NaiveDate {
        self.dates[index]
    }

    /// Session `index` rendered as `YYYY-MM-DD`.
    pub fn label(&self, index: usize) -> &str {
        &self.labels[index]
    }
}

/// Whether the NYSE holds a regular session on `date`.
pub fn is_trading_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_exchange_holiday(date)
}

/// Whether `date` is a weekday on which the exchange is closed for a holiday.
fn is_exchange_holiday(date: NaiveDate) -> bool {
    let year = date.year();
    let holidays = [
        new_years_day_observed(year),
        nth_weekday(year, 1, Weekday::Mon, 3).filter(|_| year >= FIRST_MLK_CLOSURE_YEAR),
        nth_weekday(year, 2, Weekday::Mon, 3),
        easter_sunday(year).and_then(|easter| easter.checked_sub_days(Days::new(2))),
        last_weekday(year, 5, Weekday::Mon),
        fixed_holiday_observed(year, 7, 4),
        nth_weekday(year, 9, Weekday::Mon, 1),
        nth_weekday(year, 11, Weekday::Thu, 4),
        fixed_holiday_observed(year, 12, 25),
    ];
    holidays.contains(&Some(date))
}

/// January 1st, moved to Monday when it is a Sunday. When it is a Saturday
/// the NYSE does not close on the preceding Friday (it would end the year).
fn new_years_day_observed(year: i32) -> Option<NaiveDate> {
    let day = NaiveDate::from_ymd_opt(year, 1, 1)?;
    match day.weekday() {
        Weekday::Sat => None,
        Weekday::Sun => day.succ_opt(),
        _ => Some(day),
    }
}

/// A fixed-date holiday, observed on Friday when it falls on Saturday and on
/// Monday when it falls on Sunday.
fn fixed_holiday_observed(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    match date.weekday() {
        Weekday::Sat => date.pred_opt(),
        Weekday::Sun => date.succ_opt(),
        _ => Some(date),
    }
}

/// The `n`-th (1-based) `weekday` of a month.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of a month.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

/// Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher).
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("valid test date")
    }

    #[test]
    fn known_closures_are_not_trading_days() {
        for closed in [
            ymd(2019, 1, 1),   // New Year's Day
            ymd(2017, 1, 2),   // New Year's Day observed (Sunday)
            ymd(2019, 1, 21),  // MLK day
            ymd(2019, 2, 18),  // Presidents' Day
            ymd(2019, 4, 19),  // Good Friday
            ymd(2020, 4, 10),  // Good Friday
            ymd(2019, 5, 27),  // Memorial Day
            ymd(2019, 7, 4),   // Independence Day
            ymd(2020, 7, 3),   // Independence Day observed (Saturday)
            ymd(2019, 9, 2),   // Labor Day
            ymd(2019, 11, 28), // Thanksgiving
            ymd(2019, 12, 25), // Christmas
            ymd(2022, 12, 26), // Christmas observed (Sunday)
            ymd(2019, 12, 28), // Saturday
            ymd(2019, 12, 29), // Sunday
        ] {
            assert!(!is_trading_day(closed), "{closed} should be closed");
        }
    }

    #[test]
    fn ordinary_and_edge_days_are_trading_days() {
        for open in [
            ymd(2019, 7, 3),
            ymd(2019, 12, 24),
            ymd(2021, 12, 31), // New Year's Day 2022 is a Saturday: no Friday closure
            ymd(1997, 1, 20),  // MLK day before the NYSE observed it
            ymd(2020, 4, 1),
        ] {
            assert!(is_trading_day(open), "{open} should be open");
        }
    }

    #[test]
    fn easter_dates_match_known_years() {
        assert_eq!(easter_sunday(2019), Some(ymd(2019, 4, 21)));
        assert_eq!(easter_sunday(2000), Some(ymd(2000, 4, 23)));
        assert_eq!(easter_sunday(2038), Some(ymd(2038, 4, 25)));
    }

    #[test]
    fn a_full_year_has_the_nyse_session_count() {
        let year_2019 = TradingDays::in_window(ymd(2019, 12, 31), 1).expect("window");
        assert_eq!(year_2019.len(), 252);
        assert_eq!(year_2019.label(0), "2019-01-02");
        assert_eq!(year_2019.date(year_2019.len() - 1), ymd(2019, 12, 31));
    }
}
