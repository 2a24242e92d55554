//! Weekly and monthly OHLCV aggregates of `daily_prices`.
//!
//! With TimescaleDB they are continuous aggregates (`time_bucket`, `first`/`last`) with
//! a refresh policy for servers whose background workers run. On plain PostgreSQL they
//! are ordinary tables with a (symbol, bucket) key, which makes an incremental refresh
//! as cheap as on TimescaleDB — a materialized view could only be recomputed whole.
//! Both give the same columns and, bucket for bucket, the same rows.
//!
//! Each aggregate is a consumer of the change log ([`crate::db::changelog`]): every run
//! [`drain`]s what was logged since the aggregate last caught up, however the run that
//! wrote the prices ended. On TimescaleDB the continuous aggregate is refreshed over the
//! logged window; on plain PostgreSQL the logged buckets of each logged symbol are
//! deleted and computed again, in the same transaction that moves the watermark.
//!
//! Columns: `symbol, bucket` (first day of the week, a Monday, or of the month),
//! `open` (first), `high` (max), `low` (min), `close` (last), `volume` (sum, numeric),
//! `avg_close`, `trading_days` (rows), `volume_days` (rows with a volume, so an
//! average volume over several buckets is `sum(volume) / sum(volume_days)`) and
//! `max_volume` (to find record days without scanning every bar).

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text};

use super::settings::Aggregate;
use crate::db::changelog::{self, Source};
use crate::db::{db_error, quote, Capabilities};
use crate::error::Result;

/// The aggregate's name in `change_log_consumers`.
pub fn consumer(aggregate: Aggregate) -> String {
    format!("aggregate:{}", aggregate.relation())
}

/// The aggregate tables of plain PostgreSQL, for the ingest's `COPY` of the buckets it
/// computed (see `src/ingest/buckets.rs`). Created by [`create`], not by a migration.
mod tables {
    diesel::table! {
        prices_weekly (symbol, bucket) {
            symbol -> Text,
            bucket -> Date,
            open -> Nullable<Float8>,
            high -> Nullable<Float8>,
            low -> Nullable<Float8>,
            close -> Nullable<Float8>,
            volume -> Nullable<Numeric>,
            avg_close -> Nullable<Float8>,
            trading_days -> Int8,
            volume_days -> Int8,
            max_volume -> Nullable<Int8>,
        }
    }

    diesel::table! {
        prices_monthly (symbol, bucket) {
            symbol -> Text,
            bucket -> Date,
            open -> Nullable<Float8>,
            high -> Nullable<Float8>,
            low -> Nullable<Float8>,
            close -> Nullable<Float8>,
            volume -> Nullable<Numeric>,
            avg_close -> Nullable<Float8>,
            trading_days -> Int8,
            volume_days -> Int8,
            max_volume -> Nullable<Int8>,
        }
    }
}

/// Replace every bucket of `symbols` in a plain-PostgreSQL aggregate table with the rows
/// `write` streams in the binary COPY format (signature and trailer included). For the
/// ingest, inside the transaction that writes those symbols' prices and logs them as
/// applied by [`consumer`]`(aggregate)`.
///
/// # Errors
/// The database's, and whatever `write` returns.
pub fn replace_buckets<F>(
    conn: &mut PgConnection,
    aggregate: Aggregate,
    symbols: &[&str],
    write: F,
) -> QueryResult<usize>
where
    F: Fn(&mut dyn std::io::Write) -> QueryResult<()>,
{
    diesel::sql_query(format!(
        "DELETE FROM {} WHERE symbol = ANY($1)",
        quote::ident(aggregate.relation())
    ))
    .bind::<Array<Text>, _>(symbols)
    .execute(conn)?;
    match aggregate {
        Aggregate::Weekly => diesel::copy_from(tables::prices_weekly::table)
            .from_raw_data(tables::prices_weekly::table, write)
            .with_format(diesel::pg::CopyFormat::Binary)
            .execute(conn),
        Aggregate::Monthly => diesel::copy_from(tables::prices_monthly::table)
            .from_raw_data(tables::prices_monthly::table, write)
            .with_format(diesel::pg::CopyFormat::Binary)
            .execute(conn),
    }
}

