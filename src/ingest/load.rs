//! Writing a batch of files: their bars by one `COPY`, their flags and rejects, their
//! manifest entries and the change-log entries saying which days of which symbols were
//! written or deleted, all in one transaction. That is what makes ingest crash-safe:
//! after a kill at any moment each file is either fully loaded and recorded, or not at
//! all, and the next run picks up exactly the files that are missing — and everything
//! derived from the prices learns of the change from the log, however the run ends
//! afterwards. Batching several
//! small files per transaction keeps per-file round trips and commits from dominating.

use std::fmt::Write as _;

use chrono::NaiveDate;
use diesel::pg::CopyFormat;
use diesel::prelude::*;
use diesel::sql_types::{Array, Date, Text};
use diesel::upsert::excluded;

use super::buckets;
use super::manifest::{Change, Entry};
use super::parse::{Bar, Parsed};
use crate::db::changelog::{self, Source, Span};
use crate::db::copy;
use crate::db::schema::{daily_prices, data_quality, ingest_files, ingest_rejects};
use crate::db::storage::{aggregates, Aggregate};

/// Rows per multi-row INSERT for flags and rejects (well under the 65,535 bind limit).
const INSERT_BATCH: usize = 5_000;

/// Manifest rows per INSERT (11 binds each).
const MANIFEST_BATCH: usize = 2_000;

/// How bars travel to the server. Binary saves the server from parsing decimal text
/// (its main cost in a bulk load) and the client from formatting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyEncoding {
    #[default]
    Binary,
    Text,
}

/// One file ready to be written: what changed, its new manifest entry and its rows.
#[derive(Debug)]
pub struct PreparedFile {
    pub change: Change,
    pub entry: Entry,
    pub parsed: Parsed,
}

/// How the batches of one ingest are written.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub encoding: CopyEncoding,
    /// Aggregates whose buckets the batches write themselves (see [`write_buckets`]).
    pub direct: &'a [Aggregate],
    /// `daily_prices` was empty when this ingest began and is loaded without its key
    /// (`db::storage::key`): no symbol of a batch has stored rows to clear or repeat,
    /// and looking for them would scan the whole unindexed table.
    pub into_empty: bool,
}

/// Load every file of `batch` in one transaction; returns the number of bars written and
/// the spans of days changed, per symbol (as recorded in the change log). The buckets of
/// the symbols whose rows the batch replaces whole are written into `direct` aggregates
/// too, and their log entries say so (see [`write_buckets`]).
pub fn load_batch(
    conn: &mut PgConnection,
    batch: &[PreparedFile],
    target: Target<'_>,
) -> QueryResult<(usize, Vec<Span>)> {
    conn.transaction(|conn| {
        // The DELETEs below are a few index probes.
        index_probes_only(conn)?;
        // New files also clear the symbol: rows loaded by hand or from another path
        // must not linger. Grown files keep theirs and only append.
        let cleared: Vec<&str> = batch
            .iter()
            .filter(|f| matches!(f.change, Change::New | Change::Replaced))
            .map(|f| f.entry.symbol.as_str())
            .collect();
        let mut spans: std::collections::BTreeMap<String, (NaiveDate, NaiveDate)> =
            std::collections::BTreeMap::new();
        if !cleared.is_empty() {
            let tables: &[&str] = if target.into_empty {
                &["data_quality", "ingest_rejects"]
            } else {
                // What is about to be deleted is changed history too.
                for (symbol, first, last) in stored_ranges(conn, &cleared)? {
                    widen(&mut spans, &symbol, first, last);
                }
                &["daily_prices", "data_quality", "ingest_rejects"]
            };
            for table in tables {
                // The table names are constants; the symbols travel as a bound array.
                diesel::sql_query(format!("DELETE FROM {table} WHERE symbol = ANY($1)"))
                    .bind::<Array<Text>, _>(&cleared)
                    .execute(conn)?;
            }
        }
        let written = if batch.iter().any(|f| !f.parsed.bars.is_empty()) {
            match target.encoding {
                CopyEncoding::Binary => copy_binary(conn, batch)?,
                CopyEncoding::Text => copy_text(conn, batch)?,
            }
        } else {
            0
        };
        for file in batch {
            let days = || file.parsed.bars.iter().map(|b| b.day);
            if let (Some(first), Some(last)) = (days().min(), days().max()) {
                widen(&mut spans, &file.entry.symbol, first, last);
            }
        }
        let written_buckets = write_buckets(conn, batch, target.direct)?;
        insert_flags(conn, batch)?;
        insert_rejects(conn, batch)?;
        upsert_manifest(conn, batch)?;
        let spans: Vec<Span> = spans
            .into_iter()
            .map(|(symbol, (first, last))| Span::days(symbol, first, last))
            .collect();
        let (applied, others): (Vec<Span>, Vec<Span>) = spans
            .iter()
            .cloned()
            .partition(|s| written_buckets.contains(s.symbol.as_str()));
        let consumers: Vec<String> = target
            .direct
            .iter()
            .map(|&a| aggregates::consumer(a))
            .collect();
        changelog::record_applied(conn, Source::DailyPrices, &applied, &consumers)?;
        changelog::record(conn, Source::DailyPrices, &others)?;
        crate::crashpoint::reached("ingest.before_commit");
        Ok((written, spans))
    })
}

