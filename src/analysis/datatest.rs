//! Running the job's data tests (`[[test]]`, checked in `job::datatest`): each becomes
//! a query for its failing rows, run in a transaction that is always rolled back. A
//! test passes when that query returns nothing.

use chrono::NaiveDate;
use diesel::PgConnection;

use super::env::{self, Dialect};
use super::{execute, refs, render, Executed};
use crate::db::quote;
use crate::job::datatest::{Check, DataTest, Severity, Target};
use crate::job::Job;
use crate::table::Table;

/// Failing rows kept to show in the reports.
pub const SAMPLE_ROWS: usize = 5;

/// How one test came out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    /// The test could not run (its query failed, or the analysis it tests did).
    Error,
}

/// A test's result, for the log, `summary.json` and the reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestResult {
    pub name: String,
    pub severity: Severity,
    pub outcome: Outcome,
    /// Failing rows (0 when passed).
    pub failing: u64,
    /// Why it failed or could not run, in words.
    pub message: String,
    /// Up to [`SAMPLE_ROWS`] failing rows.
    #[serde(skip)]
    pub sample: Table,
    #[serde(skip)]
    pub sql: String,
}

impl TestResult {
    /// An error-level test that did not pass: the run fails with `EXIT_TESTS`.
    pub fn fails_the_run(&self) -> bool {
        self.severity == Severity::Error && self.outcome != Outcome::Passed
    }
}

/// Run every test of `job` after its analyses ran (`executed`).
pub fn run_all(
    conn: &mut PgConnection,
    job: &Job,
    executed: &[Executed],
    as_of: Option<NaiveDate>,
    dialect: Dialect,
) -> Vec<TestResult> {
    job.tests
        .iter()
        .map(|test| {
            let result = match failing_rows_sql(job, test, executed, as_of, dialect) {
                Ok(sql) => run_one(conn, test, sql),
                Err(unrunnable) => TestResult {
                    name: test.name.clone(),
                    severity: test.severity,
                    outcome: Outcome::Error,
                    failing: 0,
                    message: unrunnable.to_string(),
                    sample: Table::default(),
                    sql: String::new(),
                },
            };
            log(&result);
            result
        })
        .collect()
}

fn log(result: &TestResult) {
    match (&result.outcome, result.severity) {
        (Outcome::Passed, _) => tracing::info!("test {}: passed", result.name),
        (_, Severity::Warn) => tracing::warn!("test {} (warn): {}", result.name, result.message),
        (_, Severity::Error) => {
            tracing::error!("test {} (error): {}", result.name, result.message)
        }
    }
}

fn run_one(conn: &mut PgConnection, test: &DataTest, sql: String) -> TestResult {
    let counted = format!("SELECT count(*) AS failing FROM (\n{sql}\n) AS failing_rows");
    let sampled = format!("SELECT * FROM (\n{sql}\n) AS failing_rows LIMIT {SAMPLE_ROWS}");
    let outcome = execute::query_table(conn, &test.name, &counted).and_then(|count| {
        let failing: u64 = count.rows[0][0]
            .as_deref()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let sample = if failing > 0 {
            execute::query_table(conn, &test.name, &sampled)?
        } else {
            Table::default()
        };
        Ok((failing, sample))
    });
    let (outcome, failing, message, sample) = match outcome {
        Ok((0, sample)) => (Outcome::Passed, 0, "passed".to_owned(), sample),
        Ok((n, sample)) => (
            Outcome::Failed,
            n,
            format!("{n} failing row{}", if n == 1 { "" } else { "s" }),
            sample,
        ),
        Err(e) => (
            Outcome::Error,
            0,
            format!("could not run: {e}"),
            Table::default(),
        ),
    };
    TestResult {
        name: test.name.clone(),
        severity: test.severity,
        outcome,
        failing,
        message,
        sample,
        sql,
    }
}

/// Why a data test could not be run at all (its outcome is then an error, not a
/// failure).
#[derive(Debug, thiserror::Error)]
enum Unrunnable {
    #[error("analysis `{name}` was not run (see --select)")]
    NotRun { name: String },
    #[error("analysis `{name}` failed: {failure}")]
    AnalysisFailed { name: String, failure: String },
    #[error("template `{template}`: {source}")]
    Template {
        template: String,
        #[source]
        source: minijinja::Error,
    },
}

