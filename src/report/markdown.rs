//! The Markdown report: GitHub-flavoured Markdown that reads well both as plain text (tables
//! are padded into aligned columns) and rendered on a forge (the table of contents uses
//! GitHub's heading anchors).
//!
//! Charts are not part of this document; they need SVG, which is what the HTML report is for.

use super::format::{
    more_rows_phrase, row_count_sentence, rows_phrase, DisplayCell, TablePreview, NULL_TEXT,
};
use super::{
    csv_file_name, header_facts, report_title, section_anchors, AnalysisReport, ReportMeta,
    CONTENTS_HEADING,
};

/// Narrowest column in the plain-text table; a delimiter cell needs at least three dashes.
const MIN_COLUMN_WIDTH: usize = 3;

/// Renders the whole report. Tables show at most `max_rows` rows each; the rest is referred
/// to the analysis's CSV file (named by [`csv_file_name`](super::csv_file_name)).
pub fn render_markdown(meta: &ReportMeta, analyses: &[AnalysisReport], max_rows: usize) -> String {
    let anchors = section_anchors(meta, analyses);
    let mut document = Document::default();
    write_header(&mut document, meta);
    write_contents(&mut document, analyses, &anchors);
    for analysis in analyses {
        write_analysis(&mut document, analysis, max_rows);
    }
    write_tests(&mut document, &meta.tests, max_rows);
    document.text
}

/// A Markdown document under construction, written block by block.
#[derive(Default)]
struct Document {
    text: String,
}

impl Document {
    fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// A block followed by the blank line that separates Markdown blocks.
    fn block(&mut self, block: impl AsRef<str>) {
        self.line(block);
        self.text.push('\n');
    }
}

fn write_header(document: &mut Document, meta: &ReportMeta) {
    document.block(format!("# {}", report_title(meta)));
    let facts: Vec<String> = header_facts(meta)
        .into_iter()
        .map(|(label, value)| format!("- **{label}:** {value}"))
        .collect();
    document.block(facts.join("\n"));
    if !meta.notes.is_empty() {
        document.block("**Notes**");
        let notes: Vec<String> = meta.notes.iter().map(|note| format!("- {note}")).collect();
        document.block(notes.join("\n"));
    }
}

fn write_contents(document: &mut Document, analyses: &[AnalysisReport], anchors: &[String]) {
    document.block(format!("## {CONTENTS_HEADING}"));
    if analyses.is_empty() {
        document.block("(no analyses)");
        return;
    }
    let entries: Vec<String> = analyses
        .iter()
        .zip(anchors)
        .map(|(analysis, anchor)| {
            let rows = rows_phrase(analysis.total_rows);
            format!("- [{}](#{anchor}) — {rows}", analysis.name)
        })
        .collect();
    document.block(entries.join("\n"));
}

fn write_analysis(document: &mut Document, analysis: &AnalysisReport, max_rows: usize) {
    document.block(format!("## {}", analysis.name));
    if let Some(description) = analysis.description.filter(|d| !d.trim().is_empty()) {
        document.block(description.trim());
    }
    if let Some(failure) = analysis.failure {
        document.block(format!("> **Failed:** {}", failure.replace('\n', "\n> ")));
        if analysis.table.columns.is_empty() {
            write_sql(document, analysis.sql);
            return;
        }
    }
    let preview = TablePreview::of_result(analysis.table, max_rows, analysis.total_rows);
    document.block(row_count_sentence(analysis.total_rows, preview.rows.len()));
    if preview.headers.is_empty() {
        document.block("(no columns)");
    } else {
        document.block(table_lines(&preview).join("\n"));
        if preview.rows.is_empty() && preview.hidden_rows == 0 {
            document.block("(no rows)");
        }
    }
    if preview.hidden_rows > 0 {
        document.block(format!(
            "… {} in {}",
            more_rows_phrase(preview.hidden_rows),
            csv_file_name(analysis.name)
        ));
    }
    write_sql(document, analysis.sql);
}

