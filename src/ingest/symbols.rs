//! `symbols_valid_meta.csv` into `symbols`, as an upsert: every column typed, names
//! trimmed of the trailing spaces the source carries, empty strings stored as NULL.
//! Lines are read as in a prices file (`parse::RowReader`): a bad line is a reject
//! in `ingest_rejects` with its line and reason, and the others load.

use std::collections::HashMap;
use std::path::Path;

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::parse::{check_bytes, read_header_names, HeaderError, RowRead, RowReader};
use super::rejects::{quoted, stored_text};
use crate::db::schema::symbols;
use crate::job::rules::Rule;

#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = symbols)]
pub struct SymbolRow {
    pub symbol: String,
    pub nasdaq_traded: Option<bool>,
    pub security_name: Option<String>,
    pub listing_exchange: Option<String>,
    pub market_category: Option<String>,
    pub etf: Option<bool>,
    pub round_lot_size: Option<i32>,
    pub test_issue: Option<bool>,
    pub financial_status: Option<String>,
    pub cqs_symbol: Option<String>,
    pub nasdaq_symbol: Option<String>,
    pub next_shares: Option<bool>,
}

/// A rejected metadata line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaReject {
    pub line: u64,
    /// The rule's name: the price rules' for unreadable lines (`nul_byte`,
    /// `invalid_utf8`, `unterminated_quote`, `field_count`), else one of
    /// `missing_symbol`, `duplicate_symbol`, `bad_flag`, `bad_lot_size`.
    pub rule: &'static str,
    pub reason: String,
    pub raw: String,
}

impl MetaReject {
    fn new(line: u64, rule: &'static str, reason: &str, raw: &[u8]) -> Self {
        MetaReject {
            line,
            rule,
            reason: stored_text(reason.as_bytes()),
            raw: stored_text(raw),
        }
    }
}

/// Why a metadata file cannot be read at all. Its symbols keep what they had; the
/// prices still load and the run fails at the end.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("the file is empty; expected a header with {}", names(&COLUMNS))]
    Empty,
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the header has no {} column{}", names(.0), if .0.len() == 1 { "" } else { "s" })]
    MissingColumns(Vec<&'static str>),
}

fn names(columns: &[&str]) -> String {
    let quoted: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
    quoted.join(", ")
}

/// The columns of `symbols_valid_meta.csv`, in the order of [`SymbolRow`]'s fields
/// after the symbol. Every one is required: a missing one would be NULL for all.
const COLUMNS: [&str; 12] = [
    "Symbol",
    "Nasdaq Traded",
    "Security Name",
    "Listing Exchange",
    "Market Category",
    "ETF",
    "Round Lot Size",
    "Test Issue",
    "Financial Status",
    "CQS Symbol",
    "NASDAQ Symbol",
    "NextShares",
];

/// The metadata file's rows and its rejects.
#[derive(Debug, Default)]
pub struct ParsedMeta {
    pub rows: Vec<SymbolRow>,
    pub rejects: Vec<MetaReject>,
}

/// Parse the metadata file. Like a prices file, a bad line is a reject with its line
/// and reason and the other lines load.
///
/// # Errors
/// The file cannot be read, is empty, or its header is unusable or lacks a column.
pub fn parse(path: &Path) -> Result<ParsedMeta, MetaError> {
    let data = std::fs::read(path)?;
    parse_bytes(&data)
}

/// [`parse`] of the file's bytes.
///
/// # Errors
/// As [`parse`].
pub fn parse_bytes(data: &[u8]) -> Result<ParsedMeta, MetaError> {
    let (header, start) = read_header_names(data)?.ok_or(MetaError::Empty)?;
    let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let missing: Vec<&'static str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| find(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(MetaError::MissingColumns(missing));
    }
    let cols: Vec<usize> = COLUMNS.iter().filter_map(|c| find(c)).collect();
    let mut parsed = ParsedMeta::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let body = &data[start..];
    let mut lines = RowReader::new(body, 2);
    let mut record = csv::ByteRecord::new();
    loop {
        let (start, text) = match lines.next(&mut record) {
            RowRead::End => break,
            RowRead::Bad {
                start,
                text,
                rule,
                reason,
            } => {
                let line = lines.line_at(start);
                parsed
                    .rejects
                    .push(MetaReject::new(line, rule.name(), &reason, text));
                continue;
            }
            RowRead::Row { start, text } => (start, text),
        };
        let checked = if lines.clean_bytes {
            Ok(())
        } else {
            check_bytes(&record, &header).map_err(|(rule, reason)| (rule.name(), reason))
        };
        let row = checked.and_then(|()| {
            if record.len() != header.len() {
                return Err((
                    Rule::FieldCount.name(),
                    format!("{} fields, the header has {}", record.len(), header.len()),
                ));
            }
            symbol_row(&record, &cols)
        });
        let line = lines.line_at(start);
        match row {
            Ok(row) => match seen.get(&row.symbol) {
                Some(first) => parsed.rejects.push(MetaReject::new(
                    line,
                    "duplicate_symbol",
                    &format!(
                        "symbol {} appears earlier, on line {first}",
                        quoted(&row.symbol)
                    ),
                    text,
                )),
                None => {
                    seen.insert(row.symbol.clone(), line);
                    parsed.rows.push(row);
                }
            },
            Err((rule, reason)) => parsed
                .rejects
                .push(MetaReject::new(line, rule, &reason, text)),
        }
    }
    Ok(parsed)
}

