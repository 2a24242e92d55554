//! The HTML report: one self-contained file (inline CSS, inline SVG charts, no scripts, no
//! external fonts or images) that opens offline and can be mailed or archived as is.
//!
//! The markup is kept well-formed XML apart from the doctype (void elements self-closed,
//! only XML's predefined entities plus `&#39;`), so it can be checked and post-processed
//! with XML tools. Tables show the same preview as the Markdown report.

use super::chart::render_chart_svg;
use super::format::{
    more_rows_phrase, row_count_sentence, rows_phrase, DisplayCell, TablePreview, NULL_TEXT,
};
use super::{
    csv_file_name, header_facts, report_title, section_anchors, AnalysisReport, ReportError,
    ReportMeta, CONTENTS_HEADING,
};

/// The whole style sheet; system fonts only, so nothing is fetched.
const STYLE: &str = r#"
:root { color-scheme: light; }
body { margin: 0 auto; max-width: 1100px; padding: 1.5rem; color: #1f2328; background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { margin: 0 0 .75rem; font-size: 1.75rem; }
h2 { margin: 0 0 .5rem; font-size: 1.35rem; }
a { color: #0969da; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0 0 1rem; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.notes { margin: 0 0 1rem; padding-left: 1.25rem; }
nav.contents { border: 1px solid #d0d7de; border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0 2rem; }
nav.contents ol { margin: 0; padding-left: 1.5rem; }
.muted, .row-count, .more-rows, .no-rows, footer { color: #59636e; }
section.analysis { border-top: 1px solid #d0d7de; padding-top: 1rem; margin-top: 2rem; }
section.failed h2 { color: #cf222e; }
p.failure { color: #cf222e; background: #ffebe9; padding: 0.5rem; white-space: pre-wrap; }
.description { white-space: pre-line; }
figure.chart { margin: 1rem 0; }
figure.chart svg { display: block; max-width: 100%; height: auto; border: 1px solid #eaeef2; border-radius: 4px; }
figcaption { font-weight: 600; margin-top: .35rem; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .875rem; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left; vertical-align: top; white-space: pre-wrap; }
th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.null { color: #8c959f; font-style: italic; }
details.sql { margin: .75rem 0; }
details.sql summary { cursor: pointer; color: #59636e; }
pre { background: #f6f8fa; border-radius: 6px; padding: .75rem 1rem; overflow-x: auto; font-size: .85rem; }
footer { border-top: 1px solid #d0d7de; margin-top: 3rem; padding-top: .5rem; font-size: .85rem; }
"#;

/// Renders the whole report. Tables show at most `max_rows` rows each, with a link to the
/// analysis's CSV file (named by [`csv_file_name`](super::csv_file_name), expected next
/// to the HTML file) for the rest.
///
/// Fails if a chart cannot be drawn (see [`render_chart_svg`]); the error names the
/// analysis and chart.
pub fn render_html(
    meta: &ReportMeta,
    analyses: &[AnalysisReport],
    max_rows: usize,
) -> Result<String, ReportError> {
    let anchors = section_anchors(meta, analyses);
    let mut page = String::new();
    page.push_str(&head(meta));
    page.push_str("<body>\n");
    page.push_str(&header(meta));
    page.push_str(&contents(analyses, &anchors));
    page.push_str("<main>\n");
    for (analysis, anchor) in analyses.iter().zip(&anchors) {
        page.push_str(&analysis_section(analysis, anchor, max_rows));
    }
    page.push_str(&tests_section(&meta.tests, max_rows));
    page.push_str("</main>\n");
    page.push_str(&footer(meta));
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// Escapes text for element content and double- or single-quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn head(meta: &ReportMeta) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n\
         <meta name=\"generator\" content=\"runner {version}\" />\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n",
        version = escape(&meta.runner_version),
        title = escape(&report_title(meta)),
    )
}

fn header(meta: &ReportMeta) -> String {
    let facts: String = header_facts(meta)
        .iter()
        .map(|(label, value)| format!("<dt>{}</dt><dd>{}</dd>\n", escape(label), escape(value)))
        .collect();
    let notes = if meta.notes.is_empty() {
        String::new()
    } else {
        let items: String = meta
            .notes
            .iter()
            .map(|note| format!("<li>{}</li>\n", escape(note)))
            .collect();
        format!("<ul class=\"notes\">\n{items}</ul>\n")
    };
    format!(
        "<header>\n<h1>{}</h1>\n<dl class=\"facts\">\n{facts}</dl>\n{notes}</header>\n",
        escape(&report_title(meta))
    )
}

fn contents(analyses: &[AnalysisReport], anchors: &[String]) -> String {
    let items: String = analyses
        .iter()
        .zip(anchors)
        .map(|(analysis, anchor)| {
            format!(
                "<li><a href=\"#{}\">{}</a> <span class=\"muted\">— {}</span></li>\n",
                escape(anchor),
                escape(analysis.name),
                rows_phrase(analysis.total_rows)
            )
        })
        .collect();
    let list = if items.is_empty() {
        "<p class=\"muted\">(no analyses)</p>\n".to_owned()
    } else {
        format!("<ol>\n{items}</ol>\n")
    };
    format!("<nav class=\"contents\">\n<h2>{CONTENTS_HEADING}</h2>\n{list}</nav>\n")
}

/// The data tests: a table of outcomes, and the failing rows of those that failed.
fn tests_section(tests: &[super::TestReport], max_rows: usize) -> String {
    if tests.is_empty() {
        return String::new();
    }
    let mut section = String::from(
        "<section class=\"tests\" id=\"data-tests\">\n<h2>Data tests</h2>\n<table>\n\
         <thead><tr><th>test</th><th>severity</th><th>outcome</th><th>detail</th></tr></thead>\n<tbody>\n",
    );
    for t in tests {
        section.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&t.outcome),
            escape(&t.name),
            escape(&t.severity),
            escape(&t.outcome),
            escape(&t.message)
        ));
    }
    section.push_str("</tbody>\n</table>\n");
    for t in tests.iter().filter(|t| !t.sample.columns.is_empty()) {
        section.push_str(&format!(
            "<h3>{}: failing rows</h3>\n{}",
            escape(&t.name),
            table(&TablePreview::new(&t.sample, max_rows))
        ));
    }
    section.push_str("</section>\n");
    section
}

/// One analysis's section. A failed analysis shows its failure, and a chart that
/// cannot be drawn shows why in its place: the rest of the report is still written.
fn analysis_section(analysis: &AnalysisReport, anchor: &str, max_rows: usize) -> String {
    let class = if analysis.failure.is_some() {
        "analysis failed"
    } else {
        "analysis"
    };
    let mut section = format!(
        "<section class=\"{class}\" id=\"{}\">\n<h2>{}</h2>\n",
        escape(anchor),
        escape(analysis.name)
    );
    if let Some(description) = analysis.description.filter(|d| !d.trim().is_empty()) {
        section.push_str(&format!(
            "<p class=\"description\">{}</p>\n",
            escape(description.trim())
        ));
    }
    if let Some(failure) = analysis.failure {
        section.push_str(&format!(
            "<p class=\"failure\"><strong>Failed:</strong> {}</p>\n",
            escape(failure)
        ));
    }
    let failed_query = analysis.failure.is_some() && analysis.table.columns.is_empty();
    for spec in analysis.charts.iter().filter(|_| !failed_query) {
        match render_chart_svg(spec, analysis.table) {
            Ok(svg) => section.push_str(&format!(
                "<figure class=\"chart\">\n{svg}<figcaption>{}</figcaption>\n</figure>\n",
                escape(&spec.display_title())
            )),
            Err(e) => section.push_str(&format!(
                "<p class=\"failure\">{}</p>\n",
                escape(&e.to_string())
            )),
        }
    }
    if failed_query {
        section.push_str(&format!(
            "<details class=\"sql\">\n<summary>SQL</summary>\n<pre><code>{}</code></pre>\n</details>\n</section>\n",
            escape(analysis.sql.trim_end())
        ));
        return section;
    }
    let preview = TablePreview::of_result(analysis.table, max_rows, analysis.total_rows);
    section.push_str(&format!(
        "<p class=\"row-count\">{}</p>\n",
        row_count_sentence(analysis.total_rows, preview.rows.len())
    ));
    section.push_str(&table(&preview));
    if preview.hidden_rows > 0 {
        let csv = escape(&csv_file_name(analysis.name));
        section.push_str(&format!(
            "<p class=\"more-rows\">… {} in <a href=\"{csv}\">{csv}</a></p>\n",
            more_rows_phrase(preview.hidden_rows)
        ));
    }
    section.push_str(&format!(
        "<details class=\"sql\">\n<summary>SQL</summary>\n<pre><code>{}</code></pre>\n</details>\n",
        escape(analysis.sql.trim_end())
    ));
    section.push_str("</section>\n");
    section
}

fn table(preview: &TablePreview) -> String {
    if preview.headers.is_empty() {
        return "<p class=\"no-rows\">(no columns)</p>\n".to_owned();
    }
    let header_cells: String = preview
        .headers
        .iter()
        .zip(&preview.numeric)
        .map(|(name, numeric)| format!("<th{}>{}</th>", numeric_class(*numeric), escape(name)))
        .collect();
    let mut html =
        format!("<div class=\"table-wrap\">\n<table>\n<thead><tr>{header_cells}</tr></thead>\n");
    if !preview.rows.is_empty() {
        html.push_str("<tbody>\n");
        for row in &preview.rows {
            html.push_str(&table_row(row, &preview.numeric));
        }
        html.push_str("</tbody>\n");
    }
    html.push_str("</table>\n</div>\n");
    if preview.rows.is_empty() && preview.hidden_rows == 0 {
        html.push_str("<p class=\"no-rows\">(no rows)</p>\n");
    }
    html
}

fn table_row(row: &[DisplayCell], numeric: &[bool]) -> String {
    let cells: String = row
        .iter()
        .zip(numeric)
        .map(|(cell, numeric)| match cell {
            DisplayCell::Null => format!(
                "<td class=\"{}null\">{NULL_TEXT}</td>",
                if *numeric { "num " } else { "" }
            ),
            DisplayCell::Text(text) => {
                format!("<td{}>{}</td>", numeric_class(*numeric), escape(text))
            }
        })
        .collect();
    format!("<tr>{cells}</tr>\n")
}

fn numeric_class(numeric: bool) -> &'static str {
    if numeric {
        " class=\"num\""
    } else {
        ""
    }
}

fn footer(meta: &ReportMeta) -> String {
    format!(
        "<footer>Generated by runner {} at {}.</footer>\n",
        escape(&meta.runner_version),
        meta.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ChartKind, ChartSpec};
    use crate::table::Table;
    use chrono::{TimeZone, Utc};

    fn meta() -> ReportMeta {
        ReportMeta {
            job: "daily <prices>".into(),
            as_of: None,
            generated_at: Utc.with_ymd_and_hms(2024, 7, 1, 6, 0, 0).unwrap(),
            runner_version: "0.1.0".into(),
            database: "postgres://analyst@localhost/market".into(),
            backend: "PostgreSQL 15.20 (no TimescaleDB)".into(),
            data_rows: None,
            symbols: Some(3),
            notes: vec!["Synthetic data & \"quotes\".".into()],
            tests: Vec::new(),
        }
    }

    fn prices() -> Table {
        Table::from_text(
            &[("date", "date"), ("symbol", "text"), ("close", "numeric")],
            &[
                &[Some("2024-01-02"), Some("AAPL"), Some("185.64")],
                &[Some("2024-01-03"), Some("AAPL"), Some("184.25")],
                &[
                    Some("2024-01-02"),
                    Some("<script>alert(1)</script>"),
                    Some("1234.5"),
                ],
            ],
        )
    }

    fn chart(kind: ChartKind, x: &str, y: &str) -> ChartSpec {
        ChartSpec {
            kind,
            title: Some(format!("{y} <by> {x}")),
            x: x.into(),
            y: vec![y.into()],
            series: None,
            open: None,
            high: None,
            low: None,
            close: None,
        }
    }

    fn render(table: &Table, charts: &[ChartSpec], max_rows: usize) -> String {
        let analyses = [AnalysisReport {
            name: "prices",
            description: Some("Close <b>prices</b>."),
            sql: "SELECT * FROM prices WHERE close < 10 AND symbol <> 'X'",
            table,
            total_rows: table.rows.len(),
            charts,
            failure: None,
        }];
        render_html(&meta(), &analyses, max_rows).expect("renders")
    }

    #[test]
    fn one_svg_per_declared_chart() {
        let charts = [
            chart(ChartKind::Line, "date", "close"),
            chart(ChartKind::Bar, "symbol", "close"),
        ];
        let html = render(&prices(), &charts, 10);
        assert_eq!(html.matches("<svg").count(), 2);
        assert_eq!(html.matches("<figure class=\"chart\">").count(), 2);
        assert!(html.contains("<figcaption>close &lt;by&gt; date</figcaption>"));
        assert_eq!(render(&prices(), &[], 10).matches("<svg").count(), 0);
    }

    #[test]
    fn page_is_self_contained() {
        let html = render(&prices(), &[chart(ChartKind::Line, "date", "close")], 10);
        let without_svg_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for reference in ["http://", "https://", "<script", "<link", "@import", "url("] {
            assert!(
                !without_svg_namespace.contains(reference),
                "found {reference}"
            );
        }
        assert!(html.contains("<style>"));
    }

    #[test]
    fn cells_and_texts_are_escaped() {
        let html = render(&prices(), &[], 10);
        assert!(html.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
        assert!(html.contains("<title>Report: daily &lt;prices&gt;</title>"));
        assert!(html.contains("<li>Synthetic data &amp; &quot;quotes&quot;.</li>"));
        assert!(html.contains("Close &lt;b&gt;prices&lt;/b&gt;."));
        assert!(html.contains("WHERE close &lt; 10 AND symbol &lt;&gt; &#39;X&#39;</code>"));
    }

    #[test]
    fn tables_align_numbers_and_truncate_like_markdown() {
        let html = render(&prices(), &[], 2);
        assert!(html.contains("<th class=\"num\">close</th>"));
        assert!(html.contains("<td class=\"num\">185.64</td>"));
        assert!(!html.contains("1,234.50"));
        assert!(html.contains("Showing 2 of 3 rows."));
        assert!(html.contains("… 1 more row in <a href=\"prices.csv\">prices.csv</a>"));
        assert!(html.contains("<li><a href=\"#prices\">prices</a>"));
        assert!(html.contains("<section class=\"analysis\" id=\"prices\">"));
    }

    #[test]
    fn nulls_and_empty_results() {
        let mut table = prices();
        table.rows[0][2] = None;
        assert!(render(&table, &[], 10).contains("<td class=\"num null\">NULL</td>"));
        table.rows.clear();
        let html = render(&table, &[chart(ChartKind::Line, "date", "close")], 10);
        assert!(html.contains("<p class=\"no-rows\">(no rows)</p>"));
        assert!(html.contains("no data"));
        assert!(!html.contains("<tbody>"));
    }

    #[test]
    fn a_chart_that_cannot_be_drawn_is_marked_and_the_rest_is_written() {
        let charts = [
            chart(ChartKind::Line, "date", "volume"),
            chart(ChartKind::Line, "date", "close"),
        ];
        let analyses = [AnalysisReport {
            name: "prices",
            description: None,
            sql: "SELECT 1",
            table: &prices(),
            total_rows: prices().rows.len(),
            charts: &charts,
            failure: Some("chart \"volume <by> date\": column \"volume\" is not in the result"),
        }];
        let html = render_html(&meta(), &analyses, 10).unwrap();
        assert!(
            html.contains("<section class=\"analysis failed\" id=\"prices\">"),
            "{html}"
        );
        assert_eq!(html.matches("<p class=\"failure\">").count(), 2, "{html}");
        assert_eq!(
            html.matches("<figure class=\"chart\">").count(),
            1,
            "{html}"
        );
        assert!(
            html.contains("<td>AAPL</td>") || html.contains("AAPL"),
            "{html}"
        );
    }

    #[test]
    fn a_failed_query_shows_its_failure_and_sql_only() {
        let analyses = [AnalysisReport {
            name: "broken",
            description: None,
            sql: "SELECT nope",
            table: &Table::default(),
            total_rows: 0,
            charts: &[],
            failure: Some("column \"nope\" does not exist"),
        }];
        let html = render_html(&meta(), &analyses, 10).unwrap();
        assert!(html.contains("<p class=\"failure\"><strong>Failed:</strong> column &quot;nope&quot; does not exist</p>"), "{html}");
        assert!(
            html.contains("<pre><code>SELECT nope</code></pre>"),
            "{html}"
        );
        assert!(!html.contains("<table"), "{html}");
    }

    #[test]
    fn markup_is_well_formed() {
        let charts = [
            chart(ChartKind::Line, "date", "close"),
            chart(ChartKind::Bar, "symbol", "close"),
        ];
        let html = render(&prices(), &charts, 2);
        assert_eq!(check_well_formed(&html), Ok(()));
        assert!(check_well_formed("<p><b></p></b>").is_err());
        assert!(check_well_formed("<p>a & b</p>").is_err());
        assert!(check_well_formed("<br>").is_err());
    }

    /// Where a document stops being well-formed XML.
    #[derive(Debug, PartialEq, Eq, thiserror::Error)]
    enum NotWellFormed {
        #[error("unterminated entity")]
        UnterminatedEntity,
        #[error("unknown entity {0}")]
        UnknownEntity(String),
        #[error("unterminated tag")]
        UnterminatedTag,
        #[error("</{closing}> closes {open:?}")]
        Misnested {
            closing: String,
            open: Option<String>,
        },
        #[error("unclosed {0:?}")]
        Unclosed(Vec<String>),
        #[error("unescaped '>' in {0:?}")]
        UnescapedGreaterThan(String),
    }

    /// A small XML well-formedness check: balanced, properly nested tags (the doctype
    /// aside), quoted attributes, and only known entities.
    fn check_well_formed(document: &str) -> Result<(), NotWellFormed> {
        let mut open_tags: Vec<&str> = Vec::new();
        let mut rest = document.trim_start();
        if let Some(after_doctype) = rest.strip_prefix("<!DOCTYPE html>") {
            rest = after_doctype;
        }
        while let Some(start) = rest.find(['<', '&']) {
            check_text(&rest[..start])?;
            rest = &rest[start..];
            if rest.starts_with('&') {
                let entity_end = rest.find(';').ok_or(NotWellFormed::UnterminatedEntity)?;
                let entity = &rest[..=entity_end];
                if !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&apos;"].contains(&entity) {
                    return Err(NotWellFormed::UnknownEntity(entity.to_owned()));
                }
                rest = &rest[entity.len()..];
                continue;
            }
            let end = tag_end(rest).ok_or(NotWellFormed::UnterminatedTag)?;
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match open_tags.pop() {
                    Some(open) if open == name.trim() => {}
                    open => {
                        return Err(NotWellFormed::Misnested {
                            closing: name.to_owned(),
                            open: open.map(str::to_owned),
                        })
                    }
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or_default();
                open_tags.push(name);
            }
        }
        check_text(rest)?;
        match open_tags.as_slice() {
            [] => Ok(()),
            unclosed => Err(NotWellFormed::Unclosed(
                unclosed.iter().map(|t| (*t).to_owned()).collect(),
            )),
        }
    }

    fn check_text(text: &str) -> Result<(), NotWellFormed> {
        match text.contains('>') {
            true => Err(NotWellFormed::UnescapedGreaterThan(text.to_owned())),
            false => Ok(()),
        }
    }

    /// Index of the `>` closing the tag at the start of `text`, skipping quoted values.
    fn tag_end(text: &str) -> Option<usize> {
        let mut quote = None;
        for (index, c) in text.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(open), c) if c == open => quote = None,
                (None, '>') => return Some(index),
                _ => {}
            }
        }
        None
    }
}
