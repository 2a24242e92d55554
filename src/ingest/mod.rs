//! Ingest: market data files into the database.
//!
//! `discover` finds the files, `manifest` decides per file whether to skip, append or
//! replace, `parse` validates rows against the job's `rules`, `load` writes a batch of files
//! (consecutive files up to `BATCH_BYTES` or `BATCH_FILES`) in one transaction with
//! one `COPY`, and `symbols` upserts the metadata file. When a batch fails, its files
//! are retried one per transaction, so a bad file fails alone. Batches are parsed and
//! loaded in parallel (rayon), each worker with its own pooled connection.

pub mod buckets;
pub mod coverage;
pub mod discover;
pub mod load;
pub mod manifest;
pub mod parse;
pub mod rejects;
pub mod symbols;

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use self::discover::SourceFile;
use self::load::CopyEncoding;
use self::manifest::{Change, Entry};
use crate::db::Pool;
use crate::error::{Context, Result};
use crate::job::rules::RuleSet;
use crate::job::{IngestSource, Job, OnMissing, SourceKind};
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
    /// Patterns that could not be read (their folder is gone) or that find nothing
    /// where files were loaded from before: the input is missing, not empty.
    pub pattern_failures: Vec<String>,
    /// Symbols claimed by more than one file with none preferred by `priority`: none
    /// of those files is loaded, and the symbol keeps its rows.
    pub conflicts: Vec<ConflictReport>,
    /// Files loaded before and no longer found, with what happened to their rows.
    pub missing: Vec<MissingFile>,
    /// What the patterns matched and did not load, with why (directories, broken
    /// links, case variants, undecodable names, files shadowed by a higher priority).
    pub ignored: Vec<FileFailure>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileFailure {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConflictReport {
    /// Every file involved, sorted.
    pub paths: Vec<String>,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissingFile {
    pub path: String,
    pub symbol: String,
    /// `kept` or `deleted`.
    pub rows: MissingRows,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MissingRows {
    Kept,
    Deleted,
}

impl IngestSummary {
    /// What the report's header says about this ingest: counts only (the paths are in
    /// `summary.json`), and nothing when everything loaded.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut failed = Vec::new();
        for (n, what) in [
            (self.pattern_failures.len(), "pattern without input"),
            (self.conflicts.len(), "symbol left ambiguous"),
            (self.failures.len(), "file failed"),
        ] {
            if n > 0 {
                failed.push(plural(n, what));
            }
        }
        if !failed.is_empty() {
            notes.push(format!(
                "ingest: {}; these prices may be stale (see summary.json)",
                failed.join(", ")
            ));
        }
        let deleted = self
            .missing
            .iter()
            .filter(|m| m.rows == MissingRows::Deleted)
            .count();
        let kept = self.missing.len() - deleted;
        if kept > 0 {
            notes.push(format!(
                "ingest: {} loaded before {} gone, rows kept (see summary.json)",
                plural(kept, "file"),
                if kept == 1 { "is" } else { "are" }
            ));
        }
        if deleted > 0 {
            notes.push(format!(
                "ingest: {} gone, rows deleted (see summary.json)",
                plural(deleted, "file")
            ));
        }
        if !self.ignored.is_empty() {
            notes.push(format!(
                "ingest: {} matched and not loaded (see summary.json)",
                plural(self.ignored.len(), "path")
            ));
        }
        notes
    }

    /// Every failure as one line: files, patterns, conflicting symbols.
    pub fn failure_lines(&self) -> Vec<String> {
        self.pattern_failures
            .iter()
            .cloned()
            .chain(self.conflicts.iter().map(|c| c.error.clone()))
            .chain(
                self.failures
                    .iter()
                    .map(|f| format!("{}: {}", f.path, f.error)),
            )
            .collect()
    }
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
    /// A load into an empty `daily_prices` goes without its primary key and builds it
    /// at the end (`db::storage::key`).
    pub key_after_first_load: bool,
}

/// Input bytes per batch: about 80 k rows, a few MB of bars in memory per worker.
const BATCH_BYTES: u64 = 8 << 20;

/// Files per batch at most, so a batch of tiny files still commits regularly.
const BATCH_FILES: usize = 500;

impl Default for IngestOptions {
    /// Sized for the machine: one worker per core plus one, so parsing overlaps the
    /// server's work. For benchmarks and tests, `RUNNER_INGEST_WORKERS`,
    /// `RUNNER_COPY_FORMAT=text|binary`, `RUNNER_INGEST_BATCH_BYTES` and
    /// `RUNNER_KEY_AFTER_FIRST_LOAD=0` (keep the key while loading) override it.
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
            key_after_first_load: std::env::var("RUNNER_KEY_AFTER_FIRST_LOAD").as_deref()
                != Ok("0"),
        }
    }
}

