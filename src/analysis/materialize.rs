//! Keeping an analysis's result in `analytics.<name>` so later analyses (`ref('name')`)
//! and reports reuse it. Every kind is safe to re-run and changes the relation in one
//! transaction, so readers see the old result or the new one, never a half-built one:
//!
//! * `table`: rebuilt every run. When the columns are unchanged the rows are replaced in
//!   place (`DELETE` + `INSERT`), which keeps views that depend on it; otherwise the new
//!   table is built under a temporary name and swapped in.
//! * `view`: `CREATE OR REPLACE VIEW`, recreated when its columns changed.
//! * `incremental`: created on the first run (with a unique index on `unique_key`);
//!   later runs append only rows newer than what the table holds: per partition (the
//!   `unique_key` columns other than `time_column`, e.g. per symbol) when there is one,
//!   else overall. Re-running with no new data appends nothing.
//!
//!   It is also a consumer of the change log ([`crate::db::changelog`]), so corrected
//!   history reaches it: when the prices of symbol S changed from day D on, the rows of
//!   S (in the partition column, see [`partition_column`]) with `time_column >= D` are
//!   deleted before the append, and the template — which computes each partition's days
//!   after its last stored row — computes them again from the state stored before D.
//!   Deleting, appending and moving the watermark are one transaction. A table the log
//!   cannot vouch for (new consumer, or asked to rebuild) is rebuilt whole.
//!
//! The query is first made the body of a temporary view, which refuses anything but a
//! query and gives its columns before any write.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::Text;

use super::execute::{self, drop_query_view, query_columns, relation_columns, Failure};
use super::native::{self, Native, Stage};
use super::refs::{relation, SCHEMA};
use super::sink::Sink;
use super::AnalysisError;
use crate::db::changelog::{self, Pending, Source};
use crate::db::{quote, Pool};
use crate::error::Error;
use crate::job::{Analysis, Materialize};
use crate::table::{Column, Table};

/// What materializing did.
#[derive(Debug)]
pub struct Outcome {
    /// The relation's first rows (table, view) or the first rows appended
    /// (incremental), as many as the sink keeps; only the columns when not fetched.
    pub table: Table,
    /// How many rows the sink received.
    pub rows: u64,
    /// Rows written (0 for a view).
    pub written: u64,
}

/// Run `statement`, which holds the analysis SQL right after `prefix`.
fn run_with_sql(
    conn: &mut PgConnection,
    prefix: &str,
    sql: &str,
    suffix: &str,
) -> Result<usize, Failure> {
    diesel::sql_query(format!("{prefix}{sql}{suffix}"))
        .execute(conn)
        .map_err(|error| Failure::Sql {
            error,
            prefix: Some(prefix.chars().count()),
        })
}

#[derive(QueryableByName)]
struct KindRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

/// The relations in the analytics schema with their `relkind` (`r` table, `v` view, …).
///
/// # Errors
/// When the catalog cannot be read.
pub fn existing(conn: &mut PgConnection) -> Result<Vec<(String, String)>, Error> {
    let rows: Vec<KindRow> = diesel::sql_query(format!(
        "SELECT c.relname::text AS name, c.relkind::text AS kind FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {}",
        quote::literal(SCHEMA)
    ))
    .load(conn)
    .map_err(crate::db::db_error("listing the analytics schema"))?;
    Ok(rows.into_iter().map(|r| (r.name, r.kind)).collect())
}

fn relkind(conn: &mut PgConnection, name: &str) -> Result<Option<String>, DieselError> {
    let rows: Vec<KindRow> = diesel::sql_query(format!(
        "SELECT c.relname::text AS name, c.relkind::text AS kind FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {}",
        quote::literal(SCHEMA),
        quote::literal(name)
    ))
    .load(conn)?;
    Ok(rows.into_iter().next().map(|r| r.kind))
}

/// `TABLE`, `VIEW`, … for `DROP`, from a `relkind`.
fn drop_keyword(kind: &str) -> &'static str {
    match kind {
        "v" => "VIEW",
        "m" => "MATERIALIZED VIEW",
        "f" => "FOREIGN TABLE",
        _ => "TABLE",
    }
}