/// The aggregates an ingest may write itself (see [`replace_buckets`]): on plain
/// PostgreSQL, those of `wanted` that exist and whose consumer is caught up with the
/// change log's history. A consumer still to rebuild is rebuilt here first when
/// `daily_prices` is empty — on a first load that costs nothing and lets the load write
/// every bucket — and otherwise left to rebuild after the ingest (its buckets would be
/// computed again anyway). Returns what was rebuilt, for the run summary, and the
/// aggregates.
///
/// # Errors
/// The database's.
pub fn prepare_ingest(
    conn: &mut PgConnection,
    caps: &Capabilities,
    wanted: &std::collections::BTreeSet<Aggregate>,
) -> Result<(Vec<String>, Vec<Aggregate>)> {
    let mut lines = Vec::new();
    let mut direct = Vec::new();
    if caps.has_timescale() {
        return Ok((lines, direct));
    }
    for &aggregate in wanted {
        if !exists(conn, caps, aggregate)? {
            continue;
        }
        let name = consumer(aggregate);
        let needs_rebuild = changelog::needs_rebuild(conn, &name)
            .map_err(db_error("reading the change log's consumers"))?;
        if needs_rebuild {
            let empty: Found = diesel::sql_query(
                "SELECT count(*) AS n FROM (SELECT 1 FROM daily_prices LIMIT 1) t",
            )
            .get_result(conn)
            .map_err(db_error("looking at daily_prices"))?;
            if empty.n > 0 {
                continue;
            }
            let started = std::time::Instant::now();
            if drain(conn, caps, aggregate)? == Drained::Rebuilt {
                let line = format!(
                    "rebuilt {} in {:.2}s (daily_prices was empty)",
                    aggregate.relation(),
                    started.elapsed().as_secs_f64()
                );
                tracing::info!("{line}");
                lines.push(line);
            }
        }
        direct.push(aggregate);
    }
    Ok((lines, direct))
}

/// What one [`drain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drained {
    /// Nothing was logged since the last drain.
    UpToDate,
    /// Recomputed from all of `daily_prices` (new consumer or asked to rebuild).
    Rebuilt,
    /// Only moved past entries whose buckets the ingest had written itself.
    WrittenByIngest { entries: i64 },
    /// Recomputed the logged buckets of `symbols` symbols, `first..last` at the widest.
    Refreshed {
        symbols: usize,
        first: NaiveDate,
        last: NaiveDate,
    },
}

/// Bring the aggregate up to date with everything the change log holds for it.
///
/// Crash-safe on both backends: the watermark moves only after (plain PostgreSQL: in
/// the same transaction as) the refresh, and refreshing the same span twice gives the
/// same rows, so a drain cut short is simply done again by the next run.
///
/// # Errors
/// The database's; the log keeps the work for the next drain.
pub fn drain(
    conn: &mut PgConnection,
    caps: &Capabilities,
    aggregate: Aggregate,
) -> Result<Drained> {
    let name = consumer(aggregate);
    let pending = changelog::pending(conn, &name, Source::DailyPrices).map_err(db_error(
        format!("reading the change log for {}", aggregate.relation()),
    ))?;
    let failed = || db_error(format!("refreshing {}", aggregate.relation()));
    if pending.is_empty() {
        return Ok(Drained::UpToDate);
    }
    crate::crashpoint::pause("aggregates.pending");
    crate::crashpoint::reached("aggregates.pending");
    if caps.has_timescale() {
        // A continuous aggregate refresh cannot run inside a transaction, so the
        // watermark follows it; a kill in between only repeats the refresh.
        if pending.rebuild {
            refresh(conn, caps, aggregate, None)?;
        } else if let Some((first, last)) = pending.bounds() {
            refresh(
                conn,
                caps,
                aggregate,
                Some((first.date_naive(), last.date_naive())),
            )?;
        }
        crate::crashpoint::reached("aggregates.refreshed");
        changelog::mark_applied(conn, &name, pending.upto).map_err(failed())?;
    } else {
        conn.transaction(|conn| {
            if pending.rebuild {
                rebuild_plain(conn, aggregate)?;
            } else if !pending.spans.is_empty() {
                refresh_spans_plain(conn, aggregate, &pending.spans)?;
            }
            crate::crashpoint::reached("aggregates.refreshed");
            changelog::mark_applied(conn, &name, pending.upto)
        })
        .map_err(failed())?;
    }
    if pending.rebuild {
        return Ok(Drained::Rebuilt);
    }
    let Some((first, last)) = pending.bounds() else {
        return Ok(Drained::WrittenByIngest {
            entries: pending.applied_by_writer,
        });
    };
    Ok(Drained::Refreshed {
        symbols: pending.spans.len(),
        first: first.date_naive(),
        last: last.date_naive(),
    })
}

