//! Running an analysis's query, and the error a failed analysis statement becomes.
//!
//! An analysis is a single query. It runs inside a transaction that is always rolled
//! back, as the body of a temporary view: that gives the result's column names and
//! types even when it has no rows, refuses anything but a query (views cannot hold
//! `INSERT`/`DELETE`, not even in a `WITH`), and leaves nothing behind. The query itself
//! then executes read-only (see [`read_only`]), so a function that writes (`setval`,
//! `nextval`, a user function) fails instead of changing state, and under the
//! analysis's `statement_timeout`. Rows are read through a cursor a batch at a time and
//! handed to a [`Sink`], so a large result is never held whole. Cells come back as
//! PostgreSQL's own text, so CSV output is exact. The helpers here are shared with
//! `materialize`, which keeps a result in the `analytics` schema instead.

use std::time::Duration;

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Array, BigInt, Nullable, Text};

use super::sink::{Received, Sink};
use super::AnalysisError;
use crate::db::quote;
use crate::error::Error;
use crate::table::{Column, Table};

const VIEW: &str = "runner_result";
pub(crate) const VIEW_PREFIX: &str = "CREATE TEMPORARY VIEW runner_result AS\n";
/// The cursor rows are read through, and how many each fetch brings.
const CURSOR: &str = "runner_rows";
const BATCH: usize = 5_000;

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    sql_type: String,
}

#[derive(QueryableByName)]
struct CellsRow {
    #[diesel(sql_type = Array<Nullable<Text>>)]
    cells: Vec<Option<String>>,
}

/// Run `sql` (the query of analysis `name`) and return its whole result.
///
/// # Errors
/// A failure naming the analysis, with the database's message and the part of the SQL
/// it points at.
pub fn query_table(conn: &mut PgConnection, name: &str, sql: &str) -> Result<Table, Error> {
    Ok(query_into(conn, name, sql, None, Sink::all())?.table)
}

/// Run `sql` (the query of analysis `name`) read-only and under `timeout`, handing its
/// rows to `sink`.
///
/// # Errors
/// As [`query_table`]; also when the sink's CSV cannot be written.
pub fn query_into(
    conn: &mut PgConnection,
    name: &str,
    sql: &str,
    timeout: Option<Duration>,
    mut sink: Sink<'_>,
) -> Result<Received, Error> {
    let mut columns = Vec::new();
    let outcome = conn.transaction::<(), Failure, _>(|conn| {
        set_statement_timeout(conn, timeout)?;
        columns = query_columns(conn, sql).map_err(|error| Failure::Sql {
            error,
            prefix: Some(VIEW_PREFIX.chars().count()),
        })?;
        diesel::sql_query("SET LOCAL transaction_read_only = on").execute(conn)?;
        sink.start(&columns)
            .map_err(|e| Failure::Runner(write_error(name, e)))?;
        stream_rows(conn, &columns, &format!("pg_temp.{VIEW}"), &mut |row| {
            sink.push(row)
                .map_err(|e| Failure::Runner(write_error(name, e)))
        })?;
        // Always roll back: the view (and anything else) must not outlive the query.
        Err(Failure::Done)
    });
    match outcome {
        Err(Failure::Done) => {}
        Err(failure) => return Err(failure.into_error(name, sql)),
        Ok(()) => unreachable!("the transaction always rolls back"),
    }
    sink.finish(columns).map_err(|e| write_error(name, e))
}

fn write_error(name: &str, source: crate::report::ReportError) -> Error {
    AnalysisError::WriteCsv {
        name: name.to_owned(),
        source,
    }
    .into()
}