/// One row's typed values; `cols` are the positions of [`COLUMNS`].
fn symbol_row(
    record: &csv::ByteRecord,
    cols: &[usize],
) -> Result<SymbolRow, (&'static str, String)> {
    // Bytes were checked: every field is UTF-8.
    let text = |i: usize| -> Option<String> {
        let value = std::str::from_utf8(&record[cols[i]]).unwrap_or("").trim();
        (!value.is_empty()).then(|| value.to_owned())
    };
    let flag = |i: usize| -> Result<Option<bool>, (&'static str, String)> {
        match text(i).as_deref() {
            None => Ok(None),
            Some("Y" | "y") => Ok(Some(true)),
            Some("N" | "n") => Ok(Some(false)),
            Some(other) => Err((
                "bad_flag",
                format!("{} {} is not Y or N", COLUMNS[i], quoted(other)),
            )),
        }
    };
    let symbol = text(0).ok_or(("missing_symbol", "missing symbol".to_owned()))?;
    Ok(SymbolRow {
        nasdaq_traded: flag(1)?,
        security_name: text(2),
        listing_exchange: text(3),
        market_category: text(4),
        etf: flag(5)?,
        round_lot_size: text(6).map(|v| lot_size(&v)).transpose()?,
        test_issue: flag(7)?,
        financial_status: text(8),
        cqs_symbol: text(9),
        nasdaq_symbol: text(10),
        next_shares: flag(11)?,
        symbol,
    })
}

/// `100` or `100.0` (the source writes floats); a whole number from 1 to the largest
/// `integer`, never clamped into range.
fn lot_size(text: &str) -> Result<i32, (&'static str, String)> {
    let bad = |why: &str| {
        Err((
            "bad_lot_size",
            format!("Round Lot Size {} {why}", quoted(text)),
        ))
    };
    let Ok(value) = text.parse::<f64>() else {
        return bad("is not a number");
    };
    if !value.is_finite() || value.fract() != 0.0 {
        return bad("is not a whole number");
    }
    if !(1.0..=f64::from(i32::MAX)).contains(&value) {
        return bad(&format!("is out of range (1 to {})", i32::MAX));
    }
    Ok(value as i32)
}