/// The last plausible day of a price row: today by the run's clock (the test clock
/// when `RUNNER_CLOCK_START` is set), in the time zone that reaches a date first
/// (UTC+14), so an exchange east of UTC is never ahead of it.
fn today() -> Result<chrono::NaiveDate> {
    let now = crate::scheduler::clock::Clock::from_env()?.now();
    Ok((now + chrono::Duration::hours(14)).date_naive())
}

/// Run every ingest source of `job`.
pub fn run(pool: &Pool, job: &Job, options: &IngestOptions) -> Result<IngestSummary> {
    let started = Instant::now();
    let mut summary = IngestSummary::default();
    for source in job.ingest.iter().filter(|s| s.kind == SourceKind::Symbols) {
        load_symbols(pool, source, &mut summary)?;
    }
    let price_sources: Vec<&IngestSource> = job
        .ingest
        .iter()
        .filter(|s| s.kind == SourceKind::Prices)
        .collect();
    if !price_sources.is_empty() {
        load_prices(pool, &price_sources, options, &mut summary)?;
    }
    summary.failures.sort_by(|a, b| a.path.cmp(&b.path));
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.rows_per_sec = summary.rows_loaded as f64 / summary.elapsed_secs.max(1e-9);
    Ok(summary)
}

/// Load each metadata file of `source`. A file that cannot be read at all is a failure
/// of that file (the run exits 1 at the end); its bad lines are rejects.
fn load_symbols(pool: &Pool, source: &IngestSource, summary: &mut IngestSummary) -> Result<()> {
    let mut files = Vec::new();
    for pattern in &source.patterns {
        match discover::scan(pattern) {
            Ok(scan) => {
                files.extend(scan.files);
                for skipped in scan.skipped {
                    tracing::warn!("not loaded: {}: {}", skipped.path.display(), skipped.reason);
                    summary.ignored.push(FileFailure {
                        path: skipped.path.display().to_string(),
                        error: skipped.reason.to_string(),
                    });
                }
            }
            Err(e) => {
                tracing::error!("{e}");
                summary.pattern_failures.push(e.to_string());
            }
        }
    }
    files.sort();
    files.dedup();
    for path in files {
        let path_text = path.display().to_string();
        let parsed = match symbols::parse(&path) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::error!(file = %path_text, "{e}; no symbol metadata loaded from it");
                summary.files_failed += 1;
                summary.failures.push(FileFailure {
                    path: path_text,
                    error: e.to_string(),
                });
                continue;
            }
        };
        for r in &parsed.rejects {
            tracing::warn!("{path_text}:{}: {}: {}", r.line, r.rule, r.reason);
            *summary
                .rejects_by_rule
                .entry(r.rule.to_owned())
                .or_default() += 1;
        }
        summary.rows_rejected += parsed.rejects.len() as u64;
        let mut conn = crate::db::pool::checkout(pool)?;
        summary.symbols_upserted += symbols::upsert(&mut conn, &path_text, &parsed)
            .map_err(crate::db::db_error(format!("loading {path_text}")))?
            as u64;
        tracing::info!(file = %path_text, symbols = parsed.rows.len(), rejected = parsed.rejects.len(), "symbol metadata loaded");
    }
    Ok(())
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
struct SourceSettings {
    /// The source's rules, with today's date for `after_today`.
    rules: RuleSet,
    max_reject_ratio: Option<f64>,
    priority: i64,
}

/// Does a file of source `new` win over what source `old` loaded? Only with a strictly
/// higher `priority`; a source no longer in the job counts as 0.
fn outranks(settings: &BTreeMap<&str, SourceSettings>, new: &str, old: &str) -> bool {
    let priority = |name: &str| settings.get(name).map_or(0, |s| s.priority);
    new != old && priority(new) > priority(old)
}

