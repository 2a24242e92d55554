//! Writing one file's rows: bars by `COPY`, flags and rejects, and the manifest entry,
//! all in one transaction. That is what makes ingest crash-safe: after a kill at any
//! moment a file is either fully loaded and recorded, or not at all, and the next run
//! picks up exactly the files that are missing.

use std::fmt::Write as _;

use diesel::pg::CopyFormat;
use diesel::prelude::*;

use super::manifest::{Change, Entry};
use super::parse::Parsed;
use crate::db::schema::{daily_prices, data_quality, ingest_files, ingest_rejects};

/// Rows per multi-row INSERT for flags and rejects (well under the 65,535 bind limit).
const INSERT_BATCH: usize = 5_000;

/// Load `parsed` for `entry.symbol` according to `change`, and record `entry`.
/// Returns the number of bars written.
pub fn load_file(conn: &mut PgConnection, change: &Change, entry: &Entry, parsed: &Parsed) -> QueryResult<usize> {
    conn.transaction(|conn| {
        if matches!(change, Change::New | Change::Replaced) {
            // New files also clear the symbol: a run killed before its commit left
            // nothing, but rows loaded by hand or from another path must not linger.
            diesel::delete(daily_prices::table.filter(daily_prices::symbol.eq(&entry.symbol))).execute(conn)?;
            diesel::delete(data_quality::table.filter(data_quality::symbol.eq(&entry.symbol))).execute(conn)?;
            diesel::delete(ingest_rejects::table.filter(ingest_rejects::symbol.eq(&entry.symbol))).execute(conn)?;
        }
        let written = if parsed.bars.is_empty() { 0 } else { copy_bars(conn, &entry.symbol, parsed)? };
        insert_flags(conn, &entry.symbol, parsed)?;
        insert_rejects(conn, entry, parsed)?;
        diesel::insert_into(ingest_files::table)
            .values(entry)
            .on_conflict(ingest_files::symbol)
            .do_update()
            .set((entry, ingest_files::loaded_at.eq(diesel::dsl::now)))
            .execute(conn)?;
        Ok(written)
    })
}

/// Stream the bars in PostgreSQL's text COPY format.
fn copy_bars(conn: &mut PgConnection, symbol: &str, parsed: &Parsed) -> QueryResult<usize> {
    let symbol = escape_copy_text(symbol);
    diesel::copy_from(daily_prices::table)
        .from_raw_data(daily_prices::table, |out: &mut dyn std::io::Write| {
            let mut line = String::with_capacity(128);
            for bar in &parsed.bars {
                line.clear();
                // Writing to a String cannot fail.
                let _ = write!(line, "{symbol}\t{}\t", bar.day);
                push_opt(&mut line, bar.open);
                push_opt(&mut line, bar.high);
                push_opt(&mut line, bar.low);
                let _ = write!(line, "{}\t", bar.close);
                push_opt(&mut line, bar.adj_close);
                match bar.volume {
                    Some(v) => {
                        let _ = writeln!(line, "{v}");
                    }
                    None => line.push_str("\\N\n"),
                }
                out.write_all(line.as_bytes())
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            }
            Ok::<(), diesel::result::Error>(())
        })
        .with_format(CopyFormat::Text)
        .execute(conn)
}

/// A float and a tab; `\N` for NULL. Rust prints the shortest text that reads back
/// as the same f64, so no precision is lost on the way to `double precision`.
fn push_opt(line: &mut String, value: Option<f64>) {
    match value {
        Some(v) => {
            let _ = write!(line, "{v}\t");
        }
        None => line.push_str("\\N\t"),
    }
}

/// Backslash escapes of the text COPY format for a value that may hold them.
fn escape_copy_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn insert_flags(conn: &mut PgConnection, symbol: &str, parsed: &Parsed) -> QueryResult<()> {
    for chunk in parsed.flags.chunks(INSERT_BATCH) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|f| {
                (
                    data_quality::symbol.eq(symbol),
                    data_quality::day.eq(f.day),
                    data_quality::rule.eq(f.rule.name()),
                    data_quality::detail.eq(Some(f.detail.as_str())),
                )
            })
            .collect();
        diesel::insert_into(data_quality::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(())
}

fn insert_rejects(conn: &mut PgConnection, entry: &Entry, parsed: &Parsed) -> QueryResult<()> {
    for chunk in parsed.rejects.chunks(INSERT_BATCH) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|r| {
                (
                    ingest_rejects::path.eq(&entry.path),
                    ingest_rejects::line.eq(i64::try_from(r.line).unwrap_or(i64::MAX)),
                    ingest_rejects::symbol.eq(&entry.symbol),
                    ingest_rejects::reason.eq(format!("{}: {}", r.rule.name(), r.reason)),
                    // PostgreSQL text cannot hold NUL bytes.
                    ingest_rejects::raw.eq(r.raw.replace('\0', "\u{FFFD}")),
                )
            })
            .collect();
        diesel::insert_into(ingest_rejects::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_copy_specials() {
        assert_eq!(escape_copy_text("A\\B\tC"), "A\\\\B\\tC");
        assert_eq!(escape_copy_text("BRK-B"), "BRK-B");
    }
}