/// The incremental analysis's name in `change_log_consumers`.
pub fn consumer(name: &str) -> String {
    format!("analysis:{name}")
}

/// Whether the incremental analysis `name`, whose table exists, must be rebuilt whole
/// rather than appended to: the change log does not know it (the table predates the
/// log, or was built by a run that died before recording it) or was told to.
///
/// # Errors
/// When the log cannot be read.
pub fn needs_rebuild(conn: &mut PgConnection, name: &str) -> Result<bool, Error> {
    changelog::needs_rebuild(conn, &consumer(name))
        .map_err(crate::db::db_error("reading the change log's consumers"))
}

/// The column of an incremental analysis that holds the symbol, so a change to one
/// symbol's prices recomputes only that symbol: `symbol` when `unique_key` has it, else
/// the one `unique_key` column besides `time_column`. None: the table is recomputed
/// from the earliest changed day for all partitions.
pub fn partition_column(analysis: &Analysis) -> Option<&str> {
    let time = analysis.time_column.as_deref();
    let others: Vec<&str> = analysis
        .unique_key
        .iter()
        .map(String::as_str)
        .filter(|k| Some(*k) != time)
        .collect();
    match others.as_slice() {
        _ if others.contains(&"symbol") => Some("symbol"),
        [only] => Some(only),
        _ => None,
    }
}

/// Materialize `sql`, the rendered query of `analysis`, as `kind`; when the analysis
/// has outputs, read back the rows for the reports (into `sink`). A `native` analysis
/// reads its input on a second connection from `pool` when one is free. `appending`
/// says whether an incremental analysis was rendered to append (`is_incremental`) or to
/// build the whole table.
///
/// The template's query only ever executes read-only (see
/// [`execute::read_only`]): its rows go into a temporary table of the
/// transaction (the stage), and runner's own statements then write them into the
/// target, all in one transaction. A template cannot change anything but its own
/// result, whatever functions it calls.
///
/// # Errors
/// A failure naming the analysis and the part of its SQL the server points at; nothing
/// is changed then.
pub fn materialize(
    conn: &mut PgConnection,
    pool: Option<&Pool>,
    analysis: &Analysis,
    kind: Materialize,
    sql: &str,
    appending: bool,
    mut sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let fetch = !analysis.outputs.is_empty();
    let name = analysis.name.as_str();
    let target = relation(name);
    // Read (and register) before the transaction: the log's table lock must not be held
    // while the analysis runs.
    let pending = match kind {
        Materialize::Incremental => Some(
            changelog::pending(conn, &consumer(name), Source::DailyPrices)
                .map_err(crate::db::db_error("reading the change log"))?,
        ),
        _ => None,
    };
    let mut columns = Vec::new();
    let outcome = conn.transaction::<u64, Failure, _>(|conn| {
        execute::set_statement_timeout(conn, Some(analysis.statement_timeout))?;
        columns = query_columns(conn, sql)
            .map_err(|error| Failure::Sql { error, prefix: Some(execute::VIEW_PREFIX.chars().count()) })?;
        if let Some(native) = analysis.native {
            check_native_columns(native, &columns)?;
        }
        sink.start(&columns).map_err(|e| Failure::Refused(format!("writing its CSV failed: {e}")))?;
        let existing = relkind(conn, name)?;
        let written = match kind {
            Materialize::Table => {
                let rows = read_result(conn, &columns, RESULT, fetch.then_some(&mut sink))?;
                build_table(conn, name, &target, rows, &columns, existing.as_deref())?
            }
            Materialize::View => {
                drop_query_view(conn)?;
                build_view(conn, &target, sql, existing.as_deref())?;
                if fetch {
                    read_result(conn, &columns, &target, Some(&mut sink))?;
                }
                0
            }
            Materialize::Incremental => {
                let pending = pending.as_ref().expect("read above for incremental analyses");
                let written = match existing.as_deref() {
                    None if analysis.native.is_some() => {
                        let written = native_first_build(conn, pool, analysis, &columns, fetch.then_some(&mut sink))?;
                        index_incremental(conn, analysis, &target)?;
                        analyze(conn, &target)?;
                        written
                    }
                    None => {
                        let rows = stage_result(conn, pool, analysis, &columns, RESULT, None, fetch.then_some(&mut sink))?;
                        let written = build_table(conn, name, &target, rows, &columns, None)?;
                        index_incremental(conn, analysis, &target)?;
                        analyze(conn, &target)?;
                        written
                    }
                    Some("r") if !appending => {
                        let rows = stage_result(conn, pool, analysis, &columns, RESULT, None, fetch.then_some(&mut sink))?;
                        let written = build_table(conn, name, &target, rows, &columns, Some("r"))?;
                        index_incremental(conn, analysis, &target)?;
                        analyze(conn, &target)?;
                        written
                    }
                    Some("r") => {
                        forget_changed(conn, analysis, &target, pending)?;
                        append(conn, pool, analysis, &target, &columns, fetch.then_some(&mut sink))?
                    }
                    Some(other) => {
                        return Err(Failure::Refused(format!(
                            "{target} is a {}, not the table an incremental analysis appends to; drop it first",
                            drop_keyword(other).to_lowercase()
                        )))
                    }
                };
                changelog::mark_applied(conn, &consumer(name), pending.upto)?;
                crate::crashpoint::reached("materialize.before_commit");
                written
            }
        };
        // The query's view must not outlive the transaction (a committed temporary view
        // stays with the pooled connection).
        if kind != Materialize::View {
            drop_query_view(conn)?;
        }
        Ok(written)
    });
    if outcome.is_ok() && kind == Materialize::Incremental {
        crate::crashpoint::reached("materialize.committed");
    }
    let written = outcome.map_err(|failure| failure.into_error(name, sql))?;
    let received = sink
        .finish(columns)
        .map_err(|source| AnalysisError::WriteCsv {
            name: name.to_owned(),
            source,
        })?;
    Ok(Outcome {
        table: received.table,
        rows: received.total,
        written,
    })
}

