//! Ingest: market data files into the database.
//!
//! `discover` finds the files, `manifest` decides per file whether to skip, append or
//! replace, `parse` validates rows against the job's `rules`, `load` writes a batch of files
//! (consecutive files up to `BATCH_BYTES` or `BATCH_FILES`) in one transaction with
//! one `COPY`, and `symbols` upserts the metadata file. When a batch fails, its files
//! are retried one per transaction, so a bad file fails alone. Batches are parsed and
//! loaded in parallel (rayon), each worker with its own pooled connection.

pub mod buckets;
pub mod discover;
pub mod load;
pub mod manifest;
pub mod parse;
pub mod rejects;
pub mod symbols;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use self::discover::SourceFile;
use self::load::CopyEncoding;
use self::manifest::{Change, Entry};
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::job::rules::RuleSet;
use crate::job::{IngestSource, Job, SourceKind};
use crate::progress::Progress;

/// What one ingest did, printed at the end and written as JSON beside the reports.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct IngestSummary {
    pub files_seen: u64,
    pub files_new: u64,
    pub files_skipped: u64,
    pub files_touched: u64,
    pub files_grown: u64,
    pub files_replaced: u64,
    pub files_failed: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub rows_flagged: u64,
    pub values_normalized: u64,
    pub flags_by_rule: BTreeMap<String, u64>,
    pub rejects_by_rule: BTreeMap<String, u64>,
    pub bytes_read: u64,
    pub symbols_upserted: u64,
    pub elapsed_secs: f64,
    pub rows_per_sec: f64,
    /// First and last day of the rows inserted or deleted (None when none were), so
    /// the aggregates over `daily_prices` can be refreshed for exactly that range.
    pub touched: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// Files that failed, with why. Their symbols keep their previous rows.
    pub failures: Vec<FileFailure>,
    /// Manifest files no longer found; their rows are kept.
    pub missing: Vec<String>,
    /// Files left out by discovery (e.g. a second file for the same symbol).
    pub ignored: Vec<FileFailure>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileFailure {
    pub path: String,
    pub error: String,
}

impl IngestSummary {
    /// The one-line human summary.
    pub fn line(&self) -> String {
        format!(
            "ingest: {} files ({} new, {} grown, {} replaced, {} unchanged, {} failed, {} missing), \
             {} rows loaded, {} rejected, {} flagged, {:.1} MB read in {:.2}s ({:.0} rows/s)",
            self.files_seen,
            self.files_new,
            self.files_grown,
            self.files_replaced,
            self.files_skipped + self.files_touched,
            self.files_failed,
            self.missing.len(),
            self.rows_loaded,
            self.rows_rejected,
            self.rows_flagged,
            self.bytes_read as f64 / 1e6,
            self.elapsed_secs,
            self.rows_per_sec
        )
    }
}

/// Tuning of one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Parallel workers, each parsing a batch and then loading it on its own pooled
    /// connection; while one waits on the server another parses, so both sides stay busy.
    pub workers: usize,
    /// How bars travel to the server.
    pub encoding: CopyEncoding,
    /// Files are grouped into one transaction until their sizes add up to this.
    pub batch_bytes: u64,
    /// Raised when the run must stop (its lock was lost): batches not started yet are
    /// left for the next run.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Aggregates whose buckets each batch writes itself for the symbols it replaces
    /// (from `db::storage::aggregates::prepare_ingest`; empty = all left to the drain).
    pub aggregates: Vec<crate::db::storage::Aggregate>,
}

/// Input bytes per batch: about 80 k rows, a few MB of bars in memory per worker.
const BATCH_BYTES: u64 = 8 << 20;

/// Files per batch at most, so a batch of tiny files still commits regularly.
const BATCH_FILES: usize = 500;

impl Default for IngestOptions {
    /// Sized for the machine: one worker per core plus one, so parsing overlaps the
    /// server's work. For benchmarks and tests, `RUNNER_INGEST_WORKERS`,
    /// `RUNNER_COPY_FORMAT=text|binary` and `RUNNER_INGEST_BATCH_BYTES` override it.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = std::env::var("RUNNER_INGEST_WORKERS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(cores + 1);
        let encoding = match std::env::var("RUNNER_COPY_FORMAT").as_deref() {
            Ok("text") => CopyEncoding::Text,
            _ => CopyEncoding::Binary,
        };
        let batch_bytes = std::env::var("RUNNER_INGEST_BATCH_BYTES")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(BATCH_BYTES);
        IngestOptions {
            workers,
            encoding,
            batch_bytes,
            stop: None,
            aggregates: Vec::new(),
        }
    }
}

