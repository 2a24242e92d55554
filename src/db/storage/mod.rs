//! Physical layout of the prices table: a hypertable when TimescaleDB is installed,
//! a plain table (its primary key is the only index it needs) otherwise. Applied after
//! migrations, idempotently, so both backends share one set of migrations.
//!
//! [`apply`] only makes sure the hypertable exists (every database command does it);
//! [`apply_settings`] makes the database match a job's `[storage]` section — chunk
//! interval, compression and its policy, retention, the OHLCV aggregates — and says
//! what it changed, so a second run with the same settings changes nothing.

pub mod aggregates;
pub mod concurrent;
pub mod hypertable;
pub mod key;
pub mod settings;

pub use settings::{Aggregate, PgInterval, StorageSettings, DEFAULT_CHUNK_DAYS};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};

use super::Capabilities;
use crate::error::Result;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Give `daily_prices` its primary key if a first load was killed before building it
/// ([`key`]), and make it a hypertable when TimescaleDB is there. Returns true when it
/// made it a hypertable.
pub fn apply(conn: &mut PgConnection, caps: &Capabilities) -> Result<bool> {
    key::restore(conn)?;
    if !caps.has_timescale() {
        return Ok(false);
    }
    let existing: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM timescaledb_information.hypertables \
         WHERE hypertable_schema = current_schema() AND hypertable_name = 'daily_prices'",
    )
    .get_result(conn)
    .map_err(super::db_error("reading hypertables"))?;
    if existing.n > 0 {
        return Ok(false);
    }
    // No default `day DESC` index: the (symbol, day) key serves per-symbol range
    // queries, and the extra index cost a third of the load time in measurements.
    // Chunks of [`DEFAULT_CHUNK_DAYS`] whole days (TimescaleDB would store `1 year` as
    // 360 days); `[storage] chunk_interval` changes it afterwards.
    diesel::sql_query(
        "SELECT create_hypertable('daily_prices', by_range('day', make_interval(days => $1::int)), \
         create_default_indexes => false, if_not_exists => true, migrate_data => true)",
    )
    .bind::<Integer, _>(DEFAULT_CHUNK_DAYS as i32)
    .execute(conn)
    .map_err(super::db_error("creating the daily_prices hypertable"))?;
    tracing::info!(
        chunk_days = DEFAULT_CHUNK_DAYS,
        "daily_prices is now a hypertable"
    );
    Ok(true)
}

/// Make the database match `settings`; returns what was changed, one line each (empty
/// when it already matched). Not in one transaction: creating and refreshing continuous
/// aggregates must run outside one. Callers hold the run lock.
///
/// On plain PostgreSQL only the aggregates apply; chunking, compression and retention
/// are TimescaleDB features and are left out (the maintenance report says so).
pub fn apply_settings(
    conn: &mut PgConnection,
    caps: &Capabilities,
    settings: &StorageSettings,
) -> Result<Vec<String>> {
    let mut actions = Vec::new();
    if caps.has_timescale() {
        if apply(conn, caps)? {
            actions.push(format!(
                "made daily_prices a hypertable ({DEFAULT_CHUNK_DAYS} days chunks)"
            ));
        }
        apply_hypertable(conn, settings, &mut actions)?;
    }
    apply_aggregates(conn, caps, settings, &mut actions)?;
    for action in &actions {
        tracing::info!("storage: {action}");
    }
    Ok(actions)
}

