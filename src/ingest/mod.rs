//! Ingest: market data files into the database.
//!
//! `discover` finds the files, `manifest` decides per file whether to skip, append or
//! replace, `parse` validates rows against `rules`, `load` writes one file per
//! transaction with `COPY`, and `symbols` upserts the metadata file. Files are parsed
//! and loaded in parallel (rayon), each worker with its own pooled connection.

pub mod discover;
pub mod load;
pub mod manifest;
pub mod parse;
pub mod rejects;
pub mod rules;
pub mod symbols;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use self::discover::SourceFile;
use self::manifest::{Change, Entry};
use self::rules::RuleSet;
use crate::db::Pool;
use crate::error::{Error, Result};
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
    /// Files that failed, with why. Their symbols keep their previous rows.
    pub failures: Vec<FileFailure>,
    /// Manifest files no longer found; their rows are kept.
    pub missing: Vec<String>,
    /// Files left out by discovery (e.g. a second file for the same symbol).
    pub ignored: Vec<FileFailure>,
    /// First and last day of the rows inserted or deleted (None when none were), so
    /// the aggregates over `daily_prices` can be refreshed for exactly that range.
    pub touched: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
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
    /// Parallel workers (each holds one connection while loading).
    pub workers: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { workers: std::thread::available_parallelism().map_or(2, |n| n.get()) }
    }
}

