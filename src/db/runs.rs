//! The `runs` table: one row per `runner run`, written when it starts and when it ends,
//! so the table and the exit code always agree.
//!
//! A run that dies (kill -9, lost server) cannot write its end. The next run, once it
//! holds the run lock and therefore knows no other run is alive, marks such rows
//! `abandoned`.

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;

use crate::db::schema::runs;

/// How a run ended, as stored in `runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything loaded and every analysis ran (exit 0).
    Succeeded,
    /// Finished, but some files or analyses failed (exit 1).
    Partial,
    /// Stopped by an error (exit 1, or the config-error code).
    Failed,
    /// Another run held the lock and this one was told not to wait.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Partial => "partial",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// Record a run that starts now; returns its id.
///
/// # Errors
/// The database's.
pub fn start(
    conn: &mut PgConnection,
    job: &str,
    vars: &serde_json::Value,
    as_of: Option<NaiveDate>,
) -> QueryResult<i64> {
    diesel::insert_into(runs::table)
        .values((
            runs::job.eq(job),
            runs::vars.eq(vars),
            runs::as_of.eq(as_of),
        ))
        .returning(runs::id)
        .get_result(conn)
}

/// What a run's end records.
#[derive(Debug, Clone)]
pub struct End<'a> {
    pub status: Status,
    pub exit_code: i32,
    pub as_of: Option<NaiveDate>,
    pub summary: Option<serde_json::Value>,
    pub error: Option<&'a str>,
    pub report_dir: Option<&'a str>,
}

/// Record the end of run `id`.
///
/// # Errors
/// The database's.
pub fn finish(conn: &mut PgConnection, id: i64, end: &End) -> QueryResult<()> {
    diesel::update(runs::table.find(id))
        .set((
            runs::finished_at.eq(Some(Utc::now())),
            runs::status.eq(end.status.as_str()),
            runs::exit_code.eq(Some(end.exit_code)),
            runs::as_of.eq(end.as_of),
            runs::summary.eq(&end.summary),
            runs::error.eq(end.error),
            runs::report_dir.eq(end.report_dir),
        ))
        .execute(conn)?;
    Ok(())
}

/// Mark every other `running` row `abandoned`. Call only while holding the run lock:
/// then no other run is alive, and those rows belong to runs that died.
///
/// # Errors
/// The database's.
pub fn abandon_others(conn: &mut PgConnection, current: i64) -> QueryResult<usize> {
    diesel::update(
        runs::table
            .filter(runs::status.eq("running"))
            .filter(runs::id.ne(current)),
    )
    .set((
        runs::status.eq("abandoned"),
        runs::finished_at.eq(Some(Utc::now())),
        runs::error.eq(Some(
            "the run stopped without recording its end (killed, or its connection was lost)",
        )),
    ))
    .execute(conn)
}

/// One past run, as `runner history` and `index.html` show it.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct PastRun {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub job: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    pub exit_code: Option<i32>,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub started: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub seconds: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Date>)]
    pub as_of: Option<NaiveDate>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub rows_loaded: Option<i64>,
    /// Failed files and analyses (and failed data tests), or the error that stopped it.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub failures: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub report_dir: Option<String>,
}

/// The latest `limit` runs, newest first, of `job` (all jobs when None).
///
/// # Errors
/// The database's.
pub fn history(
    conn: &mut PgConnection,
    job: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<PastRun>> {
    diesel::sql_query(
        "SELECT id, job, status, exit_code, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS started, \
                extract(epoch FROM finished_at - started_at)::float8 AS seconds, as_of, \
                (summary->'ingest'->>'rows_loaded')::bigint AS rows_loaded, \
                coalesce(nullif((SELECT string_agg(f, '; ') FROM jsonb_array_elements_text(summary->'failures') f), ''), error) AS failures, \
                report_dir \
         FROM runs WHERE $1::text IS NULL OR job = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(job)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
}

#[derive(QueryableByName)]
struct LastStart {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    last: Option<chrono::DateTime<Utc>>,
}

/// When the latest run of `job` started (any status: a skipped run was an attempt too).
///
/// # Errors
/// The database's (no `runs` table yet among them).
pub fn last_started(
    conn: &mut PgConnection,
    job: &str,
) -> QueryResult<Option<chrono::DateTime<Utc>>> {
    diesel::sql_query("SELECT max(started_at) AS last FROM runs WHERE job = $1")
        .bind::<diesel::sql_types::Text, _>(job)
        .get_result::<LastStart>(conn)
        .map(|row| row.last)
}