/// Replace the rejects of `path` in `ingest_rejects` with `rejects` (metadata lines
/// belong to no price symbol: their `symbol` is empty, so no price file's reload
/// touches them).
pub fn store_rejects(
    conn: &mut PgConnection,
    path: &str,
    rejects: &[MetaReject],
) -> QueryResult<()> {
    use crate::db::schema::ingest_rejects;
    diesel::delete(ingest_rejects::table.filter(ingest_rejects::path.eq(path))).execute(conn)?;
    let rows: Vec<_> = rejects
        .iter()
        .map(|r| {
            (
                ingest_rejects::path.eq(path),
                ingest_rejects::line.eq(i64::try_from(r.line).unwrap_or(i64::MAX)),
                ingest_rejects::symbol.eq(""),
                ingest_rejects::reason.eq(format!("{}: {}", r.rule, r.reason)),
                ingest_rejects::raw.eq(r.raw.as_str()),
            )
        })
        .collect();
    // 5 binds per row: well under PostgreSQL's 65,535 per statement.
    for chunk in rows.chunks(5_000) {
        diesel::insert_into(ingest_rejects::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(())
}

/// Upsert the rows and replace the file's rejects, in one transaction; returns how
/// many rows were written.
pub fn upsert(conn: &mut PgConnection, path: &str, parsed: &ParsedMeta) -> QueryResult<usize> {
    let rows = &parsed.rows;
    conn.transaction(|conn| {
        store_rejects(conn, path, &parsed.rejects)?;
        let mut written = 0;
        // 12 columns × 2,000 rows stays under PostgreSQL's 65,535 bind parameters.
        for chunk in rows.chunks(2_000) {
            written += diesel::insert_into(symbols::table)
                .values(chunk)
                .on_conflict(symbols::symbol)
                .do_update()
                .set((
                    symbols::nasdaq_traded.eq(excluded(symbols::nasdaq_traded)),
                    symbols::security_name.eq(excluded(symbols::security_name)),
                    symbols::listing_exchange.eq(excluded(symbols::listing_exchange)),
                    symbols::market_category.eq(excluded(symbols::market_category)),
                    symbols::etf.eq(excluded(symbols::etf)),
                    symbols::round_lot_size.eq(excluded(symbols::round_lot_size)),
                    symbols::test_issue.eq(excluded(symbols::test_issue)),
                    symbols::financial_status.eq(excluded(symbols::financial_status)),
                    symbols::cqs_symbol.eq(excluded(symbols::cqs_symbol)),
                    symbols::nasdaq_symbol.eq(excluded(symbols::nasdaq_symbol)),
                    symbols::next_shares.eq(excluded(symbols::next_shares)),
                ))
                .execute(conn)?;
        }
        Ok(written)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_real_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.csv");
        std::fs::write(
            &path,
            "Nasdaq Traded,Symbol,Security Name,Listing Exchange,Market Category,ETF,Round Lot Size,Test Issue,Financial Status,CQS Symbol,NASDAQ Symbol,NextShares\n\
             Y,A,\"Agilent Technologies, Inc. Common Stock\",N, ,N,100.0,N,,A,A,N\n\
             Y,AA,Alcoa Corporation Common Stock ,N, ,N,100.0,N,,AA,AA,N\n",
        )
        .unwrap();
        let ParsedMeta { rows, rejects } = parse(&path).unwrap();
        assert!(rejects.is_empty());
        assert_eq!(
            rows[0].security_name.as_deref(),
            Some("Agilent Technologies, Inc. Common Stock")
        );
        assert_eq!(
            rows[1].security_name.as_deref(),
            Some("Alcoa Corporation Common Stock")
        );
        assert_eq!(rows[1].market_category, None);
        assert_eq!(rows[1].financial_status, None);
        assert_eq!(rows[1].round_lot_size, Some(100));
        assert_eq!(rows[1].etf, Some(false));
        assert_eq!(rows[1].nasdaq_traded, Some(true));
    }

    const HEADER: &str = "Nasdaq Traded,Symbol,Security Name,Listing Exchange,Market Category,ETF,Round Lot Size,Test Issue,Financial Status,CQS Symbol,NASDAQ Symbol,NextShares\n";

    #[test]
    fn a_bad_line_is_a_reject_and_the_others_load() {
        let mut data = HEADER.as_bytes().to_vec();
        data.extend_from_slice(
            b"Y,A,Agilent,N,,N,100.0,N,,A,A,N\n\
              Y,A,Agilent again,N,,N,100.0,N,,A,A,N\n\
              Y,B,Caf\xE9 Corp,N,,N,100,N,,B,B,N\n\
              Y,C,\"Unterminated,N,,N,100,N,,C,C,N\n\
              Y,D,Dee,N,,maybe,100,N,,D,D,N\n\
              Y,E,Ee,N,,N,abc,N,,E,E,N\n\
              Y,F,Ef,N,,N,1e10,N,,F,F,N\n\
              Y,G,Gee,N,,N,100,N\n\
              Y,,Nobody,N,,N,100,N,,,,N\n\
              Y,H,\"Aitch, Inc.\",N,,Y,200.0,N,,H,H,N\n",
        );
        let parsed = parse_bytes(&data).unwrap();
        let loaded: Vec<(&str, Option<bool>, Option<i32>)> = parsed
            .rows
            .iter()
            .map(|r| (r.symbol.as_str(), r.etf, r.round_lot_size))
            .collect();
        assert_eq!(
            loaded,
            [("A", Some(false), Some(100)), ("H", Some(true), Some(200))]
        );
        let rejects: Vec<(u64, &str, &str)> = parsed
            .rejects
            .iter()
            .map(|r| (r.line, r.rule, r.reason.as_str()))
            .collect();
        assert_eq!(
            rejects,
            [
                (3, "duplicate_symbol", "symbol `A` appears earlier, on line 2"),
                (4, "invalid_utf8", "column 3 (`Security Name`) has a byte that is not UTF-8 (0xE9 at byte 4); convert the file to UTF-8"),
                (5, "unterminated_quote", "the quote opening field 3 is not closed on this line"),
                (6, "bad_flag", "ETF `maybe` is not Y or N"),
                (7, "bad_lot_size", "Round Lot Size `abc` is not a number"),
                (8, "bad_lot_size", "Round Lot Size `1e10` is out of range (1 to 2147483647)"),
                (9, "field_count", "8 fields, the header has 12"),
                (10, "missing_symbol", "missing symbol"),
            ]
        );
    }

    #[test]
    fn an_empty_file_or_a_missing_column_is_an_error_of_the_file() {
        assert_eq!(
            parse_bytes(b"").unwrap_err().to_string(),
            "the file is empty; expected a header with `Symbol`, `Nasdaq Traded`, `Security Name`, `Listing Exchange`, `Market Category`, `ETF`, `Round Lot Size`, `Test Issue`, `Financial Status`, `CQS Symbol`, `NASDAQ Symbol`, `NextShares`"
        );
        let header = HEADER.replace("ETF,", "").replace(",NextShares", "");
        assert_eq!(
            parse_bytes(header.as_bytes()).unwrap_err().to_string(),
            "the header has no `ETF`, `NextShares` columns"
        );
    }
}