/// The analysis's query as [`execute::query_columns`] left it.
const RESULT: &str = "pg_temp.runner_result";

/// Where a result waits between its read-only query and runner's writes: a temporary
/// table, dropped at the end of the transaction. Its rows never leave the server (the
/// way through the client — text cells out, a file, text arrays back in and cast — cost
/// more than the write itself: ~8 µs a row of 25 columns).
const STAGE: &str = "pg_temp.runner_stage";

/// Run `SELECT * FROM relation` read-only into the stage (and hand its rows to `sink`,
/// for the reports); returns how many rows it holds.
fn read_result(
    conn: &mut PgConnection,
    columns: &[Column],
    relation: &str,
    sink: Option<&mut Sink<'_>>,
) -> Result<u64, Failure> {
    if columns.is_empty() {
        return Ok(0);
    }
    fresh_stage(conn, columns)?;
    let list = column_list(columns);
    let rows = execute::read_only(conn, |conn| {
        Ok(diesel::sql_query(format!(
            "INSERT INTO {STAGE} ({list}) SELECT {list} FROM {relation}"
        ))
        .execute(conn)?)
    })?;
    if let Some(sink) = sink {
        // A temporary table is never scanned in parallel nor joined to another scan
        // (synchronized scans are for shared buffers only), so this reads the rows in
        // the order they were inserted: the query's.
        stream_to_sink(conn, columns, STAGE, sink)?;
    }
    Ok(rows as u64)
}

/// An empty stage with the result's columns, dropped at the end of the transaction.
fn fresh_stage(conn: &mut PgConnection, columns: &[Column]) -> Result<(), Failure> {
    diesel::sql_query(format!("DROP TABLE IF EXISTS {STAGE}")).execute(conn)?;
    create_table(conn, STAGE, columns, " ON COMMIT DROP")
}