/// Plain PostgreSQL: recompute every bucket of the aggregate.
fn rebuild_plain(conn: &mut PgConnection, aggregate: Aggregate) -> QueryResult<()> {
    let ident = quote::ident(aggregate.relation());
    conn.batch_execute(&format!(
        "TRUNCATE {ident}; INSERT INTO {ident} SELECT symbol, {bucket} AS bucket, {measures} \
         FROM daily_prices GROUP BY symbol, bucket",
        bucket = bucket_sql(aggregate, false),
        measures = measures(false)
    ))
}

/// Plain PostgreSQL: recompute, per logged symbol, the buckets its span touches.
fn refresh_spans_plain(
    conn: &mut PgConnection,
    aggregate: Aggregate,
    spans: &[changelog::Span],
) -> QueryResult<()> {
    let ident = quote::ident(aggregate.relation());
    let mut symbols = Vec::with_capacity(spans.len());
    let mut starts = Vec::with_capacity(spans.len());
    let mut ends = Vec::with_capacity(spans.len());
    for span in spans {
        let (start, end) = aggregate.window(span.first_day(), span.last_day());
        symbols.push(span.symbol.as_str());
        starts.push(start);
        ends.push(end);
    }
    let windows = "unnest($1::text[], $2::date[], $3::date[]) AS w(symbol, start_day, end_day)";
    // Each window is a few rows found by index probes; the planner, guessing 100
    // windows of 0.5 % of the table each, JIT-compiled the statements and read every
    // probe through a bitmap: a nightly's weekly INSERT for 8,000 symbols took 1.2 s
    // against 0.34 s without, its DELETE 129 ms against 60 ms.
    crate::db::set_local(conn, &[("jit", "off"), ("enable_bitmapscan", "off")])?;
    diesel::sql_query(format!(
        "DELETE FROM {ident} a USING {windows} \
         WHERE a.symbol = w.symbol AND a.bucket >= w.start_day AND a.bucket < w.end_day"
    ))
    .bind::<Array<Text>, _>(&symbols)
    .bind::<Array<Date>, _>(&starts)
    .bind::<Array<Date>, _>(&ends)
    .execute(conn)?;
    diesel::sql_query(format!(
        "INSERT INTO {ident} SELECT symbol, {bucket} AS bucket, {measures} FROM ( \
           SELECT d.* FROM {windows} JOIN daily_prices d \
             ON d.symbol = w.symbol AND d.day >= w.start_day AND d.day < w.end_day \
         ) AS daily_prices GROUP BY symbol, bucket",
        bucket = bucket_sql(aggregate, false),
        measures = measures(false)
    ))
    .bind::<Array<Text>, _>(&symbols)
    .bind::<Array<Date>, _>(&starts)
    .bind::<Array<Date>, _>(&ends)
    .execute(conn)?;
    Ok(())
}