/// How to let a file of source `new` replace what source `old` loaded.
fn priority_hint(new: &str, old: &str) -> String {
    if new == old {
        format!("to let it replace them, list it in a source with a higher `priority` than `{old}`")
    } else {
        format!("to let it replace them, give source `{new}` a higher `priority` than `{old}`")
    }
}

/// The log lines and summary entries of discovery: patterns that could not be read or
/// no longer match, conflicting symbols, and what was seen and not loaded.
fn report_discovery(
    discovery: &discover::Discovery,
    manifest: &std::collections::HashMap<String, Entry>,
    summary: &mut IngestSummary,
) {
    for outcome in &discovery.patterns {
        let problem = match &outcome.matched {
            Err(e) => Some(e.to_string()),
            Ok(0) => no_longer_matches(outcome, manifest).map(|e| e.to_string()),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            tracing::error!("{problem}");
            summary.pattern_failures.push(problem);
        }
    }
    for conflict in &discovery.conflicts {
        let error = conflict.to_string();
        tracing::error!("{error}");
        summary.conflicts.push(ConflictReport {
            paths: conflict
                .files
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect(),
            error,
        });
    }
    for skipped in &discovery.skipped {
        tracing::warn!("not loaded: {}: {}", skipped.path.display(), skipped.reason);
        summary.ignored.push(FileFailure {
            path: skipped.path.display().to_string(),
            error: skipped.reason.to_string(),
        });
    }
}

/// Options that make the manifest's paths comparable with what `glob` found.
const GLOB_MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// A pattern that found nothing is a failure when files were loaded through it before.
fn no_longer_matches(
    outcome: &discover::PatternOutcome,
    manifest: &std::collections::HashMap<String, Entry>,
) -> Option<discover::DiscoverError> {
    let glob = glob::Pattern::new(&outcome.pattern.glob).ok()?;
    let mut loaded: Vec<&str> = manifest
        .values()
        .filter(|e| e.source == outcome.source)
        .filter(|e| glob.matches_path_with(std::path::Path::new(&e.path), GLOB_MATCH))
        .map(|e| e.path.as_str())
        .collect();
    loaded.sort_unstable();
    let example = (*loaded.first()?).to_owned();
    Some(discover::DiscoverError::NoLongerMatches {
        pattern: outcome.pattern.written.clone(),
        folder: outcome.pattern.folder.clone(),
        loaded: loaded.len(),
        example,
    })
}

/// Files loaded before and not found now: listed once, and under `on_missing =
/// "delete"` their symbols' rows are deleted — but only when the file was gone from a
/// pattern that still reads. A source with a failed pattern deletes nothing (a folder
/// that is gone is a missing input, not a deletion), nor does a file that no pattern of
/// the job covers any more (`--var data_dir=…` pointing elsewhere).
fn forget_missing(
    pool: &Pool,
    sources: &[&IngestSource],
    discovery: &discover::Discovery,
    manifest: &std::collections::HashMap<String, Entry>,
    summary: &mut IngestSummary,
) -> Result<()> {
    let seen = discovery.symbols_seen();
    let failed_sources: std::collections::HashSet<&str> = discovery
        .patterns
        .iter()
        .filter(|o| match &o.matched {
            Err(_) => true,
            Ok(0) => no_longer_matches(o, manifest).is_some(),
            Ok(_) => false,
        })
        .map(|o| o.source.as_str())
        .collect();
    let covers = |entry: &Entry| {
        discovery.patterns.iter().any(|o| {
            o.source == entry.source
                && glob::Pattern::new(&o.pattern.glob).is_ok_and(|g| {
                    g.matches_path_with(std::path::Path::new(&entry.path), GLOB_MATCH)
                })
        })
    };
    let mut gone: Vec<&Entry> = manifest
        .values()
        .filter(|e| !seen.contains(&e.symbol))
        .filter(|e| sources.iter().any(|s| s.name == e.source))
        .collect();
    gone.sort_by(|a, b| a.path.cmp(&b.path));
    // One log line per group.
    let mut behind_failed = Vec::new();
    let mut uncovered = Vec::new();
    let mut kept = Vec::new();
    let mut deleted = Vec::new();
    for entry in gone {
        let delete = sources
            .iter()
            .any(|s| s.name == entry.source && s.on_missing == OnMissing::Delete);
        if failed_sources.contains(entry.source.as_str()) {
            behind_failed.push(entry);
        } else if !delete {
            kept.push(entry);
        } else if !covers(entry) {
            uncovered.push(entry);
        } else {
            deleted.push(entry);
        }
    }
    if !deleted.is_empty() {
        let symbols: Vec<&str> = deleted.iter().map(|e| e.symbol.as_str()).collect();
        let mut conn = crate::db::pool::checkout(pool)?;
        let spans = load::delete_symbols(&mut conn, &symbols).map_err(crate::db::db_error(
            "deleting the rows of files that are gone",
        ))?;
        for span in &spans {
            summary.touched = crate::db::storage::widen(
                summary.touched,
                Some((span.first_day(), span.last_day())),
            );
        }
    }
    for (group, rows, why) in [
        (
            &behind_failed,
            MissingRows::Kept,
            "rows kept: a pattern of their source failed",
        ),
        (
            &uncovered,
            MissingRows::Kept,
            "rows kept: no pattern of their source covers them now",
        ),
        (
            &kept,
            MissingRows::Kept,
            "rows kept (on_missing = \"keep\")",
        ),
        (
            &deleted,
            MissingRows::Deleted,
            "rows deleted (on_missing = \"delete\")",
        ),
    ] {
        if group.is_empty() {
            continue;
        }
        tracing::warn!(
            "{} loaded before {} gone, {why}: {}",
            plural(group.len(), "file"),
            if group.len() == 1 { "is" } else { "are" },
            few(group.iter().map(|e| e.path.as_str()))
        );
        summary.missing.extend(group.iter().map(|e| MissingFile {
            path: e.path.clone(),
            symbol: e.symbol.clone(),
            rows,
        }));
    }
    summary.missing.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(())
}