fn apply_hypertable(
    conn: &mut PgConnection,
    settings: &StorageSettings,
    actions: &mut Vec<String>,
) -> Result<()> {
    let state = hypertable::state(conn)?;
    if state.chunk_days != Some(i64::from(settings.chunk_days)) {
        hypertable::set_chunk_interval(conn, settings.chunk_days)?;
        actions.push(format!(
            "chunk interval of daily_prices: {} → {} days (applies to chunks created from now on)",
            state
                .chunk_days
                .map_or_else(|| "?".to_owned(), |d| d.to_string()),
            settings.chunk_days
        ));
    }
    match settings.compress_after {
        Some(after) => {
            if !state.compression_enabled {
                hypertable::enable_compression(conn)?;
                actions.push(format!(
                    "enabled compression on daily_prices (segment by {}, order by {})",
                    hypertable::COMPRESS_SEGMENTBY,
                    hypertable::COMPRESS_ORDERBY
                ));
            }
            match &state.compress_after {
                Some(current) if hypertable::same_interval(conn, current, after)? => {}
                Some(current) => {
                    hypertable::remove_compression_policy(conn)?;
                    hypertable::add_compression_policy(conn, after)?;
                    actions.push(format!(
                        "compression policy: compress chunks older than {after} (was {current})"
                    ));
                }
                None => {
                    hypertable::add_compression_policy(conn, after)?;
                    actions.push(format!(
                        "added compression policy: compress chunks older than {after}"
                    ));
                }
            }
        }
        None => {
            if state.compression_job.is_some() {
                hypertable::remove_compression_policy(conn)?;
                actions.push("removed the compression policy".to_owned());
            }
            if state.compression_enabled {
                let n = hypertable::disable_compression(conn)?;
                actions.push(format!(
                    "decompressed {n} chunk(s) and disabled compression on daily_prices"
                ));
            }
        }
    }
    match (settings.retention, &state.drop_after) {
        (Some(wanted), Some(current)) if hypertable::same_interval(conn, current, wanted)? => {}
        (Some(wanted), current) => {
            if current.is_some() {
                hypertable::remove_retention_policy(conn)?;
            }
            hypertable::add_retention_policy(conn, wanted)?;
            actions.push(match current {
                Some(c) => format!("retention policy: drop chunks older than {wanted} (was {c})"),
                None => format!("added retention policy: drop chunks older than {wanted}"),
            });
        }
        (None, Some(_)) => {
            hypertable::remove_retention_policy(conn)?;
            actions.push("removed the retention policy".to_owned());
        }
        (None, None) => {}
    }
    Ok(())
}

