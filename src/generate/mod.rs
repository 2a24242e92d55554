//! Synthetic market data in the exact layout of the Kaggle "Stock Market
//! Dataset" (`jacksoncrow/stock-market-dataset`).
//!
//! The real dataset cannot be redistributed and is too small to benchmark a
//! loader at scale, so [`generate`] writes look-alike data of any size:
//!
//! ```text
//! OUT/stocks/SYM.csv           Date,Open,High,Low,Close,Adj Close,Volume
//! OUT/etfs/SYM.csv             (same layout)
//! OUT/symbols_valid_meta.csv   one row per symbol
//! ```
//!
//! Files are byte-compatible with the originals: pandas-style float printing,
//! NYSE sessions only, float32-rounded prices, dividend-adjusted closes, and
//! (optionally) the same kinds of defective rows. Output is a pure function of
//! [`GenerateOptions`] — independent of thread count — because every symbol
//! draws from its own `ChaCha8` stream keyed by `(seed, symbol index)`, and the
//! catalogue and defect plan have streams of their own.
//!
//! Module map: [`calendar`] trading days, [`symbols`] and [`names`] the
//! listings, [`walk`] the price process, [`dirt`] the defects,
//! [`pyfloat`] Python-style numbers, [`write`] price files,
//! [`meta`] the metadata file.

mod calendar;
mod dirt;
mod meta;
mod names;
mod pyfloat;
mod symbols;
mod walk;
mod write;

use std::fs;
use std::io;
use std::path::PathBuf;

use chrono::NaiveDate;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use calendar::TradingDays;
use symbols::{AssetKind, MAX_SYMBOLS};
use walk::PriceWalk;
use write::{FileStats, PriceFileWriter};

/// Last trading day of the Kaggle dataset (2020-04-01), the usual `end`.
pub const KAGGLE_LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2020, 4, 1) {
    Some(date) => date,
    None => panic!("2020-04-01 is a valid date"),
};

/// What to generate and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Output root; `stocks/`, `etfs/` and the metadata file are created in
    /// it. Existing files of the same names are overwritten, others are left
    /// alone.
    pub out: PathBuf,
    /// Total number of symbols (at most 1,000,000): about 75% stocks and 25%
    /// ETFs, with at least one of each when `symbols >= 2`.
    pub symbols: usize,
    /// Length of the history window in calendar years (at least 1), ending
    /// at `end`. Most symbols cover the whole window; about one in ten lists
    /// later.
    pub years: u32,
    /// Seed of all randomness; same options give byte-identical output.
    pub seed: u64,
    /// Last day of the window, inclusive; normally [`KAGGLE_LAST_DAY`]. If it
    /// is not a trading day, files end on the last session before it.
    pub end: NaiveDate,
    /// Inject defective rows (about 1 in 20,000, and every kind at least once
    /// in datasets of a few thousand rows).
    pub dirty: bool,
    /// Tickers that must be among the symbols as stocks (uppercase letters,
    /// dots, dashes); they count towards `symbols`.
    pub tickers: Vec<String>,
    /// Tickers that must be among the symbols as ETFs; they count too.
    pub etf_tickers: Vec<String>,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Price files written (one per symbol; the metadata file is not counted).
    pub files: usize,
    /// Data rows across all price files, headers excluded.
    pub rows: u64,
    /// Bytes across all price files, headers included.
    pub bytes: u64,
    /// Rows that carry a deliberate defect (0 unless `dirty`).
    pub dirty_rows: u64,
}

/// Random stream of the symbol catalogue (tickers, kinds, metadata, IPO days).
const CATALOGUE_STREAM: u64 = 0;
/// Random stream of the defect plan.
const DEFECT_STREAM: u64 = 1;
/// First of the per-symbol price streams.
const FIRST_SYMBOL_STREAM: u64 = 2;