/// Delete every row of `symbols` and their manifest entries in one transaction: files
/// gone under `on_missing = "delete"`. The deleted days go to the change log exactly as a
/// replaced file's old rows do, so aggregates and incremental tables forget them too.
pub fn delete_symbols(conn: &mut PgConnection, symbols: &[&str]) -> QueryResult<Vec<Span>> {
    conn.transaction(|conn| {
        index_probes_only(conn)?;
        let spans: Vec<Span> = stored_ranges(conn, symbols)?
            .into_iter()
            .map(|(symbol, first, last)| Span::days(symbol, first, last))
            .collect();
        for table in [
            "daily_prices",
            "data_quality",
            "ingest_rejects",
            "ingest_files",
        ] {
            // The table names are constants; the symbols travel as a bound array.
            diesel::sql_query(format!("DELETE FROM {table} WHERE symbol = ANY($1)"))
                .bind::<Array<Text>, _>(symbols)
                .execute(conn)?;
        }
        changelog::record(conn, Source::DailyPrices, &spans)?;
        Ok(spans)
    })
}

fn widen(
    spans: &mut std::collections::BTreeMap<String, (NaiveDate, NaiveDate)>,
    symbol: &str,
    first: NaiveDate,
    last: NaiveDate,
) {
    spans
        .entry(symbol.to_owned())
        .and_modify(|(a, b)| {
            *a = (*a).min(first);
            *b = (*b).max(last);
        })
        .or_insert((first, last));
}

#[derive(QueryableByName)]
struct StoredRange {
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Date)]
    first: NaiveDate,
    #[diesel(sql_type = Date)]
    last: NaiveDate,
}

/// The first and last stored day of each of `symbols` that has rows.
fn stored_ranges(
    conn: &mut PgConnection,
    symbols: &[&str],
) -> QueryResult<Vec<(String, NaiveDate, NaiveDate)>> {
    let rows: Vec<StoredRange> = diesel::sql_query(
        "SELECT symbol, min(day) AS first, max(day) AS last FROM daily_prices \
         WHERE symbol = ANY($1) GROUP BY symbol",
    )
    .bind::<Array<Text>, _>(symbols)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.symbol, r.first, r.last))
        .collect())
}

/// For the rest of the transaction, per-symbol statements on `daily_prices` run as the
/// index probes they are, whatever the planner believes. On a table loaded but not yet
/// analyzed it guesses 0.5 % of the rows per symbol and picks a (parallel) sequential
/// scan of the whole table (measured: seconds per batch's DELETE at 10 M rows), and on a
/// large table it also JIT-compiles the query.
fn index_probes_only(conn: &mut PgConnection) -> QueryResult<()> {
    crate::db::set_local(conn, &[("enable_seqscan", "off"), ("jit", "off")])
}

/// The days stored for `symbol` from `from` on: what rows appended to its file, the
/// earliest of them on `from`, must not repeat.
///
/// An index range scan ([`index_probes_only`]): right after a first load the generic
/// plan of this prepared statement ran a parallel sequential scan for each of 8,000
/// grown files (measured: a nightly run with one new day per file took 249 s).
pub fn stored_days(
    conn: &mut PgConnection,
    symbol: &str,
    from: NaiveDate,
) -> QueryResult<std::collections::HashSet<NaiveDate>> {
    conn.transaction(|conn| {
        index_probes_only(conn)?;
        let days: Vec<NaiveDate> = daily_prices::table
            .filter(daily_prices::symbol.eq(symbol))
            .filter(daily_prices::day.ge(from))
            .select(daily_prices::day)
            .load(conn)?;
        Ok(days.into_iter().collect())
    })
}

