//! Which days the loaded prices cover, per symbol: what a job without `as_of` analyses,
//! and whether a job's explicit `as_of` lies inside the data.
//!
//! The default `as_of` is the latest day that at least a share of the symbols reached
//! (`[report] as_of_share`, default one half), not the latest day of any row: one stray
//! file dated ahead (or one symbol that trades on a holiday) cannot move every report
//! to a day most symbols have no data for.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Date, Nullable};

use crate::error::Result;

/// A job without `as_of` on a database without prices has no day to analyse.
#[derive(Debug, thiserror::Error)]
#[error(
    "no prices loaded yet (daily_prices is empty); load prices first (check the [[ingest]] \
     paths) or pass --var as_of=YYYY-MM-DD"
)]
pub struct NoPrices;

/// The last loaded day of each symbol that has rows, and the first day of any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Per symbol, in no particular order.
    pub last_days: Vec<NaiveDate>,
    /// The earliest day of any symbol: read only by [`Coverage::read`].
    pub first_day: Option<NaiveDate>,
}

#[derive(QueryableByName)]
struct Span {
    #[diesel(sql_type = Nullable<Date>)]
    first: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    last: Option<NaiveDate>,
}

impl Coverage {
    /// Every symbol's last day and the first day of any, from `daily_prices`: a walk
    /// over the distinct symbols of the primary key `(symbol, day)`
    /// ([`crate::db::EVERY_SYMBOL`]) with two probes each, so it costs milliseconds per
    /// thousand symbols however many rows they hold (a `GROUP BY` reads every row).
    ///
    /// The walk and the probes are `min`/`max` aggregates on purpose: TimescaleDB
    /// answers those from a compressed chunk's segments, whereas the same walk written
    /// as `ORDER BY symbol, day LIMIT 1` steps decompressed the chunks at every step
    /// (a re-run's as-of over 13 chunks, 9 compressed, ran for minutes).
    ///
    /// # Errors
    /// The query fails.
    pub fn read(conn: &mut PgConnection) -> Result<Self> {
        let spans: Vec<Span> = diesel::sql_query(format!(
            "SELECT (SELECT min(day) FROM daily_prices d WHERE d.symbol = s.symbol) AS first, \
                    (SELECT max(day) FROM daily_prices d WHERE d.symbol = s.symbol) AS last \
             FROM ({}) s",
            crate::db::EVERY_SYMBOL
        ))
        .load(conn)
        .map_err(crate::db::db_error("finding the days loaded per symbol"))?;
        Ok(Coverage {
            first_day: spans.iter().filter_map(|s| s.first).min(),
            last_days: spans.into_iter().filter_map(|s| s.last).collect(),
        })
    }

    /// Every symbol's last day only, which is all [`Coverage::default_as_of`] needs:
    /// the walk of [`Coverage::read`] with its `max` probe only (a nightly's run waits
    /// for it before its analyses).
    ///
    /// # Errors
    /// The query fails.
    pub fn read_last_days(conn: &mut PgConnection) -> Result<Self> {
        let spans: Vec<Span> = diesel::sql_query(format!(
            "SELECT NULL::date AS first, \
                    (SELECT max(day) FROM daily_prices d WHERE d.symbol = s.symbol) AS last \
             FROM ({}) s",
            crate::db::EVERY_SYMBOL
        ))
        .load(conn)
        .map_err(crate::db::db_error(
            "finding the last day loaded per symbol",
        ))?;
        Ok(Coverage {
            first_day: None,
            last_days: spans.into_iter().filter_map(|s| s.last).collect(),
        })
    }

    /// The first and last day of any symbol; None when nothing is loaded (or the first
    /// day was not read).
    pub fn range(&self) -> Option<(NaiveDate, NaiveDate)> {
        Some((self.first_day?, *self.last_days.iter().max()?))
    }

    /// The latest day that at least `share` (0 < share ≤ 1) of the symbols reached:
    /// with `n` symbols, the `⌈share·n⌉`-th latest of their last days.
    pub fn default_as_of(&self, share: f64) -> Option<NaiveDate> {
        let mut lasts = self.last_days.clone();
        if lasts.is_empty() {
            return None;
        }
        lasts.sort_unstable_by(|a, b| b.cmp(a));
        let needed = (share.clamp(0.0, 1.0) * lasts.len() as f64).ceil() as usize;
        Some(lasts[needed.clamp(1, lasts.len()) - 1])
    }

    /// Why `as_of` looks wrong for this data: outside the loaded range.
    pub fn as_of_warning(&self, as_of: NaiveDate) -> Option<String> {
        let Some((first, last)) = self.range() else {
            return Some(format!(
                "as_of {as_of} is set, but no prices are loaded yet"
            ));
        };
        if as_of < first {
            Some(format!(
                "as_of {as_of} is before the first loaded day ({first}): the reports will be empty"
            ))
        } else if as_of > last {
            Some(format!(
                "as_of {as_of} is after the last loaded day ({last})"
            ))
        } else {
            None
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
    fn one_stray_symbol_does_not_move_the_default_as_of() {
        let spans = [
            (d("2000-01-03"), d("2020-04-01")),
            (d("2010-01-04"), d("2020-04-01")),
            (d("2015-01-02"), d("2020-03-31")),
            (d("1999-01-04"), d("2092-01-01")),
        ];
        let of = |spans: &[(NaiveDate, NaiveDate)]| Coverage {
            first_day: spans.iter().map(|s| s.0).min(),
            last_days: spans.iter().map(|s| s.1).collect(),
        };
        let coverage = of(&spans);
        assert_eq!(coverage.default_as_of(0.5), Some(d("2020-04-01")));
        assert_eq!(coverage.default_as_of(1.0), Some(d("2020-03-31")));
        assert_eq!(coverage.default_as_of(0.01), Some(d("2092-01-01")));
        assert_eq!(coverage.range(), Some((d("1999-01-04"), d("2092-01-01"))));
        let coverage = of(&spans[..3]);
        assert_eq!(coverage.as_of_warning(d("2020-03-31")), None);
        assert_eq!(
            coverage.as_of_warning(d("2021-01-01")).unwrap(),
            "as_of 2021-01-01 is after the last loaded day (2020-04-01)"
        );
        assert_eq!(
            coverage.as_of_warning(d("1990-01-01")).unwrap(),
            "as_of 1990-01-01 is before the first loaded day (2000-01-03): the reports will be empty"
        );
        assert_eq!(Coverage::default().default_as_of(0.5), None);
    }
}