/// `SET LOCAL statement_timeout` for the rest of the transaction (`None`: the server's).
pub(crate) fn set_statement_timeout(
    conn: &mut PgConnection,
    timeout: Option<Duration>,
) -> Result<(), DieselError> {
    if let Some(timeout) = timeout {
        diesel::sql_query(format!(
            "SET LOCAL statement_timeout = {}",
            timeout.as_millis().max(1)
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Run `read` with the transaction read-only, then make it read-write again for the
/// caller's own writes: PostgreSQL allows read-only inside a savepoint and restores
/// read-write when the savepoint ends. Everything the analysis SQL executes for a
/// materialization runs inside such a `read`. What `read` wrote into temporary tables
/// (the only writes a read-only transaction allows) is kept — the savepoint is
/// released — which is how `materialize` stages a result on the server instead of
/// carrying every row through the client and back. On failure it is rolled back.
pub(crate) fn read_only<T>(
    conn: &mut PgConnection,
    read: impl FnOnce(&mut PgConnection) -> Result<T, Failure>,
) -> Result<T, Failure> {
    diesel::sql_query("SAVEPOINT runner_read_only").execute(conn)?;
    let outcome = diesel::sql_query("SET LOCAL transaction_read_only = on")
        .execute(conn)
        .map_err(Failure::from)
        .and_then(|_| read(conn));
    let rolled_back = match outcome {
        Ok(_) => Ok(0),
        Err(_) => diesel::sql_query("ROLLBACK TO SAVEPOINT runner_read_only").execute(conn),
    };
    let restored = rolled_back
        .and_then(|_| diesel::sql_query("RELEASE SAVEPOINT runner_read_only").execute(conn));
    let value = outcome?;
    restored?;
    Ok(value)
}

/// Every row of `relation` (a name, or a parenthesised query with an alias) as text
/// cells, a batch at a time, each handed to `each`.
pub(crate) fn stream_rows(
    conn: &mut PgConnection,
    columns: &[Column],
    relation: &str,
    each: &mut dyn FnMut(Vec<Option<String>>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    if columns.is_empty() {
        return Ok(());
    }
    let cells = columns
        .iter()
        .map(|c| format!("{}::text", quote::ident(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    diesel::sql_query(format!(
        "DECLARE {CURSOR} NO SCROLL CURSOR FOR SELECT ARRAY[{cells}]::text[] AS cells FROM {relation}"
    ))
    .execute(conn)?;
    loop {
        let batch: Vec<CellsRow> =
            diesel::sql_query(format!("FETCH {BATCH} FROM {CURSOR}")).load(conn)?;
        let done = batch.len() < BATCH;
        for row in batch {
            each(row.cells)?;
        }
        if done {
            break;
        }
    }
    diesel::sql_query(format!("CLOSE {CURSOR}")).execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Release the session-level advisory locks an analysis took (`pg_advisory_lock` is
/// allowed read-only and outlives the transaction, so it would stay with the pooled
/// connection and block later runs); returns how many were held.
///
/// # Errors
/// When the server cannot be asked.
pub fn release_session_locks(conn: &mut PgConnection) -> Result<i64, DieselError> {
    let held: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .get_result(conn)?;
    if held.n > 0 {
        diesel::sql_query("SELECT pg_advisory_unlock_all()").execute(conn)?;
    }
    Ok(held.n)
}

/// The result columns of query `sql`, found by making it the body of a temporary view
/// (which also refuses anything that is not a query). The view stays until the
/// transaction ends; call inside one. Errors point into `sql` via [`sql_error`].
pub fn query_columns(conn: &mut PgConnection, sql: &str) -> Result<Vec<Column>, DieselError> {
    diesel::sql_query(format!("{VIEW_PREFIX}{sql}")).execute(conn)?;
    relation_columns(conn, &format!("pg_temp.{VIEW}"))
}

/// Drop the view [`query_columns`] made, so the next query of the transaction can use it.
pub fn drop_query_view(conn: &mut PgConnection) -> Result<(), DieselError> {
    diesel::sql_query(format!("DROP VIEW IF EXISTS pg_temp.{VIEW}"))
        .execute(conn)
        .map(drop)
}

/// The columns of relation `relation` (a name PostgreSQL resolves, quoted as needed).
pub fn relation_columns(
    conn: &mut PgConnection,
    relation: &str,
) -> Result<Vec<Column>, DieselError> {
    let columns: Vec<ColumnRow> = diesel::sql_query(format!(
        "SELECT attname::text AS name, format_type(atttypid, atttypmod) AS sql_type \
         FROM pg_attribute WHERE attrelid = {}::regclass \
         AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        quote::literal(relation)
    ))
    .load(conn)?;
    Ok(columns
        .into_iter()
        .map(|c| Column {
            name: c.name,
            sql_type: c.sql_type,
        })
        .collect())
}

/// Every row of `relation` (after the optional `WITH …` in `with`) as text cells.
pub fn load_cells(
    conn: &mut PgConnection,
    columns: &[Column],
    with: &str,
    relation: &str,
) -> Result<Vec<Vec<Option<String>>>, DieselError> {
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let cells = columns
        .iter()
        .map(|c| format!("{}::text", quote::ident(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<CellsRow> = diesel::sql_query(format!(
        "{with}SELECT ARRAY[{cells}]::text[] AS cells FROM {relation}"
    ))
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.cells).collect())
}

/// `analysis `x` failed: <message>` plus the SQL line the server points at, for a
/// statement that was `sql` behind [`VIEW_PREFIX`] (as [`query_columns`] sends it).
pub fn sql_error(name: &str, sql: &str, e: &DieselError) -> Error {
    sql_error_after(name, sql, e, Some(VIEW_PREFIX.chars().count()))
}

/// Why an analysis statement failed inside a transaction: the transaction's closure
/// needs one error type that diesel's errors convert into. Shared by `materialize` and
/// `validate`.
pub(crate) enum Failure {
    /// A statement failed; `prefix` is how many characters precede the analysis SQL in
    /// it (`None`: the statement does not start with it).
    Sql {
        error: DieselError,
        prefix: Option<usize>,
    },
    /// runner refused to go on, with the complete reason.
    Refused(String),
    /// A step inside the transaction failed with an error runner already described.
    Runner(Error),
    /// Everything worked; the transaction is rolled back on purpose.
    Done,
}

impl From<DieselError> for Failure {
    fn from(error: DieselError) -> Self {
        Failure::Sql {
            error,
            prefix: None,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Runner(error)
    }
}

impl Failure {
    /// The error of analysis `name` (whose SQL is `sql`): a failed statement with the
    /// server's detail, hint and the line it points at.
    pub(crate) fn into_error(self, name: &str, sql: &str) -> Error {
        match self {
            Failure::Sql { error, prefix } => sql_error_after(name, sql, &error, prefix),
            Failure::Refused(reason) => AnalysisError::Failed {
                name: name.to_owned(),
                reason,
            }
            .into(),
            Failure::Runner(error) => error,
            Failure::Done => AnalysisError::RolledBackAfterSuccess {
                name: name.to_owned(),
            }
            .into(),
        }
    }
}

/// As [`sql_error`], for a statement holding `sql` after `prefix` characters (`None`:
/// the statement does not start with it, so no excerpt).
pub fn sql_error_after(name: &str, sql: &str, e: &DieselError, prefix: Option<usize>) -> Error {
    let mut reason = e.to_string().trim().to_owned();
    if let DieselError::DatabaseError(kind, info) = e {
        if matches!(kind, diesel::result::DatabaseErrorKind::ReadOnlyTransaction) {
            reason.push_str(
                "\n  = analyses run read-only: a template may read the database, not change it",
            );
        }
        if let Some(detail) = info.details() {
            reason.push_str(&format!("\n  detail: {detail}"));
        }
        if let Some(hint) = info.hint() {
            reason.push_str(&format!("\n  hint: {hint}"));
        }
        if let (Some(position), Some(prefix)) = (info.statement_position(), prefix) {
            // The server counts characters from 1 in the statement it was sent.
            let offset = usize::try_from(position - 1)
                .unwrap_or(0)
                .saturating_sub(prefix);
            reason.push_str(&excerpt(sql, offset));
        }
    }
    AnalysisError::Failed {
        name: name.to_owned(),
        reason,
    }
    .into()
}

/// The line of `sql` holding character `offset`, with a caret under it.
fn excerpt(sql: &str, offset: usize) -> String {
    let byte = sql.char_indices().nth(offset).map_or(sql.len(), |(i, _)| i);
    let line_start = sql[..byte].rfind('\n').map_or(0, |i| i + 1);
    let line_no = sql[..byte].matches('\n').count() + 1;
    let line = sql[line_start..].lines().next().unwrap_or("");
    let column = sql[line_start..byte].chars().count();
    format!(
        "\n  --> rendered SQL line {line_no}\n   | {line}\n   | {}^",
        " ".repeat(column)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_points_at_the_character() {
        let sql = "SELECT 1\nFROM nope\nWHERE x";
        assert_eq!(
            excerpt(sql, 14),
            "\n  --> rendered SQL line 2\n   | FROM nope\n   |      ^"
        );
    }
}