/// `1 file`, `2 files`; the noun is the first word (`2 files failed`).
fn plural(n: usize, words: &str) -> String {
    if n == 1 {
        return format!("1 {words}");
    }
    match words.split_once(' ') {
        Some((noun, rest)) => format!("{n} {noun}s {rest}"),
        None => format!("{n} {words}s"),
    }
}

/// The first few of `items`, then how many more: one log line however many there are.
fn few<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 5;
    let total = items.len();
    let mut text: Vec<&str> = items.take(SHOWN).collect();
    let more = total.saturating_sub(SHOWN);
    let more_text = format!("and {more} more (see summary.json)");
    if more > 0 {
        text.push(&more_text);
    }
    text.join(", ")
}

fn load_prices(
    pool: &Pool,
    sources: &[&IngestSource],
    options: &IngestOptions,
    summary: &mut IngestSummary,
) -> Result<()> {
    let discovery = discover::discover(sources);
    let manifest = {
        let mut conn = crate::db::pool::checkout(pool)?;
        manifest::load_all(&mut conn)?
    };
    report_discovery(&discovery, &manifest, summary);
    forget_missing(pool, sources, &discovery, &manifest, summary)?;
    let files = &discovery.files;
    summary.files_seen = files.len() as u64;
    let today = today()?;
    let settings: BTreeMap<&str, SourceSettings> = sources
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                SourceSettings {
                    rules: s.rules.clone().with_today(today),
                    max_reject_ratio: s.max_reject_ratio,
                    priority: s.priority,
                },
            )
        })
        .collect();
    let by_key: std::collections::HashMap<String, &Entry> = manifest
        .values()
        .map(|e| (discover::symbol_key(&e.symbol), e))
        .collect();

    // Unchanged files are decided on their stamp alone, without reading them.
    let mut results = Vec::with_capacity(files.len());
    let mut pending = Vec::new();
    for file in files {
        // `aapl.csv` where `AAPL` was loaded: a second name for one symbol.
        if !manifest.contains_key(&file.symbol) {
            if let Some(other) = by_key.get(&discover::symbol_key(&file.symbol)) {
                if !outranks(&settings, &file.source, &other.source) {
                    results.push(FileResult::Failed(FileFailure {
                        path: file.path.display().to_string(),
                        error: format!(
                            "symbol `{}` differs only in case or surrounding spaces from `{}`, \
                             loaded from {}: not loaded, the rows of `{}` are kept ({})",
                            file.symbol,
                            other.symbol,
                            other.path,
                            other.symbol,
                            priority_hint(&file.source, &other.source)
                        ),
                    }));
                    continue;
                }
            }
        }
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
    // Into an empty table the rows go without the primary key, built once at the end.
    let into_empty = options.key_after_first_load && !pending.is_empty() && {
        let mut conn = crate::db::pool::checkout(pool)?;
        crate::db::storage::key::defer(&mut conn)?
    };
    let target = load::Target {
        encoding: options.encoding,
        direct: &options.aggregates,
        into_empty,
    };
    let progress = Progress::new("ingest", files.len() as u64);
    progress.skip(results.len() as u64);
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(options.workers.max(1))
        .build()
        .context("cannot start ingest workers")?;
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
                    ingest_batch(pool, batch, &manifest, &settings, target)
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
    if into_empty {
        // Whatever the batches did: a failed file's rows were rolled back, the rest keep.
        let mut conn = crate::db::pool::checkout(pool)?;
        crate::db::storage::key::restore(&mut conn)?;
    }
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
    target: load::Target<'_>,
) -> Vec<FileResult> {
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
        let entry = manifest.get(&file.symbol);
        let takes_over = entry.is_some_and(|e| outranks(settings, &file.source, &e.source));
        match prepare_file(&mut conn, file, entry, *stamp, source, takes_over, target) {
            Ok(p) => prepared.push(p),
            Err(failure) => results.push(FileResult::Failed(failure)),
        }
    }
    if prepared.is_empty() {
        return results;
    }
    let (files, bytes): (Vec<load::PreparedFile>, Vec<u64>) = prepared.into_iter().unzip();
    match load::load_batch(&mut conn, &files, target) {
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
                match load::load_batch(&mut conn, std::slice::from_ref(&file), target) {
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
    takes_over: bool,
    target: load::Target<'_>,
) -> std::result::Result<(load::PreparedFile, u64), FileFailure> {
    let path_text = file.path.display().to_string();
    let fail = |error: String| FileFailure {
        path: path_text.clone(),
        error,
    };
    let data = std::fs::read(&file.path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let change = manifest::classify(entry, &data);
    if let Some(old) = entry.filter(|_| !takes_over) {
        // Loaded from elsewhere: appending (or a pure move) loses nothing, but replacing
        // the symbol's rows or changing its asset class is not this file's call.
        let hint = || priority_hint(&file.source, &old.source);
        if old.asset_class != file.asset_class {
            return Err(fail(format!(
                "symbol `{}` was loaded from {} as `{}`; this file would make it `{}`: \
                 not loaded, the rows are kept ({})",
                file.symbol,
                old.path,
                old.asset_class,
                file.asset_class,
                hint()
            )));
        }
        if old.path != path_text && change == Change::Replaced {
            return Err(fail(format!(
                "symbol `{}` was loaded from {}; this file would replace its rows: \
                 not loaded, the rows are kept ({})",
                file.symbol,
                old.path,
                hint()
            )));
        }
    }
    let parsed = match &change {
        Change::Touched | Change::Unchanged => parse::Parsed::default(),
        Change::Grew { offset, first_line } => {
            match parse::read_header(&data).map_err(|e| fail(e.to_string()))? {
                Some((columns, _)) => {
                    // Appended rows are new unless their day is stored: a day before the
                    // file's last one is a late addition to history, not a duplicate.
                    // Only stored days from the earliest appended one on can be
                    // repeated, so only those are read (usually none, not the
                    // symbol's whole history): a first pass finds that day.
                    let appended = &data[*offset..];
                    let parse = |stored| {
                        parse::parse_rows(appended, *first_line, &columns, &source.rules, stored)
                    };
                    let earliest = parse(std::collections::HashSet::new())
                        .bars
                        .iter()
                        .map(|b| b.day)
                        .min();
                    // Into an empty table (`into_empty`), nothing is stored to repeat.
                    match earliest.filter(|_| !target.into_empty) {
                        Some(from) => parse(
                            load::stored_days(conn, &file.symbol, from)
                                .map_err(|e| fail(format!("reading the stored days: {e}")))?,
                        ),
                        None => parse(std::collections::HashSet::new()),
                    }
                }
                None => parse::Parsed::default(),
            }
        }
        Change::New | Change::Replaced => {
            parse::parse_file(&data, &source.rules).map_err(|e| fail(e.to_string()))?
        }
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
