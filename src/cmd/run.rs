//! `runner run`: the whole job — database ready, ingest, change-log drain, analyses,
//! reports — recorded in the `runs` table with the status its exit code says.

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use diesel::PgConnection;

use crate::analysis::{self, Executed};
use crate::cli::RunArgs;
use crate::db::runs::Status;
use crate::db::{self, Capabilities, Pool};
use crate::error::{Context, Error, Result};
use crate::ingest::{self, IngestOptions, IngestSummary};
use crate::job::{self, Job, OutputFormat};
use crate::report::{self, publish::Staging, AnalysisReport, ReportMeta};

/// What a run produced, also written as `summary.json` beside the reports.
#[derive(Debug, serde::Serialize)]
pub struct RunSummary {
    pub job: String,
    /// The `runs` row of this run.
    pub run_id: i64,
    /// `succeeded`, or `partial` when some files or analyses failed; the `runs` row
    /// says the same.
    pub status: Status,
    pub exit_code: i32,
    pub as_of: Option<NaiveDate>,
    pub backend: String,
    pub ingest: Option<IngestSummary>,
    pub analyses: Vec<AnalysisSummary>,
    pub report_dir: PathBuf,
    /// What `[storage]` changed, the aggregate refreshes and maintenance done.
    pub storage: Vec<String>,
    /// One line per failed file or analysis (and one for failed data tests).
    pub failures: Vec<String>,
    /// Every data test's outcome.
    pub tests: Vec<analysis::datatest::TestResult>,
}

/// A run that did all it could while some files, analyses or exports failed (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{} (see {}); everything else is done", failures.join("; "), summary_file.display())]
pub struct Partial {
    /// One line per failure, as in the summary.
    pub failures: Vec<String>,
    /// The run's `summary.json`, which has the details.
    pub summary_file: PathBuf,
}

