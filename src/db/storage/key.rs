//! A first load writes `daily_prices` without its primary key and builds the key once,
//! afterwards. Keeping a B-tree up to date row by row is most of the server's work in a
//! bulk load; one sorted build of the same index costs a fraction of it (measured on
//! PostgreSQL 15, 11.5 M rows by one `\copy`: 46–61 s into the table with its key, 29 s
//! into the table without it, plus 4–8 s to build the key).
//!
//! The catalog is the only state. The key is dropped, in a transaction of its own, only
//! while the table is empty; [`restore`] builds it again at the end of that ingest and
//! at the start of every database command ([`super::apply`]), so a run killed in the
//! middle of a first load leaves the committed files without their key until the next
//! command, which builds it before anything else reads or writes the table.
//!
//! On TimescaleDB the compression policy's job is paused with the key dropped and
//! scheduled again with the key built, each in the same transaction. Otherwise its first
//! run, which starts as soon as storage setup adds it, may compress the chunks the first
//! batches have just created: every later batch then writes into compressed chunks, and
//! the key's build must check each of them for duplicates by a query of its own
//! (measured on 22.9 M rows, TimescaleDB 2.29.2: the build 35.6 s instead of 14 s, the
//! ingest-only first load 53 s instead of 30 s).
//!
//! Uniqueness in between is the loader's: the table was empty when the load began, a run
//! loads each symbol from one file, and a batch that fails rolls back whole — which is
//! why a keyless load skips the per-symbol clean-up that a load into a populated table
//! needs (see `ingest::load`).

use diesel::prelude::*;
use diesel::sql_types::Bool;

use crate::error::Result;

#[derive(QueryableByName)]
struct Answer {
    #[diesel(sql_type = Bool)]
    yes: bool,
}

fn ask(conn: &mut PgConnection, sql: &str) -> QueryResult<bool> {
    diesel::sql_query(sql)
        .get_result::<Answer>(conn)
        .map(|a| a.yes)
}

/// What the key's build may sort in memory.
const BUILD_MEMORY: &str = "'1GB'";

/// Whether `daily_prices` has its primary key.
pub fn present(conn: &mut PgConnection) -> QueryResult<bool> {
    ask(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_constraint \
         WHERE conrelid = 'daily_prices'::regclass AND contype = 'p') AS yes",
    )
}

/// Drop the key when `daily_prices` is empty, for a load that builds it afterwards.
/// Returns whether the table is now without its key (false: it has rows, keep it).
pub fn defer(conn: &mut PgConnection) -> Result<bool> {
    // Rows without their key (a first load was killed): build it before anything else.
    restore(conn)?;
    conn.transaction(|conn| {
        // Nobody may add a row between the check and the drop.
        diesel::sql_query("LOCK TABLE daily_prices IN ACCESS EXCLUSIVE MODE").execute(conn)?;
        if !ask(
            conn,
            "SELECT NOT EXISTS (SELECT 1 FROM daily_prices) AS yes",
        )? {
            return Ok(false);
        }
        diesel::sql_query("ALTER TABLE daily_prices DROP CONSTRAINT daily_prices_pkey")
            .execute(conn)?;
        schedule_compression(conn, false)?;
        Ok(true)
    })
    .map_err(crate::db::db_error(
        "dropping the primary key of the empty daily_prices for the first load",
    ))
}

/// Build the key of `daily_prices` if it is missing (a first load ended or was killed).
/// Returns whether it built it.
pub fn restore(conn: &mut PgConnection) -> Result<bool> {
    let what = "building the primary key of daily_prices";
    if present(conn).map_err(crate::db::db_error(what))? {
        return Ok(false);
    }
    tracing::info!("building the primary key of daily_prices");
    let started = std::time::Instant::now();
    conn.transaction(|conn| {
        // Sorted in memory, not in 64 MB runs merged on disk (the default).
        crate::db::set_local(conn, &[("maintenance_work_mem", BUILD_MEMORY)])?;
        // On a hypertable TimescaleDB builds the same index on every chunk.
        diesel::sql_query(
            "ALTER TABLE daily_prices ADD CONSTRAINT daily_prices_pkey PRIMARY KEY (symbol, day)",
        )
        .execute(conn)?;
        schedule_compression(conn, true)
    })
    .map_err(crate::db::db_error(what))?;
    tracing::info!(
        secs = format_args!("{:.1}", started.elapsed().as_secs_f64()),
        "built the primary key of daily_prices"
    );
    Ok(true)
}

/// TimescaleDB: pause (`false`) or schedule again (`true`) the compression policy of
/// `daily_prices`, if it has one. Nothing on plain PostgreSQL.
fn schedule_compression(conn: &mut PgConnection, scheduled: bool) -> QueryResult<()> {
    if !ask(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS yes",
    )? {
        return Ok(());
    }
    diesel::sql_query(
        "SELECT alter_job(j.job_id, scheduled => $1) FROM timescaledb_information.jobs j \
         WHERE j.proc_name = 'policy_compression' AND j.hypertable_schema = current_schema() \
           AND j.hypertable_name = 'daily_prices'",
    )
    .bind::<Bool, _>(scheduled)
    .execute(conn)
    .map(|_| ())
}
