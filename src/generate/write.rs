//! Writing one symbol's price file, byte for byte in the Kaggle layout.
//!
//! Rows are streamed: they are encoded straight into a chunk buffer that goes
//! to the file whenever it fills, so memory stays bounded by the chunk and no
//! row allocates (only the rare malformed-date defect formats a string).
//! Floats go through a [`FloatTextCache`], because quotes recur and
//! formatting them is the dominant cost. A [`PriceFileWriter`] owns both and
//! is reused from file to file, so that per-file setup stays cheap.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use chrono::Datelike;

use super::calendar::TradingDays;
use super::dirt::{self, Defect, DefectKind};
use super::pyfloat::{push_u64, FloatTextCache};
use super::walk::DailyBar;

/// Header of every price file, exactly as in the dataset.
pub const PRICE_HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";

/// Encoded bytes collected before each write to the file.
const CHUNK_BYTES: usize = 128 * 1024;

/// Room for the longest row (seven fields of at most 25 bytes each).
const MAX_ROW_BYTES: usize = 256;

/// What writing one price file produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Data rows, header excluded.
    pub rows: u64,
    /// Bytes written, header included.
    pub bytes: u64,
    /// Rows that carry a defect.
    pub defective_rows: u64,
}

impl std::ops::Add for FileStats {
    type Output = FileStats;

    fn add(self, other: FileStats) -> FileStats {
        FileStats {
            rows: self.rows + other.rows,
            bytes: self.bytes + other.bytes,
            defective_rows: self.defective_rows + other.defective_rows,
        }
    }
}

/// Reusable scratch state for writing price files: the chunk buffer and the
/// float-text cache. Keep one per worker thread.
pub struct PriceFileWriter {
    chunk: Vec<u8>,
    floats: FloatTextCache,
}

impl Default for PriceFileWriter {
    fn default() -> Self {
        PriceFileWriter {
            chunk: Vec::with_capacity(CHUNK_BYTES + MAX_ROW_BYTES),
            floats: FloatTextCache::default(),
        }
    }
}

impl PriceFileWriter {
    /// Writes the header and one row per bar to `path`, the first bar dated
    /// on session `first_day` of `days`. `defects` must be sorted by row.
    pub fn write(
        &mut self,
        path: &Path,
        days: &TradingDays,
        first_day: usize,
        bars: impl Iterator<Item = DailyBar>,
        defects: &[Defect],
    ) -> io::Result<FileStats> {
        let mut file = File::create(path).map_err(|error| with_path(error, path))?;
        let PriceFileWriter { chunk, floats } = self;
        let mut stats = FileStats::default();
        let mut pending_defects = defects.iter().peekable();

        chunk.clear();
        chunk.extend_from_slice(PRICE_HEADER.as_bytes());
        for (row, bar) in bars.enumerate() {
            let day = first_day + row;
            let defect = pending_defects
                .next_if(|defect| defect.row == row)
                .map(|defect| defect.kind);
            match defect {
                Some(DefectKind::MalformedDate) => {
                    let date = dirt::malformed_date(days.date(day).year(), row);
                    encode_row(chunk, floats, &date, &bar, defect);
                }
                _ => encode_row(chunk, floats, days.label(day), &bar, defect),
            }
            stats.rows += 1;
            stats.defective_rows += u64::from(defect.is_some());
            if chunk.len() >= CHUNK_BYTES {
                stats.bytes += write_chunk(&mut file, chunk, path)?;
            }
        }
        stats.bytes += write_chunk(&mut file, chunk, path)?;
        Ok(stats)
    }
}

/// Writes out and empties `chunk`, returning how many bytes it held.
fn write_chunk(file: &mut File, chunk: &mut Vec<u8>, path: &Path) -> io::Result<u64> {
    file.write_all(chunk)
        .map_err(|error| with_path(error, path))?;
    let written = chunk.len() as u64;
    chunk.clear();
    Ok(written)
}

/// Appends `date,open,high,low,close,adj_close,volume\n`, altered by `defect`.
fn encode_row(
    line: &mut Vec<u8>,
    floats: &mut FloatTextCache,
    date: &str,
    bar: &DailyBar,
    defect: Option<DefectKind>,
) {
    line.extend_from_slice(date.as_bytes());
    if defect == Some(DefectKind::EmptyFields) {
        line.extend_from_slice(b",,,,,,\n");
        return;
    }
    let (high, low) = if defect == Some(DefectKind::HighBelowLow) {
        inverted_range(bar)
    } else {
        (bar.high, bar.low)
    };
    let open = if defect == Some(DefectKind::ZeroOpen) {
        0.0
    } else {
        bar.open
    };

    for price in [open, high, low] {
        line.push(b',');
        floats.push(line, price);
    }
    line.push(b',');
    if defect != Some(DefectKind::MissingClose) {
        floats.push(line, bar.close);
    }
    line.push(b',');
    floats.push(line, bar.adj_close);
    line.push(b',');
    match defect {
        Some(DefectKind::ZeroVolume) => line.push(b'0'),
        Some(DefectKind::FloatVolume) => {
            push_u64(line, bar.volume);
            line.extend_from_slice(b".0");
        }
        _ => push_u64(line, bar.volume),
    }
    line.push(b'\n');
}

/// `(high, low)` with high strictly below low, for the high/low defect.
fn inverted_range(bar: &DailyBar) -> (f64, f64) {
    if bar.high > bar.low {
        (bar.low, bar.high)
    } else {
        // A flat bar: push the high a percent under the low.
        (f64::from((bar.low * 0.99) as f32), bar.low)
    }
}

/// Adds the file name to an I/O error, which otherwise would not say which
/// of thousands of files failed.
pub fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}
