//! Writing one symbol's price file, byte for byte in the Kaggle layout.
//!
//! Rows are streamed: each is encoded into one reused line buffer and handed
//! to a `BufWriter`, so memory stays bounded by one row plus the buffer and
//! no row allocates (only the rare malformed-date defect formats a string).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::Datelike;

use super::calendar::TradingDays;
use super::dirt::{self, Defect, DefectKind};
use super::pyfloat::{push_python_float, push_u64};
use super::walk::DailyBar;

/// Header of every price file, exactly as in the dataset.
pub const PRICE_HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";

/// Capacity of each file's write buffer.
const WRITE_BUFFER_BYTES: usize = 128 * 1024;

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

/// Writes the header and one row per bar to `path`, the first bar dated on
/// session `first_day` of `days`. `defects` must be sorted by row.
pub fn write_price_file(
    path: &Path,
    days: &TradingDays,
    first_day: usize,
    bars: impl Iterator<Item = DailyBar>,
    defects: &[Defect],
) -> io::Result<FileStats> {
    let file = File::create(path).map_err(|error| with_path(error, path))?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    let mut stats = FileStats::default();
    let mut line = Vec::with_capacity(160);
    let mut pending_defects = defects.iter().peekable();

    writer
        .write_all(PRICE_HEADER.as_bytes())
        .map_err(|error| with_path(error, path))?;
    stats.bytes += PRICE_HEADER.len() as u64;
    for (row, bar) in bars.enumerate() {
        let day = first_day + row;
        let defect = pending_defects.next_if(|defect| defect.row == row).map(|defect| defect.kind);
        line.clear();
        match defect {
            Some(DefectKind::MalformedDate) => {
                let date = dirt::malformed_date(days.date(day).year(), row);
                encode_row(&mut line, &date, &bar, defect);
            }
            _ => encode_row(&mut line, days.label(day), &bar, defect),
        }
        writer
            .write_all(&line)
            .map_err(|error| with_path(error, path))?;
        stats.rows += 1;
        stats.bytes += line.len() as u64;
        stats.defective_rows += u64::from(defect.is_some());
    }
    writer.flush().map_err(|error| with_path(error, path))?;
    Ok(stats)
}

/// Appends `date,open,high,low,close,adj_close,volume\n`, altered by `defect`.
fn encode_row(line: &mut Vec<u8>, date: &str, bar: &DailyBar, defect: Option<DefectKind>) {
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
        push_python_float(line, price);
    }
    line.push(b',');
    if defect != Some(DefectKind::MissingClose) {
        push_python_float(line, bar.close);
    }
    line.push(b',');
    push_python_float(line, bar.adj_close);
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
