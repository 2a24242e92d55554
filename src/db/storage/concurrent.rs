//! TimescaleDB: the continuous aggregates' catch-up, split into bucket-aligned windows
//! refreshed on several connections at once.
//!
//! One `refresh_continuous_aggregate` call is one backend, so a first load's refresh
//! of both aggregates over the whole history kept one core busy and the other idle.
//! TimescaleDB (2.21 and later) lets refreshes of non-overlapping windows of one
//! aggregate, and refreshes of different aggregates, run concurrently. So each
//! aggregate's pending range is cut at bucket boundaries into a few windows (a bucket is
//! refreshed only when it lies wholly inside the window, so a cut anywhere else would
//! lose the buckets across it) and the windows of all aggregates go to a small pool of
//! threads, one pooled connection each.
//!
//! The change-log bookkeeping is [`super::aggregates::drain`]'s, done for all of them:
//! watermarks move only after every window of that aggregate was refreshed, so a run
//! killed half-way leaves them where they were and the next run refreshes the same
//! windows again (a refresh is idempotent).

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Date, Nullable};

use super::aggregates::{self, Drained};
use super::settings::Aggregate;
use crate::db::changelog::{self, Pending, Source};
use crate::db::{db_error, pool, Pool};
use crate::error::{Error, Result};

/// Windows each aggregate's range is cut into per connection: a few more than the
/// connections, so one window of denser years does not leave the other connections idle.
const WINDOWS_PER_CONNECTION: usize = 2;

/// One `refresh_continuous_aggregate` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    aggregate: Aggregate,
    /// `None`: open (a rebuild's first window reaches before the stored days, so that
    /// buckets of days since deleted are cleared too; its last window ends past both
    /// the stored days and the materialized buckets, see [`split`]).
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    force: bool,
}

/// Bring every aggregate of `wanted` up to date with the change log, refreshing their
/// windows on `connections` connections of `pool` at once. Returns what each did, in
/// the order of `wanted`.
///
/// # Errors
/// The database's (the first window that failed); the watermarks of the aggregates not
/// yet marked stay, so the next run does the work again.
pub fn drain(
    pool: &Pool,
    wanted: &[Aggregate],
    connections: usize,
) -> Result<Vec<(Aggregate, Drained)>> {
    let mut conn = pool::checkout(pool)?;
    let mut plans: Vec<(Aggregate, Pending)> = Vec::new();
    let mut done = Vec::new();
    for &aggregate in wanted {
        let pending = changelog::pending(
            &mut conn,
            &aggregates::consumer(aggregate),
            Source::DailyPrices,
        )
        .map_err(db_error(format!(
            "reading the change log for {}",
            aggregate.relation()
        )))?;
        if pending.is_empty() {
            done.push((aggregate, Drained::UpToDate));
        } else {
            crate::crashpoint::pause("aggregates.pending");
            crate::crashpoint::reached("aggregates.pending");
            plans.push((aggregate, pending));
        }
    }
    if plans.is_empty() {
        return Ok(done);
    }
    let stored = stored_span(&mut conn)?;
    let pieces = connections.max(1) * WINDOWS_PER_CONNECTION;
    let mut windows = VecDeque::new();
    for (aggregate, pending) in &plans {
        let aggregate = *aggregate;
        if pending.rebuild {
            let materialized = materialized_until(&mut conn, aggregate)?;
            let range = super::widen(stored, materialized.map(|last| (last, last)));
            windows.extend(split(aggregate, range, pieces, true));
        } else if let Some((first, last)) = pending.bounds() {
            let range = Some((first.date_naive(), last.date_naive()));
            windows.extend(split(aggregate, range, pieces, false));
        }
    }
    tracing::debug!(
        windows = windows.len(),
        connections,
        "refreshing continuous aggregates"
    );
    run_windows(pool, windows, connections)?;
    for (aggregate, _) in &plans {
        aggregates::index_symbols(&mut conn, *aggregate)?;
    }
    for (aggregate, pending) in plans {
        crate::crashpoint::reached("aggregates.refreshed");
        changelog::mark_applied(&mut conn, &aggregates::consumer(aggregate), pending.upto)
            .map_err(db_error(format!("refreshing {}", aggregate.relation())))?;
        done.push((aggregate, outcome(&pending)));
    }
    done.sort_by_key(|(a, _)| wanted.iter().position(|w| w == a));
    Ok(done)
}

