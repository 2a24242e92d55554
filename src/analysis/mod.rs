//! Analyses: templates rendered to SQL (`env`, `render`) and run (`execute`, the only
//! place SQL text is executed). Independent analyses run in parallel over the pool.

pub mod env;
pub mod execute;
pub mod render;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rayon::prelude::*;

use self::env::Dialect;
use crate::db::{Capabilities, Pool};
use crate::error::{suggest, Diagnostic, Diagnostics, Error, Result};
use crate::job::{Analysis, Job};
use crate::table::Table;

/// An analysis with its rendered SQL.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub analysis: Analysis,
    pub sql: String,
}

/// An analysis with its result.
#[derive(Debug, Clone)]
pub struct Executed {
    pub analysis: Analysis,
    pub sql: String,
    pub table: Table,
    pub elapsed: Duration,
}

/// The dialect the templates render for.
pub fn dialect(caps: &Capabilities) -> Dialect {
    if caps.has_timescale() {
        Dialect::Timescale
    } else {
        Dialect::Postgres
    }
}

/// The analyses `select` names (all when empty), in job order.
///
/// # Errors
/// A config error for a name the job does not define, with the closest one.
pub fn selected<'a>(job: &'a Job, select: &[String]) -> Result<Vec<&'a Analysis>> {
    let mut problems = Diagnostics::default();
    for name in select {
        if !job.analyses.iter().any(|a| &a.name == name) {
            let mut d = Diagnostic::new(format!("job `{}` has no analysis `{name}`", job.name)).key("--select");
            if let Some(s) = suggest(name, job.analyses.iter().map(|a| a.name.as_str())) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            problems.push(d);
        }
    }
    problems.into_result()?;
    Ok(job
        .analyses
        .iter()
        .filter(|a| select.is_empty() || select.contains(&a.name))
        .collect())
}

/// Render the selected analyses for `dialect` and `as_of`.
pub fn render_all(job: &Job, analyses: &[&Analysis], dialect: Dialect, as_of: Option<NaiveDate>) -> Result<Vec<Rendered>> {
    let env = env::environment(&job.templates_dir, dialect);
    let ctx = render::context(job, as_of, dialect == Dialect::Timescale);
    let mut problems = Diagnostics::default();
    let mut rendered = Vec::new();
    for analysis in analyses {
        match render::render(&env, &job.templates_dir, analysis, &ctx) {
            Ok(sql) => rendered.push(Rendered { analysis: (*analysis).clone(), sql }),
            Err(Error::Config(d)) => problems.0.extend(d.0),
            Err(e) => return Err(e),
        }
    }
    problems.into_result()?;
    Ok(rendered)
}

/// Run rendered analyses, in parallel over the pool; results keep the input order.
pub fn run_all(pool: &Pool, rendered: Vec<Rendered>) -> Result<Vec<Executed>> {
    rendered
        .into_par_iter()
        .map(|r| {
            let mut conn = pool.get().map_err(|e| Error::Message(format!("no database connection: {e}")))?;
            let started = Instant::now();
            let table = execute::query_table(&mut conn, &r.analysis.name, &r.sql)?;
            let elapsed = started.elapsed();
            tracing::info!(analysis = %r.analysis.name, rows = table.rows.len(), ms = elapsed.as_millis() as u64, "analysis done");
            Ok(Executed { analysis: r.analysis, sql: r.sql, table, elapsed })
        })
        .collect()
}