/// The aggregate columns after `symbol, bucket`: TimescaleDB and plain PostgreSQL forms.
/// `first`/`last` keep NULLs like `array_agg(...)[1]` does, so both agree on gaps. The
/// mean close adds the closes in day order: a float sum depends on the order rows are
/// read, which differs between a bucket refreshed after a late day and a clean load (and
/// between row and compressed chunks), and the aggregates must equal a clean load
/// exactly. `sum(close::numeric)` did that too, at twice the cost of the whole weekly
/// refresh (measured on 22.9 M rows: 56 s against 35 s), as every close went through
/// `float8 → numeric`.
fn measures(timescale: bool) -> &'static str {
    if timescale {
        "first(open, day) AS open, max(high) AS high, min(low) AS low, last(close, day) AS close, \
         sum(volume) AS volume, sum(close ORDER BY day) / count(*) AS avg_close, count(*) AS trading_days, \
         count(volume) AS volume_days, max(volume) AS max_volume"
    } else {
        "(array_agg(open ORDER BY day))[1] AS open, max(high) AS high, min(low) AS low, \
         (array_agg(close ORDER BY day DESC))[1] AS close, sum(volume) AS volume, \
         sum(close ORDER BY day) / count(*) AS avg_close, count(*) AS trading_days, count(volume) AS volume_days, max(volume) AS max_volume"
    }
}

fn bucket_sql(aggregate: Aggregate, timescale: bool) -> &'static str {
    match (aggregate, timescale) {
        (Aggregate::Weekly, true) => "time_bucket(INTERVAL '7 days', day)",
        (Aggregate::Monthly, true) => "time_bucket(INTERVAL '1 month', day)",
        // Same origin as time_bucket's default (2000-01-03, a Monday).
        (Aggregate::Weekly, false) => {
            "date_bin(INTERVAL '7 days', day::timestamp, TIMESTAMP '2000-01-03')::date"
        }
        (Aggregate::Monthly, false) => "date_trunc('month', day)::date",
    }
}

/// How far back the production refresh policy looks, and how often it runs. The
/// window must span at least two buckets (TimescaleDB refuses less).
fn policy_offsets(aggregate: Aggregate) -> (&'static str, &'static str) {
    match aggregate {
        Aggregate::Weekly => ("1 month", "1 day"),
        Aggregate::Monthly => ("3 months", "1 day"),
    }
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whether the aggregate exists in the form this backend uses.
pub fn exists(conn: &mut PgConnection, caps: &Capabilities, aggregate: Aggregate) -> Result<bool> {
    let sql = if caps.has_timescale() {
        "SELECT count(*) AS n FROM timescaledb_information.continuous_aggregates \
         WHERE view_schema = current_schema() AND view_name = $1"
    } else {
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind = 'r'"
    };
    let found: Found = diesel::sql_query(sql)
        .bind::<Text, _>(aggregate.relation())
        .get_result(conn)
        .map_err(db_error(format!("looking for {}", aggregate.relation())))?;
    Ok(found.n > 0)
}

/// Create the aggregate, empty (callers refresh it). Not in a transaction: a
/// continuous aggregate is created `WITH NO DATA`, which TimescaleDB allows anywhere,
/// but its refresh must run outside one.
pub fn create(conn: &mut PgConnection, caps: &Capabilities, aggregate: Aggregate) -> Result<()> {
    let name = quote::ident(aggregate.relation());
    let timescale = caps.has_timescale();
    let sql = if timescale {
        format!(
            "CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous, timescaledb.materialized_only = true, \
             timescaledb.create_group_indexes = false) AS \
             SELECT symbol, {bucket} AS bucket, {measures} FROM daily_prices GROUP BY symbol, bucket WITH NO DATA",
            bucket = bucket_sql(aggregate, true),
            measures = measures(true)
        )
    } else {
        format!(
            "CREATE TABLE {name} (symbol text NOT NULL, bucket date NOT NULL, open double precision, \
             high double precision, low double precision, close double precision, volume numeric, \
             avg_close double precision, trading_days bigint NOT NULL, volume_days bigint NOT NULL, max_volume bigint, \
             PRIMARY KEY (symbol, bucket))"
        )
    };
    // Two statements: one string would be one implicit transaction, which the
    // continuous aggregate's creation refuses. Killed between them, the aggregate has no
    // comment and the next run recreates it.
    let kind = if timescale { "VIEW" } else { "TABLE" };
    let comment = format!("COMMENT ON {kind} {name} IS {}", quote::literal(DEFINITION));
    conn.batch_execute(&sql)
        .and_then(|()| conn.batch_execute(&comment))
        .map_err(db_error(format!("creating {}", aggregate.relation())))?;
    if timescale {
        add_policy(conn, aggregate)?;
    }
    Ok(())
}

/// TimescaleDB: the `(symbol, bucket)` index of the continuous aggregate, which
/// [`create`] leaves out (`create_group_indexes = false`) so that the first refresh does
/// not maintain it row by row: built once afterwards it cost 3 s where maintaining it
/// cost 8 s of the weekly aggregate's 4.75 M rows (22.9 M prices, TimescaleDB 2.29.2).
/// Called after every refresh, before the change log moves, so a run killed in between
/// builds it in the next. Nothing to do when it exists.
pub fn index_symbols(conn: &mut PgConnection, aggregate: Aggregate) -> Result<()> {
    let index = format!("{}_symbol_bucket", aggregate.relation());
    let found: Found = diesel::sql_query(
        "SELECT count(*) AS n FROM timescaledb_information.continuous_aggregates a \
         JOIN pg_indexes i ON i.schemaname = a.materialization_hypertable_schema \
          AND i.tablename = a.materialization_hypertable_name \
         WHERE a.view_schema = current_schema() AND a.view_name = $1 AND i.indexname = $2",
    )
    .bind::<Text, _>(aggregate.relation())
    .bind::<Text, _>(&index)
    .get_result(conn)
    .map_err(db_error(format!(
        "reading the indexes of {}",
        aggregate.relation()
    )))?;
    if found.n > 0 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    conn.batch_execute(&format!(
        "CREATE INDEX {} ON {} (symbol, bucket)",
        quote::ident(&index),
        quote::ident(aggregate.relation())
    ))
    .map_err(db_error(format!("indexing {}", aggregate.relation())))?;
    tracing::debug!(
        aggregate = aggregate.relation(),
        seconds = started.elapsed().as_secs_f64(),
        "built the (symbol, bucket) index"
    );
    Ok(())
}

/// What [`create`] writes as the aggregate's comment: the version of its definition. An
/// aggregate made by an earlier runner (another comment, or none) computes some column
/// differently, and buckets refreshed now would not equal the ones it holds; storage
/// setup recreates it ([`is_current`]).
pub const DEFINITION: &str = "runner aggregate v2: avg_close = sum(close ORDER BY day) / count(*)";

/// Whether the existing aggregate was made with this runner's [`DEFINITION`].
pub fn is_current(conn: &mut PgConnection, aggregate: Aggregate) -> Result<bool> {
    let found: Found = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname = $1 \
           AND obj_description(c.oid, 'pg_class') = $2",
    )
    .bind::<Text, _>(aggregate.relation())
    .bind::<Text, _>(DEFINITION)
    .get_result(conn)
    .map_err(db_error(format!(
        "reading the definition of {}",
        aggregate.relation()
    )))?;
    Ok(found.n > 0)
}

