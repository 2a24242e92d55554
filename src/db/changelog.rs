//! The durable change log: what every write to a base table changed, kept until every
//! consumer of it has caught up.
//!
//! A writer (an ingest batch, a stream batch) calls [`record`] inside its own
//! transaction, so the log and the rows it describes commit together or not at all.
//! Each consumer — an aggregate, a rollup, an incremental materialization — asks for
//! its [`pending`] work, applies it, and then calls [`mark_applied`]; a consumer that
//! is new, or whose output was lost, is told to rebuild from the base table instead.
//! Nothing about what changed lives only in a process's memory, so a run killed between
//! loading and refreshing leaves the refresh for the next run to find.
//!
//! Why a table lock: ids come from a sequence, and a writer that took id 7 may commit
//! after one that took id 8. A consumer that applied 8 and moved its watermark past 7
//! would never see 7. [`pending`] therefore reads the log under `SHARE` mode, which
//! waits for every writer still in flight (they hold `ROW EXCLUSIVE`) and makes later
//! writers draw larger ids; everything at or below the watermark it returns is final.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};

use crate::db::schema::{change_log, change_log_consumers};

/// Rows per multi-row `INSERT` into the log.
const INSERT_BATCH: usize = 2_000;

/// The base table a change was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    DailyPrices,
    IntradayBars,
}

impl Source {
    /// The name stored in the log: the base table's name.
    pub fn name(self) -> &'static str {
        match self {
            Source::DailyPrices => "daily_prices",
            Source::IntradayBars => "intraday_bars",
        }
    }
}

/// Rows of `symbol` from `first` to `last` (inclusive) were written or deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub symbol: String,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

impl Span {
    /// Daily rows from `first` to `last`, as the log stores days: 00:00 UTC.
    pub fn days(symbol: impl Into<String>, first: NaiveDate, last: NaiveDate) -> Span {
        Span {
            symbol: symbol.into(),
            first: midnight(first.min(last)),
            last: midnight(first.max(last)),
        }
    }

    /// The first day the span touches (for daily sources).
    pub fn first_day(&self) -> NaiveDate {
        self.first.date_naive()
    }