fn apply_aggregates(
    conn: &mut PgConnection,
    caps: &Capabilities,
    settings: &StorageSettings,
    actions: &mut Vec<String>,
) -> Result<()> {
    let kind = if caps.has_timescale() {
        "continuous aggregate"
    } else {
        "table refreshed by runner"
    };
    for aggregate in Aggregate::ALL {
        let wanted = settings.aggregates.contains(&aggregate);
        let exists = aggregates::exists(conn, caps, aggregate)?;
        match (wanted, exists) {
            (true, false) => {
                aggregates::create(conn, caps, aggregate)?;
                // A consumer unknown to the change log rebuilds on its next drain, which
                // every run does before it analyses.
                forget_consumer(conn, aggregate)?;
                actions.push(format!("created {} ({kind})", aggregate.relation()));
            }
            (false, true) => {
                aggregates::drop(conn, caps, aggregate)?;
                forget_consumer(conn, aggregate)?;
                actions.push(format!("dropped {}", aggregate.relation()));
            }
            (true, true) if !aggregates::is_current(conn, aggregate)? => {
                aggregates::drop(conn, caps, aggregate)?;
                aggregates::create(conn, caps, aggregate)?;
                forget_consumer(conn, aggregate)?;
                actions.push(format!(
                    "recreated {} ({kind}): an earlier runner defined it differently",
                    aggregate.relation()
                ));
            }
            (true, true)
                if caps.has_timescale() && aggregates::policy_job(conn, aggregate)?.is_none() =>
            {
                aggregates::add_policy(conn, aggregate)?;
                actions.push(format!(
                    "added the refresh policy of {}",
                    aggregate.relation()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn forget_consumer(conn: &mut PgConnection, aggregate: Aggregate) -> Result<()> {
    crate::db::changelog::forget(conn, &aggregates::consumer(aggregate))
        .map_err(crate::db::db_error("updating the change log's consumers"))
}

/// Bring every aggregate of `settings` up to date from the change log (see
/// [`aggregates::drain`]). With TimescaleDB their refreshes run on up to `connections`
/// connections of `pool` at once ([`concurrent`]). Returns what was refreshed, for the
/// run summary.
pub fn drain_aggregates(
    pool: &crate::db::Pool,
    caps: &Capabilities,
    settings: &StorageSettings,
    connections: usize,
) -> Result<Vec<String>> {
    let mut conn = crate::db::pool::checkout(pool)?;
    let mut present = Vec::new();
    for &aggregate in &settings.aggregates {
        if aggregates::exists(&mut conn, caps, aggregate)? {
            present.push(aggregate);
        }
    }
    // (aggregate, what was done, seconds it took: together, when concurrent)
    let mut drained = Vec::new();
    if caps.has_timescale() {
        drop(conn);
        let started = std::time::Instant::now();
        let outcomes = concurrent::drain(pool, &present, connections)?;
        let seconds = started.elapsed().as_secs_f64();
        for (aggregate, outcome) in outcomes {
            if outcome != aggregates::Drained::UpToDate {
                crate::crashpoint::reached("aggregates.drained");
            }
            drained.push((aggregate, outcome, seconds));
        }
    } else {
        drop(conn);
        drained = drain_plain(pool, caps, &present, connections)?;
    }
    let mut done = Vec::new();
    for (aggregate, outcome, seconds) in drained {
        let line = match outcome {
            aggregates::Drained::UpToDate => continue,
            aggregates::Drained::Rebuilt => format!("rebuilt {}", aggregate.relation()),
            aggregates::Drained::WrittenByIngest { entries } => format!(
                "{}: the ingest wrote the buckets of all {entries} change(s) itself",
                aggregate.relation()
            ),
            aggregates::Drained::Refreshed {
                symbols,
                first,
                last,
            } => {
                let (start, end) = aggregate.window(first, last);
                format!(
                    "refreshed {} for {symbols} symbol(s) within [{start}, {end})",
                    aggregate.relation()
                )
            }
        };
        let line = format!("{line} in {seconds:.2}s");
        tracing::info!("{line}");
        done.push(line);
    }
    Ok(done)
}

/// Plain PostgreSQL: drain each aggregate in its own transaction, on its own connection
/// when `connections` allows. A nightly's refresh is mostly reads of pages the night
/// evicted (the buckets of 8,000 grown files: weekly 2.45 s, then monthly 1.11 s on
/// the warmed pages, measured serially), so the two overlap well; each keeps its own
/// change-log consumer, and a kill leaves each committed or not.
fn drain_plain(
    pool: &crate::db::Pool,
    caps: &Capabilities,
    present: &[Aggregate],
    connections: usize,
) -> Result<Vec<(Aggregate, aggregates::Drained, f64)>> {
    let drain_one = |aggregate: Aggregate| -> Result<(Aggregate, aggregates::Drained, f64)> {
        let mut conn = crate::db::pool::checkout(pool)?;
        let started = std::time::Instant::now();
        let outcome = aggregates::drain(&mut conn, caps, aggregate)?;
        if outcome != aggregates::Drained::UpToDate {
            crate::crashpoint::reached("aggregates.drained");
        }
        Ok((aggregate, outcome, started.elapsed().as_secs_f64()))
    };
    if connections < 2 || present.len() < 2 {
        return present.iter().map(|&a| drain_one(a)).collect();
    }
    // Every aggregate gets a thread: there are at most two.
    std::thread::scope(|scope| {
        let running: Vec<_> = present
            .iter()
            .map(|&aggregate| scope.spawn(move || drain_one(aggregate)))
            .collect();
        // Joined in order, so the first error reported is the first aggregate's.
        running
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The smallest day range holding both (either may be empty).
pub fn widen(
    a: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    b: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (x, None) | (None, x) => x,
    }
}