/// The query returning the rows that fail `test`.
fn failing_rows_sql(
    job: &Job,
    test: &DataTest,
    executed: &[Executed],
    as_of: Option<NaiveDate>,
    dialect: Dialect,
) -> Result<String, Unrunnable> {
    let rel = match &test.target {
        None => String::new(),
        Some(Target::Table(t)) => quote::ident(t),
        Some(Target::Analysis(name)) => {
            let Some(e) = executed.iter().find(|e| &e.analysis.name == name) else {
                return Err(Unrunnable::NotRun { name: name.clone() });
            };
            if let Some(failure) = &e.failure {
                return Err(Unrunnable::AnalysisFailed {
                    name: name.clone(),
                    failure: failure.clone(),
                });
            }
            match e.analysis.materialize {
                Some(_) => refs::relation(name),
                None => format!("(\n{}\n)", e.sql),
            }
        }
    };
    let idents = |cols: &[String]| {
        cols.iter()
            .map(|c| quote::ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(match &test.check {
        Check::Unique { columns } => format!(
            "SELECT {c}, count(*) AS copies FROM {rel} AS t GROUP BY {c} HAVING count(*) > 1 ORDER BY {c}",
            c = idents(columns)
        ),
        Check::NotNull { columns } => format!(
            "SELECT * FROM {rel} AS t WHERE {}",
            columns
                .iter()
                .map(|c| format!("{} IS NULL", quote::ident(c)))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        Check::AcceptedRange { column, min, max } => {
            let col = quote::ident(column);
            let mut outside = Vec::new();
            if let Some(min) = min {
                outside.push(format!("{col} < {}", quote::literal(min)));
            }
            if let Some(max) = max {
                outside.push(format!("{col} > {}", quote::literal(max)));
            }
            format!(
                "SELECT * FROM {rel} AS t WHERE {} ORDER BY {col}",
                outside.join(" OR ")
            )
        }
        Check::RowCount { min, max } => {
            let mut outside = vec!["false".to_owned()];
            outside.extend(min.map(|m| format!("count(*) < {m}")));
            outside.extend(max.map(|m| format!("count(*) > {m}")));
            format!(
                "SELECT count(*) AS row_count FROM {rel} AS t HAVING {}",
                outside.join(" OR ")
            )
        }
        Check::Freshness {
            column,
            partition,
            within,
            of_today,
        } => {
            let reference = match (of_today, as_of) {
                (false, Some(day)) => format!("DATE {}", quote::literal(&day.to_string())),
                _ => "current_date".to_owned(),
            };
            let col = quote::ident(column);
            let behind = format!(
                "(SELECT count(*) FROM generate_series(max({col})::date + 1, {reference}, INTERVAL '1 day') AS g(d) \
                 WHERE extract(isodow FROM g.d) < 6)"
            );
            let (select_part, group) = match partition {
                Some(p) => (format!("{}, ", quote::ident(p)), format!(" GROUP BY {}", quote::ident(p))),
                None => (String::new(), String::new()),
            };
            format!(
                "SELECT {select_part}max({col})::date AS latest, {reference} AS reference, {behind} AS weekdays_behind \
                 FROM {rel} AS t{group} HAVING max({col}) IS NULL OR {behind} > {within} ORDER BY latest"
            )
        }
        Check::NoGaps { column, partition } => {
            let (col, part) = (quote::ident(column), quote::ident(partition));
            format!(
                "SELECT s.part AS {part}, c.day AS missing_day \
                 FROM (SELECT {part} AS part, min({col})::date AS first, max({col})::date AS last \
                       FROM {rel} AS t GROUP BY {part}) AS s \
                 JOIN (SELECT DISTINCT day FROM daily_prices) AS c ON c.day > s.first AND c.day < s.last \
                 WHERE NOT EXISTS (SELECT 1 FROM {rel} AS t WHERE t.{part} = s.part AND t.{col}::date = c.day) \
                 ORDER BY 1, 2"
            )
        }
        Check::Custom { template } => render_custom(job, template, as_of, dialect).map_err(
            |source| Unrunnable::Template {
                template: template.clone(),
                source,
            },
        )?,
    })
}

fn render_custom(
    job: &Job,
    template: &str,
    as_of: Option<NaiveDate>,
    dialect: Dialect,
) -> Result<String, minijinja::Error> {
    let mut env = env::environment(&job.templates_dir, dialect);
    refs::add_ref_function(&mut env, job, refs::Recorder::default());
    let ctx = render::context(job, as_of, dialect == Dialect::Timescale);
    env.get_template(template)
        .and_then(|t| t.render(ctx))
        .map(|sql| sql.trim().trim_end_matches(';').trim_end().to_owned())
}
