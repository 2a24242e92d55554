//! `runner render`: print the SQL a job would run.
//!
//! Needs no database: it renders for plain PostgreSQL unless `--var timescaledb=true`,
//! and uses `as_of` from the job (or NULL when the job leaves it to the data). With
//! `--select`, the analyses it depends on are printed too, dependencies first; an
//! incremental analysis is shown as its first build (`is_incremental` false).

use crate::analysis::{self, env::Dialect};
use crate::cli::RenderArgs;
use crate::error::Result;
use crate::job;

pub fn render(args: &RenderArgs) -> Result<()> {
    let job = job::load(&args.job.job, &args.job.vars)?;
    let dialect = match job.vars.get("timescaledb") {
        Some(job::VarValue::Boolean(true)) => Dialect::Timescale,
        _ => Dialect::Postgres,
    };
    let selected = analysis::selected(&job, &args.select)?;
    for r in analysis::render_all(&job, &selected, dialect, job.as_of)? {
        let into = match r.analysis.materialize {
            Some(kind) => format!(
                " -> {kind:?} {}",
                analysis::refs::relation(&r.analysis.name)
            )
            .to_lowercase(),
            None => String::new(),
        };
        println!(
            "-- analysis: {} ({}){into}\n{};\n",
            r.analysis.name, r.analysis.template, r.sql
        );
    }
    Ok(())
}