/// Write the weekly/monthly buckets of the batch's new and replaced files — whose rows
/// are then exactly their symbol's rows — into the `direct` aggregates, computed from
/// the parsed bars. Returns the symbols written; a symbol whose buckets cannot be
/// computed exactly here ([`buckets::compute`]) is left out, and so left to the SQL
/// refresh its log entry asks for. Grown files (appended days) are left to it too:
/// their buckets mix stored and new rows.
fn write_buckets<'a>(
    conn: &mut PgConnection,
    batch: &'a [PreparedFile],
    direct: &[Aggregate],
) -> QueryResult<std::collections::HashSet<&'a str>> {
    if direct.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let computed: Vec<(&str, Vec<Vec<buckets::BucketRow>>)> = batch
        .iter()
        .filter(|f| matches!(f.change, Change::New | Change::Replaced))
        .filter_map(|f| {
            let rows: Option<Vec<_>> = direct
                .iter()
                .map(|&a| buckets::compute(a, &f.parsed.bars))
                .collect();
            Some((f.entry.symbol.as_str(), rows?))
        })
        .collect();
    let symbols: Vec<&str> = computed.iter().map(|(s, _)| *s).collect();
    if symbols.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    for (i, &aggregate) in direct.iter().enumerate() {
        aggregates::replace_buckets(conn, aggregate, &symbols, |out: &mut dyn std::io::Write| {
            let mut buf = Vec::with_capacity(COPY_CHUNK + 256);
            copy::header(&mut buf);
            for (symbol, rows) in &computed {
                for row in &rows[i] {
                    buckets::encode_binary_row(&mut buf, symbol.as_bytes(), row);
                    if buf.len() >= COPY_CHUNK {
                        out.write_all(&buf).map_err(copy::write_error)?;
                        buf.clear();
                    }
                }
            }
            copy::trailer(&mut buf);
            out.write_all(&buf).map_err(copy::write_error)
        })?;
    }
    Ok(symbols.into_iter().collect())
}

/// The batch's bars in PostgreSQL's binary COPY format (see [`copy`]).
fn copy_binary(conn: &mut PgConnection, batch: &[PreparedFile]) -> QueryResult<usize> {
    diesel::copy_from(daily_prices::table)
        .from_raw_data(daily_prices::table, |out: &mut dyn std::io::Write| {
            let mut buf = Vec::with_capacity(COPY_CHUNK + 256);
            copy::header(&mut buf);
            for file in batch {
                for bar in &file.parsed.bars {
                    encode_binary_row(&mut buf, file.entry.symbol.as_bytes(), bar);
                    if buf.len() >= COPY_CHUNK {
                        out.write_all(&buf).map_err(copy::write_error)?;
                        buf.clear();
                    }
                }
            }
            copy::trailer(&mut buf);
            out.write_all(&buf).map_err(copy::write_error)
        })
        .with_format(CopyFormat::Binary)
        .execute(conn)
}

/// Bytes handed to the connection at a time.
const COPY_CHUNK: usize = 256 * 1024;

/// One row of `daily_prices` in the binary COPY format.
pub fn encode_binary_row(buf: &mut Vec<u8>, symbol: &[u8], bar: &Bar) {
    copy::row(buf, 8);
    copy::text(buf, symbol);
    copy::date(buf, bar.day);
    for value in [bar.open, bar.high, bar.low, Some(bar.close), bar.adj_close] {
        copy::float8(buf, value);
    }
    copy::int8(buf, bar.volume);
}