/// Run every ingest source of `job`.
pub fn run(pool: &Pool, job: &Job, options: &IngestOptions) -> Result<IngestSummary> {
    let started = Instant::now();
    let mut summary = IngestSummary::default();
    for source in job.ingest.iter().filter(|s| s.kind == SourceKind::Symbols) {
        summary.symbols_upserted += load_symbols(pool, source)? as u64;
    }
    let price_sources: Vec<&IngestSource> = job.ingest.iter().filter(|s| s.kind == SourceKind::Prices).collect();
    if !price_sources.is_empty() {
        load_prices(pool, &price_sources, options, &mut summary)?;
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.rows_per_sec = summary.rows_loaded as f64 / summary.elapsed_secs.max(1e-9);
    Ok(summary)
}

fn load_symbols(pool: &Pool, source: &IngestSource) -> Result<usize> {
    let mut written = 0;
    for path in source.files().map_err(Error::Message)? {
        let (rows, rejects) = symbols::parse(&path).map_err(Error::Message)?;
        for r in &rejects {
            tracing::warn!("{}:{}: {} ({})", path.display(), r.line, r.reason, r.raw);
        }
        let mut conn = pool.get().map_err(|e| Error::Message(format!("no database connection: {e}")))?;
        written += symbols::upsert(&mut conn, &rows)
            .map_err(crate::db::db_error(format!("loading {}", path.display())))?;
        tracing::info!(file = %path.display(), symbols = rows.len(), "symbol metadata loaded");
    }
    Ok(written)
}

/// The outcome of one file.
enum FileResult {
    Loaded { change: Change, rows: u64, parsed_counts: Counts, bytes: u64, touched: Option<(chrono::NaiveDate, chrono::NaiveDate)> },
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

fn load_prices(pool: &Pool, sources: &[&IngestSource], options: &IngestOptions, summary: &mut IngestSummary) -> Result<()> {
    let (files, ignored) = discover::discover(sources).map_err(Error::Message)?;
    summary.ignored = ignored
        .into_iter()
        .map(|s| FileFailure { path: s.path.display().to_string(), error: s.reason })
        .collect();
    let manifest = {
        let mut conn = pool.get().map_err(|e| Error::Message(format!("no database connection: {e}")))?;
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
    let max_ratio: BTreeMap<&str, Option<f64>> = sources.iter().map(|s| (s.name.as_str(), s.max_reject_ratio)).collect();
    let rules = RuleSet::default();
    let progress = Progress::new("ingest", files.len() as u64);
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(options.workers.max(1))
        .build()
        .map_err(|e| Error::Message(format!("cannot start ingest workers: {e}")))?;
    let results: Vec<FileResult> = workers.install(|| {
        files
            .par_iter()
            .map(|file| {
                let result = ingest_file(pool, file, manifest.get(&file.symbol), &rules, max_ratio.get(file.source.as_str()).copied().flatten());
                let rows = match &result {
                    FileResult::Loaded { rows, .. } => *rows,
                    _ => 0,
                };
                progress.advance(rows);
                result
            })
            .collect()
    });
    progress.finish();
    for result in results {
        match result {
            FileResult::Skipped => summary.files_skipped += 1,
            FileResult::Failed(failure) => {
                tracing::error!(file = %failure.path, "{}", failure.error);
                summary.files_failed += 1;
                summary.failures.push(failure);
            }
            FileResult::Loaded { change, rows, parsed_counts, bytes, touched } => {
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

fn ingest_file(pool: &Pool, file: &SourceFile, entry: Option<&Entry>, rules: &RuleSet, max_reject_ratio: Option<f64>) -> FileResult {
    let path_text = file.path.display().to_string();
    let fail = |error: String| FileResult::Failed(FileFailure { path: path_text.clone(), error });
    let stamp = match manifest::stamp(&file.path) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot read: {e}")),
    };
    if manifest::is_unchanged(entry, &path_text, stamp) {
        return FileResult::Skipped;
    }
    let data = match std::fs::read(&file.path) {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot read: {e}")),
    };
    let change = manifest::classify(entry, &data);
    let parsed = match &change {
        Change::Touched | Change::Unchanged => parse::Parsed::default(),
        Change::Grew { offset, first_line } => match parse::read_header(&data) {
            Ok(Some((columns, _))) => {
                parse::parse_rows(&data[*offset..], *first_line, &columns, rules, entry.and_then(|e| e.last_day))
            }
            Ok(None) => parse::Parsed::default(),
            Err(e) => return fail(e),
        },
        Change::New | Change::Replaced => match parse::parse_file(&data, rules) {
            Ok(p) => p,
            Err(e) => return fail(e),
        },
    };
    let rows = parsed.bars.len() as u64;
    let rejected = parsed.rejects.len() as u64;
    if let Some(max) = max_reject_ratio {
        let ratio = rejected as f64 / (rows + rejected).max(1) as f64;
        if ratio > max {
            return fail(format!(
                "{rejected} of {} rows rejected ({:.1}%), above max_reject_ratio {max}; first: line {}: {}",
                rows + rejected,
                ratio * 100.0,
                parsed.rejects[0].line,
                parsed.rejects[0].reason
            ));
        }
    }
    let previous = |f: fn(&Entry) -> i64| match change {
        Change::Grew { .. } | Change::Touched => entry.map_or(0, f),
        _ => 0,
    };
    let last_day = parsed
        .bars
        .iter()
        .map(|b| b.day)
        .max()
        .or(match change {
            Change::Grew { .. } | Change::Touched => entry.and_then(|e| e.last_day),
            _ => None,
        });
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
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => return fail(format!("no database connection: {e}")),
    };
    // Days inserted, plus (for a replaced symbol) the days about to be deleted.
    let inserted = parsed.bars.iter().map(|b| b.day).min().zip(parsed.bars.iter().map(|b| b.day).max());
    let deleted = match change {
        Change::New | Change::Replaced => match crate::db::storage::symbol_day_range(&mut conn, &file.symbol) {
            Ok(range) => range,
            Err(e) => return fail(format!("loading failed: {e}")),
        },
        _ => None,
    };
    let touched = crate::db::storage::widen(inserted, deleted);
    if let Err(e) = load::load_file(&mut conn, &change, &new_entry, &parsed) {
        return fail(format!("loading failed: {e}"));
    }
    let mut counts = Counts {
        rejected,
        flagged: parsed.flags.len() as u64,
        normalized: parsed.normalized,
        ..Counts::default()
    };
    for f in &parsed.flags {
        *counts.flags_by_rule.entry(f.rule.name().to_owned()).or_default() += 1;
    }
    for r in &parsed.rejects {
        *counts.rejects_by_rule.entry(r.rule.name().to_owned()).or_default() += 1;
    }
    FileResult::Loaded { change, rows, parsed_counts: counts, bytes: data.len() as u64, touched }
}

/// Where a path is shown relative to the job's root, for readable reports.
pub fn display_path(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).map(Path::to_owned).unwrap_or_else(|_| path.to_owned())
}