/// The newest trading day in `daily_prices` (None when nothing is loaded): what a job
/// without `as_of` analyses.
pub fn latest_day(conn: &mut diesel::PgConnection) -> Result<Option<chrono::NaiveDate>> {
    use diesel::prelude::*;

    use crate::db::schema::daily_prices;
    daily_prices::table
        .select(diesel::dsl::max(daily_prices::day))
        .first(conn)
        .map_err(crate::db::db_error("finding the latest trading day"))
}

/// Run every ingest source of `job`.
pub fn run(pool: &Pool, job: &Job, options: &IngestOptions) -> Result<IngestSummary> {
    let started = Instant::now();
    let mut summary = IngestSummary::default();
    for source in job.ingest.iter().filter(|s| s.kind == SourceKind::Symbols) {
        summary.symbols_upserted += load_symbols(pool, source)? as u64;
    }
    let price_sources: Vec<&IngestSource> = job
        .ingest
        .iter()
        .filter(|s| s.kind == SourceKind::Prices)
        .collect();
    if !price_sources.is_empty() {
        load_prices(pool, &price_sources, options, &mut summary)?;
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.rows_per_sec = summary.rows_loaded as f64 / summary.elapsed_secs.max(1e-9);
    Ok(summary)
}

fn load_symbols(pool: &Pool, source: &IngestSource) -> Result<usize> {
    let mut written = 0;
    for path in discover::files_of(source).map_err(Error::Message)? {
        let (rows, rejects) = symbols::parse(&path).map_err(Error::Message)?;
        for r in &rejects {
            tracing::warn!("{}:{}: {} ({})", path.display(), r.line, r.reason, r.raw);
        }
        let mut conn = crate::db::pool::checkout(pool)?;
        written += symbols::upsert(&mut conn, &rows)
            .map_err(crate::db::db_error(format!("loading {}", path.display())))?;
        tracing::info!(file = %path.display(), symbols = rows.len(), "symbol metadata loaded");
    }
    Ok(written)
}

/// The outcome of one file.
enum FileResult {
    Loaded {
        change: Change,
        rows: u64,
        parsed_counts: Counts,
        bytes: u64,
        /// Days inserted, and for a replaced symbol the days its old rows covered.
        touched: DayRange,
    },
    Skipped,
    Failed(FileFailure),
}

#[derive(Default)]
struct Counts {
    rejected: u64,
    flagged: u64,
    normalized: u64,
    flags_by_rule: BTreeMap<String, u64>,
    rejects_by_rule: BTreeMap<String, u64>,
}

/// Per-source settings the workers need.
struct SourceSettings<'a> {
    rules: &'a RuleSet,
    max_reject_ratio: Option<f64>,
}

