//! Turns executed analyses into files people and programs read: one CSV per analysis and a
//! Markdown and a self-contained HTML report per job, the latter with SVG charts.
//!
//! Each output format lives in its own module, in the spirit of hyperfine's `export`:
//! * [`csv`](write_csv) — exact cell text, for further processing;
//! * [`markdown`](render_markdown) — GitHub-flavoured, readable as plain text and on a forge;
//! * [`html`](render_html) — one file with inline CSS and SVG that opens offline;
//! * `chart` — the SVG charts declared per analysis in the job file ([`ChartSpec`]);
//! * `format` — the number formatting and table preview shared by the two documents.
//!
//! Rendering is pure (strings in, string out) and deterministic, so reports can be diffed
//! and pinned in tests; writing files is the caller's business.

mod chart;
mod csv;
mod format;
mod html;
pub mod index;
mod markdown;
pub mod publish;

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::table::Table;

pub use self::chart::{
    render_chart_svg, ChartKind, ChartProblem, ChartSpec, CHART_HEIGHT, CHART_WIDTH,
};
pub use self::csv::{write_csv, CsvRows};
use self::format::format_integer;
pub use self::format::format_number;
use self::html::escape as html_escape;
pub use self::html::render_html;
pub use self::markdown::render_markdown;

/// Everything a report needs about one executed analysis.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisReport<'a> {
    /// The analysis name from the job file; also the stem of its CSV file
    /// (see [`csv_file_name`]).
    pub name: &'a str,
    /// Free text from the job file; Markdown documents include it verbatim.
    pub description: Option<&'a str>,
    pub sql: &'a str,
    /// The first rows of the result (at least as many as the documents show).
    pub table: &'a Table,
    /// How many rows the result had (its CSV has them all).
    pub total_rows: usize,
    pub charts: &'a [ChartSpec],
    /// Why the analysis failed: its section says so instead of showing a result.
    pub failure: Option<&'a str>,
}

/// Facts for the report header.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMeta {
    pub job: String,
    pub as_of: Option<NaiveDate>,
    pub generated_at: DateTime<Utc>,
    pub runner_version: String,
    /// Connection string, already password-redacted.
    pub database: String,
    /// e.g. "TimescaleDB 2.28.3" or "PostgreSQL 15.20 (no TimescaleDB)".
    pub backend: String,
    /// Rows of market data the analyses ran on, if known.
    pub data_rows: Option<i64>,
    /// Distinct symbols in the market data, if known.
    pub symbols: Option<i64>,
    pub notes: Vec<String>,
    /// The job's data tests, shown in their own section.
    pub tests: Vec<TestReport>,
}

/// One data test's outcome as the reports show it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestReport {
    pub name: String,
    /// `error` or `warn`.
    pub severity: String,
    /// `passed`, `failed` or `error`.
    pub outcome: String,
    pub message: String,
    /// Some failing rows.
    pub sample: Table,
}

/// The problems of `analysis`'s charts (each chart that cannot be drawn from its
/// result, with why): a run reports them as the analysis's failure.
pub fn chart_problems(analysis: &AnalysisReport) -> Vec<String> {
    analysis
        .charts
        .iter()
        .filter_map(|spec| render_chart_svg(spec, analysis.table).err())
        .map(|e| e.to_string())
        .collect()
}

/// Why a report or chart could not be produced. Messages name the analysis, chart and
/// column involved.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("could not write CSV: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("could not write report: {0}")]
    Io(#[from] std::io::Error),
    /// The chart declaration does not fit the result, e.g. it names a missing column.
    #[error("chart \"{chart}\": {reason}")]
    InvalidChart { chart: String, reason: ChartProblem },
    /// A cell the chart needs cannot be read as the kind of value the chart needs.
    #[error(
        "chart \"{chart}\": column \"{column}\" row {row} holds {value:?}, which is not {expected}"
    )]
    UnplottableValue {
        chart: String,
        column: String,
        /// 1-based, as in the CSV file without its header.
        row: usize,
        value: String,
        expected: &'static str,
    },
    /// The plotting library failed; not expected with the in-memory SVG backend.
    #[error("chart \"{chart}\": drawing failed: {message}")]
    Drawing { chart: String, message: String },
}

