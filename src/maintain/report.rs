//! The maintenance report as Markdown: what was done, then the numbers after it (with
//! the before/after of what maintenance changes: sizes and compression).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::stats::{self, Snapshot};
use super::Maintenance;

/// `1536` → `1.5 kB`, decimal units like `pg_size_pretty` would be misread otherwise.
pub fn bytes(n: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// A table cell: `|` and line breaks would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub fn render(m: &Maintenance, database: &str, backend: &str, at: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Maintenance report\n");
    let _ = writeln!(
        out,
        "- database: `{database}`\n- backend: {backend}\n- at: {}\n",
        at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = writeln!(out, "## Done\n");
    for a in &m.actions {
        let _ = writeln!(out, "- {}", cell(a));
    }
    out.push('\n');
    storage_section(&mut out, &m.before, &m.after);
    tables_section(&mut out, &m.after);
    indexes_section(&mut out, &m.after);
    cache_section(&mut out, &m.after);
    statements_section(&mut out, &m.after);
    if !m.after.notes.is_empty() {
        let _ = writeln!(out, "## Notes\n");
        for n in &m.after.notes {
            let _ = writeln!(out, "- {}", cell(n));
        }
        out.push('\n');
    }
    out
}

fn storage_section(out: &mut String, before: &Snapshot, after: &Snapshot) {
    let _ = writeln!(out, "## Storage of daily_prices\n");
    let total = |s: &Snapshot| {
        s.tables
            .iter()
            .find(|t| t.name == "daily_prices")
            .map(|t| t.table_bytes + t.index_bytes)
    };
    let _ = writeln!(out, "| | before | after |\n|---|---:|---:|");
    let opt_bytes = |v: Option<i64>| v.map_or_else(|| "–".to_owned(), bytes);
    let _ = writeln!(
        out,
        "| total size (table + indexes) | {} | {} |",
        opt_bytes(total(before)),
        opt_bytes(total(after))
    );
    match (&before.hypertable, &after.hypertable) {
        (Some(b), Some(a)) => {
            let ratio = |h: &stats::HypertableStat| {
                h.compression_ratio()
                    .map_or_else(|| "–".to_owned(), |r| format!("{r:.1}×"))
            };
            let _ = writeln!(
                out,
                "| chunks (compressed / all) | {} / {} | {} / {} |",
                b.compressed_chunks, b.chunks, a.compressed_chunks, a.chunks
            );
            let _ = writeln!(
                out,
                "| compressed chunks: size before → after compression | {} → {} | {} → {} |",
                opt_bytes(b.before_compression_bytes),
                opt_bytes(b.after_compression_bytes),
                opt_bytes(a.before_compression_bytes),
                opt_bytes(a.after_compression_bytes)
            );
            let _ = writeln!(out, "| compression ratio | {} | {} |", ratio(b), ratio(a));
            if let Some(days) = a.chunk_days {
                let _ = writeln!(out, "\nChunk interval: {days} days.");
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "\nPlain PostgreSQL: no chunks or compression (TimescaleDB features)."
            );
        }
    }
    out.push('\n');
}

fn tables_section(out: &mut String, s: &Snapshot) {
    let _ = writeln!(out, "## Tables\n");
    let _ = writeln!(out, "| table | rows (est.) | table | indexes | dead rows | dead ratio | last vacuum | last analyze |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|---|");
    for t in &s.tables {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&t.name),
            t.live,
            bytes(t.table_bytes),
            bytes(t.index_bytes),
            t.dead,
            percent(t.dead_ratio()),
            t.last_vacuum
                .as_deref()
                .map_or("never", |v| v.split('.').next().unwrap_or(v)),
            t.last_analyze
                .as_deref()
                .map_or("never", |v| v.split('.').next().unwrap_or(v)),
        );
    }
    out.push('\n');
}

fn indexes_section(out: &mut String, s: &Snapshot) {
    let _ = writeln!(out, "## Indexes\n");
    let _ = writeln!(
        out,
        "| table | index | size | scans | backs a constraint |\n|---|---|---:|---:|---|"
    );
    for i in &s.indexes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&i.table_name),
            cell(&i.index_name),
            bytes(i.bytes),
            i.scans,
            if i.backs_constraint { "yes" } else { "no" }
        );
    }
    let unused = stats::unused_indexes(s);
    let _ = writeln!(out, "\n### Never scanned (not backing a constraint)\n");
    if unused.is_empty() {
        let _ = writeln!(out, "None.");
    } else {
        for i in unused {
            let _ = writeln!(
                out,
                "- `{}` on `{}` ({}): a candidate to drop",
                cell(&i.index_name),
                cell(&i.table_name),
                bytes(i.bytes)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nScan counts are cumulative since the server's statistics were last reset.\n"
    );
}

fn cache_section(out: &mut String, s: &Snapshot) {
    let _ = writeln!(out, "## Cache\n");
    match s.cache.and_then(|c| c.ratio().map(|r| (c, r))) {
        Some((c, r)) => {
            let _ = writeln!(
                out,
                "Buffer cache hit ratio of this database: {} ({} hits, {} reads).\n",
                percent(r),
                c.blocks_hit,
                c.blocks_read
            );
        }
        None => {
            let _ = writeln!(out, "No block reads recorded yet.\n");
        }
    }
}

fn statements_section(out: &mut String, s: &Snapshot) {
    let Some(statements) = &s.statements else {
        return;
    };
    let _ = writeln!(
        out,
        "## Slowest statements (pg_stat_statements, by mean time)\n"
    );
    let _ = writeln!(
        out,
        "| mean ms | calls | total ms | statement |\n|---:|---:|---:|---|"
    );
    for st in statements {
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` |",
            st.mean_ms,
            st.calls,
            st.total_ms,
            cell(&st.query).replace('`', "'")
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500), "1.5 kB");
        assert_eq!(bytes(3_260_000_000), "3.3 GB");
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