/// The data tests: one line each, and the failing rows of those that failed.
fn write_tests(document: &mut Document, tests: &[super::TestReport], max_rows: usize) {
    if tests.is_empty() {
        return;
    }
    document.block("## Data tests");
    let lines: Vec<String> = tests
        .iter()
        .map(|t| {
            let mark = match t.outcome.as_str() {
                "passed" => "✅",
                _ if t.severity == "warn" => "⚠️",
                _ => "❌",
            };
            format!("- {mark} `{}` ({}): {}", t.name, t.severity, t.message)
        })
        .collect();
    document.block(lines.join("\n"));
    for t in tests.iter().filter(|t| !t.sample.columns.is_empty()) {
        document.block(format!(
            "**{}**: failing rows (first {})",
            t.name,
            t.sample.rows.len()
        ));
        document.block(table_lines(&TablePreview::new(&t.sample, max_rows)).join("\n"));
    }
}

/// The SQL in a collapsed `<details>` block, fenced with enough backticks that none in
/// the SQL can close the fence.
fn write_sql(document: &mut Document, sql: &str) {
    let fence = "`".repeat(longest_backtick_run(sql).max(2) + 1);
    document.block("<details>\n<summary>SQL</summary>");
    document.block(format!("{fence}sql\n{}\n{fence}", sql.trim_end()));
    document.block("</details>");
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// The preview as a GitHub table, padded so the columns also line up as plain text;
/// numeric columns are right-aligned.
fn table_lines(preview: &TablePreview) -> Vec<String> {
    let header: Vec<String> = preview.headers.iter().map(|h| escape_cell(h)).collect();
    let body: Vec<Vec<String>> = preview
        .rows
        .iter()
        .map(|row| row.iter().map(cell_text).collect())
        .collect();
    let widths = column_widths(&header, &body);
    let aligned_row = |cells: &[String]| table_row(cells, &widths, &preview.numeric);
    let mut lines = vec![
        aligned_row(&header),
        delimiter_row(&widths, &preview.numeric),
    ];
    lines.extend(body.iter().map(|row| aligned_row(row)));
    lines
}

fn cell_text(cell: &DisplayCell) -> String {
    match cell {
        DisplayCell::Null => NULL_TEXT.to_owned(),
        DisplayCell::Text(text) => escape_cell(text),
    }
}

fn column_widths(header: &[String], body: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|cell| text_width(cell)).collect();
    for row in body {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(text_width(cell));
        }
    }
    widths
        .iter()
        .map(|width| (*width).max(MIN_COLUMN_WIDTH))
        .collect()
}

fn text_width(text: &str) -> usize {
    text.chars().count()
}

fn table_row(cells: &[String], widths: &[usize], numeric: &[bool]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths.iter().zip(numeric))
        .map(|(cell, (width, right_aligned))| {
            let padding = " ".repeat(width.saturating_sub(text_width(cell)));
            if *right_aligned {
                format!("{padding}{cell}")
            } else {
                format!("{cell}{padding}")
            }
        })
        .collect();
    format!("| {} |", padded.join(" | "))
}

fn delimiter_row(widths: &[usize], numeric: &[bool]) -> String {
    let cells: Vec<String> = widths
        .iter()
        .zip(numeric)
        .map(|(width, right_aligned)| {
            if *right_aligned {
                format!("{}:", "-".repeat(width - 1))
            } else {
                "-".repeat(*width)
            }
        })
        .collect();
    format!("| {} |", cells.join(" | "))
}

