//! The job file exactly as written: plain serde types, every struct closed with
//! `deny_unknown_fields`, and `Spanned` wrappers on the values checked later so their
//! errors can point at a line. Only `plan` turns this into a usable [`crate::job::Job`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::report::ChartSpec;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: Spanned<String>,
    pub description: Option<String>,
    /// Connection URL; `${VAR}` and `${VAR:-default}` are expanded, and the result is used
    /// as written (`"${DATABASE_URL:-…}"` lets the environment choose). Without it the job
    /// uses `$DATABASE_URL`, else the default (see `job::database`).
    pub database_url: Option<Spanned<String>>,
    /// Seconds to wait for the server when connecting (default 10; `--connect-timeout`
    /// overrides it).
    pub connect_timeout: Option<Spanned<u64>>,
    /// Seconds an analysis may run before it is cancelled (default 1800); an analysis's
    /// own `statement_timeout` overrides it.
    pub statement_timeout: Option<Spanned<u64>>,
    /// Folder of the analysis templates, relative to the project root.
    pub templates_dir: Option<Spanned<String>>,
    /// When the job runs by itself (`runner schedule`, `runner daemon`): a cron
    /// expression, its time zone and the missed-run policy; see `job::schedule`.
    pub schedule: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub missed: Option<Spanned<String>>,
    /// Typed variables, visible to templates and to `${name}` in paths.
    #[serde(default)]
    pub vars: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub ingest: Vec<IngestSpec>,
    #[serde(default)]
    pub analysis: Vec<AnalysisSpec>,
    #[serde(default)]
    pub report: ReportSpec,
    /// How the prices are stored: chunking, compression, retention, aggregates.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Data tests (`[[test]]`), see `job::datatest`.
    #[serde(default)]
    pub test: Vec<super::datatest::TestSpec>,
    /// Real-time feeds (`runner stream`); see `job::feed`.
    #[serde(default)]
    pub feed: Vec<super::feed::FeedSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSpec {
    pub name: Option<Spanned<String>>,
    pub kind: SourceKind,
    /// Glob patterns, relative to the project root; `${var}` is expanded.
    pub paths: Spanned<Vec<Spanned<String>>>,
    /// Fail a file whose share of rejected rows is above this (0.0–1.0).
    pub max_reject_ratio: Option<Spanned<f64>>,
    /// Outcome per data-quality rule (`zero_open = "flag"`): `reject`, `repair` or `flag`.
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<String>>,
    /// Which source wins when two hold a file for the same symbol: the higher (default
    /// 0). Without a difference, two files for one symbol fail that symbol.
    pub priority: Option<i64>,
    /// What happens to the rows of a symbol whose file is gone (default `keep`).
    #[serde(default)]
    pub on_missing: OnMissing,
}

/// `on_missing`: a file loaded before and no longer found.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMissing {
    /// Its rows stay; the file is listed as missing.
    #[default]
    Keep,
    /// Its rows are deleted (recorded in the change log like a replaced file).
    Delete,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Daily OHLCV bars, one CSV per symbol.
    Prices,
    /// `symbols_valid_meta.csv`.
    Symbols,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSpec {
    pub name: Spanned<String>,
    pub description: Option<String>,
    /// Template path, relative to the templates folder.
    pub template: Spanned<String>,
    /// Report formats this analysis appears in (default: the report's).
    pub outputs: Option<Vec<OutputFormat>>,
    #[serde(default)]
    pub chart: Vec<ChartSpec>,
    /// Also write the result into `analytics.<name>` for later analyses (`ref('name')`).
    pub materialize: Option<Spanned<Materialize>>,
    /// Analyses that must run first (besides those found through `ref('…')`).
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    /// Incremental only: the result column whose newer values are appended.
    pub time_column: Option<Spanned<String>>,
    /// Incremental only: the columns that identify a row (the time column among them);
    /// they get a unique index, and the others partition the watermark (per symbol, say).
    #[serde(default)]
    pub unique_key: Vec<String>,
    /// Seconds this analysis may run before it is cancelled (default: the job's).
    pub statement_timeout: Option<Spanned<u64>>,
    /// Rows runner computes itself instead of running the template (which stays their
    /// definition and must give the same columns): `"indicators"`.
    pub native: Option<Spanned<String>>,
}

/// How an analysis keeps its result in the database.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialize {
    /// Rebuilt on every run, swapped in within one transaction.
    Table,
    /// A view: always current, computed when read.
    View,
    /// Created on the first run; later runs append only rows newer than the table holds.
    Incremental,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Csv,
    Markdown,
    Html,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Output folder, relative to the project root; `${var}` is expanded.
    pub dir: Option<Spanned<String>>,
    pub formats: Option<Vec<OutputFormat>>,
    /// Rows shown per analysis in Markdown/HTML (the CSV always has all).
    pub max_rows: Option<usize>,
    /// Without `as_of`: the latest day at least this share of the symbols reached
    /// (0 < share ≤ 1, default 0.5).
    pub as_of_share: Option<Spanned<f64>>,
}

/// `[storage]`: physical layout of the prices (see `db::storage::settings` for defaults
/// and why). Intervals are written like `"365 days"`, `"6 months"`, `"2 years"`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// Chunk interval of the prices hypertable (TimescaleDB).
    pub chunk_interval: Option<Spanned<String>>,
    /// Compress chunks at all (TimescaleDB; default true).
    pub compression: Option<bool>,
    /// Compress chunks older than this (TimescaleDB; default `"1 year"`).
    pub compress_after: Option<Spanned<String>>,
    /// Drop chunks older than this (TimescaleDB; default: keep everything).
    pub retention: Option<Spanned<String>>,
    /// OHLCV aggregates to keep: `"weekly"`, `"monthly"` (default both).
    pub aggregates: Option<Vec<Spanned<String>>>,
    /// Run `maintain` right after each ingest (default false).
    pub maintain_after_ingest: Option<bool>,
}
