//! Analyses: templates rendered to SQL (`env`, `render`, `refs`), ordered by their
//! dependencies (`dag`) and run. Rendered template SQL is executed in three modules
//! only: `execute` runs plain queries, `materialize` keeps results in the `analytics`
//! schema (for a `native` analysis, the rows runner computed itself: `native`), and
//! `validate` plans them all against a live database inside a transaction it always
//! rolls back. Analyses of one dependency level run in parallel over the
//! pool; `functions` installs runner's own SQL helpers.

pub mod dag;
pub mod datatest;
pub mod env;
pub mod execute;
pub mod functions;
pub mod materialize;
pub mod native;
pub mod refs;
pub mod render;
pub mod select;
pub mod sink;
pub mod statement;
pub mod validate;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use self::env::Dialect;
pub use self::select::Selection;
use crate::db::{Capabilities, Pool};
use crate::error::{suggest, Diagnostic, Diagnostics, Error, Result};
use crate::job::{Analysis, Job, Materialize};
use crate::table::Table;

/// Why analyses could not be run or checked (beyond what the job file says wrong, which
/// is a config error).
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A statement of analysis `name` failed or was refused; `reason` is the server's
    /// message with its detail, hint and the SQL line it points at.
    #[error("analysis `{name}` failed: {reason}")]
    Failed { name: String, reason: String },
    #[error("cannot install runner's SQL helpers in schema `{schema}`: {source}")]
    InstallHelpers {
        schema: &'static str,
        #[source]
        source: diesel::result::Error,
    },
    #[error("could not open a transaction to check the analyses")]
    NoTransaction,
    /// The transaction of a successful analysis ended without its result (a bug, not
    /// the template's fault: the statement itself succeeded).
    #[error("analysis `{name}` was rolled back after it succeeded")]
    RolledBackAfterSuccess { name: String },
    /// The analysis left session-level advisory locks behind (they were released).
    #[error(
        "analysis `{name}` failed: it took {locks} advisory lock(s) (pg_advisory_lock) that \
         would outlive it; an analysis may read, not lock — released"
    )]
    AdvisoryLocks { name: String, locks: i64 },
    #[error("writing {}: {source}", path.display())]
    CreateCsv {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("analysis `{name}`: writing its CSV failed: {source}")]
    WriteCsv {
        name: String,
        #[source]
        source: crate::report::ReportError,
    },
}

/// An analysis with its rendered SQL.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub analysis: Analysis,
    pub sql: String,
    /// Declared dependencies and the analyses its template `ref`s, sorted.
    pub depends: Vec<String>,
    /// Rendered for appending to an existing incremental table (`is_incremental`).
    pub incremental: bool,
}

/// An analysis with its result.
#[derive(Debug, Clone)]
pub struct Executed {
    pub analysis: Analysis,
    pub sql: String,
    /// Its columns and first rows: as many as the reports show (`max_rows`), or up to
    /// [`sink::CHART_ROWS`] when it has charts. Every row went to its CSV file.
    pub table: Table,
    /// How many rows the result had.
    pub total_rows: u64,
    pub elapsed: Duration,
    /// Rows written into the analysis's `analytics` relation (materialized tables only).
    pub written: Option<u64>,
    /// Why it failed (its table is then empty); None when it ran.
    pub failure: Option<String>,
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
    let selection = Selection::names(select);
    check_names(job, &selection)?;
    let names: Vec<&str> = selection
        .selectors
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    Ok(job
        .analyses
        .iter()
        .filter(|a| names.is_empty() || names.contains(&a.name.as_str()))
        .collect())
}

/// Every name in `selection` is an analysis of `job`.
///
/// # Errors
/// A config error per unknown name, with a suggestion.
pub fn check_names(job: &Job, selection: &Selection) -> Result<()> {
    let mut problems = Diagnostics::default();
    for (name, option) in selection.mentioned() {
        if !job.analyses.iter().any(|a| a.name == name) {
            let mut d =
                Diagnostic::new(format!("job `{}` has no analysis `{name}`", job.name)).key(option);
            if let Some(s) = suggest(name, job.analyses.iter().map(|a| a.name.as_str())) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            problems.push(d);
        }
    }
    problems.into_result()
}

/// Which analyses' incremental tables already exist: those render with
/// `is_incremental = true` and append. Empty for a first run or without a database.
pub type Existing = BTreeSet<String>;