/// What [`drain`] reports for one aggregate's `pending` work, as the serial drain does.
fn outcome(pending: &Pending) -> Drained {
    if pending.rebuild {
        return Drained::Rebuilt;
    }
    match pending.bounds() {
        Some((first, last)) => Drained::Refreshed {
            symbols: pending.spans.len(),
            first: first.date_naive(),
            last: last.date_naive(),
        },
        None => Drained::WrittenByIngest {
            entries: pending.applied_by_writer,
        },
    }
}

/// The days the chunks of `daily_prices` span, `None` without chunks: a bound on the
/// stored days, which is all a rebuild's cuts need (its outer windows are open). From
/// TimescaleDB's catalogue: `min(day)` / `max(day)` would scan every chunk, as there is
/// no index on `day` alone.
fn stored_span(conn: &mut PgConnection) -> Result<Option<(NaiveDate, NaiveDate)>> {
    #[derive(QueryableByName)]
    struct Range {
        #[diesel(sql_type = Nullable<Date>)]
        first: Option<NaiveDate>,
        #[diesel(sql_type = Nullable<Date>)]
        last: Option<NaiveDate>,
    }
    let range: Range = diesel::sql_query(
        "SELECT (min(range_start) AT TIME ZONE 'UTC')::date AS first, \
                (max(range_end) AT TIME ZONE 'UTC')::date - 1 AS last \
         FROM timescaledb_information.chunks \
         WHERE hypertable_schema = current_schema() AND hypertable_name = 'daily_prices'",
    )
    .get_result(conn)
    .map_err(db_error("reading the chunks of daily_prices"))?;
    Ok(range.first.zip(range.last))
}

