//! Writing `symbols_valid_meta.csv`, the dataset's symbol directory.
//!
//! The real file is written by pandas: LF line endings, `Round Lot Size` as
//! `100.0`, a single space as the market category of non-Nasdaq listings, and
//! names containing commas quoted. The `csv` writer quotes exactly the fields
//! that need it and leaves spaces alone, which matches.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use super::symbols::{AssetKind, Exchange, Listing};
use super::write::with_path;

/// File name of the metadata file under the output root.
pub const META_FILE_NAME: &str = "symbols_valid_meta.csv";

/// Header of the metadata file, exactly as in the dataset.
pub const META_HEADER: [&str; 12] = [
    "Nasdaq Traded",
    "Symbol",
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

/// Every listing trades in round lots of 100 shares, printed as pandas does.
const ROUND_LOT_SIZE: &str = "100.0";

/// Writes the header and one row per listing to `path`.
pub fn write_meta_file(path: &Path, listings: &[Listing]) -> io::Result<()> {
    let file = File::create(path).map_err(|error| with_path(error, path))?;
    let mut writer = csv::Writer::from_writer(BufWriter::new(file));
    let to_io = |error: csv::Error| with_path(error.into(), path);

    writer.write_record(META_HEADER).map_err(to_io)?;
    for listing in listings {
        writer.write_record(meta_record(listing)).map_err(to_io)?;
    }
    writer.flush().map_err(|error| with_path(error, path))
}

/// The twelve fields of one listing's row.
fn meta_record(listing: &Listing) -> [&str; 12] {
    let ticker = listing.ticker.as_str();
    // Only non-Nasdaq listings have a CQS (consolidated quote) symbol.
    let cqs_symbol = if listing.exchange == Exchange::Nasdaq {
        ""
    } else {
        ticker
    };
    let etf_flag = match listing.kind {
        AssetKind::Etf => "Y",
        AssetKind::Stock => "N",
    };
    [
        "Y",
        ticker,
        &listing.security_name,
        listing.exchange.code(),
        listing.market_category,
        etf_flag,
        ROUND_LOT_SIZE,
        "N",
        listing.financial_status,
        cqs_symbol,
        ticker,
        "N",
    ]
}
