//! `runner explain JOB --select NAME`: the plan and actual costs of analyses, from
//! `EXPLAIN (ANALYZE, BUFFERS)`.
//!
//! EXPLAIN ANALYZE executes the query, so it runs in a READ ONLY transaction that is
//! always rolled back, and as one statement (the extended protocol refuses several):
//! rendered SQL that tried to change data fails instead of changing it.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::Text;

use crate::analysis;
use crate::cli::ExplainArgs;
use crate::db::{self, Capabilities, Pool};
use crate::error::Result;

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

pub fn explain(args: &ExplainArgs) -> Result<()> {
    let job = super::load_job(&args.job)?;
    let selected = analysis::selected(&job, &args.select)?;
    let (pool, caps) = super::prepare_database(&job.database_url, 2)?;
    let (as_of, _) = super::as_of(&job, &mut *db::pool::checkout(&pool)?)?;
    if as_of.is_none() && !selected.is_empty() {
        return Err(super::no_prices());
    }
    let rendered = analysis::render_all(&job, &selected, analysis::dialect(&caps), as_of)?;
    for r in rendered {
        let plan = explain_sql(&pool, &caps, &r.analysis.name, &r.sql)?;
        crate::outln!(
            "-- {} ({})\n{}\n",
            r.analysis.name,
            caps.describe(),
            plan.join("\n")
        );
    }
    Ok(())
}

/// The `EXPLAIN (ANALYZE, BUFFERS)` lines of `sql`.
pub fn explain_sql(
    pool: &Pool,
    _caps: &Capabilities,
    name: &str,
    sql: &str,
) -> Result<Vec<String>> {
    let mut conn = crate::db::pool::checkout(pool)?;
    let mut lines = Vec::new();
    let outcome = conn
        .build_transaction()
        .read_only()
        .run::<(), DieselError, _>(|c| {
            let rows: Vec<PlanLine> =
                diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")).load(c)?;
            lines = rows.into_iter().map(|r| r.line).collect();
            Err(DieselError::RollbackTransaction)
        });
    match outcome {
        Err(DieselError::RollbackTransaction) => Ok(lines),
        Err(e) => Err(analysis::execute::sql_error(name, sql, &e)),
        Ok(()) => Ok(lines),
    }
}