/// Hand the rows of `relation` to `sink`, in the order it yields them.
fn stream_to_sink(
    conn: &mut PgConnection,
    columns: &[Column],
    relation: &str,
    sink: &mut Sink<'_>,
) -> Result<(), Failure> {
    execute::stream_rows(conn, columns, relation, &mut |row| {
        sink.push(row)
            .map_err(|e| Failure::Refused(format!("writing its CSV failed: {e}")))
    })
}

/// Stage the rows to write: those of the template's query (`relation`: the query's view,
/// or what of it is newer than the table), or for a `native` analysis runner's own
/// computation of them — every day, or when `appending_to` a table only the days after
/// what it holds. Returns how many rows the stage holds.
fn stage_result(
    conn: &mut PgConnection,
    pool: Option<&Pool>,
    analysis: &Analysis,
    columns: &[Column],
    relation: &str,
    appending_to: Option<&str>,
    sink: Option<&mut Sink<'_>>,
) -> Result<u64, Failure> {
    let Some(native) = analysis.native else {
        return read_result(conn, columns, relation, sink);
    };
    fresh_stage(conn, columns)?;
    let rows = native::stage(conn, pool, native, appending_to, Stage::Temporary)?;
    if let Some(sink) = sink {
        // Written in the template's order (symbol, day), which a temporary table keeps
        // (see read_result).
        stream_to_sink(conn, columns, STAGE, sink)?;
    }
    Ok(rows)
}

/// The first build of a native analysis: its rows written straight into a new table
/// (see [`Stage::NewTable`]), which becomes the target. Returns the rows written.
fn native_first_build(
    conn: &mut PgConnection,
    pool: Option<&Pool>,
    analysis: &Analysis,
    columns: &[Column],
    sink: Option<&mut Sink<'_>>,
) -> Result<u64, Failure> {
    let native = analysis.native.expect("a native analysis");
    create_table(conn, native::NEW_TABLE, columns, "")?;
    let rows = native::stage(conn, pool, native, None, Stage::NewTable)?;
    diesel::sql_query(format!(
        "ALTER TABLE {} RENAME TO {}",
        native::NEW_TABLE,
        quote::ident(&analysis.name)
    ))
    .execute(conn)?;
    if let Some(sink) = sink {
        // The template's order, which a table does not keep.
        let ordered = format!(
            "(SELECT * FROM {} ORDER BY symbol, day) AS native_rows",
            relation(&analysis.name)
        );
        stream_to_sink(conn, columns, &ordered, sink)?;
    }
    Ok(rows)
}

/// A native analysis writes its own columns: the template (its definition) must still
/// have them, or the two have parted.
fn check_native_columns(native: Native, columns: &[Column]) -> Result<(), Failure> {
    let expected = native.columns();
    if columns == expected.as_slice() {
        return Ok(());
    }
    let list = |cs: &[Column]| {
        cs.iter()
            .map(|c| format!("{} {}", c.name, c.sql_type))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Failure::Refused(format!(
        "its template's columns are not the ones runner's native `{}` computes\n  template: {}\n  native:   {}\n  = help: remove `native` to run the template as written",
        native.name(),
        list(columns),
        list(&expected)
    )))
}