#[derive(Debug, serde::Serialize)]
pub struct AnalysisSummary {
    pub name: String,
    pub rows: usize,
    pub millis: u64,
    /// Rows written into `analytics.<name>` (materialized tables only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<u64>,
    /// Why it failed (or one of its charts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

pub fn run(args: &RunArgs) -> Result<()> {
    let job = super::load_job(&args.job)?;
    let selection = analysis::Selection::new(&args.select, &args.exclude);
    // Planned twice on purpose. This first plan renders every selected template with
    // the plain PostgreSQL dialect so a bad --select, a template error or a dependency
    // cycle exits 2 before runner touches the database (no lock, no migration, no
    // `runs` row: a configuration error runs nothing). The plan that runs comes later in
    // `execute`: it needs the server's dialect, the as-of day read from the loaded data
    // and which incremental tables exist, none of which is known here.
    analysis::plan(
        &job,
        &selection,
        analysis::env::Dialect::Postgres,
        job.as_of,
        &analysis::Existing::new(),
    )?;
    let mut options = IngestOptions::default();
    // The lock comes before migrations, so two first runs at once do not race to
    // create the schema; the database must exist to hold it.
    db::pool::ensure_database(&job.database_url)?;
    let lock = match db::lock::acquire(&job.database_url, wait_policy(args)) {
        Ok(lock) => lock,
        Err(e @ Error::Busy(_)) => {
            record_skipped(&job, &e);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    crate::crashpoint::pause("run.locked");
    options.stop = Some(lock.lost_flag());
    let (pool, caps) =
        super::prepare_existing_database(&job.database_url, pool_size(&job, options.workers))?;
    let run_id = {
        let mut conn = db::pool::checkout(&pool)?;
        let vars = serde_json::to_value(&job.vars).unwrap_or_default();
        let id = db::runs::start(&mut conn, &job.name, &vars, job.as_of)
            .map_err(db::db_error("recording the run"))?;
        let abandoned =
            db::runs::abandon_others(&mut conn, id).map_err(db::db_error("recording the run"))?;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "earlier runs that died without recording their end are marked abandoned"
            );
        }
        id
    };
    let outcome = execute(&pool, &caps, &job, args, &options, &lock, run_id);
    let error_text = outcome.as_ref().err().map(ToString::to_string);
    let end = match &outcome {
        Ok(s) => db::runs::End {
            status: s.status,
            exit_code: s.exit_code,
            as_of: s.as_of,
            summary: serde_json::to_value(s).ok(),
            error: None,
            report_dir: s.report_dir.to_str(),
        },
        Err(e) => db::runs::End {
            status: Status::Failed,
            exit_code: e.code(),
            as_of: None,
            summary: None,
            error: error_text.as_deref(),
            report_dir: None,
        },
    };
    crate::crashpoint::reached("run.before_finish");
    let mut conn = db::pool::checkout(&pool)?;
    db::runs::finish(&mut conn, run_id, &end).map_err(db::db_error("recording the run's end"))?;
    write_index(&mut conn, &job);
    let summary = outcome?;
    if summary.exit_code == crate::error::EXIT_TESTS {
        return Err(Error::TestsFailed(format!(
            "{} (see {})",
            summary.failures.join("; "),
            summary.report_dir.join("summary.json").display()
        )));
    }
    if summary.status == Status::Partial {
        return Err(Partial {
            failures: summary.failures,
            summary_file: summary.report_dir.join("summary.json"),
        }
        .into());
    }
    Ok(())
}

/// `<report dir>/index.html`: every run of the job with links to the reports on disk.
/// Written whole (temporary file, then rename); failing to is only a warning.
fn write_index(conn: &mut PgConnection, job: &Job) {
    #[derive(Debug, thiserror::Error)]
    enum IndexError {
        #[error(transparent)]
        Query(#[from] diesel::result::Error),
        #[error(transparent)]
        Write(#[from] std::io::Error),
    }
    let mut write = || -> std::result::Result<(), IndexError> {
        let runs = db::runs::history(conn, Some(&job.name), 500)?;
        let dir = &job.report.dir;
        let html = report::index::render_index(&job.name, &runs, &|as_of| {
            dir.join(as_of).join("report.html").exists()
        });
        std::fs::create_dir_all(dir)?;
        let temp = dir.join(format!(".index.html.{}", std::process::id()));
        std::fs::write(&temp, html)?;
        std::fs::rename(&temp, dir.join("index.html"))?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::warn!("could not write the runs index: {e}");
    }
}

fn wait_policy(args: &RunArgs) -> db::lock::Wait {
    match (args.no_wait, args.wait_lock) {
        (true, _) => db::lock::Wait::Upto(std::time::Duration::ZERO),
        (false, Some(secs)) => db::lock::Wait::Upto(std::time::Duration::from_secs(secs)),
        (false, None) => db::lock::Wait::Forever,
    }
}

/// A run that did not get the lock still leaves its row (when the schema is there to
/// hold it), so `runs` shows every attempt; not being able to is not an error.
fn record_skipped(job: &Job, error: &Error) {
    let recorded = db::pool::connect_one(&job.database_url).and_then(|mut conn| {
        let vars = serde_json::to_value(&job.vars).unwrap_or_default();
        let id = db::runs::start(&mut conn, &job.name, &vars, job.as_of)
            .map_err(db::db_error("recording the run"))?;
        let end = db::runs::End {
            status: Status::Skipped,
            exit_code: error.code(),
            as_of: job.as_of,
            summary: None,
            error: Some(&error.to_string()),
            report_dir: None,
        };
        db::runs::finish(&mut conn, id, &end).map_err(db::db_error("recording the run"))
    });
    if let Err(e) = recorded {
        tracing::debug!("could not record the skipped run: {e}");
    }
}

fn execute(
    pool: &Pool,
    caps: &Capabilities,
    job: &Job,
    args: &RunArgs,
    options: &IngestOptions,
    lock: &db::lock::RunLock,
    run_id: i64,
) -> Result<RunSummary> {
    let mut storage = {
        let mut conn = crate::db::pool::checkout(pool)?;
        db::storage::apply_settings(&mut conn, caps, &job.storage)?
    };
    let ingest = if args.skip_ingest || job.ingest.is_empty() {
        None
    } else {
        // On plain PostgreSQL the batches write the buckets of the files they replace
        // themselves, so a first load leaves the aggregates nothing to recompute.
        let (rebuilt, aggregates) = {
            let mut conn = crate::db::pool::checkout(pool)?;
            db::storage::aggregates::prepare_ingest(&mut conn, caps, &job.storage.aggregates)?
        };
        storage.extend(rebuilt);
        let options = IngestOptions {
            aggregates,
            ..options.clone()
        };
        let summary = ingest::run(pool, job, &options)?;
        tracing::info!("{}", summary.line());
        crate::crashpoint::reached("run.after_ingest");
        Some(summary)
    };
    lock.check()?;
    // Whatever any run changed and did not carry into the aggregates yet, this run does
    // now, even when no file changed (the run that loaded them may have died). It runs
    // next to the native analyses, which read only `daily_prices`; the SQL analyses
    // wait for it (`analysis::Gate`). A maintenance after the ingest analyzes the
    // aggregates, so with one the catch-up comes first, alone.
    let gate = analysis::Gate::closed();
    let drain = || {
        let drained = db::storage::drain_aggregates(
            pool,
            caps,
            &job.storage,
            refresh_connections(options.workers),
        );
        gate.release(
            drained
                .as_ref()
                .map(|_| ())
                .map_err(|e| format!("the aggregates could not be brought up to date: {e}")),
        );
        drained
    };
    let tail = Tail {
        pool,
        caps,
        job,
        args,
        run_id,
        lock,
        gate: &gate,
    };
    if ingest.is_some() && job.storage.maintain_after_ingest {
        storage.extend(drain()?);
        return tail.analyze_and_report(ingest, storage, || Ok(Vec::new()));
    }
    std::thread::scope(|scope| {
        let draining = scope.spawn(drain);
        tail.analyze_and_report(ingest, storage, || {
            draining
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

/// What a run does once its files are loaded.
struct Tail<'a> {
    pool: &'a Pool,
    caps: &'a Capabilities,
    job: &'a Job,
    args: &'a RunArgs,
    run_id: i64,
    lock: &'a db::lock::RunLock,
    /// What the SQL analyses wait for: the aggregates' catch-up, `drained`.
    gate: &'a analysis::Gate,
}

impl Tail<'_> {
    /// Maintenance, the analyses, the data tests and the reports. `drained` waits for the
    /// aggregates' catch-up, running meanwhile, and returns what it did; it is called
    /// once the analyses are done, before the change log is pruned.
    fn analyze_and_report(
        &self,
        ingest: Option<IngestSummary>,
        mut storage: Vec<String>,
        drained: impl FnOnce() -> Result<Vec<String>>,
    ) -> Result<RunSummary> {
        let Tail {
            pool,
            caps,
            job,
            args,
            run_id,
            lock,
            gate,
        } = *self;
        let mut conn = crate::db::pool::checkout(pool)?;
        if ingest.is_some() && job.storage.maintain_after_ingest {
            storage.extend(
                crate::maintain::run(
                    &mut conn,
                    caps,
                    &job.storage,
                    &crate::maintain::INGEST_TABLES,
                )?
                .actions,
            );
        }
        lock.check()?;
        let symbol_warnings = crate::warnings::unmatched_symbols(&mut conn, job)?;
        for warning in &symbol_warnings {
            tracing::warn!("{warning}");
        }
        let (as_of, as_of_warning) = super::as_of(job, &mut conn)?;
        analysis::functions::install(&mut conn)?;
        // Incremental analyses whose table exists append to it, unless the change log
        // cannot vouch for the table (then it is rebuilt whole).
        let mut existing = analysis::Existing::new();
        for (name, kind) in analysis::materialize::existing(&mut conn)? {
            if kind == "r" && !analysis::materialize::needs_rebuild(&mut conn, &name)? {
                existing.insert(name);
            }
        }
        // The real plan (see the check in `run` for why there are two).
        let selection = analysis::Selection::new(&args.select, &args.exclude);
        let levels = analysis::plan(job, &selection, analysis::dialect(caps), as_of, &existing)?;
        if as_of.is_none() && levels.iter().any(|level| !level.is_empty()) {
            return Err(super::no_prices());
        }
        // The report folder exists before the analyses run: their CSV files are streamed
        // into it as the rows are read.
        let name = as_of.map_or_else(|| "no-data".to_owned(), |d| d.to_string());
        let staging = Staging::new(&job.report.dir, &name, &run_id.to_string())
            .with_context(|| format!("creating a report folder in {}", job.report.dir.display()))?;
        let dir = staging.path();
        let csv_dir = job
            .report
            .formats
            .contains(&OutputFormat::Csv)
            .then_some(dir.as_path());
        let mut executed = analysis::run_all(pool, levels, job, csv_dir, gate);
        storage.extend(drained()?);
        lock.check()?;
        if executed
            .iter()
            .any(|e| e.analysis.outputs.contains(&OutputFormat::Csv))
        {
            crate::crashpoint::reached("report.csv_written");
        }
        let pruned =
            db::changelog::prune(&mut conn).map_err(db::db_error("pruning the change log"))?;
        tracing::debug!(
            pruned,
            "change log entries every consumer has applied were removed"
        );
        lock.check()?;
        for e in executed.iter_mut().filter(|e| e.failure.is_none()) {
            if !e.analysis.charts.is_empty() && e.total_rows > e.table.rows.len() as u64 {
                let failure = format!(
                    "its charts need every row, and its {} rows are more than the {} a chart draws",
                    e.total_rows,
                    e.table.rows.len()
                );
                tracing::error!(analysis = %e.analysis.name, "{failure}");
                e.failure = Some(failure);
                continue;
            }
            let problems = report::chart_problems(&report_of(e));
            if !problems.is_empty() {
                let failure = problems.join("; ");
                tracing::error!(analysis = %e.analysis.name, "{failure}");
                e.failure = Some(failure);
            }
        }

        let tests =
            analysis::datatest::run_all(&mut conn, job, &executed, as_of, analysis::dialect(caps));
        let rejects = ingest::rejects::write_csv(&mut conn, &dir.join("rejects.csv"))?;
        let mut meta = report_meta(&mut conn, job, caps, as_of, rejects)?;
        meta.notes
            .extend(as_of_warning.iter().map(|w| format!("warning: {w}")));
        meta.notes
            .extend(ingest.iter().flat_map(IngestSummary::notes));
        meta.notes
            .extend(symbol_warnings.iter().map(|w| format!("warning: {w}")));
        meta.tests = tests
            .iter()
            .map(|t| report::TestReport {
                name: t.name.clone(),
                severity: match t.severity {
                    job::datatest::Severity::Error => "error".to_owned(),
                    job::datatest::Severity::Warn => "warn".to_owned(),
                },
                outcome: serde_json::to_value(&t.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                message: t.message.clone(),
                sample: t.sample.clone(),
            })
            .collect();
        write_reports(job, &meta, &executed, &dir)?;
        let mut failures: Vec<String> = Vec::new();
        if let Some(ingest) = &ingest {
            failures.extend(ingest.failure_lines());
        }
        failures.extend(executed.iter().filter_map(|e| {
            Some(format!(
                "analysis `{}`: {}",
                e.analysis.name,
                e.failure.as_ref()?
            ))
        }));
        let failed_tests: Vec<&str> = tests
            .iter()
            .filter(|t| t.fails_the_run())
            .map(|t| t.name.as_str())
            .collect();
        let exit_code = match (failures.is_empty(), failed_tests.is_empty()) {
            (true, true) => crate::error::EXIT_OK,
            (true, false) => crate::error::EXIT_TESTS,
            (false, _) => crate::error::EXIT_FAILURE,
        };
        if !failed_tests.is_empty() {
            failures.push(format!("data tests failed: {}", failed_tests.join(", ")));
        }
        let status = if failures.is_empty() {
            Status::Succeeded
        } else {
            Status::Partial
        };
        let summary = RunSummary {
            job: job.name.clone(),
            run_id,
            status,
            exit_code,
            as_of,
            backend: caps.describe(),
            ingest,
            analyses: executed
                .iter()
                .map(|e| AnalysisSummary {
                    name: e.analysis.name.clone(),
                    rows: e.total_rows as usize,
                    millis: e.elapsed.as_millis() as u64,
                    written: e.written,
                    failure: e.failure.clone(),
                })
                .collect(),
            report_dir: staging.published_path(),
            storage,
            failures,
            tests,
        };
        let json = serde_json::to_string_pretty(&summary).expect("the summary always serializes");
        std::fs::write(dir.join("summary.json"), json + "\n")
            .with_context(|| format!("writing {}", dir.join("summary.json").display()))?;
        lock.check()?;
        let published = staging
            .publish()
            .with_context(|| format!("publishing {}", summary.report_dir.display()))?;
        tracing::info!("reports written to {}", published.display());
        Ok(summary)
    }
}

fn report_of(e: &Executed) -> AnalysisReport<'_> {
    AnalysisReport {
        name: &e.analysis.name,
        description: e.analysis.description.as_deref(),
        sql: &e.sql,
        table: &e.table,
        total_rows: e.total_rows as usize,
        charts: &e.analysis.charts,
        failure: e.failure.as_deref(),
    }
}

fn report_meta(
    conn: &mut PgConnection,
    job: &Job,
    caps: &Capabilities,
    as_of: Option<NaiveDate>,
    rejects: usize,
) -> Result<ReportMeta> {
    let (rows, symbols) = ingest::manifest::totals(conn)?;
    let mut notes = Vec::new();
    if job.as_of.is_none() {
        notes.push(format!(
            "as-of date: the latest trading day at least {}% of the symbols reached",
            job.report.as_of_share * 100.0
        ));
    }
    if rejects > 0 {
        notes.push(format!("{rejects} rejected input rows: see rejects.csv"));
    }
    Ok(ReportMeta {
        job: job.name.clone(),
        as_of,
        generated_at: Utc::now(),
        runner_version: env!("CARGO_PKG_VERSION").to_owned(),
        database: db::url::redact(&job.database_url),
        backend: caps.describe(),
        data_rows: rows,
        symbols: Some(symbols),
        notes,
        tests: Vec::new(),
    })
}

fn write_reports(job: &Job, meta: &ReportMeta, executed: &[Executed], dir: &Path) -> Result<()> {
    // The CSV files were written while the analyses ran (see `analysis::run_all`); a
    // failed analysis leaves none.
    for e in executed.iter().filter(|e| e.table.columns.is_empty()) {
        let _ = std::fs::remove_file(dir.join(report::csv_file_name(&e.analysis.name)));
    }
    let in_format = |format: OutputFormat| -> Vec<AnalysisReport<'_>> {
        executed
            .iter()
            .filter(|e| e.analysis.outputs.contains(&format))
            .map(report_of)
            .collect()
    };
    if job.report.formats.contains(&OutputFormat::Markdown) {
        let md = report::render_markdown(
            meta,
            &in_format(OutputFormat::Markdown),
            job.report.max_rows,
        );
        std::fs::write(dir.join("report.md"), md)
            .with_context(|| format!("writing {}", dir.join("report.md").display()))?;
    }
    if job.report.formats.contains(&OutputFormat::Html) {
        let html = report::render_html(meta, &in_format(OutputFormat::Html), job.report.max_rows)
            .context("rendering the HTML report")?;
        std::fs::write(dir.join("report.html"), html)
            .with_context(|| format!("writing {}", dir.join("report.html").display()))?;
    }
    Ok(())
}

/// Connections a run may hold at once: the ingest's workers and its coordinator, then
/// the SQL analyses (one per core) next to the native ones, each with its reading
/// connections (`analysis::native::READERS`), and the aggregates' catch-up
/// ([`refresh_connections`]).
fn pool_size(job: &Job, workers: usize) -> u32 {
    let sql = analysis::sql_at_once();
    let native = job.analyses.iter().filter(|a| a.native.is_some()).count();
    let analyses = sql + native * (1 + analysis::native::READERS);
    let wanted = (workers + 1).max(analyses + refresh_connections(workers));
    u32::try_from(wanted).unwrap_or(u32::MAX)
}

/// Connections the continuous aggregates' catch-up uses at once: one per core (each
/// refresh is one backend's CPU), within the pool's size. `RUNNER_REFRESH_CONNECTIONS`
/// overrides it, for benchmarks (1 is the serial refresh).
fn refresh_connections(pool_spare: usize) -> usize {
    std::env::var("RUNNER_REFRESH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, pool_spare.max(1))
}
