//! `runner render`: print the SQL a job would run.
//!
//! Needs no database: it renders for plain PostgreSQL unless `--var timescaledb=true`.
//! `as_of` comes from the job or `--var`; when the job leaves it to the data, render
//! asks the job's database for the latest trading day (waiting at most a few seconds)
//! and, when it cannot, renders `as_of` as NULL and says how to pass it. With
//! `--select`, the analyses it depends on are printed too, dependencies first; an
//! incremental analysis is shown as its first build (`is_incremental` false).

use crate::analysis::{self, env::Dialect};
use crate::cli::RenderArgs;
use crate::error::Result;
use crate::job;

pub fn render(args: &RenderArgs) -> Result<()> {
    let job = super::load_job(&args.job)?;
    let dialect = match job.vars.get("timescaledb") {
        Some(job::VarValue::Boolean(true)) => Dialect::Timescale,
        _ => Dialect::Postgres,
    };
    let selected = analysis::selected(&job, &args.select)?;
    let as_of = match job.as_of {
        Some(day) => Some(day),
        None => as_of_from_database(&job.database_url, job.report.as_of_share),
    };
    for r in analysis::render_all(&job, &selected, dialect, as_of)? {
        let into = match r.analysis.materialize {
            Some(kind) => format!(
                " -> {kind:?} {}",
                analysis::refs::relation(&r.analysis.name)
            )
            .to_lowercase(),
            None => String::new(),
        };
        crate::outln!(
            "-- analysis: {} ({}){into}\n{};\n",
            r.analysis.name,
            r.analysis.template,
            r.sql
        );
    }
    Ok(())
}

/// The as-of day a run would use (the latest day `share` of the symbols reached in the
/// job's database), or None (with a note on stderr).
fn as_of_from_database(database_url: &str, share: f64) -> Option<chrono::NaiveDate> {
    let found =
        crate::db::pool::connect_one(&with_connect_timeout(database_url)).and_then(|mut conn| {
            Ok(crate::ingest::coverage::Coverage::read_last_days(&mut conn)?.default_as_of(share))
        });
    match found {
        Ok(Some(day)) => {
            crate::errln!("-- as_of = {day}: the latest trading day in the job's database");
            Some(day)
        }
        Ok(None) => {
            crate::errln!("-- as_of is NULL: the job's database holds no prices yet; pass --var as_of=YYYY-MM-DD");
            None
        }
        Err(_) => {
            crate::errln!(
                "-- as_of is NULL: the job's database ({}) is not reachable; pass --var as_of=YYYY-MM-DD",
                crate::db::url::redact(database_url)
            );
            None
        }
    }
}

/// `database_url` with libpq's `connect_timeout` of a few seconds, unless it has one.
fn with_connect_timeout(database_url: &str) -> String {
    if database_url.contains("connect_timeout") {
        database_url.to_owned()
    } else if database_url.contains("://") {
        let sep = if database_url.contains('?') { '&' } else { '?' };
        format!("{database_url}{sep}connect_timeout=3")
    } else {
        format!("{database_url} connect_timeout=3")
    }
}
