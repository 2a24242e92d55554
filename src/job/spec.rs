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
    /// Connection URL; `${VAR}` and `${VAR:-default}` are expanded. `DATABASE_URL` in the
    /// environment wins over it.
    pub database_url: Option<Spanned<String>>,
    /// Folder of the analysis templates, relative to the project root.
    pub templates_dir: Option<Spanned<String>>,
    /// Typed variables, visible to templates and to `${name}` in paths.
    #[serde(default)]
    pub vars: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub ingest: Vec<IngestSpec>,
    #[serde(default)]
    pub analysis: Vec<AnalysisSpec>,
    #[serde(default)]
    pub report: ReportSpec,
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
}
