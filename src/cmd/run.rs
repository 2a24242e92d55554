//! `runner run`: the whole job — database ready, ingest, analyses, reports — recorded
//! in the `runs` table.

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use diesel::PgConnection;

use crate::analysis::{self, Executed};
use crate::cli::RunArgs;
use crate::db::{self, Capabilities, Pool};
use crate::error::{Context, Error, Result};
use crate::ingest::{self, IngestOptions, IngestSummary};
use crate::job::{self, Job, OutputFormat};
use crate::report::{self, AnalysisReport, ReportMeta};

/// What a run produced, also written as `summary.json` beside the reports.
#[derive(Debug, serde::Serialize)]
pub struct RunSummary {
    pub job: String,
    pub as_of: Option<NaiveDate>,
    pub backend: String,
    pub ingest: Option<IngestSummary>,
    pub analyses: Vec<AnalysisSummary>,
    pub report_dir: PathBuf,
    /// What `[storage]` changed, the aggregate refreshes and maintenance done.
    pub storage: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct AnalysisSummary {
    pub name: String,
    pub rows: usize,
    pub millis: u64,
    /// Rows written into `analytics.<name>` (materialized tables only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<u64>,
}

pub fn run(args: &RunArgs) -> Result<()> {
    let job = job::load(&args.job.job, &args.job.vars)?;
    // Fail on a bad --select, template errors and dependency cycles before touching the
    // database (a configuration error runs nothing). The plan that runs comes later:
    // it needs the server's dialect, the as-of day and the tables already built.
    analysis::plan(
        &job,
        &args.select,
        analysis::env::Dialect::Postgres,
        job.as_of,
        &analysis::Existing::new(),
    )?;
    let options = IngestOptions::default();
    // The lock comes before migrations, so two first runs at once do not race to
    // create the schema; the database must exist to hold it.
    db::pool::ensure_database(&job.database_url)?;
    let _lock = db::lock::acquire(&job.database_url)?;
    let (pool, caps) =
        super::prepare_existing_database(&job.database_url, options.workers as u32 + 1)?;
    let vars = serde_json::to_value(&job.vars).unwrap_or_default();
    let run_id = db::runs::start(&mut *db::pool::checkout(&pool)?, &job.name, vars, job.as_of)?;
    let outcome = execute(&pool, &caps, &job, args, &options);
    let finished = match &outcome {
        Ok(s) => db::runs::Finished::Succeeded {
            summary: serde_json::to_value(s).ok(),
            as_of: s.as_of,
        },
        Err(e) => db::runs::Finished::Failed {
            error: e.to_string(),
        },
    };
    db::runs::finish(&mut *db::pool::checkout(&pool)?, run_id, finished)?;
    let summary = outcome?;
    if let Some(ingest) = &summary.ingest {
        if ingest.files_failed > 0 {
            return Err(Error::Message(format!(
                "{} file(s) failed to load (see {}); the other files and the reports are done",
                ingest.files_failed,
                summary.report_dir.join("summary.json").display()
            )));
        }
    }
    Ok(())
}

fn execute(
    pool: &Pool,
    caps: &Capabilities,
    job: &Job,
    args: &RunArgs,
    options: &IngestOptions,
) -> Result<RunSummary> {
    let mut storage = {
        let mut conn = crate::db::pool::checkout(pool)?;
        db::storage::apply_settings(&mut conn, caps, &job.storage)?
    };
    let ingest = if args.skip_ingest || job.ingest.is_empty() {
        None
    } else {
        let summary = ingest::run(pool, job, options)?;
        tracing::info!("{}", summary.line());
        crate::crashpoint::reached("run.after_ingest");
        Some(summary)
    };
    let mut conn = crate::db::pool::checkout(pool)?;
    // Whatever any run changed and did not carry into the aggregates yet, this run does
    // now, even when no file changed (the run that loaded them may have died).
    storage.extend(db::storage::drain_aggregates(
        &mut conn,
        caps,
        &job.storage,
    )?);
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
    let as_of = super::as_of(job, &mut conn)?;
    analysis::functions::install(&mut conn)?;
    // Incremental analyses whose table exists append to it, unless the change log
    // cannot vouch for the table (then it is rebuilt whole).
    let mut existing = analysis::Existing::new();
    for (name, kind) in analysis::materialize::existing(&mut conn)? {
        if kind == "r" && !analysis::materialize::needs_rebuild(&mut conn, &name)? {
            existing.insert(name);
        }
    }
    let levels = analysis::plan(job, &args.select, analysis::dialect(caps), as_of, &existing)?;
    let executed = analysis::run_all(pool, levels, job)?;
    let pruned = db::changelog::prune(&mut conn).map_err(db::db_error("pruning the change log"))?;
    tracing::debug!(
        pruned,
        "change log entries every consumer has applied were removed"
    );
    let report_dir = job
        .report
        .dir
        .join(as_of.map_or_else(|| "no-data".to_owned(), |d| d.to_string()));
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("creating {}", report_dir.display()))?;
    let rejects = ingest::rejects::write_csv(&mut conn, &report_dir.join("rejects.csv"))?;
    let meta = report_meta(&mut conn, job, caps, as_of, rejects)?;
    write_reports(job, &meta, &executed, &report_dir)?;
    let summary = RunSummary {
        job: job.name.clone(),
        as_of,
        backend: caps.describe(),
        ingest,
        analyses: executed
            .iter()
            .map(|e| AnalysisSummary {
                name: e.analysis.name.clone(),
                rows: e.table.rows.len(),
                millis: e.elapsed.as_millis() as u64,
                written: e.written,
            })
            .collect(),
        report_dir: report_dir.clone(),
        storage,
    };
    let json = serde_json::to_string_pretty(&summary).expect("the summary always serializes");
    std::fs::write(report_dir.join("summary.json"), json + "\n")
        .with_context(|| format!("writing {}", report_dir.join("summary.json").display()))?;
    point_latest(&job.report.dir, &report_dir)?;
    tracing::info!("reports written to {}", report_dir.display());
    Ok(summary)
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
        notes.push("as-of date: the latest trading day loaded".to_owned());
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
    })
}

fn write_reports(job: &Job, meta: &ReportMeta, executed: &[Executed], dir: &Path) -> Result<()> {
    for e in executed
        .iter()
        .filter(|e| e.analysis.outputs.contains(&OutputFormat::Csv))
    {
        let path = dir.join(report::csv_file_name(&e.analysis.name));
        let file =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        report::write_csv(&e.table, std::io::BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let in_format = |format: OutputFormat| -> Vec<AnalysisReport<'_>> {
        executed
            .iter()
            .filter(|e| e.analysis.outputs.contains(&format))
            .map(|e| AnalysisReport {
                name: &e.analysis.name,
                description: e.analysis.description.as_deref(),
                sql: &e.sql,
                table: &e.table,
                charts: &e.analysis.charts,
            })
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

/// Point `<report dir>/latest` at this run's folder (replaced atomically).
fn point_latest(base: &Path, target: &Path) -> Result<()> {
    let Some(name) = target.file_name() else {
        return Ok(());
    };
    let latest = base.join("latest");
    let temp = base.join(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(name, &temp)
        .with_context(|| format!("linking {}", latest.display()))?;
    #[cfg(not(unix))]
    std::fs::write(&temp, name.to_string_lossy().as_bytes())
        .with_context(|| format!("writing {}", latest.display()))?;
    std::fs::rename(&temp, &latest).with_context(|| format!("linking {}", latest.display()))?;
    Ok(())
}