/// The refresh policy for servers whose background workers run (runner's own refresh
/// after ingest does not depend on it).
pub fn add_policy(conn: &mut PgConnection, aggregate: Aggregate) -> Result<()> {
    let (start, schedule) = policy_offsets(aggregate);
    diesel::sql_query(
        "SELECT add_continuous_aggregate_policy($1::regclass, start_offset => $2::interval, \
         end_offset => INTERVAL '1 day', schedule_interval => $3::interval, if_not_exists => true)",
    )
    .bind::<Text, _>(aggregate.relation())
    .bind::<Text, _>(start)
    .bind::<Text, _>(schedule)
    .execute(conn)
    .map_err(db_error(format!(
        "adding the refresh policy of {}",
        aggregate.relation()
    )))?;
    Ok(())
}

/// Job id of the aggregate's refresh policy, if it has one. `jobs.hypertable_name`
/// names the view in recent releases and the materialization hypertable in older ones.
pub fn policy_job(conn: &mut PgConnection, aggregate: Aggregate) -> Result<Option<i64>> {
    #[derive(QueryableByName)]
    struct Job {
        #[diesel(sql_type = Nullable<BigInt>)]
        id: Option<i64>,
    }
    let job: Job = diesel::sql_query(
        "SELECT min(j.job_id)::bigint AS id FROM timescaledb_information.jobs j \
         JOIN timescaledb_information.continuous_aggregates c \
           ON (c.view_schema = j.hypertable_schema AND c.view_name = j.hypertable_name) \
           OR (c.materialization_hypertable_schema = j.hypertable_schema \
               AND c.materialization_hypertable_name = j.hypertable_name) \
         WHERE c.view_schema = current_schema() AND c.view_name = $1 \
           AND j.proc_name = 'policy_refresh_continuous_aggregate'",
    )
    .bind::<Text, _>(aggregate.relation())
    .get_result(conn)
    .map_err(db_error(format!(
        "reading the refresh policy of {}",
        aggregate.relation()
    )))?;
    Ok(job.id)
}