fn load_prices(
    pool: &Pool,
    sources: &[&IngestSource],
    options: &IngestOptions,
    summary: &mut IngestSummary,
) -> Result<()> {
    let (files, ignored) = discover::discover(sources).map_err(Error::Message)?;
    summary.ignored = ignored
        .into_iter()
        .map(|s| FileFailure {
            path: s.path.display().to_string(),
            error: s.reason,
        })
        .collect();
    let manifest = {
        let mut conn = crate::db::pool::checkout(pool)?;
        manifest::load_all(&mut conn)?
    };
    summary.files_seen = files.len() as u64;
    let source_names: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let found: HashSet<&str> = files.iter().map(|f| f.symbol.as_str()).collect();
    summary.missing = manifest
        .values()
        .filter(|e| source_names.contains(e.source.as_str()) && !found.contains(e.symbol.as_str()))
        .map(|e| e.path.clone())
        .collect();
    summary.missing.sort();
    for path in &summary.missing {
        tracing::warn!(file = %path, "file is gone; its rows are kept");
    }
    let settings: BTreeMap<&str, SourceSettings> = sources
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                SourceSettings {
                    rules: &s.rules,
                    max_reject_ratio: s.max_reject_ratio,
                },
            )
        })
        .collect();

    // Unchanged files are decided on their stamp alone, without reading them.
    let mut results = Vec::with_capacity(files.len());
    let mut pending = Vec::new();
    for file in &files {
        match manifest::stamp(&file.path) {
            Err(e) => results.push(FileResult::Failed(FileFailure {
                path: file.path.display().to_string(),
                error: format!("cannot read: {e}"),
            })),
            Ok(stamp)
                if manifest::is_unchanged(
                    manifest.get(&file.symbol),
                    &file.path.display().to_string(),
                    stamp,
                ) =>
            {
                results.push(FileResult::Skipped);
            }
            Ok(stamp) => pending.push((file, stamp)),
        }
    }
    let batches = batches(&pending, options.batch_bytes);
    let progress = Progress::new("ingest", files.len() as u64);
    progress.skip(results.len() as u64);
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(options.workers.max(1))
        .build()
        .map_err(|e| Error::Message(format!("cannot start ingest workers: {e}")))?;
    let loaded: Vec<Vec<FileResult>> = workers.install(|| {
        batches
            .par_iter()
            .map(|batch| {
                let stopped = options
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
                let results = if stopped {
                    batch
                        .iter()
                        .map(|(file, _)| {
                            failed(
                                &file.path.display().to_string(),
                                "not loaded: the run lost its lock and stopped".to_owned(),
                            )
                        })
                        .collect()
                } else {
                    ingest_batch(pool, batch, &manifest, &settings, options)
                };
                for result in &results {
                    progress.advance(match result {
                        FileResult::Loaded { rows, .. } => *rows,
                        _ => 0,
                    });
                }
                results
            })
            .collect()
    });
    progress.finish();
    for result in results.into_iter().chain(loaded.into_iter().flatten()) {
        match result {
            FileResult::Skipped => summary.files_skipped += 1,
            FileResult::Failed(failure) => {
                tracing::error!(file = %failure.path, "{}", failure.error);
                summary.files_failed += 1;
                summary.failures.push(failure);
            }
            FileResult::Loaded {
                change,
                rows,
                parsed_counts,
                bytes,
                touched,
            } => {
                summary.touched = crate::db::storage::widen(summary.touched, touched);
                match change {
                    Change::New => summary.files_new += 1,
                    Change::Touched | Change::Unchanged => summary.files_touched += 1,
                    Change::Grew { .. } => summary.files_grown += 1,
                    Change::Replaced => summary.files_replaced += 1,
                }
                summary.rows_loaded += rows;
                summary.bytes_read += bytes;
                summary.rows_rejected += parsed_counts.rejected;
                summary.rows_flagged += parsed_counts.flagged;
                summary.values_normalized += parsed_counts.normalized;
                for (rule, n) in parsed_counts.flags_by_rule {
                    *summary.flags_by_rule.entry(rule).or_default() += n;
                }
                for (rule, n) in parsed_counts.rejects_by_rule {
                    *summary.rejects_by_rule.entry(rule).or_default() += n;
                }
            }
        }
    }
    summary.failures.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(())
}

type PendingFile<'a> = (&'a SourceFile, manifest::Stamp);

/// Consecutive files (so rows stay in symbol order) grouped until their sizes reach
/// `max_bytes` or [`BATCH_FILES`].
fn batches<'a, 'b>(pending: &'b [PendingFile<'a>], max_bytes: u64) -> Vec<&'b [PendingFile<'a>]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, (_, stamp)) in pending.iter().enumerate() {
        bytes += u64::try_from(stamp.size).unwrap_or(0);
        if bytes >= max_bytes || i + 1 - start >= BATCH_FILES {
            out.push(&pending[start..=i]);
            start = i + 1;
            bytes = 0;
        }
    }
    if start < pending.len() {
        out.push(&pending[start..]);
    }
    out
}

/// Read, check and load one batch in one transaction. When the transaction fails, each
/// file is tried on its own so one bad file does not fail its neighbours.
fn ingest_batch(
    pool: &Pool,
    batch: &[PendingFile<'_>],
    manifest: &std::collections::HashMap<String, Entry>,
    settings: &BTreeMap<&str, SourceSettings>,
    options: &IngestOptions,
) -> Vec<FileResult> {
    let (encoding, direct) = (options.encoding, options.aggregates.as_slice());
    let mut results = Vec::with_capacity(batch.len());
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            results.extend(batch.iter().map(|(file, _)| {
                failed(
                    &file.path.display().to_string(),
                    format!("no database connection: {e}"),
                )
            }));
            return results;
        }
    };
    let mut prepared = Vec::with_capacity(batch.len());
    for (file, stamp) in batch {
        let Some(source) = settings.get(file.source.as_str()) else {
            continue;
        };
        match prepare_file(&mut conn, file, manifest.get(&file.symbol), *stamp, source) {
            Ok(p) => prepared.push(p),
            Err(failure) => results.push(FileResult::Failed(failure)),
        }
    }
    if prepared.is_empty() {
        return results;
    }
    let (files, bytes): (Vec<load::PreparedFile>, Vec<u64>) = prepared.into_iter().unzip();
    match load::load_batch(&mut conn, &files, encoding, direct) {
        Ok((_, spans)) => {
            crate::crashpoint::reached("ingest.after_commit");
            results.extend(
                files
                    .into_iter()
                    .zip(bytes)
                    .map(|(f, b)| loaded(f, b, &spans)),
            )
        }
        Err(e) if files.len() == 1 => {
            results.push(failed(&files[0].entry.path, format!("loading failed: {e}")))
        }
        Err(_) => {
            for (file, b) in files.into_iter().zip(bytes) {
                match load::load_batch(&mut conn, std::slice::from_ref(&file), encoding, direct) {
                    Ok((_, spans)) => results.push(loaded(file, b, &spans)),
                    Err(e) => {
                        results.push(failed(&file.entry.path, format!("loading failed: {e}")))
                    }
                }
            }
        }
    }
    results
}