/// The quoted names of `columns`, comma-separated.
fn column_list(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| quote::ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CREATE TABLE relation (…)` with the result's columns.
fn create_table(
    conn: &mut PgConnection,
    relation: &str,
    columns: &[Column],
    options: &str,
) -> Result<(), Failure> {
    let list = columns
        .iter()
        .map(|c| format!("{} {}", quote::ident(&c.name), c.sql_type))
        .collect::<Vec<_>>()
        .join(", ");
    diesel::sql_query(format!("CREATE TABLE {relation} ({list}){options}")).execute(conn)?;
    Ok(())
}

/// Write the staged rows (see [`read_result`]) into `relation`; returns the rows written.
fn insert_rows(
    conn: &mut PgConnection,
    relation: &str,
    columns: &[Column],
    staged: u64,
) -> Result<u64, Failure> {
    if columns.is_empty() || staged == 0 {
        return Ok(0);
    }
    let list = column_list(columns);
    let written = diesel::sql_query(format!(
        "INSERT INTO {relation} ({list}) SELECT {list} FROM {STAGE}"
    ))
    .execute(conn)?;
    Ok(written as u64)
}

/// Rebuild a `table` analysis from `rows`; returns the rows written.
fn build_table(
    conn: &mut PgConnection,
    name: &str,
    target: &str,
    rows: u64,
    columns: &[Column],
    existing: Option<&str>,
) -> Result<u64, Failure> {
    match existing {
        Some("r") if relation_columns(conn, target)? == columns => {
            diesel::sql_query(format!("DELETE FROM {target}")).execute(conn)?;
            insert_rows(conn, target, columns, rows)
        }
        Some(kind) => {
            let staging = format!("{name}__runner_new");
            let staging_rel = relation(&staging);
            diesel::sql_query(format!("DROP TABLE IF EXISTS {staging_rel}")).execute(conn)?;
            create_table(conn, &staging_rel, columns, "")?;
            let written = insert_rows(conn, &staging_rel, columns, rows)?;
            // CASCADE: views built on the old shape cannot survive a change of columns;
            // those in the job are rebuilt after it, as they depend on it.
            diesel::sql_query(format!("DROP {} {target} CASCADE", drop_keyword(kind)))
                .execute(conn)?;
            diesel::sql_query(format!(
                "ALTER TABLE {staging_rel} RENAME TO {}",
                quote::ident(name)
            ))
            .execute(conn)?;
            Ok(written)
        }
        None => {
            create_table(conn, target, columns, "")?;
            insert_rows(conn, target, columns, rows)
        }
    }
}

fn build_view(
    conn: &mut PgConnection,
    target: &str,
    sql: &str,
    existing: Option<&str>,
) -> Result<(), Failure> {
    // Creating a view does not execute its query: nothing of the template runs here.
    match existing {
        Some("v") => {
            // Replacing fails when columns were removed or changed type: then rebuild.
            let replaced = conn.transaction::<_, DieselError, _>(|c| {
                diesel::sql_query(format!("CREATE OR REPLACE VIEW {target} AS\n{sql}")).execute(c)
            });
            if replaced.is_err() {
                diesel::sql_query(format!("DROP VIEW {target} CASCADE")).execute(conn)?;
                run_with_sql(conn, &format!("CREATE VIEW {target} AS\n"), sql, "")?;
            }
        }
        Some(kind) => {
            diesel::sql_query(format!("DROP {} {target} CASCADE", drop_keyword(kind)))
                .execute(conn)?;
            run_with_sql(conn, &format!("CREATE VIEW {target} AS\n"), sql, "")?;
        }
        None => {
            run_with_sql(conn, &format!("CREATE VIEW {target} AS\n"), sql, "")?;
        }
    }
    Ok(())
}

/// The unique index on `unique_key` (or a plain one on the time column) that keeps the
/// table honest and makes the "newer than stored" lookup an index probe.
fn index_incremental(
    conn: &mut PgConnection,
    analysis: &Analysis,
    target: &str,
) -> Result<(), Failure> {
    let (unique, columns) = if analysis.unique_key.is_empty() {
        ("", analysis.time_column.iter().cloned().collect::<Vec<_>>())
    } else {
        ("UNIQUE ", analysis.unique_key.clone())
    };
    let list = columns
        .iter()
        .map(|c| quote::ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let index = quote::ident(&format!("{}_key", analysis.name));
    diesel::sql_query(format!(
        "CREATE {unique}INDEX IF NOT EXISTS {index} ON {target} ({list})"
    ))
    .execute(conn)?;
    Ok(())
}

/// Statistics for a table just built whole, so the next runs' appends and the queries
/// on it are planned for its real size (autovacuum would get there, but later: the first
/// nightly after a full build found none).
fn analyze(conn: &mut PgConnection, target: &str) -> Result<(), Failure> {
    diesel::sql_query(format!("ANALYZE {target}")).execute(conn)?;
    Ok(())
}

/// Delete the rows whose input changed since the table last caught up (see the module
/// docs), so the append computes them again.
fn forget_changed(
    conn: &mut PgConnection,
    analysis: &Analysis,
    target: &str,
    pending: &Pending,
) -> Result<(), Failure> {
    let (Some(time), false) = (analysis.time_column.as_deref(), pending.spans.is_empty()) else {
        return Ok(());
    };
    let time = quote::ident(time);
    probes_only(conn, true)?;
    match partition_column(analysis) {
        Some(partition) => {
            let symbols: Vec<&str> = pending.spans.iter().map(|s| s.symbol.as_str()).collect();
            let from: Vec<chrono::NaiveDate> =
                pending.spans.iter().map(|s| s.first_day()).collect();
            diesel::sql_query(format!(
                "DELETE FROM {target} t USING unnest($1::text[], $2::date[]) AS c(symbol, from_day) \
                 WHERE t.{partition} = c.symbol AND t.{time} >= c.from_day",
                partition = quote::ident(partition)
            ))
            .bind::<diesel::sql_types::Array<Text>, _>(&symbols)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Date>, _>(&from)
            .execute(conn)?;
        }
        None => {
            let from = pending.bounds().map(|(first, _)| first.date_naive());
            diesel::sql_query(format!("DELETE FROM {target} WHERE {time} >= $1::date"))
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::Date>, _>(from)
                .execute(conn)?;
        }
    }
    probes_only(conn, false)
}

/// Turn on (or back off) planning the deletes of [`forget_changed`] as the index probes
/// they are: a table built in this run has no statistics yet, and with 8,000 changed
/// symbols the planner guessed 38 k rows each and scanned the 23 M rows of the
/// indicators (12.9 s for a nightly that deleted nothing). Off again before the
/// template's query, which must be planned as it would be anywhere else.
fn probes_only(conn: &mut PgConnection, on: bool) -> Result<(), Failure> {
    let value = if on { "off" } else { "DEFAULT" };
    let settings = [
        "enable_seqscan",
        "enable_hashjoin",
        "enable_mergejoin",
        "jit",
    ];
    crate::db::set_local(conn, &settings.map(|setting| (setting, value)))?;
    Ok(())
}

/// Append the rows of the query newer than the table holds; returns the rows
/// appended (which also went to `sink`).
fn append(
    conn: &mut PgConnection,
    pool: Option<&Pool>,
    analysis: &Analysis,
    target: &str,
    columns: &[Column],
    sink: Option<&mut Sink<'_>>,
) -> Result<u64, Failure> {
    let stored = relation_columns(conn, target)?;
    if stored != columns {
        let list = |cs: &[Column]| {
            cs.iter()
                .map(|c| format!("{} {}", c.name, c.sql_type))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Failure::Refused(format!(
            "its columns changed, so it cannot append to {target}\n  now:    {}\n  stored: {}\n  = help: drop the table to rebuild it from scratch: DROP TABLE {target};",
            list(columns),
            list(&stored)
        )));
    }
    let time = analysis.time_column.as_deref().unwrap_or_default();
    if !columns.iter().any(|c| c.name == time) {
        return Err(Failure::Refused(format!(
            "its result has no column `{time}` (its `time_column`)"
        )));
    }
    let mut newer = vec![format!("old.{t} >= new.{t}", t = quote::ident(time))];
    newer.extend(
        analysis
            .unique_key
            .iter()
            .filter(|k| k.as_str() != time)
            .map(|k| format!("old.{k} = new.{k}", k = quote::ident(k))),
    );
    let list = column_list(columns);
    let newer_rows = format!(
        "(SELECT {list} FROM {RESULT} AS new WHERE NOT EXISTS (SELECT 1 FROM {target} AS old WHERE {})) AS appended",
        newer.join(" AND ")
    );
    let rows = stage_result(
        conn,
        pool,
        analysis,
        columns,
        &newer_rows,
        Some(target),
        sink,
    )?;
    insert_rows(conn, target, columns, rows)
}