/// Writes a synthetic dataset as described by `opts`; see the module docs.
///
/// Files are written in parallel on the current rayon pool (wrap the call in
/// `ThreadPool::install` to bound it); the output does not depend on it.
///
/// # Errors
///
/// `InvalidInput` for `years == 0`, more than 1,000,000 symbols, or a window
/// outside chrono's date range; otherwise the I/O error of the first file that
/// failed, with its path in the message. Files written before a failure are
/// left in place.
pub fn generate(opts: &GenerateOptions) -> io::Result<GenerateSummary> {
    if opts.years == 0 {
        return Err(invalid_input("years must be at least 1".to_owned()));
    }
    if opts.symbols > MAX_SYMBOLS {
        return Err(invalid_input(format!(
            "at most {MAX_SYMBOLS} symbols can be generated, {} requested",
            opts.symbols
        )));
    }
    if let Some(bad) = opts.tickers.iter().chain(&opts.etf_tickers).find(|t| {
        t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '.' || c == '-')
    }) {
        return Err(invalid_input(format!(
            "ticker `{bad}` must be uppercase letters, `.` or `-`"
        )));
    }
    let days = TradingDays::in_window(opts.end, opts.years).ok_or_else(|| {
        invalid_input(format!(
            "no trading days in the {} years ending {}",
            opts.years, opts.end
        ))
    })?;

    let fixed: Vec<(String, AssetKind)> = opts
        .tickers
        .iter()
        .map(|t| (t.clone(), AssetKind::Stock))
        .chain(opts.etf_tickers.iter().map(|t| (t.clone(), AssetKind::Etf)))
        .collect();
    let listings = symbols::plan_listings(
        opts.symbols,
        &fixed,
        days.len(),
        &mut seeded_stream(opts.seed, CATALOGUE_STREAM),
    );
    let rows_per_symbol: Vec<usize> = listings
        .iter()
        .map(|listing| listing.row_count(days.len()))
        .collect();
    let defects = if opts.dirty {
        dirt::plan_defects(
            &rows_per_symbol,
            &mut seeded_stream(opts.seed, DEFECT_STREAM),
        )
    } else {
        vec![Vec::new(); listings.len()]
    };

    for kind in [AssetKind::Stock, AssetKind::Etf] {
        let directory = opts.out.join(kind.directory());
        fs::create_dir_all(&directory).map_err(|error| write::with_path(error, &directory))?;
    }
    meta::write_meta_file(&opts.out.join(meta::META_FILE_NAME), &listings)?;

    let totals = (0..listings.len())
        .into_par_iter()
        .map_init(PriceFileWriter::default, |writer, index| {
            let listing = &listings[index];
            let path = opts
                .out
                .join(listing.kind.directory())
                .join(format!("{}.csv", listing.ticker));
            let bars = PriceWalk::new(
                listing.kind,
                rows_per_symbol[index],
                seeded_stream(opts.seed, FIRST_SYMBOL_STREAM + index as u64),
            );
            writer.write(&path, &days, listing.first_day, bars, &defects[index])
        })
        .try_reduce(FileStats::default, |left, right| Ok(left + right))?;

    Ok(GenerateSummary {
        files: listings.len(),
        rows: totals.rows,
        bytes: totals.bytes,
        dirty_rows: totals.defective_rows,
    })
}