/// Render the selected analyses (all when `select` is empty) and everything they depend
/// on, and cut them into dependency levels (see [`dag`]), each level in job order.
///
/// # Errors
/// Config errors for template problems (file and line), unknown names and cycles.
pub fn plan(
    job: &Job,
    selection: &Selection,
    dialect: Dialect,
    as_of: Option<NaiveDate>,
    existing: &Existing,
) -> Result<Vec<Vec<Rendered>>> {
    let recorder = refs::Recorder::default();
    let mut env = env::environment(&job.templates_dir, dialect);
    refs::add_ref_function(&mut env, job, recorder.clone());
    let base = render::context(job, as_of, dialect == Dialect::Timescale);
    let by_name: HashMap<&str, &Analysis> =
        job.analyses.iter().map(|a| (a.name.as_str(), a)).collect();
    check_names(job, selection)?;
    let mut queue: Vec<&Analysis> = if selection.needs_whole_graph() {
        job.analyses.iter().collect()
    } else {
        let roots: Vec<&str> = selection
            .selectors
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        job.analyses
            .iter()
            .filter(|a| roots.contains(&a.name.as_str()))
            .collect()
    };
    let mut rendered: HashMap<String, Rendered> = HashMap::new();
    let mut problems = Diagnostics::default();
    while let Some(analysis) = queue.pop() {
        if rendered.contains_key(&analysis.name) {
            continue;
        }
        let incremental = analysis.materialize == Some(Materialize::Incremental)
            && existing.contains(&analysis.name);
        let ctx = minijinja::context! {
            this => minijinja::Value::from_safe_string(refs::relation(&analysis.name)),
            is_incremental => incremental,
            ..base.clone()
        };
        recorder.take();
        let sql = match render::render(&env, &job.templates_dir, analysis, &ctx) {
            Ok(sql) => sql,
            Err(Error::Config(d)) => {
                problems.0.extend(d.0);
                String::new()
            }
            Err(e) => return Err(e),
        };
        let mut depends: BTreeSet<String> = recorder.take();
        depends.extend(analysis.depends_on.iter().cloned());
        queue.extend(
            depends
                .iter()
                .filter_map(|d| by_name.get(d.as_str()).copied()),
        );
        let depends = depends.into_iter().collect();
        rendered.insert(
            analysis.name.clone(),
            Rendered {
                analysis: analysis.clone(),
                sql,
                depends,
                incremental,
            },
        );
    }
    problems.into_result()?;
    let graph: HashMap<String, Vec<String>> = rendered
        .iter()
        .map(|(name, r)| (name.clone(), r.depends.clone()))
        .collect();
    let chosen = selection.resolve(&graph);
    // Job order, so levels (and reports) list analyses as the job file does. An
    // excluded dependency is not waited for: its kept result is used as it is.
    let mut ordered: Vec<Rendered> = job
        .analyses
        .iter()
        .filter(|a| chosen.contains(&a.name))
        .filter_map(|a| rendered.remove(&a.name))
        .map(|mut r| {
            r.depends.retain(|d| chosen.contains(d));
            r
        })
        .collect();
    let nodes: Vec<(String, Vec<String>)> = ordered
        .iter()
        .map(|r| (r.analysis.name.clone(), r.depends.clone()))
        .collect();
    let levels = dag::levels(&nodes).map_err(|cycle| {
        Error::config(
            Diagnostic::new(format!("analyses depend on each other in a cycle: {}", cycle.join(" -> ")))
                .key(format!("analysis.{}.depends_on", cycle.first().map_or("", String::as_str)))
                .help("a dependency comes from `depends_on` or from `ref('…')` in the template; remove one"),
        )
    })?;
    let mut slots: Vec<Option<Rendered>> = ordered.drain(..).map(Some).collect();
    Ok(levels
        .into_iter()
        .map(|level| level.into_iter().filter_map(|i| slots[i].take()).collect())
        .collect())
}

/// Render the selected analyses and their dependencies for `dialect` and `as_of`, in an
/// order that runs dependencies first.
///
/// # Errors
/// As [`plan`].
pub fn render_all(
    job: &Job,
    analyses: &[&Analysis],
    dialect: Dialect,
    as_of: Option<NaiveDate>,
) -> Result<Vec<Rendered>> {
    let names: Vec<String> = analyses.iter().map(|a| a.name.clone()).collect();
    Ok(plan(
        job,
        &Selection::names(&names),
        dialect,
        as_of,
        &Existing::new(),
    )?
    .into_iter()
    .flatten()
    .collect())
}