/// The last day the chunks of `aggregate`'s materialized buckets reach, `None` without
/// chunks: what a rebuild must clear may lie past the stored days (days deleted since).
/// From the catalogue, as [`stored_span`] is.
fn materialized_until(conn: &mut PgConnection, aggregate: Aggregate) -> Result<Option<NaiveDate>> {
    #[derive(QueryableByName)]
    struct Until {
        #[diesel(sql_type = Nullable<Date>)]
        last: Option<NaiveDate>,
    }
    let until: Until = diesel::sql_query(
        "SELECT (max(c.range_end) AT TIME ZONE 'UTC')::date - 1 AS last \
         FROM timescaledb_information.continuous_aggregates a \
         JOIN timescaledb_information.chunks c \
           ON c.hypertable_schema = a.materialization_hypertable_schema \
          AND c.hypertable_name = a.materialization_hypertable_name \
         WHERE a.view_schema = current_schema() AND a.view_name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(aggregate.relation())
    .get_result(conn)
    .map_err(db_error(format!(
        "reading the chunks of {}",
        aggregate.relation()
    )))?;
    Ok(until.last)
}

/// Cut the buckets covering `range` (inclusive days) into at most `pieces` windows
/// that meet at bucket boundaries. With `open_start` the first window starts unbounded
/// (a rebuild: everything before the stored days is cleared too); with no `range` that
/// is one unbounded window. Otherwise no range, no window.
///
/// The last window always ends at a date when there is a range: a refresh ending at
/// NULL first looks for the hypertable's latest day (`ORDER BY day DESC LIMIT 1`),
/// which without an index on `day` alone reads the chunks, while holding the lock on
/// the hypertable's invalidation threshold that every other window's refresh waits for.
fn split(
    aggregate: Aggregate,
    range: Option<(NaiveDate, NaiveDate)>,
    pieces: usize,
    open_start: bool,
) -> Vec<Window> {
    let window = |start, end| Window {
        aggregate,
        start,
        end,
        force: !open_start,
    };
    let Some((first, last)) = range else {
        return if open_start {
            vec![window(None, None)]
        } else {
            Vec::new()
        };
    };
    let (start, end) = aggregate.window(first, last);
    let span = (end - start).num_days();
    let mut cuts = vec![start];
    for i in 1..pieces {
        let offset = span * i as i64 / pieces as i64;
        let cut = aggregate.bucket_start(start + chrono::Days::new(offset as u64));
        if cut > *cuts.last().unwrap_or(&start) {
            cuts.push(cut);
        }
    }
    cuts.push(end);
    cuts.windows(2)
        .enumerate()
        .map(|(i, pair)| {
            let start = (!(open_start && i == 0)).then_some(pair[0]);
            window(start, Some(pair[1]))
        })
        .collect()
}

/// Refresh every window, `connections` at a time; the first failure stops the others
/// from starting new windows and is returned.
fn run_windows(pool: &Pool, windows: VecDeque<Window>, connections: usize) -> Result<()> {
    let queue = Mutex::new(windows);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let next = || {
        if failure.lock().map_or(true, |f| f.is_some()) {
            return None;
        }
        queue.lock().ok()?.pop_front()
    };
    std::thread::scope(|scope| {
        for _ in 0..connections.max(1) {
            scope.spawn(|| {
                let mut conn: Option<crate::db::PooledConn> = None;
                while let Some(w) = next() {
                    let result = match conn.as_mut() {
                        Some(c) => refresh_one(c, w),
                        None => pool::checkout(pool).and_then(|c| refresh_one(conn.insert(c), w)),
                    };
                    if let Err(e) = result {
                        if let Ok(mut slot) = failure.lock() {
                            slot.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    // A panicking thread re-panics out of the scope above, so a poisoned lock is moot.
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

fn refresh_one(conn: &mut PgConnection, w: Window) -> Result<()> {
    let started = std::time::Instant::now();
    aggregates::refresh_continuous(conn, w.aggregate, w.start, w.end, w.force)?;
    tracing::debug!(
        aggregate = w.aggregate.relation(),
        start = ?w.start,
        end = ?w.end,
        seconds = started.elapsed().as_secs_f64(),
        "refreshed a window"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn windows_meet_at_bucket_boundaries_and_cover_the_range() {
        for aggregate in Aggregate::ALL {
            for pieces in [1, 2, 3, 4, 7] {
                let ws = split(
                    aggregate,
                    Some((d("2008-04-02"), d("2020-04-01"))),
                    pieces,
                    false,
                );
                assert!(!ws.is_empty() && ws.len() <= pieces);
                let (start, end) = aggregate.window(d("2008-04-02"), d("2020-04-01"));
                assert_eq!(ws[0].start, Some(start));
                assert_eq!(ws.last().unwrap().end, Some(end));
                for pair in ws.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{aggregate:?} {pieces}");
                    let cut = pair[0].end.unwrap();
                    assert_eq!(aggregate.bucket_start(cut), cut, "not a bucket start");
                    assert!(pair[0].start < pair[0].end);
                }
                assert!(ws.iter().all(|w| w.force));
            }
        }
    }

    #[test]
    fn a_rebuild_is_open_at_its_start_only() {
        let ws = split(
            Aggregate::Monthly,
            Some((d("2019-01-15"), d("2020-04-01"))),
            4,
            true,
        );
        assert_eq!(ws.len(), 4);
        assert_eq!(ws[0].start, None);
        assert_eq!(ws[3].end, Some(d("2020-05-01")));
        assert_eq!(ws[0].end, Some(d("2019-05-01")));
        assert!(ws.iter().all(|w| !w.force));
        assert_eq!(
            split(Aggregate::Weekly, None, 4, true),
            vec![Window {
                aggregate: Aggregate::Weekly,
                start: None,
                end: None,
                force: false
            }]
        );
        assert!(split(Aggregate::Weekly, None, 4, false).is_empty());
    }

    #[test]
    fn a_short_range_is_not_cut_inside_a_bucket() {
        // Three days of one week: one window, whatever the pieces asked for.
        let ws = split(
            Aggregate::Weekly,
            Some((d("2020-03-31"), d("2020-04-02"))),
            4,
            false,
        );
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].start, Some(d("2020-03-30")));
        assert_eq!(ws[0].end, Some(d("2020-04-06")));
    }
}