/// An independent generator for one purpose: `ChaCha`'s 64-bit stream id
/// splits one seed into non-overlapping sequences.
fn seeded_stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::path::Path;

    use super::dirt::DefectKind;
    use super::*;

    fn options(out: &Path, dirty: bool) -> GenerateOptions {
        GenerateOptions {
            out: out.to_path_buf(),
            symbols: 12,
            years: 2,
            seed: 42,
            end: KAGGLE_LAST_DAY,
            dirty,
            tickers: vec!["AAPL".to_owned()],
            etf_tickers: vec!["SPY".to_owned()],
        }
    }

    fn generate_into_temp(dirty: bool) -> (tempfile::TempDir, GenerateSummary) {
        let dir = tempfile::tempdir().expect("temp dir");
        let summary = generate(&options(dir.path(), dirty)).expect("generate");
        (dir, summary)
    }

    /// Every file under `root`, keyed by relative path.
    fn read_tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                    files.insert(relative, fs::read(&path).expect("read file"));
                }
            }
        }
        files
    }

    fn price_files(tree: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<(&PathBuf, String)> {
        tree.iter()
            .filter(|(path, _)| path.starts_with("stocks") || path.starts_with("etfs"))
            .map(|(path, bytes)| (path, String::from_utf8(bytes.clone()).expect("utf-8")))
            .collect()
    }

    /// Checks that `field` is laid out the way Python's `repr` prints a float,
    /// without the formatter under test: as many significant digits as Rust's
    /// own shortest round-trip text (`{:e}`; the two differ only in which digit
    /// an exact tie ends on), positional with a `.` for decimal exponents
    /// -4..=15, otherwise `e+XX` / `e-XX` with at least two exponent digits.
    fn parse_canonical_float(field: &str) -> f64 {
        let value: f64 = field.parse().expect("float field");
        let rust_shortest = format!("{:e}", value.abs());
        let (rust_mantissa, rust_exponent) = rust_shortest.split_once('e').expect("{:e} has an e");
        let rust_exponent: i32 = rust_exponent.parse().expect("exponent");
        let significant = |mantissa: &str| {
            let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
            let trimmed = digits.trim_start_matches('0').trim_end_matches('0');
            trimmed.len().max(1)
        };
        let unsigned = field.trim_start_matches('-');
        match unsigned.split_once('e') {
            Some((mantissa, exponent)) => {
                assert!(
                    !(-4..=15).contains(&rust_exponent),
                    "{field}: exponent form"
                );
                let digits = exponent.trim_start_matches(['+', '-']);
                assert!(
                    exponent.starts_with(['+', '-']) && digits.len() >= 2,
                    "{field}"
                );
                assert_eq!(significant(mantissa), significant(rust_mantissa), "{field}");
            }
            None => {
                assert!((-4..=15).contains(&rust_exponent), "{field}: positional");
                assert!(unsigned.contains('.'), "{field}: no fractional part");
                let digits = significant(unsigned);
                assert_eq!(digits, significant(rust_mantissa), "{field}: not shortest");
            }
        }
        value
    }

    /// Which defect a row shows, if any.
    fn classify(line: &str) -> Option<DefectKind> {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 7, "{line}");
        if fields[1..].iter().all(|field| field.is_empty()) {
            return Some(DefectKind::EmptyFields);
        }
        if NaiveDate::parse_from_str(fields[0], "%Y-%m-%d").is_err() {
            return Some(DefectKind::MalformedDate);
        }
        if fields[1] == "0.0" {
            return Some(DefectKind::ZeroOpen);
        }
        if fields[4].is_empty() {
            return Some(DefectKind::MissingClose);
        }
        if fields[6].contains('.') {
            return Some(DefectKind::FloatVolume);
        }
        if fields[6] == "0" {
            return Some(DefectKind::ZeroVolume);
        }
        let high: f64 = fields[2].parse().expect("high");
        let low: f64 = fields[3].parse().expect("low");
        (high < low).then_some(DefectKind::HighBelowLow)
    }

    #[test]
    fn same_options_give_identical_bytes_on_any_thread_count() {
        let (first_dir, first_summary) = generate_into_temp(true);
        let second_dir = tempfile::tempdir().expect("temp dir");
        let single_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("thread pool");
        let second_summary = single_thread
            .install(|| generate(&options(second_dir.path(), true)))
            .expect("generate");
        assert_eq!(first_summary, second_summary);
        assert_eq!(read_tree(first_dir.path()), read_tree(second_dir.path()));
    }

    #[test]
    fn clean_files_match_the_kaggle_layout() {
        let (dir, summary) = generate_into_temp(false);
        let tree = read_tree(dir.path());
        let files = price_files(&tree);
        assert_eq!(summary.files, 12);
        assert_eq!(files.len(), 12);
        assert_eq!(summary.dirty_rows, 0);

        let closed_days: HashSet<NaiveDate> = [(2019, 12, 25), (2019, 7, 4), (2019, 11, 28)]
            .into_iter()
            .map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("date"))
            .collect();
        let (mut rows, mut bytes) = (0u64, 0u64);
        for (path, text) in &files {
            bytes += text.len() as u64;
            assert!(text.ends_with('\n') && !text.contains('\r'), "{path:?}");
            let mut lines = text.lines();
            assert_eq!(
                lines.next(),
                Some("Date,Open,High,Low,Close,Adj Close,Volume")
            );
            let mut previous_date = None;
            let mut last_prices = None;
            for line in lines {
                rows += 1;
                assert_eq!(classify(line), None, "{path:?}: {line}");
                let fields: Vec<&str> = line.split(',').collect();
                let date = NaiveDate::parse_from_str(fields[0], "%Y-%m-%d").expect("date");
                assert!(calendar::is_trading_day(date) && !closed_days.contains(&date));
                assert!(previous_date < Some(date), "{path:?}: dates not ascending");
                previous_date = Some(date);
                let [open, high, low, close, adj_close] =
                    [1, 2, 3, 4, 5].map(|column| parse_canonical_float(fields[column]));
                assert!(low <= open.min(close) && high >= open.max(close), "{line}");
                assert!(adj_close <= close, "{line}");
                fields[6].parse::<u64>().expect("integer volume");
                last_prices = Some((close, adj_close));
            }
            assert_eq!(previous_date, Some(KAGGLE_LAST_DAY));
            let (close, adj_close) = last_prices.expect("at least one row");
            assert_eq!(close, adj_close, "{path:?}: last row must be unadjusted");
        }
        assert_eq!((rows, bytes), (summary.rows, summary.bytes));
        assert!(rows > 12 * 400, "only {rows} rows");
    }

    /// The first rows of two files, as written by the generator at the time
    /// this test was added; every float was checked against Python's `repr`.
    #[test]
    fn first_rows_match_the_python_repr_text() {
        let (dir, _) = generate_into_temp(false);
        let expected = [
            (
                "stocks/AAPL.csv",
                [
                    "2018-04-02,21.0,22.229999542236328,20.440000534057617,21.459999084472656,20.440696716308594,2274865",
                    "2018-04-03,21.31999969482422,21.600000381469727,20.540000915527344,20.81999969482422,19.831096649169922,2184576",
                    "2018-04-04,20.8799991607666,21.520000457763672,20.809999465942383,21.219999313354492,20.21209716796875,1369534",
                ],
            ),
            (
                "etfs/SPY.csv",
                [
                    "2018-04-02,65.30000305175781,66.18000030517578,64.54000091552734,64.87000274658203,61.16592788696289,247548",
                    "2018-04-03,65.05999755859375,66.81999969482422,65.04000091552734,66.36000061035156,62.57084655761719,185640",
                    "2018-04-04,66.5199966430664,67.31999969482422,65.88999938964844,65.9000015258789,62.13711166381836,433566",
                ],
            ),
        ];
        for (file, rows) in expected {
            let text = fs::read_to_string(dir.path().join(file)).expect("price file");
            let first: Vec<&str> = text.lines().skip(1).take(3).collect();
            assert_eq!(first, rows, "{file}");
        }
    }

    #[test]
    fn dirty_rows_are_counted_and_only_differ_from_clean_output() {
        let (clean_dir, clean_summary) = generate_into_temp(false);
        let (dirty_dir, dirty_summary) = generate_into_temp(true);
        assert_eq!(clean_summary.rows, dirty_summary.rows);
        assert!(dirty_summary.dirty_rows >= DefectKind::ALL.len() as u64);

        let clean_tree = read_tree(clean_dir.path());
        let dirty_tree = read_tree(dirty_dir.path());
        let mut kinds_seen = HashSet::new();
        let mut differing_rows = 0;
        for ((path, clean), (_, dirty)) in price_files(&clean_tree)
            .into_iter()
            .zip(price_files(&dirty_tree))
        {
            for (clean_line, dirty_line) in clean.lines().zip(dirty.lines()).skip(1) {
                if clean_line != dirty_line {
                    differing_rows += 1;
                    let kind = classify(dirty_line).expect("a differing row is defective");
                    kinds_seen.insert(format!("{kind:?}"));
                    assert_eq!(classify(clean_line), None, "{path:?}");
                }
            }
        }
        assert_eq!(differing_rows, dirty_summary.dirty_rows);
        assert_eq!(kinds_seen.len(), DefectKind::ALL.len(), "{kinds_seen:?}");
    }

    #[test]
    fn meta_file_lists_every_symbol() {
        let (dir, summary) = generate_into_temp(true);
        let text = fs::read_to_string(dir.path().join(meta::META_FILE_NAME)).expect("meta");
        assert!(text.ends_with('\n') && !text.contains('\r'));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().expect("header").clone();
        assert_eq!(header, csv::StringRecord::from(meta::META_HEADER.to_vec()));
        let records: Vec<csv::StringRecord> =
            reader.records().collect::<Result<_, _>>().expect("records");
        assert_eq!(records.len(), summary.files);
        for record in &records {
            let directory = if &record[5] == "Y" { "etfs" } else { "stocks" };
            let price_file = dir
                .path()
                .join(directory)
                .join(format!("{}.csv", &record[1]));
            assert!(price_file.is_file(), "{price_file:?}");
            assert_eq!(&record[6], "100.0");
            assert_eq!(&record[4] == " ", &record[3] != "Q");
        }
        let etfs = records.iter().filter(|record| &record[5] == "Y").count();
        assert_eq!(etfs, 3);
    }

    #[test]
    fn invalid_options_are_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let zero_years = GenerateOptions {
            years: 0,
            ..options(dir.path(), false)
        };
        let error = generate(&zero_years).expect_err("zero years");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let too_many = GenerateOptions {
            symbols: MAX_SYMBOLS + 1,
            ..options(dir.path(), false)
        };
        assert!(generate(&too_many).is_err());
    }

    #[test]
    fn zero_symbols_write_only_the_meta_header() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = GenerateOptions {
            symbols: 0,
            ..options(dir.path(), true)
        };
        assert_eq!(
            generate(&empty).expect("generate"),
            GenerateSummary::default()
        );
        let meta_text = fs::read_to_string(dir.path().join(meta::META_FILE_NAME)).expect("meta");
        assert_eq!(meta_text.lines().count(), 1);
    }
}
