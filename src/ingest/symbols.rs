//! `symbols_valid_meta.csv` into `symbols`, as an upsert: every column typed, names
//! trimmed of the trailing spaces the source carries, empty strings stored as NULL.

use std::path::Path;

use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::schema::symbols;

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
    pub reason: String,
    pub raw: String,
}

/// Parse the metadata file.
pub fn parse(path: &Path) -> Result<(Vec<SymbolRow>, Vec<MetaReject>), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&data);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let header = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let symbol_col = col("Symbol")
        .ok_or_else(|| format!("{}: the header has no `Symbol` column", path.display()))?;
    let cols = [
        col("Nasdaq Traded"),
        col("Security Name"),
        col("Listing Exchange"),
        col("Market Category"),
        col("ETF"),
        col("Round Lot Size"),
        col("Test Issue"),
        col("Financial Status"),
        col("CQS Symbol"),
        col("NASDAQ Symbol"),
        col("NextShares"),
    ];
    let mut rows = Vec::new();
    let mut rejects = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        let text = |c: Option<usize>| -> Option<String> {
            let value = record.get(c?)?.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        let flag = |c: Option<usize>| text(c).and_then(|v| yes_no(&v));
        let Some(symbol) = text(Some(symbol_col)) else {
            rejects.push(MetaReject {
                line,
                reason: "missing symbol".into(),
                raw: record.iter().collect::<Vec<_>>().join(","),
            });
            continue;
        };
        rows.push(SymbolRow {
            symbol,
            nasdaq_traded: flag(cols[0]),
            security_name: text(cols[1]),
            listing_exchange: text(cols[2]),
            market_category: text(cols[3]),
            etf: flag(cols[4]),
            round_lot_size: text(cols[5])
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.fract() == 0.0)
                .map(|v| v as i32),
            test_issue: flag(cols[6]),
            financial_status: text(cols[7]),
            cqs_symbol: text(cols[8]),
            nasdaq_symbol: text(cols[9]),
            next_shares: flag(cols[10]),
        });
    }
    Ok((rows, rejects))
}

fn yes_no(value: &str) -> Option<bool> {
    match value {
        "Y" | "y" => Some(true),
        "N" | "n" => Some(false),
        _ => None,
    }
}

/// Upsert the rows in one transaction; returns how many were written.
pub fn upsert(conn: &mut PgConnection, rows: &[SymbolRow]) -> QueryResult<usize> {
    conn.transaction(|conn| {
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
        let (rows, rejects) = parse(&path).unwrap();
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
}