/// Run the planned levels in turn, each level's analyses in parallel over the pool.
/// Results come back in job order. An analysis that fails does not stop the others:
/// it is returned with its error in [`Executed::failure`], and the analyses that depend
/// on it are not run (their failure says why). Analyses written in SQL wait for
/// `gate` first (see [`Gate`]); native ones do not.
///
/// With `csv_dir`, the result of each analysis with CSV output is streamed into
/// `csv_dir/<name>.csv` while it is read.
pub fn run_all(
    pool: &Pool,
    levels: Vec<Vec<Rendered>>,
    job: &Job,
    csv_dir: Option<&std::path::Path>,
    gate: &Gate,
) -> Vec<Executed> {
    let at_once = sql_at_once();
    let mut executed: Vec<Executed> = Vec::new();
    for level in levels {
        let failed: BTreeSet<String> = executed
            .iter()
            .filter(|e| e.failure.is_some())
            .map(|e| e.analysis.name.clone())
            .collect();
        let done = run_level(level, at_once, |r| {
            let blocked: Vec<&String> = r.depends.iter().filter(|d| failed.contains(*d)).collect();
            if !blocked.is_empty() {
                let why = format!(
                    "not run: it depends on {}, which failed",
                    blocked
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Executed::failed(r, why);
            }
            if r.analysis.native.is_none() {
                if let Err(why) = gate.wait() {
                    return Executed::failed(r, format!("not run: {why}"));
                }
            }
            run_one(pool, r, job.report.max_rows, csv_dir)
        });
        executed.extend(done);
    }
    let position = |name: &str| job.analyses.iter().position(|a| a.name == name);
    executed.sort_by_key(|e| position(&e.analysis.name));
    executed
}

/// SQL analyses run at once (each is one backend's work): one per core. The run's
/// connection pool is sized from it too.
pub fn sql_at_once() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Run one level's analyses on threads of their own: those written in SQL `at_once` at
/// a time (each is one backend's work), each native one beside them (it mostly waits
/// for its reading connections and for rayon, which computes its rows).
///
/// Not on rayon's threads: an analysis waiting there on a query (or on the [`Gate`])
/// holds one, and on two cores the native rows were then computed only once the other
/// analyses of the level were done.
fn run_level<F>(level: Vec<Rendered>, at_once: usize, run: F) -> Vec<Executed>
where
    F: Fn(Rendered) -> Executed + Sync,
{
    let (native, sql): (Vec<Rendered>, Vec<Rendered>) =
        level.into_iter().partition(|r| r.analysis.native.is_some());
    let threads = at_once.clamp(1, sql.len().max(1));
    let queue = Mutex::new(std::collections::VecDeque::from(sql));
    let done = Mutex::new(Vec::new());
    let keep = |executed: Executed| {
        done.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(executed);
    };
    std::thread::scope(|scope| {
        for r in native {
            scope.spawn(|| keep(run(r)));
        }
        for _ in 0..threads {
            scope.spawn(|| loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let Some(r) = next else { break };
                keep(run(r));
            });
        }
    });
    done.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// What the analyses written in SQL wait for before they run: the aggregates' catch-up,
/// which the native analyses (they read `daily_prices` only) run alongside. A SQL
/// template may read `prices_weekly` or `prices_monthly`, directly or through a view
/// or a function, so none of them runs before the aggregates are current.
#[derive(Debug, Default)]
pub struct Gate {
    /// `None` while closed; then what the awaited work came to.
    outcome: Mutex<Option<std::result::Result<(), String>>>,
    opened: Condvar,
}

impl Gate {
    /// A gate closed until [`Gate::release`].
    pub fn closed() -> Gate {
        Gate::default()
    }

    /// Let the waiting analyses go: to run, or with `Err`, to fail saying why.
    pub fn release(&self, outcome: std::result::Result<(), String>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.opened.notify_all();
    }

    fn wait(&self) -> std::result::Result<(), String> {
        let guard = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let guard = self
            .opened
            .wait_while(guard, |outcome| outcome.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone().unwrap_or(Ok(()))
    }
}

impl Executed {
    fn failed(r: Rendered, failure: String) -> Executed {
        tracing::error!(analysis = %r.analysis.name, "{failure}");
        Executed {
            analysis: r.analysis,
            sql: r.sql,
            table: Table::default(),
            total_rows: 0,
            elapsed: Duration::ZERO,
            written: None,
            failure: Some(failure),
        }
    }
}

fn run_one(
    pool: &Pool,
    r: Rendered,
    max_rows: usize,
    csv_dir: Option<&std::path::Path>,
) -> Executed {
    match try_run_one(pool, &r, max_rows, csv_dir) {
        Ok(executed) => executed,
        Err(e) => {
            let message = explain_timeout(&r.analysis, e.to_string());
            Executed::failed(r, message)
        }
    }
}

/// A statement cancelled by `statement_timeout` says which limit it hit and where to
/// change it.
fn explain_timeout(analysis: &Analysis, message: String) -> String {
    if !message.contains("canceling statement due to statement timeout") {
        return message;
    }
    format!(
        "cancelled after {} s: it ran longer than its statement_timeout (set `statement_timeout` in seconds on the analysis or the job)",
        analysis.statement_timeout.as_secs()
    )
}

/// Rows of a result kept in memory for the reports and charts of `analysis`.
fn rows_to_keep(analysis: &Analysis, max_rows: usize) -> usize {
    if analysis.charts.is_empty() {
        max_rows
    } else {
        max_rows.max(sink::CHART_ROWS)
    }
}

fn try_run_one(
    pool: &Pool,
    r: &Rendered,
    max_rows: usize,
    csv_dir: Option<&std::path::Path>,
) -> Result<Executed> {
    let mut conn = crate::db::pool::checkout(pool)?;
    let started = Instant::now();
    let csv: Option<Box<dyn std::io::Write>> = match csv_dir {
        Some(dir) if r.analysis.outputs.contains(&crate::job::OutputFormat::Csv) => {
            let path = dir.join(crate::report::csv_file_name(&r.analysis.name));
            let file = std::fs::File::create(&path).map_err(|source| AnalysisError::CreateCsv {
                path: path.clone(),
                source,
            })?;
            Some(Box::new(std::io::BufWriter::new(file)))
        }
        _ => None,
    };
    let sink = sink::Sink::new(rows_to_keep(&r.analysis, max_rows), csv);
    let outcome = match r.analysis.materialize {
        None => execute::query_into(
            &mut conn,
            &r.analysis.name,
            &r.sql,
            Some(r.analysis.statement_timeout),
            sink,
        )
        .map(|received| (received.table, received.total, None)),
        Some(kind) => materialize::materialize(
            &mut conn,
            Some(pool),
            &r.analysis,
            kind,
            &r.sql,
            r.incremental,
            sink,
        )
        .map(|outcome| (outcome.table, outcome.rows, Some(outcome.written))),
    };
    // A lock the template took with `pg_advisory_lock` outlives its transaction: release
    // it, and fail the analysis, before the connection goes back to the pool.
    let locks = execute::release_session_locks(&mut conn)
        .map_err(crate::db::db_error("checking the analysis's connection"))?;
    let (table, total_rows, written) = outcome?;
    if locks > 0 {
        return Err(AnalysisError::AdvisoryLocks {
            name: r.analysis.name.clone(),
            locks,
        }
        .into());
    }
    let elapsed = started.elapsed();
    tracing::info!(analysis = %r.analysis.name, rows = total_rows, written, ms = elapsed.as_millis() as u64, "analysis done");
    Ok(Executed {
        analysis: r.analysis.clone(),
        sql: r.sql.clone(),
        table,
        total_rows,
        elapsed,
        written,
        failure: None,
    })
}

#[cfg(test)]
mod tests {
    use super::Gate;

    #[test]
    fn a_gate_holds_its_waiters_until_released_and_tells_them_the_outcome() {
        let opened = Gate::closed();
        opened.release(Ok(()));
        assert_eq!(opened.wait(), Ok(()));
        let gate = Gate::closed();
        let released = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        let outcome = gate.wait();
                        (released.load(std::sync::atomic::Ordering::SeqCst), outcome)
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(50));
            released.store(true, std::sync::atomic::Ordering::SeqCst);
            gate.release(Err("the refresh failed".to_owned()));
            for waiter in waiters {
                assert_eq!(
                    waiter.join().unwrap(),
                    (true, Err("the refresh failed".to_owned()))
                );
            }
        });
        // Later waiters get the same outcome at once.
        assert_eq!(gate.wait(), Err("the refresh failed".to_owned()));
    }
}