/// The file name the documents use when they refer to an analysis's CSV export, e.g. for
/// rows that did not fit into the document. Callers should save the CSV under this name,
/// next to the documents.
pub fn csv_file_name(analysis_name: &str) -> String {
    format!("{analysis_name}.csv")
}

/// Heading text of the report, shared so both documents agree on the anchors.
fn report_title(meta: &ReportMeta) -> String {
    format!("Report: {}", meta.job)
}

/// Heading text of the table of contents.
const CONTENTS_HEADING: &str = "Contents";

/// The header facts below the title (which names the job) as (label, value) pairs, in
/// display order; unknown facts are left out.
fn header_facts(meta: &ReportMeta) -> Vec<(&'static str, String)> {
    let mut facts = Vec::new();
    if let Some(as_of) = meta.as_of {
        facts.push(("As of", as_of.format("%Y-%m-%d").to_string()));
    }
    facts.extend([
        (
            "Generated",
            meta.generated_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        ),
        ("Runner", format!("runner {}", meta.runner_version)),
        ("Database", meta.database.clone()),
        ("Backend", meta.backend.clone()),
    ]);
    if let Some(data_rows) = meta.data_rows {
        facts.push(("Data rows", format_integer(data_rows)));
    }
    if let Some(symbols) = meta.symbols {
        facts.push(("Symbols", format_integer(symbols)));
    }
    facts
}

/// One anchor per analysis, unique within the document, computed the way GitHub derives
/// heading anchors so that the Markdown table of contents links work on GitHub too; the
/// HTML report uses the same anchors as element ids.
fn section_anchors(meta: &ReportMeta, analyses: &[AnalysisReport]) -> Vec<String> {
    let mut taken = HashSet::new();
    // Headings above the analyses claim their anchors first, as on GitHub.
    for heading in [report_title(meta).as_str(), CONTENTS_HEADING] {
        unique_anchor(heading, &mut taken);
    }
    analyses
        .iter()
        .map(|analysis| unique_anchor(analysis.name, &mut taken))
        .collect()
}

/// GitHub's heading slug: lower-case, punctuation dropped, spaces as `-`; repeats get
/// `-1`, `-2`, … appended.
fn unique_anchor(heading: &str, taken: &mut HashSet<String>) -> String {
    let slug: String = heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect();
    let base = if slug.is_empty() {
        "section".to_owned()
    } else {
        slug
    };
    let mut anchor = base.clone();
    let mut repeat = 0;
    while !taken.insert(anchor.clone()) {
        repeat += 1;
        anchor = format!("{base}-{repeat}");
    }
    anchor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github_and_stay_unique() {
        let mut taken = HashSet::new();
        assert_eq!(
            unique_anchor("Daily Returns (%)", &mut taken),
            "daily-returns-"
        );
        assert_eq!(unique_anchor("top_movers", &mut taken), "top_movers");
        assert_eq!(unique_anchor("top_movers", &mut taken), "top_movers-1");
        assert_eq!(unique_anchor("Top_Movers", &mut taken), "top_movers-2");
        assert_eq!(unique_anchor("!!!", &mut taken), "section");
    }

    #[test]
    fn errors_name_the_chart() {
        let error = ReportError::InvalidChart {
            chart: "Close".into(),
            reason: ChartProblem::MissingColumn {
                name: "clse".into(),
                available: "date, close".into(),
            },
        };
        assert_eq!(
            error.to_string(),
            "chart \"Close\": column \"clse\" is not in the result (its columns: date, close)"
        );
    }
}