/// The same rows in the text COPY format (kept to measure against binary).
fn copy_text(conn: &mut PgConnection, batch: &[PreparedFile]) -> QueryResult<usize> {
    diesel::copy_from(daily_prices::table)
        .from_raw_data(daily_prices::table, |out: &mut dyn std::io::Write| {
            let mut buf = String::with_capacity(COPY_CHUNK + 256);
            for file in batch {
                let symbol = escape_copy_text(&file.entry.symbol);
                for bar in &file.parsed.bars {
                    // Writing to a String cannot fail.
                    let _ = write!(buf, "{symbol}\t{}\t", bar.day);
                    push_opt(&mut buf, bar.open);
                    push_opt(&mut buf, bar.high);
                    push_opt(&mut buf, bar.low);
                    let _ = write!(buf, "{}\t", bar.close);
                    push_opt(&mut buf, bar.adj_close);
                    match bar.volume {
                        Some(v) => {
                            let _ = writeln!(buf, "{v}");
                        }
                        None => buf.push_str("\\N\n"),
                    }
                    if buf.len() >= COPY_CHUNK {
                        out.write_all(buf.as_bytes()).map_err(copy::write_error)?;
                        buf.clear();
                    }
                }
            }
            out.write_all(buf.as_bytes()).map_err(copy::write_error)
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

fn insert_flags(conn: &mut PgConnection, batch: &[PreparedFile]) -> QueryResult<()> {
    let rows: Vec<_> = batch
        .iter()
        .flat_map(|file| {
            file.parsed.flags.iter().map(move |f| {
                (
                    data_quality::symbol.eq(file.entry.symbol.as_str()),
                    data_quality::day.eq(f.day),
                    data_quality::rule.eq(f.rule.name()),
                    data_quality::detail.eq(Some(f.detail.as_str())),
                )
            })
        })
        .collect();
    for chunk in rows.chunks(INSERT_BATCH) {
        diesel::insert_into(data_quality::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(())
}

fn insert_rejects(conn: &mut PgConnection, batch: &[PreparedFile]) -> QueryResult<()> {
    let rows: Vec<_> = batch
        .iter()
        .flat_map(|file| {
            file.parsed.rejects.iter().map(move |r| {
                (
                    ingest_rejects::path.eq(file.entry.path.as_str()),
                    ingest_rejects::line.eq(i64::try_from(r.line).unwrap_or(i64::MAX)),
                    ingest_rejects::symbol.eq(file.entry.symbol.as_str()),
                    ingest_rejects::reason.eq(format!("{}: {}", r.rule.name(), r.reason)),
                    // PostgreSQL text cannot hold NUL bytes.
                    ingest_rejects::raw.eq(r.raw.replace('\0', "\u{FFFD}")),
                )
            })
        })
        .collect();
    for chunk in rows.chunks(INSERT_BATCH) {
        diesel::insert_into(ingest_rejects::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(())
}

fn upsert_manifest(conn: &mut PgConnection, batch: &[PreparedFile]) -> QueryResult<()> {
    let entries: Vec<&Entry> = batch.iter().map(|f| &f.entry).collect();
    for chunk in entries.chunks(MANIFEST_BATCH) {
        diesel::insert_into(ingest_files::table)
            .values(chunk.to_vec())
            .on_conflict(ingest_files::symbol)
            .do_update()
            .set((
                ingest_files::path.eq(excluded(ingest_files::path)),
                ingest_files::source.eq(excluded(ingest_files::source)),
                ingest_files::asset_class.eq(excluded(ingest_files::asset_class)),
                ingest_files::size_bytes.eq(excluded(ingest_files::size_bytes)),
                ingest_files::mtime_ns.eq(excluded(ingest_files::mtime_ns)),
                ingest_files::content_hash.eq(excluded(ingest_files::content_hash)),
                ingest_files::rows_loaded.eq(excluded(ingest_files::rows_loaded)),
                ingest_files::rows_rejected.eq(excluded(ingest_files::rows_rejected)),
                ingest_files::last_day.eq(excluded(ingest_files::last_day)),
                ingest_files::loaded_at.eq(diesel::dsl::now),
            ))
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

    #[test]
    fn binary_row_layout() {
        let bar = Bar {
            day: NaiveDate::from_ymd_opt(2000, 1, 2).unwrap(),
            open: None,
            high: Some(1.5),
            low: Some(1.0),
            close: 1.25,
            adj_close: Some(1.25),
            volume: Some(7),
        };
        let mut buf = Vec::new();
        encode_binary_row(&mut buf, b"AB", &bar);
        let mut expected = vec![
            0, 8, 0, 0, 0, 2, b'A', b'B', 0, 0, 0, 4, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff,
        ];
        for v in [1.5f64, 1.0, 1.25, 1.25] {
            expected.extend_from_slice(&[0, 0, 0, 8]);
            expected.extend_from_slice(&v.to_be_bytes());
        }
        expected.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(buf, expected);
    }
}