pub fn drop(conn: &mut PgConnection, caps: &Capabilities, aggregate: Aggregate) -> Result<()> {
    let name = quote::ident(aggregate.relation());
    let context = || format!("dropping {}", aggregate.relation());
    if !caps.has_timescale() {
        return conn
            .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
            .map_err(db_error(context()));
    }
    // The view's refresh policy may be refreshing it right now, and a DROP racing that
    // job fails with "tuple concurrently deleted" (seen on 2.29.2, about one time in
    // five, dropping right after the policy was added). Removing the policy first stops
    // new runs; a run already under way is waited out by trying again.
    conn.batch_execute(&format!(
        "SELECT remove_continuous_aggregate_policy(c.oid, if_exists => true) \
         FROM pg_class c WHERE c.oid = to_regclass({})",
        quote::literal(&name)
    ))
    .map_err(db_error(context()))?;
    let sql = format!("DROP MATERIALIZED VIEW IF EXISTS {name}");
    let mut attempt = 1;
    loop {
        match conn.batch_execute(&sql) {
            Err(e) if attempt < DROP_ATTEMPTS && e.to_string().contains("concurrently") => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            outcome => return outcome.map_err(db_error(context())),
        }
    }
}

/// How often [`drop`] tries a DROP that raced a running refresh job.
const DROP_ATTEMPTS: u32 = 10;

/// Recompute the buckets covering `first..=last` (all of them when `range` is None).
/// Must run outside a transaction on TimescaleDB.
pub fn refresh(
    conn: &mut PgConnection,
    caps: &Capabilities,
    aggregate: Aggregate,
    range: Option<(NaiveDate, NaiveDate)>,
) -> Result<()> {
    let name = aggregate.relation();
    let window = range.map(|(first, last)| aggregate.window(first, last));
    let date = |d: NaiveDate| format!("DATE {}", quote::literal(&d.to_string()));
    if caps.has_timescale() {
        let (start, end) = window.map_or((None, None), |(s, e)| (Some(s), Some(e)));
        return refresh_continuous(conn, aggregate, start, end, range.is_some());
    }
    let ident = quote::ident(name);
    let (clear, filter) = match window {
        Some((s, e)) => (
            format!(
                "DELETE FROM {ident} WHERE bucket >= {} AND bucket < {}",
                date(s),
                date(e)
            ),
            format!("WHERE day >= {} AND day < {}", date(s), date(e)),
        ),
        None => (format!("TRUNCATE {ident}"), String::new()),
    };
    let sql = format!(
        "{clear}; INSERT INTO {ident} SELECT symbol, {bucket} AS bucket, {measures} FROM daily_prices {filter} \
         GROUP BY symbol, bucket",
        bucket = bucket_sql(aggregate, false),
        measures = measures(false)
    );
    conn.transaction(|c| c.batch_execute(&sql))
        .map_err(db_error(format!("refreshing {name}")))
}