fn failed(path: &str, error: String) -> FileResult {
    FileResult::Failed(FileFailure {
        path: path.to_owned(),
        error,
    })
}

type DayRange = Option<(chrono::NaiveDate, chrono::NaiveDate)>;

fn loaded(
    file: load::PreparedFile,
    bytes: u64,
    spans: &[crate::db::changelog::Span],
) -> FileResult {
    let touched = spans
        .iter()
        .find(|s| s.symbol == file.entry.symbol)
        .map(|s| (s.first_day(), s.last_day()));
    let mut counts = Counts {
        rejected: file.parsed.rejects.len() as u64,
        flagged: file.parsed.flags.len() as u64,
        normalized: file.parsed.normalized,
        ..Counts::default()
    };
    for f in &file.parsed.flags {
        *counts
            .flags_by_rule
            .entry(f.rule.name().to_owned())
            .or_default() += 1;
    }
    for r in &file.parsed.rejects {
        *counts
            .rejects_by_rule
            .entry(r.rule.name().to_owned())
            .or_default() += 1;
    }
    FileResult::Loaded {
        change: file.change,
        rows: file.parsed.bars.len() as u64,
        parsed_counts: counts,
        bytes,
        touched,
    }
}

/// Read and classify a file, parse what is new, apply the reject ratio, and build its
/// manifest entry. Returns the file and the bytes read.
fn prepare_file(
    conn: &mut diesel::PgConnection,
    file: &SourceFile,
    entry: Option<&Entry>,
    stamp: manifest::Stamp,
    source: &SourceSettings,
) -> std::result::Result<(load::PreparedFile, u64), FileFailure> {
    let path_text = file.path.display().to_string();
    let fail = |error: String| FileFailure {
        path: path_text.clone(),
        error,
    };
    let data = std::fs::read(&file.path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let change = manifest::classify(entry, &data);
    let parsed = match &change {
        Change::Touched | Change::Unchanged => parse::Parsed::default(),
        Change::Grew { offset, first_line } => match parse::read_header(&data).map_err(&fail)? {
            Some((columns, _)) => {
                // Appended rows are new unless their day is stored: a day before the
                // file's last one is a late addition to history, not a duplicate.
                let stored = load::stored_days(conn, &file.symbol)
                    .map_err(|e| fail(format!("reading the stored days: {e}")))?;
                parse::parse_rows(
                    &data[*offset..],
                    *first_line,
                    &columns,
                    source.rules,
                    stored,
                )
            }
            None => parse::Parsed::default(),
        },
        Change::New | Change::Replaced => parse::parse_file(&data, source.rules).map_err(&fail)?,
    };
    let rows = parsed.bars.len() as u64;
    let rejected = parsed.rejects.len() as u64;
    if let (Some(max), Some(first)) = (source.max_reject_ratio, parsed.rejects.first()) {
        let ratio = rejected as f64 / (rows + rejected).max(1) as f64;
        if ratio > max {
            return Err(fail(format!(
                "{rejected} of {} rows rejected ({:.1}%), above max_reject_ratio {max}; first: line {}: {}",
                rows + rejected,
                ratio * 100.0,
                first.line,
                first.reason
            )));
        }
    }
    let keeps_old_rows = matches!(change, Change::Grew { .. } | Change::Touched);
    let previous = |f: fn(&Entry) -> i64| {
        if keeps_old_rows {
            entry.map_or(0, f)
        } else {
            0
        }
    };
    let previous_last = entry.and_then(|e| e.last_day).filter(|_| keeps_old_rows);
    let last_day = parsed.bars.iter().map(|b| b.day).chain(previous_last).max();
    let new_entry = Entry {
        symbol: file.symbol.clone(),
        path: path_text.clone(),
        source: file.source.clone(),
        asset_class: file.asset_class.clone(),
        size_bytes: stamp.size,
        mtime_ns: stamp.mtime_ns,
        content_hash: manifest::content_hash(&data),
        rows_loaded: previous(|e| e.rows_loaded) + rows as i64,
        rows_rejected: previous(|e| e.rows_rejected) + rejected as i64,
        last_day,
    };
    Ok((
        load::PreparedFile {
            change,
            entry: new_entry,
            parsed,
        },
        data.len() as u64,
    ))
}