/// Makes `text` safe inside a table cell: pipes are escaped (as is a backslash right
/// before one), line breaks become `<br>`, and `<` becomes `&lt;` so cell text can never
/// be taken for HTML.
fn escape_cell(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => escaped.push_str("\\|"),
            '\\' if chars.peek() == Some(&'|') => escaped.push_str("\\\\"),
            '<' => escaped.push_str("&lt;"),
            '\r' => {
                chars.next_if_eq(&'\n');
                escaped.push_str("<br>");
            }
            '\n' => escaped.push_str("<br>"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ChartSpec;
    use crate::table::Table;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn meta() -> ReportMeta {
        ReportMeta {
            job: "daily".into(),
            as_of: NaiveDate::from_ymd_opt(2024, 6, 28),
            generated_at: Utc.with_ymd_and_hms(2024, 7, 1, 6, 0, 0).unwrap(),
            runner_version: "0.1.0".into(),
            database: "postgres://analyst@localhost/market".into(),
            backend: "TimescaleDB 2.28.3".into(),
            data_rows: Some(1_234_567),
            symbols: Some(50),
            notes: vec!["Synthetic data.".into()],
            tests: Vec::new(),
        }
    }

    fn analysis<'a>(name: &'a str, sql: &'a str, table: &'a Table) -> AnalysisReport<'a> {
        AnalysisReport {
            name,
            description: None,
            sql,
            table,
            total_rows: table.rows.len(),
            charts: &[] as &[ChartSpec],
            failure: None,
        }
    }

    #[test]
    fn whole_document_is_pinned() {
        let prices = Table::from_text(
            &[
                ("symbol", "text"),
                ("close", "numeric"),
                ("volume", "bigint"),
            ],
            &[
                &[Some("AAPL"), Some("185.6400"), Some("52164500")],
                &[Some("A|B"), Some("0.0123456"), None],
                &[Some("MSFT"), Some("370.87"), Some("25258600")],
            ],
        );
        let empty = Table::from_text(&[("symbol", "text"), ("ret", "double precision")], &[]);
        let mut report = analysis("prices", "SELECT *\nFROM prices", &prices);
        report.description = Some("Closing prices.");
        let analyses = [report, analysis("empty", "SELECT 1", &empty)];

        let expected = "\
# Report: daily

- **As of:** 2024-06-28
- **Generated:** 2024-07-01 06:00:00 UTC
- **Runner:** runner 0.1.0
- **Database:** postgres://analyst@localhost/market
- **Backend:** TimescaleDB 2.28.3
- **Data rows:** 1,234,567
- **Symbols:** 50

**Notes**

- Synthetic data.

## Contents

- [prices](#prices) — 3 rows
- [empty](#empty) — 0 rows

## prices

Closing prices.

Showing 2 of 3 rows.

| symbol |   close |     volume |
| ------ | ------: | ---------: |
| AAPL   |  185.64 | 52,164,500 |
| A\\|B   | 0.01235 |       NULL |

… 1 more row in prices.csv

<details>
<summary>SQL</summary>

```sql
SELECT *
FROM prices
```

</details>

## empty

0 rows.

| symbol | ret |
| ------ | --: |

(no rows)

<details>
<summary>SQL</summary>

```sql
SELECT 1
```

</details>

";
        assert_eq!(render_markdown(&meta(), &analyses, 2), expected);
    }

    #[test]
    fn numeric_columns_are_right_aligned() {
        let mixed = Table::from_text(
            &[
                ("d", "date"),
                ("n", "numeric(12,2)"),
                ("t", "text"),
                ("i", "integer"),
            ],
            &[&[Some("2024-01-02"), Some("1.50"), Some("x"), Some("1")]],
        );
        let lines = table_lines(&TablePreview::new(&mixed, 10));
        assert_eq!(lines[1], "| ---------- | ---: | --- | --: |");
        assert_eq!(lines[2], "| 2024-01-02 | 1.50 | x   |   1 |");
    }

    #[test]
    fn cells_are_escaped() {
        assert_eq!(escape_cell("a|b"), "a\\|b");
        assert_eq!(escape_cell("a\\|b"), "a\\\\\\|b");
        assert_eq!(escape_cell("C:\\temp"), "C:\\temp");
        assert_eq!(escape_cell("one\ntwo\r\nthree"), "one<br>two<br>three");
        assert_eq!(escape_cell("<script>"), "&lt;script>");
    }

    #[test]
    fn truncation_refers_to_the_csv_file() {
        let rows: Vec<Vec<Option<&str>>> = (0..1_005).map(|_| vec![Some("1")]).collect();
        let row_refs: Vec<&[Option<&str>]> = rows.iter().map(Vec::as_slice).collect();
        let big = Table::from_text(&[("n", "integer")], &row_refs);
        let markdown = render_markdown(&meta(), &[analysis("big one", "SELECT", &big)], 3);
        assert!(markdown.contains("Showing 3 of 1,005 rows."));
        assert!(markdown.contains("\n… 1,002 more rows in big one.csv\n"));
        assert!(markdown.contains("- [big one](#big-one) — 1,005 rows"));
    }

    #[test]
    fn sql_fence_outlasts_backticks_in_the_sql() {
        let empty = Table::default();
        let sql = "SELECT '```' AS fence";
        let markdown = render_markdown(&meta(), &[analysis("q", sql, &empty)], 3);
        assert!(markdown.contains("````sql\nSELECT '```' AS fence\n````\n"));
        assert!(markdown.contains("(no columns)"));
    }
}
