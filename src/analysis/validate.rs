//! `runner check` against a live database: every analysis is rendered for the server's
//! dialect and planned by PostgreSQL without running it, so a broken template (a typo'd
//! column, a function the server lacks) fails at check time rather than at 2 a.m.
//!
//! Everything happens in one transaction that is always rolled back: pending migrations
//! and runner's SQL helpers are applied inside it, then the analyses are visited in
//! dependency order. A plain query gets `EXPLAIN`. A materialized analysis is created
//! the way a run would create it, but empty (`CREATE TABLE … AS … WITH NO DATA`, or the
//! view), so analyses that `ref` it are checked against its real columns even when it
//! was never run. Incremental analyses are checked in both forms: the first build and
//! the append (`is_incremental`). An analysis whose dependency failed is skipped, so
//! one mistake is reported once. Nothing is left behind.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::env::Dialect;
use super::execute::Failure;
use super::refs::relation;
use super::{execute, functions, materialize, plan, AnalysisError, Existing};
use crate::db::migrate;
use crate::error::{Diagnostic, Diagnostics, Result};
use crate::job::{Job, Materialize};

/// Check every analysis of `job`; returns how many were checked.
///
/// # Errors
/// A config error with one diagnostic per analysis the server rejects (named, with the
/// part of the rendered SQL it points at); other errors when the database fails.
pub fn validate(
    conn: &mut PgConnection,
    job: &Job,
    dialect: Dialect,
    as_of: Option<NaiveDate>,
) -> Result<usize> {
    let mut outcome: Option<Result<usize>> = None;
    let _ = conn.transaction::<(), DieselError, _>(|conn| {
        outcome = Some(validate_in_transaction(conn, job, dialect, as_of));
        Err(DieselError::RollbackTransaction)
    });
    outcome.unwrap_or_else(|| Err(AnalysisError::NoTransaction.into()))
}

fn validate_in_transaction(
    conn: &mut PgConnection,
    job: &Job,
    dialect: Dialect,
    as_of: Option<NaiveDate>,
) -> Result<usize> {
    migrate::run_pending(conn)?;
    functions::install(conn)?;
    let kinds: HashMap<String, String> = materialize::existing(conn)?.into_iter().collect();
    let first_build = plan(
        job,
        &super::Selection::all(),
        dialect,
        as_of,
        &Existing::new(),
    )?;
    let incremental: Existing = job
        .analyses
        .iter()
        .filter(|a| a.materialize == Some(Materialize::Incremental))
        .map(|a| a.name.clone())
        .collect();
    let appends: HashMap<String, String> =
        plan(job, &super::Selection::all(), dialect, as_of, &incremental)?
            .into_iter()
            .flatten()
            .filter(|r| r.incremental)
            .map(|r| (r.analysis.name, r.sql))
            .collect();
    let mut problems = Diagnostics::default();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut checked = 0;
    for rendered in first_build.into_iter().flatten() {
        let name = rendered.analysis.name.clone();
        if rendered.depends.iter().any(|d| failed.contains(d)) {
            failed.insert(name);
            continue;
        }
        let existing = kinds.get(&name).map(String::as_str);
        let result = conn.transaction::<(), Failure, _>(|conn| {
            check_one(
                conn,
                &name,
                rendered.analysis.materialize,
                &rendered.sql,
                existing,
            )?;
            if let Some(append_sql) = appends.get(&name) {
                explain(conn, &name, append_sql)?;
            }
            Ok(())
        });
        checked += 1;
        if let Err(failure) = result {
            failed.insert(name.clone());
            let message = match failure {
                Failure::Sql { error, .. } => format!("analysis `{name}` failed: {error}"),
                Failure::Refused(reason) => format!("analysis `{name}` failed: {reason}"),
                Failure::Runner(e) => e.to_string(),
                Failure::Done => continue,
            };
            problems.push(Diagnostic::new(message).key(format!("analysis.{name}")));
        }
    }
    problems.into_result()?;
    Ok(checked)
}

fn explain(conn: &mut PgConnection, name: &str, sql: &str) -> Result<()> {
    const PREFIX: &str = "EXPLAIN\n";
    diesel::sql_query(format!("{PREFIX}{sql}"))
        .execute(conn)
        .map(drop)
        .map_err(|e| execute::sql_error_after(name, sql, &e, Some(PREFIX.chars().count())))
}

/// Plan a query, or create a materialized analysis empty so dependents see its columns.
fn check_one(
    conn: &mut PgConnection,
    name: &str,
    kind: Option<Materialize>,
    sql: &str,
    existing: Option<&str>,
) -> Result<(), Failure> {
    let Some(kind) = kind else {
        return Ok(explain(conn, name, sql)?);
    };
    let target = relation(name);
    if let Some(existing) = existing {
        let keyword = if existing == "v" { "VIEW" } else { "TABLE" };
        diesel::sql_query(format!("DROP {keyword} {target} CASCADE")).execute(conn)?;
    }
    let (prefix, suffix) = match kind {
        Materialize::View => (format!("CREATE VIEW {target} AS\n"), String::new()),
        Materialize::Table | Materialize::Incremental => (
            format!("CREATE TABLE {target} AS\n"),
            "\nWITH NO DATA".to_owned(),
        ),
    };
    diesel::sql_query(format!("{prefix}{sql}{suffix}"))
        .execute(conn)
        .map(drop)
        .map_err(|e| execute::sql_error_after(name, sql, &e, Some(prefix.chars().count())))?;
    if kind != Materialize::View {
        // Plan it too: CREATE … WITH NO DATA parses but does not plan the query.
        explain(conn, name, sql)?;
    }
    Ok(())
}