    /// The last day the span touches (for daily sources).
    pub fn last_day(&self) -> NaiveDate {
        self.last.date_naive()
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight exists on every day")
        .and_utc()
}

/// Record `spans` as changed in `source`. Call it inside the transaction that makes the
/// change.
///
/// # Errors
/// The database's, which should roll the writer's transaction back.
pub fn record(conn: &mut PgConnection, source: Source, spans: &[Span]) -> QueryResult<()> {
    record_applied(conn, source, spans, &[])
}

/// Record `spans` as changed in `source` and as already applied by the consumers named
/// in `applied_by`: the writer brought their output up to date for these spans in this
/// same transaction, so their [`pending`] skips the entries (and only moves past them).
///
/// # Errors
/// The database's, which should roll the writer's transaction back.
pub fn record_applied(
    conn: &mut PgConnection,
    source: Source,
    spans: &[Span],
    applied_by: &[String],
) -> QueryResult<()> {
    let rows: Vec<_> = spans
        .iter()
        .map(|s| {
            (
                change_log::source.eq(source.name()),
                change_log::symbol.eq(s.symbol.as_str()),
                change_log::first_at.eq(s.first.min(s.last)),
                change_log::last_at.eq(s.first.max(s.last)),
                change_log::applied_by.eq(applied_by),
            )
        })
        .collect();
    for chunk in rows.chunks(INSERT_BATCH) {
        diesel::insert_into(change_log::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

/// What a consumer has still to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The watermark to pass to [`mark_applied`] once this is applied.
    pub upto: i64,
    /// Rebuild from the base table: the consumer is new or was told to
    /// ([`request_rebuild`]). `spans` still lists what changed, but a rebuild covers it.
    pub rebuild: bool,
    /// Per symbol, the smallest span covering everything logged for it, by symbol.
    pub spans: Vec<Span>,
    /// Entries up to `upto` the consumer applied itself when they were logged (see
    /// [`record_applied`]): not in `spans`, but the watermark must still pass them.
    pub applied_by_writer: i64,
}

impl Pending {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.rebuild && self.spans.is_empty() && self.applied_by_writer == 0
    }

    /// The earliest and latest instant of any span.
    pub fn bounds(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let first = self.spans.iter().map(|s| s.first).min()?;
        let last = self.spans.iter().map(|s| s.last).max()?;
        Some((first, last))
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct SpanRow {
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Timestamptz)]
    first_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    last_at: DateTime<Utc>,
}

/// The work `consumer` of `source` has not applied yet. A consumer seen for the first
/// time is registered at the end of the log and told to rebuild.
///
/// # Errors
/// The database's.
pub fn pending(conn: &mut PgConnection, consumer: &str, source: Source) -> QueryResult<Pending> {
    pending_through(conn, consumer, source, None)
}

/// [`pending`], but no further than entry `cap` (a watermark an earlier [`pending`]
/// returned, hence final): for a consumer built from another consumer's output, which
/// is complete only up to that one's watermark.
///
/// # Errors
/// The database's.
pub fn pending_through(
    conn: &mut PgConnection,
    consumer: &str,
    source: Source,
    cap: Option<i64>,
) -> QueryResult<Pending> {
    conn.transaction(|conn| {
        diesel::sql_query("LOCK TABLE change_log IN SHARE MODE").execute(conn)?;
        let end: i64 = change_log::table
            .select(diesel::dsl::max(change_log::id))
            .first::<Option<i64>>(conn)?
            .unwrap_or(0);
        let end = cap.map_or(end, |cap| end.min(cap));
        let state: Option<(i64, bool)> = change_log_consumers::table
            .find(consumer)
            .select((
                change_log_consumers::applied_id,
                change_log_consumers::rebuild,
            ))
            .first(conn)
            .optional()?;
        let (applied, rebuild) = match state {
            Some(state) => state,
            None => {
                // Two processes may register the same consumer at once (two stream
                // processes' first refresh): the second finds the first's row.
                let inserted = diesel::insert_into(change_log_consumers::table)
                    .values((
                        change_log_consumers::consumer.eq(consumer),
                        change_log_consumers::source.eq(source.name()),
                        change_log_consumers::applied_id.eq(end),
                        change_log_consumers::rebuild.eq(true),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)?;
                if inserted == 1 {
                    (end, true)
                } else {
                    change_log_consumers::table
                        .find(consumer)
                        .select((
                            change_log_consumers::applied_id,
                            change_log_consumers::rebuild,
                        ))
                        .first(conn)?
                }
            }
        };
        let rows: Vec<SpanRow> = diesel::sql_query(
            "SELECT symbol, min(first_at) AS first_at, max(last_at) AS last_at FROM change_log \
             WHERE source = $1 AND id > $2 AND id <= $3 AND NOT ($4 = ANY (applied_by)) \
             GROUP BY symbol ORDER BY symbol",
        )
        .bind::<Text, _>(source.name())
        .bind::<BigInt, _>(applied)
        .bind::<BigInt, _>(end)
        .bind::<Text, _>(consumer)
        .load(conn)?;
        let applied_by_writer = diesel::sql_query(
            "SELECT count(*) AS n FROM change_log \
             WHERE source = $1 AND id > $2 AND id <= $3 AND $4 = ANY (applied_by)",
        )
        .bind::<Text, _>(source.name())
        .bind::<BigInt, _>(applied)
        .bind::<BigInt, _>(end)
        .bind::<Text, _>(consumer)
        .get_result::<Count>(conn)?
        .n;
        Ok(Pending {
            upto: end.max(applied),
            rebuild,
            spans: rows
                .into_iter()
                .map(|r| Span {
                    symbol: r.symbol,
                    first: r.first_at,
                    last: r.last_at,
                })
                .collect(),
            applied_by_writer,
        })
    })
}

/// `consumer` has applied everything up to `upto` (from [`Pending::upto`]); a rebuild it
/// was asked for is done. Call it in the transaction of the consumer's writes when the
/// consumer can; otherwise right after them, since applying the same spans twice must
/// give the same result.
///
/// # Errors
/// The database's.
pub fn mark_applied(conn: &mut PgConnection, consumer: &str, upto: i64) -> QueryResult<()> {
    diesel::update(change_log_consumers::table.find(consumer))
        .set((
            change_log_consumers::applied_id.eq(diesel::dsl::sql::<BigInt>(
                "greatest(applied_id, ",
            )
            .bind::<BigInt, _>(upto)
            .sql(")")),
            change_log_consumers::rebuild.eq(false),
            change_log_consumers::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether `consumer` would be told to rebuild: it is unknown or was asked to.
///
/// # Errors
/// The database's.
pub fn needs_rebuild(conn: &mut PgConnection, consumer: &str) -> QueryResult<bool> {
    let rebuild: Option<bool> = change_log_consumers::table
        .find(consumer)
        .select(change_log_consumers::rebuild)
        .first(conn)
        .optional()?;
    Ok(rebuild.unwrap_or(true))
}

/// Make `consumer` rebuild from the base table the next time it asks (its output was
/// dropped or can no longer be continued).
///
/// # Errors
/// The database's.
pub fn request_rebuild(conn: &mut PgConnection, consumer: &str) -> QueryResult<()> {
    diesel::update(change_log_consumers::table.find(consumer))
        .set(change_log_consumers::rebuild.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Stop tracking `consumer` (its output is gone for good).
///
/// # Errors
/// The database's.
pub fn forget(conn: &mut PgConnection, consumer: &str) -> QueryResult<()> {
    diesel::delete(change_log_consumers::table.find(consumer)).execute(conn)?;
    Ok(())
}

/// Delete the entries every consumer of their source has applied (all of a source's
/// entries when nothing consumes it: a consumer that appears later rebuilds anyway).
/// Returns how many were deleted.
///
/// # Errors
/// The database's.
pub fn prune(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM change_log l WHERE l.id <= coalesce( \
             (SELECT min(c.applied_id) FROM change_log_consumers c WHERE c.source = l.source), \
             (SELECT max(id) FROM change_log))",
    )
    .execute(conn)
}

/// Entries waiting, per source (for `doctor` and the run summary).
///
/// # Errors
/// The database's.
pub fn backlog(conn: &mut PgConnection) -> QueryResult<Vec<(String, i64)>> {
    change_log::table
        .group_by(change_log::source)
        .select((change_log::source, diesel::dsl::count_star()))
        .order(change_log::source)
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_stored_as_utc_midnight_in_order() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let span = Span::days("A", d("2020-03-02"), d("2020-01-31"));
        assert_eq!(span.first.to_rfc3339(), "2020-01-31T00:00:00+00:00");
        assert_eq!(span.last.to_rfc3339(), "2020-03-02T00:00:00+00:00");
        assert_eq!(
            (span.first_day(), span.last_day()),
            (d("2020-01-31"), d("2020-03-02"))
        );
    }

    #[test]
    fn source_names_are_the_base_tables() {
        assert_eq!(Source::DailyPrices.name(), "daily_prices");
        assert_eq!(Source::IntradayBars.name(), "intraday_bars");
    }
}