/// TimescaleDB: `refresh_continuous_aggregate` over `[start, end)` (`None`: open), whose
/// ends must be bucket boundaries — a bucket across an end is left out. `force`
/// recomputes the whole window even where TimescaleDB's invalidation log says nothing
/// changed: runner knows exactly which days it rewrote, and this keeps the aggregate
/// right even if a background job raced the log. Must run outside a transaction.
///
/// The window is refreshed in one pass (`buckets_per_batch => 0`). Since 2.28 a manual
/// refresh otherwise cuts it into batches of ten buckets, each its own query and
/// transaction, and each batch's query reads every chunk index it touches whole, as the
/// index leads with `symbol` (measured on 22.9 M rows, TimescaleDB 2.29.2: the weekly
/// aggregate 62 s batched against 56 s in one pass, the monthly 43 s against 30 s).
/// runner already cuts the work into bucket-aligned windows of its own
/// ([`super::concurrent`]), and its change log, not the batches, is what makes a killed
/// refresh resumable.
pub fn refresh_continuous(
    conn: &mut PgConnection,
    aggregate: Aggregate,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    force: bool,
) -> Result<()> {
    let name = aggregate.relation();
    let bound = |d: Option<NaiveDate>| {
        d.map_or_else(
            || "NULL".to_owned(),
            |d| format!("DATE {}", quote::literal(&d.to_string())),
        )
    };
    let arguments = RefreshArguments::read(conn)?;
    let force = if force && arguments.force {
        ", force => true"
    } else {
        ""
    };
    let one_pass = if arguments.options {
        r#", options => '{"buckets_per_batch": 0}'"#
    } else {
        ""
    };
    let call = format!(
        "CALL refresh_continuous_aggregate({}, {}, {}{force}{one_pass})",
        quote::literal(name),
        bound(start),
        bound(end)
    );
    // The refresh groups by (symbol, bucket) and adds the closes in day order; the
    // chunks' primary key already gives rows in (symbol, day) order, so an incremental
    // sort within each symbol is all that is needed. The planner prices that above a
    // sequential scan and a sort of the whole window, which took 7.3 s against 3.9 s for
    // a weekly window of 6.3 M rows (TimescaleDB 2.29.2). The setting is the session's
    // (the refresh commits on its own, so `SET LOCAL` would not reach it) and is put
    // back whatever the refresh did.
    conn.batch_execute("SET enable_sort TO off")
        .map_err(db_error(format!("refreshing {name}")))?;
    let refreshed = call_refresh(conn, name, &call);
    let reset = conn
        .batch_execute("RESET enable_sort")
        .map_err(db_error(format!("refreshing {name}")));
    refreshed.and(reset)
}

/// Run the `CALL` of [`refresh_continuous`]. The refresh policy's background job may be
/// refreshing the same aggregate; TimescaleDB then refuses ours at once rather than
/// waiting. The error has no SQLSTATE of its own (diesel shows none), hence its text.
/// Wait and try again.
fn call_refresh(conn: &mut PgConnection, name: &str, call: &str) -> Result<()> {
    let mut attempt = 0;
    loop {
        match conn.batch_execute(call) {
            Err(e) if attempt < 40 && e.to_string().contains("concurrent refresh") => {
                attempt += 1;
                tracing::debug!(
                    aggregate = name,
                    attempt,
                    "a refresh policy is refreshing it; waiting"
                );
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            result => return result.map_err(db_error(format!("refreshing {name}"))),
        }
    }
}

/// The optional arguments this TimescaleDB's `refresh_continuous_aggregate` takes.
#[derive(Debug, Clone, Copy, QueryableByName)]
struct RefreshArguments {
    /// `force` (2.16 and later).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    force: bool,
    /// `options`, with `buckets_per_batch` (2.28 and later).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    options: bool,
}

impl RefreshArguments {
    fn read(conn: &mut PgConnection) -> Result<Self> {
        diesel::sql_query(
            "SELECT coalesce(bool_or(a LIKE '%force boolean%'), false) AS force, \
                    coalesce(bool_or(a LIKE '%options jsonb%'), false) AS options \
             FROM (SELECT pg_get_function_arguments(oid) AS a FROM pg_proc \
                   WHERE proname = 'refresh_continuous_aggregate') p",
        )
        .get_result(conn)
        .map_err(db_error("inspecting refresh_continuous_aggregate"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_bucket_alike() {
        for a in Aggregate::ALL {
            assert!(bucket_sql(a, true).starts_with("time_bucket("));
        }
        assert!(bucket_sql(Aggregate::Weekly, false).contains("TIMESTAMP '2000-01-03'"));
        assert_eq!(
            measures(true).matches(" AS ").count(),
            measures(false).matches(" AS ").count()
        );
    }
}
