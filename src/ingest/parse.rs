//! Parsing one prices CSV into validated bars, rejects and flags.
//!
//! Columns are found by header name (any order, any case, surrounding spaces ignored),
//! so files with extra or reordered columns load. The quirks of the real files are
//! handled here: a UTF-8 BOM, CRLF line ends, blank lines, rows with every field empty,
//! volumes written as floats (`806400.0`), opens of exactly 0.0, header-only and empty
//! files. Nothing is dropped silently: a row is either a bar or a reject with its line.

use std::collections::HashSet;

use chrono::NaiveDate;

use super::rejects::{quoted, stored_text};
use crate::job::rules::{Outcome, Rule, RuleSet};

/// One validated daily bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub day: NaiveDate,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: f64,
    pub adj_close: Option<f64>,
    pub volume: Option<i64>,
}

/// A row that was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// 1-based line number in the file.
    pub line: u64,
    pub rule: Rule,
    pub reason: String,
    /// The row as it appears in the file (without its line end).
    pub raw: String,
}

impl Reject {
    /// A reject with its text as it can be stored: NUL-free, reason and raw text capped
    /// at [`MAX_STORED_BYTES`](super::rejects::MAX_STORED_BYTES).
    pub fn new(line: u64, rule: Rule, reason: &str, raw: &[u8]) -> Self {
        Reject {
            line,
            rule,
            reason: stored_text(reason.as_bytes()),
            raw: stored_text(raw),
        }
    }
}

/// A loaded row that broke a flag or repair rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub day: NaiveDate,
    pub rule: Rule,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub bars: Vec<Bar>,
    pub rejects: Vec<Reject>,
    pub flags: Vec<Flag>,
    /// Values rewritten without changing their meaning (float-formatted volumes).
    pub normalized: u64,
}

/// Why a file's header cannot be used: the whole file is refused with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the file is UTF-16; convert it to UTF-8")]
    Utf16,
    #[error("line 1 is blank: the header must be the first line (found on line {0})")]
    BlankBeforeHeader(u64),
    #[error("header column {column} ({name}) has {problem}; convert the file to UTF-8")]
    BadByte {
        column: usize,
        name: String,
        problem: String,
    },
    #[error("the header has no `{0}` column")]
    MissingColumn(&'static str),
    #[error("the header has an unterminated quote")]
    UnterminatedQuote,
}

/// Where each known column sits in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub width: usize,
    /// The header's names, to name a column in a reason.
    names: Vec<String>,
    date: usize,
    close: usize,
    open: Option<usize>,
    high: Option<usize>,
    low: Option<usize>,
    adj_close: Option<usize>,
    volume: Option<usize>,
}

impl Columns {
    /// Map header names to positions. `Date` and `Close` are required.
    ///
    /// # Errors
    /// No `Date` or `Close` column.
    pub fn from_names(names: Vec<String>) -> Result<Self, HeaderError> {
        let find = |name: &str| names.iter().position(|h| h.eq_ignore_ascii_case(name));
        let date = find("Date").ok_or(HeaderError::MissingColumn("Date"))?;
        let close = find("Close").ok_or(HeaderError::MissingColumn("Close"))?;
        Ok(Columns {
            width: names.len(),
            date,
            close,
            open: find("Open"),
            high: find("High"),
            low: find("Low"),
            adj_close: find("Adj Close")
                .or_else(|| find("Adj_Close"))
                .or_else(|| find("AdjClose")),
            volume: find("Volume"),
            names,
        })
    }
}

/// `column 5 (`Close`)`, or `field 9` past the header's columns.
fn describe(names: &[String], index: usize) -> String {
    match names.get(index) {
        Some(name) => format!("column {} (`{name}`)", index + 1),
        None => format!("field {}", index + 1),
    }
}

/// The header's names, trimmed, each checked for bytes that would make it a different
/// name than the one meant (a NUL, a Latin-1 `ö` in `Clöse`).
fn header_names(header: &csv::ByteRecord) -> Result<Vec<String>, HeaderError> {
    let mut names = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let problem = match (raw.contains(&0), std::str::from_utf8(raw)) {
            (true, _) => "a NUL byte".to_owned(),
            (false, Err(e)) => format!("a byte that is not UTF-8 (0x{:02X})", raw[e.valid_up_to()]),
            (false, Ok(name)) => {
                names.push(name.trim().trim_start_matches('\u{feff}').to_owned());
                continue;
            }
        };
        return Err(HeaderError::BadByte {
            column: i + 1,
            name: quoted(&String::from_utf8_lossy(raw).replace('\0', "\u{FFFD}")),
            problem,
        });
    }
    Ok(names)
}

/// Split off a leading BOM and the header line; returns the columns and the byte
/// offset where data rows begin (line 2). `Ok(None)` for an empty file.
///
/// # Errors
/// A file that is UTF-16, starts with a blank line, or has an unusable header.
pub fn read_header(data: &[u8]) -> Result<Option<(Columns, usize)>, HeaderError> {
    match read_header_names(data)? {
        None => Ok(None),
        Some((names, start)) => Ok(Some((Columns::from_names(names)?, start))),
    }
}

/// [`read_header`] for any CSV file: the header's names and where the rows begin.
///
/// # Errors
/// A file that is UTF-16, starts with a blank line, or has a bad byte in the header.
pub fn read_header_names(data: &[u8]) -> Result<Option<(Vec<String>, usize)>, HeaderError> {
    // UTF-16 by its byte-order mark, or by the zero bytes of ASCII text without one.
    let utf16_ascii = |b: &[u8]| b.len() >= 4 && b[0] != 0 && b[1] == 0 && b[3] == 0;
    if data.starts_with(b"\xFF\xFE")
        || data.starts_with(b"\xFE\xFF")
        || utf16_ascii(data)
        || utf16_ascii(data.get(1..).unwrap_or_default()) && data[0] == 0
    {
        return Err(HeaderError::Utf16);
    }
    let bom = if data.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let body = &data[bom..];
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let header_end = body
        .iter()
        .position(|&b| b == b'\n')
        .map_or(body.len(), |i| i + 1);
    let header_line = &body[..header_end];
    if header_line.iter().all(u8::is_ascii_whitespace) {
        let blank = body
            .split(|&b| b == b'\n')
            .take_while(|l| l.iter().all(u8::is_ascii_whitespace))
            .count();
        return Err(HeaderError::BlankBeforeHeader(blank as u64 + 1));
    }
    if open_quote_line(trim_line_end(header_line)).is_some() {
        return Err(HeaderError::UnterminatedQuote);
    }
    let mut reader = row_reader(header_line);
    let mut header = csv::ByteRecord::new();
    // Reading bytes from memory in flexible mode cannot fail.
    let _ = reader.read_byte_record(&mut header);
    Ok(Some((header_names(&header)?, bom + header_end)))
}

/// Parse a whole file.
///
/// # Errors
/// The header cannot be used (see [`read_header`]); bad rows are rejects, not errors.
pub fn parse_file(data: &[u8], rules: &RuleSet) -> Result<Parsed, HeaderError> {
    match read_header(data)? {
        None => Ok(Parsed::default()),
        Some((columns, start)) => Ok(parse_rows(
            &data[start..],
            2,
            &columns,
            rules,
            HashSet::new(),
        )),
    }
}

/// The csv reader for rows: no header, any field count (checked per row, so a short
/// row is a reject rather than an error).
fn row_reader(body: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body)
}

/// Rows of a CSV body, one per line. A quote left open at the end of a line makes that
/// line a bad row, and reading starts afresh on the next line, so one stray quote
/// cannot swallow the rows after it (the files this reads never quote a line break).
pub struct RowReader<'a> {
    body: &'a [u8],
    /// Where the current csv reader starts in `body` (it restarts after a bad quote).
    base: usize,
    reader: csv::Reader<&'a [u8]>,
    lines: LineCounter,
    /// Any quote anywhere: without one, no row can leave a quote open.
    has_quotes: bool,
    /// No NUL and no invalid UTF-8 anywhere: rows need no byte checks. Nearly every
    /// file is clean, and one pass over it is far cheaper than one per field.
    pub clean_bytes: bool,
}

/// What [`RowReader::next`] found.
pub enum RowRead<'a> {
    /// A row in the record; `start` is its first byte, `text` its line.
    Row {
        start: usize,
        text: &'a [u8],
    },
    /// A line that is no row: an unterminated quote.
    Bad {
        start: usize,
        text: &'a [u8],
        rule: Rule,
        reason: String,
    },
    End,
}

impl<'a> RowReader<'a> {
    /// Rows of `body`, whose first line is line `first_line` of the file.
    pub fn new(body: &'a [u8], first_line: u64) -> Self {
        RowReader {
            body,
            base: 0,
            reader: row_reader(body),
            // Line numbers are counted here, lazily and only forward, because the csv
            // reader counts a CRLF row's `\n` as part of the next row.
            lines: LineCounter {
                cursor: 0,
                line: first_line,
            },
            has_quotes: body.contains(&b'"'),
            clean_bytes: !body.contains(&0)
                && (body.is_ascii() || std::str::from_utf8(body).is_ok()),
        }
    }

    /// The next row, read into `record`.
    pub fn next(&mut self, record: &mut csv::ByteRecord) -> RowRead<'a> {
        let body = self.body;
        let before = self.base + self.reader.position().byte() as usize;
        let read = self.reader.read_byte_record(record);
        let end = (self.base + self.reader.position().byte() as usize).min(body.len());
        let start = row_start(
            body,
            record
                .position()
                .map_or(before, |p| self.base + p.byte() as usize),
        )
        .min(end);
        let text = trim_line_end(&body[start..end]);
        let bad = match read {
            Ok(false) => return RowRead::End,
            Ok(true) if !self.has_quotes => None,
            Ok(true) => open_quote_line(text).map(|(line_end, field)| {
                (
                    line_end,
                    Rule::UnterminatedQuote,
                    format!("the quote opening field {field} is not closed on this line"),
                )
            }),
            // Reading bytes from memory in flexible mode does not fail; if it ever
            // does, the line is a bad row and reading goes on after it.
            Err(e) => Some((
                text.iter()
                    .position(|&b| b == b'\n')
                    .map_or(text.len(), |i| i + 1),
                Rule::FieldCount,
                format!("unreadable CSV: {e}"),
            )),
        };
        match bad {
            None => RowRead::Row { start, text },
            Some((line_end, rule, reason)) => {
                // The reader took the following lines into this row: read them again.
                if start + line_end < end {
                    self.base = start + line_end;
                    self.reader = row_reader(&body[self.base..]);
                }
                RowRead::Bad {
                    start,
                    text: trim_line_end(&text[..line_end]),
                    rule,
                    reason,
                }
            }
        }
    }

    /// The line number of byte `offset` (asked for in increasing order).
    pub fn line_at(&mut self, offset: usize) -> u64 {
        self.lines.line_at(self.body, offset)
    }
}

/// Parse data rows (no header) that begin on line `first_line`. `seen` holds the days
/// accepted from earlier lines (for rows appended to a loaded file: the days stored),
/// which are duplicates here exactly as they would be in a parse of the whole file.
pub fn parse_rows(
    body: &[u8],
    first_line: u64,
    columns: &Columns,
    rules: &RuleSet,
    mut seen: HashSet<NaiveDate>,
) -> Parsed {
    let mut parsed = Parsed::default();
    let mut rows = RowReader::new(body, first_line);
    let mut record = csv::ByteRecord::new();
    loop {
        let (start, text) = match rows.next(&mut record) {
            RowRead::End => break,
            RowRead::Bad {
                start,
                text,
                rule,
                reason,
            } => {
                let line = rows.line_at(start);
                parsed.rejects.push(Reject::new(line, rule, &reason, text));
                continue;
            }
            RowRead::Row { start, text } => (start, text),
        };
        let mut row = RowCheck {
            rules,
            flags: Vec::new(),
            normalized: 0,
        };
        let checked = if rows.clean_bytes {
            Ok(())
        } else {
            check_bytes(&record, &columns.names)
        };
        match checked.and_then(|()| row.check(&record, columns, &mut seen)) {
            Ok(bar) => {
                parsed.normalized += row.normalized;
                parsed
                    .flags
                    .extend(row.flags.into_iter().map(|(rule, detail)| Flag {
                        day: bar.day,
                        rule,
                        detail,
                    }));
                parsed.bars.push(bar);
            }
            Err((rule, reason)) => {
                let line = rows.line_at(start);
                parsed.rejects.push(Reject::new(line, rule, &reason, text));
            }
        }
    }
    parsed
}

/// A NUL byte or a byte that is not UTF-8 makes the row a reject naming the column:
/// its fields cannot be trusted, and PostgreSQL could not store the text.
pub fn check_bytes(record: &csv::ByteRecord, names: &[String]) -> Result<(), (Rule, String)> {
    for (i, field) in record.iter().enumerate() {
        if let Some(at) = field.iter().position(|&b| b == 0) {
            return Err((
                Rule::NulByte,
                format!("NUL byte in {} at byte {}", describe(names, i), at + 1),
            ));
        }
        if let Err(e) = std::str::from_utf8(field) {
            let at = e.valid_up_to();
            return Err((
                Rule::InvalidUtf8,
                format!(
                    "{} has a byte that is not UTF-8 (0x{:02X} at byte {}); convert the file to UTF-8",
                    describe(names, i),
                    field[at],
                    at + 1
                ),
            ));
        }
    }
    Ok(())
}

/// When the first line of `text` ends inside a quoted field (as the csv reader reads
/// quotes: only a quote that begins a field opens one, `""` inside is a quote), the
/// length of that line with its `\n` and the 1-based number of the field.
fn open_quote_line(text: &[u8]) -> Option<(usize, usize)> {
    if !text.contains(&b'"') {
        return None;
    }
    let line_end = text
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| i + 1);
    let mut field = 1;
    let mut at_field_start = true;
    let mut in_quotes = false;
    let mut opened = 0;
    let mut i = 0;
    while i < line_end {
        let b = text[i];
        if in_quotes {
            if b == b'"' {
                if text.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else if b == b',' {
            field += 1;
            at_field_start = true;
            i += 1;
            continue;
        } else if b == b'"' && at_field_start {
            in_quotes = true;
            opened = field;
        }
        at_field_start = false;
        i += 1;
    }
    in_quotes.then_some((line_end, opened))
}

/// `bytes` without the line end(s) at its end.
fn trim_line_end(bytes: &[u8]) -> &[u8] {
    let keep = bytes.len()
        - bytes
            .iter()
            .rev()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
    &bytes[..keep]
}

/// The first byte of a row that the reader says starts at `from`: past any line ends
/// (blank lines, or the `\n` of a preceding CRLF).
fn row_start(body: &[u8], from: usize) -> usize {
    let from = from.min(body.len());
    from + body[from..]
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// 1-based line numbers of byte offsets, asked for in increasing order.
struct LineCounter {
    cursor: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, body: &[u8], offset: usize) -> u64 {
        let offset = offset.max(self.cursor).min(body.len());
        self.line += body[self.cursor..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.cursor = offset;
        self.line
    }
}

/// Checks of one row, collecting its flags.
struct RowCheck<'a> {
    rules: &'a RuleSet,
    flags: Vec<(Rule, String)>,
    normalized: u64,
}

type RowError = (Rule, String);

impl RowCheck<'_> {
    fn check(
        &mut self,
        record: &csv::ByteRecord,
        columns: &Columns,
        seen: &mut HashSet<NaiveDate>,
    ) -> Result<Bar, RowError> {
        if record.len() != columns.width {
            return Err((
                Rule::FieldCount,
                format!("{} fields, the header has {}", record.len(), columns.width),
            ));
        }
        let field = |i: usize| std::str::from_utf8(&record[i]).map(str::trim);
        let date_text = field(columns.date).unwrap_or("");
        let day = parse_day(date_text).ok_or_else(|| {
            let reason = if date_text.is_empty() {
                "missing date".to_owned()
            } else if date_text.starts_with("0000-") {
                format!("bad date {}: there is no year 0", quoted(date_text))
            } else {
                format!("bad date {} (expected YYYY-MM-DD)", quoted(date_text))
            };
            (Rule::BadDate, reason)
        })?;
        if day < self.rules.min_day {
            self.apply(
                Rule::BeforeMinDay,
                format!("day {day} is before min_day {}", self.rules.min_day),
                Some(()),
                Some(()),
            )?;
        }
        if let Some(today) = self.rules.today.filter(|&today| day > today) {
            self.apply(
                Rule::AfterToday,
                format!("day {day} is after today ({today})"),
                Some(()),
                Some(()),
            )?;
        }
        let all_empty = (0..record.len())
            .filter(|&i| i != columns.date)
            .all(|i| record[i].trim_ascii().is_empty());
        if all_empty {
            return Err((
                Rule::EmptyRow,
                "every field but the date is empty".to_owned(),
            ));
        }
        let close = match field(columns.close).ok().filter(|s| !s.is_empty()) {
            None => return Err((Rule::NoClose, "missing close".to_owned())),
            Some(text) => match text.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => v,
                _ => return Err((Rule::NoClose, format!("unusable close {}", quoted(text)))),
            },
        };
        if !seen.insert(day) {
            return Err((
                Rule::DuplicateDay,
                format!("day {day} appears earlier in the file"),
            ));
        }
        let mut open = self.price(record, columns.open, "open")?;
        if open == Some(0.0) {
            open = self.apply(
                Rule::ZeroOpen,
                "open of 0.0 set to NULL".to_owned(),
                open,
                None,
            )?;
        }
        let high = self.price(record, columns.high, "high")?;
        let low = self.price(record, columns.low, "low")?;
        let adj_close = self.price(record, columns.adj_close, "adj_close")?;
        let volume = self.volume(record, columns.volume)?;
        if let (Some(h), Some(l)) = (high, low) {
            if h < l {
                self.apply(
                    Rule::HighBelowLow,
                    format!("high {h} < low {l}"),
                    Some(()),
                    Some(()),
                )?;
            } else {
                let bracketed = |v: Option<f64>| v.is_none_or(|v| l <= v && v <= h);
                if !bracketed(open) || !bracketed(Some(close)) {
                    self.apply(
                        Rule::RangeMismatch,
                        format!("low {l} / high {h} do not bracket open/close"),
                        Some(()),
                        Some(()),
                    )?;
                }
            }
        }
        if volume == Some(0) {
            self.apply(Rule::ZeroVolume, "volume 0".to_owned(), Some(()), Some(()))?;
        }
        Ok(Bar {
            day,
            open,
            high,
            low,
            close,
            adj_close,
            volume,
        })
    }

    /// Record `rule` for this row: reject it, or keep `flagged` (flag) / `repaired`.
    fn apply<T>(
        &mut self,
        rule: Rule,
        detail: String,
        flagged: Option<T>,
        repaired: Option<T>,
    ) -> Result<Option<T>, RowError> {
        match self.rules.outcome(rule) {
            Outcome::Reject => Err((rule, detail)),
            Outcome::Flag => {
                self.flags.push((rule, detail));
                Ok(flagged)
            }
            Outcome::Repair => {
                self.flags.push((rule, detail));
                Ok(repaired)
            }
        }
    }

    fn price(
        &mut self,
        record: &csv::ByteRecord,
        index: Option<usize>,
        name: &str,
    ) -> Result<Option<f64>, RowError> {
        let Some(i) = index else { return Ok(None) };
        let text = String::from_utf8_lossy(&record[i]);
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            Ok(v) if v.is_finite() => self.apply(
                Rule::NegativeValue,
                format!("{name} {v} set to NULL"),
                Some(v),
                None,
            ),
            _ => self.apply(
                Rule::BadField,
                format!("{name} {} is not a number; set to NULL", quoted(text)),
                None,
                None,
            ),
        }
    }

    fn volume(
        &mut self,
        record: &csv::ByteRecord,
        index: Option<usize>,
    ) -> Result<Option<i64>, RowError> {
        let Some(i) = index else { return Ok(None) };
        let text = String::from_utf8_lossy(&record[i]);
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Ok(v) = text.parse::<i64>() {
            return if v >= 0 {
                Ok(Some(v))
            } else {
                self.apply(
                    Rule::NegativeValue,
                    format!("volume {v} set to NULL"),
                    Some(v),
                    None,
                )
            };
        }
        // `806400.0`: the source wrote some volumes as floats. Integral values are the
        // same number, so they are normalized, not flagged.
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => {
                self.normalized += 1;
                let v = v as i64;
                if v >= 0 {
                    Ok(Some(v))
                } else {
                    self.apply(
                        Rule::NegativeValue,
                        format!("volume {v} set to NULL"),
                        Some(v),
                        None,
                    )
                }
            }
            _ => self.apply(
                Rule::BadField,
                format!("volume {} is not a whole number; set to NULL", quoted(text)),
                None,
                None,
            ),
        }
    }
}

/// `YYYY-MM-DD`, strictly (the dataset's only date form), without chrono's slower
/// format parser.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    // Year 0 is not a year of the calendar PostgreSQL stores.
    let year = i32::try_from(num(&b[0..4])?).ok().filter(|&y| y > 0)?;
    NaiveDate::from_ymd_opt(year, num(&b[5..7])?, num(&b[8..10])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Parsed {
        parse_file(text.as_bytes(), &RuleSet::default()).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        parse_day(s).unwrap()
    }

    const HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";

    #[test]
    fn parses_a_clean_row_exactly() {
        let p = parse(&format!("{HEADER}1980-12-12,0.5133928656578064,0.515625,0.5133928656578064,0.5133928656578064,0.40678155422210693,117258400\n"));
        assert_eq!(
            p.bars,
            vec![Bar {
                day: d("1980-12-12"),
                open: Some(0.5133928656578064),
                high: Some(0.515625),
                low: Some(0.5133928656578064),
                close: 0.5133928656578064,
                adj_close: Some(0.40678155422210693),
                volume: Some(117258400),
            }]
        );
        assert!(p.rejects.is_empty() && p.flags.is_empty());
    }

    #[test]
    fn bom_crlf_blank_lines_and_reordered_columns() {
        let text =
            "\u{feff}Volume,Close,Date\r\n100,2.5,2020-01-02\r\n\r\n200.0,2.75,2020-01-03\r\n\r\n";
        let p = parse(text);
        assert_eq!(p.bars.len(), 2);
        assert_eq!(p.bars[1].volume, Some(200));
        assert_eq!(p.bars[1].close, 2.75);
        assert_eq!(p.bars[0].open, None);
        assert_eq!(p.normalized, 1);
    }

    #[test]
    fn rejects_keep_line_number_raw_text_and_reason() {
        let text = format!("{HEADER}2001-09-11,1,1,1,1,1,1\n2001-09-12,,,,,,\n2019-13-45,1,1,1,1,1,1\n2001-09-13,1,1,1,,1,5\n2001-09-11,1,1,1,1,1,1\n");
        let p = parse(&text);
        assert_eq!(p.bars.len(), 1);
        let got: Vec<(u64, Rule, &str)> = p
            .rejects
            .iter()
            .map(|r| (r.line, r.rule, r.raw.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, Rule::EmptyRow, "2001-09-12,,,,,,"),
                (4, Rule::BadDate, "2019-13-45,1,1,1,1,1,1"),
                (5, Rule::NoClose, "2001-09-13,1,1,1,,1,5"),
                (6, Rule::DuplicateDay, "2001-09-11,1,1,1,1,1,1"),
            ]
        );
        assert_eq!(
            p.rejects[1].reason,
            "bad date `2019-13-45` (expected YYYY-MM-DD)"
        );
    }

    #[test]
    fn crlf_rejects_have_their_own_line_and_text() {
        let p = parse("Date,Close\r\n2020-01-02,1\r\n\r\n2020-01-03,\r\n2020-01-04,x\r\n");
        let got: Vec<(u64, &str)> = p.rejects.iter().map(|r| (r.line, r.raw.as_str())).collect();
        assert_eq!(got, vec![(4, "2020-01-03,"), (5, "2020-01-04,x")]);
    }

    #[test]
    fn zero_open_is_repaired_and_flags_are_kept() {
        let p = parse(&format!(
            "{HEADER}1962-01-02,0.0,0.2233,0.2222,0.2233,6.28e-07,0\n2020-01-02,5,4,6,5,5,10\n"
        ));
        assert_eq!(p.bars.len(), 2);
        assert_eq!(p.bars[0].open, None);
        assert_eq!(p.bars[0].adj_close, Some(6.28e-07));
        let rules: Vec<Rule> = p.flags.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            vec![Rule::ZeroOpen, Rule::ZeroVolume, Rule::HighBelowLow]
        );
    }

    #[test]
    fn empty_and_header_only_files_have_no_rows() {
        assert!(parse("").bars.is_empty());
        assert!(parse(HEADER).bars.is_empty());
        assert_eq!(
            parse_file(b"Foo,Bar\n1,2\n", &RuleSet::default()).unwrap_err(),
            HeaderError::MissingColumn("Date")
        );
    }

    #[test]
    fn grown_rows_are_checked_against_the_stored_days_not_the_last_one() {
        let (columns, _) = read_header(HEADER.as_bytes()).unwrap().unwrap();
        // Stored: 01-02 and 01-06. Appended: a repeat of 01-02, a late 01-03, a new 01-07.
        let body = b"2020-01-02,1,1,1,1,1,1\n2020-01-03,1,1,1,1,1,1\n2020-01-07,1,1,1,1,1,1\n";
        let stored = [d("2020-01-02"), d("2020-01-06")].into_iter().collect();
        let p = parse_rows(body, 10, &columns, &RuleSet::default(), stored);
        let days: Vec<_> = p.bars.iter().map(|b| b.day.to_string()).collect();
        assert_eq!(days, ["2020-01-03", "2020-01-07"]);
        assert_eq!(
            (
                p.rejects[0].line,
                p.rejects[0].rule,
                p.rejects[0].reason.as_str()
            ),
            (
                10,
                Rule::DuplicateDay,
                "day 2020-01-02 appears earlier in the file"
            )
        );
    }

    /// (line, rule, reason, raw) of each reject.
    fn rejects(p: &Parsed) -> Vec<(u64, Rule, &str, &str)> {
        p.rejects
            .iter()
            .map(|r| (r.line, r.rule, r.reason.as_str(), r.raw.as_str()))
            .collect()
    }

    fn days(p: &Parsed) -> Vec<String> {
        p.bars.iter().map(|b| b.day.to_string()).collect()
    }

    #[test]
    fn a_nul_byte_or_a_latin1_byte_costs_one_row_named_by_column() {
        let data = b"Date,Open,Close\n2020-01-02,1,1\n2020-01-03,1\0,1\n2020-01-06,1,1\n2020-01-07,caf\xE9,1\n2020-01-08,1,1\n";
        let p = parse_file(data, &RuleSet::default()).unwrap();
        assert_eq!(days(&p), ["2020-01-02", "2020-01-06", "2020-01-08"]);
        assert_eq!(
            rejects(&p),
            [
                (3, Rule::NulByte, "NUL byte in column 2 (`Open`) at byte 2", "2020-01-03,1\u{FFFD},1"),
                (
                    5,
                    Rule::InvalidUtf8,
                    "column 2 (`Open`) has a byte that is not UTF-8 (0xE9 at byte 4); convert the file to UTF-8",
                    "2020-01-07,caf\u{FFFD},1"
                ),
            ]
        );
    }

    #[test]
    fn an_unterminated_quote_costs_its_line_and_reading_resumes_on_the_next() {
        // Mid-file, with a later quote that would otherwise close it; then at the end.
        let p = parse(
            "Date,Close,Note\n2020-01-02,1,a\n2020-01-03,1,\"open\n2020-01-06,2,b\n2020-01-07,3,\"ok, \"\"quoted\"\"\"\n2020-01-08,4,\"never closed",
        );
        assert_eq!(days(&p), ["2020-01-02", "2020-01-06", "2020-01-07"]);
        assert_eq!(
            rejects(&p),
            [
                (
                    3,
                    Rule::UnterminatedQuote,
                    "the quote opening field 3 is not closed on this line",
                    "2020-01-03,1,\"open"
                ),
                (
                    6,
                    Rule::UnterminatedQuote,
                    "the quote opening field 3 is not closed on this line",
                    "2020-01-08,4,\"never closed"
                ),
            ]
        );
        // A quote inside an unquoted field is a character, as the csv reader reads it.
        assert_eq!(
            days(&parse("Date,Close,Note\n2020-01-02,1,5\" disk\n")),
            ["2020-01-02"]
        );
    }

    #[test]
    fn a_wrong_field_count_is_its_own_rule() {
        let p = parse(&format!(
            "{HEADER}2020-01-02,1,1,1,1,1\n2020-01-03,1,1,1,1,1,1,1\n2020-01-06,1,1,1,1,1,1\n"
        ));
        assert_eq!(days(&p), ["2020-01-06"]);
        assert_eq!(
            rejects(&p),
            [
                (
                    2,
                    Rule::FieldCount,
                    "6 fields, the header has 7",
                    "2020-01-02,1,1,1,1,1"
                ),
                (
                    3,
                    Rule::FieldCount,
                    "8 fields, the header has 7",
                    "2020-01-03,1,1,1,1,1,1,1"
                ),
            ]
        );
    }

    #[test]
    fn header_problems_have_true_reasons() {
        let utf16: Vec<u8> = "\u{feff}Date,Close\n2020-01-02,1\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            parse_file(&utf16, &RuleSet::default()).unwrap_err(),
            HeaderError::Utf16
        );
        assert_eq!(
            parse_file(&utf16[2..], &RuleSet::default()).unwrap_err(),
            HeaderError::Utf16
        );
        let err = parse_file(b"\n\r\nDate,Close\n2020-01-02,1\n", &RuleSet::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1 is blank: the header must be the first line (found on line 3)"
        );
        let err = parse_file(b"Date,Cl\xF6se\n2020-01-02,1\n", &RuleSet::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header column 2 (`Cl\u{FFFD}se`) has a byte that is not UTF-8 (0xF6); convert the file to UTF-8"
        );
        let err =
            parse_file(b"Date,Close,Vol\0\n2020-01-02,1,1\n", &RuleSet::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header column 3 (`Vol\u{FFFD}`) has a NUL byte; convert the file to UTF-8"
        );
    }

    #[test]
    fn implausible_days_are_rejected_by_default_or_flagged() {
        let text = "Date,Close\n0000-01-01,1\n1899-12-31,1\n1900-01-01,1\n2026-12-03,1\n2026-12-04,1\n9999-12-31,1\n";
        let today = d("2026-12-03");
        let p = parse_file(text.as_bytes(), &RuleSet::default().with_today(today)).unwrap();
        assert_eq!(days(&p), ["1900-01-01", "2026-12-03"]);
        assert_eq!(
            rejects(&p),
            [
                (
                    2,
                    Rule::BadDate,
                    "bad date `0000-01-01`: there is no year 0",
                    "0000-01-01,1"
                ),
                (
                    3,
                    Rule::BeforeMinDay,
                    "day 1899-12-31 is before min_day 1900-01-01",
                    "1899-12-31,1"
                ),
                (
                    6,
                    Rule::AfterToday,
                    "day 2026-12-04 is after today (2026-12-03)",
                    "2026-12-04,1"
                ),
                (
                    7,
                    Rule::AfterToday,
                    "day 9999-12-31 is after today (2026-12-03)",
                    "9999-12-31,1"
                ),
            ]
        );
        let mut rules = RuleSet::default().with_today(today);
        rules.configure("after_today", "flag").unwrap();
        rules.configure("min_day", "1800-01-01").unwrap();
        let p = parse_file(text.as_bytes(), &rules).unwrap();
        assert_eq!(
            days(&p),
            [
                "1899-12-31",
                "1900-01-01",
                "2026-12-03",
                "2026-12-04",
                "9999-12-31"
            ]
        );
        let flags: Vec<(String, Rule)> = p
            .flags
            .iter()
            .map(|f| (f.day.to_string(), f.rule))
            .collect();
        assert_eq!(
            flags,
            [
                ("2026-12-04".to_owned(), Rule::AfterToday),
                ("9999-12-31".to_owned(), Rule::AfterToday)
            ]
        );
    }

    #[test]
    fn a_huge_field_is_stored_capped_once() {
        let huge = "9".repeat(1 << 20);
        let p = parse(&format!("Date,Close\n2020-01-02,{huge}x\n2020-01-03,1\n"));
        assert_eq!(days(&p), ["2020-01-03"]);
        let r = &p.rejects[0];
        assert_eq!((r.line, r.rule), (2, Rule::NoClose));
        assert_eq!(
            r.reason,
            format!("unusable close `{}…` (1048577 bytes)", "9".repeat(64))
        );
        assert_eq!(
            r.raw,
            format!(
                "2020-01-02,{}… [truncated, 1048588 bytes]",
                "9".repeat(4096 - 11)
            )
        );
    }

    #[test]
    fn crlf_unterminated_quote_costs_one_line() {
        let p = parse("Date,Close\r\n2020-01-02,\"1\r\n2020-01-03,2\r\n");
        assert_eq!(days(&p), ["2020-01-03"]);
        assert_eq!(
            rejects(&p),
            [(
                2,
                Rule::UnterminatedQuote,
                "the quote opening field 2 is not closed on this line",
                "2020-01-02,\"1"
            )]
        );
    }

    /// Random files of good and hostile lines, in any order and with either line end:
    /// every good line is a bar, every bad line exactly one reject on its own line
    /// with its rule, whatever came before it.
    #[test]
    fn any_mix_of_bad_lines_costs_exactly_those_lines() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
        let start = d("2000-01-01");
        for _ in 0..300 {
            let crlf = rng.random_bool(0.3);
            let mut data = b"Date,Open,Close\n".to_vec();
            let (mut good, mut bad) = (Vec::new(), Vec::new());
            let mut line = 1;
            for i in 0..rng.random_range(1..30u64) {
                line += 1;
                let day = (start + chrono::Days::new(i)).to_string();
                let (text, rule): (Vec<u8>, Option<Rule>) = match rng.random_range(0..9) {
                    0 => (format!("{day},1\0,2").into_bytes(), Some(Rule::NulByte)),
                    1 => {
                        let mut t = format!("{day},").into_bytes();
                        t.extend_from_slice(b"\xE9,2"); // a Latin-1 `é`
                        (t, Some(Rule::InvalidUtf8))
                    }
                    2 => (
                        format!("{day},\"1,2").into_bytes(),
                        Some(Rule::UnterminatedQuote),
                    ),
                    3 => (format!("{day},1").into_bytes(), Some(Rule::FieldCount)),
                    4 => (format!("{day},1,2,3").into_bytes(), Some(Rule::FieldCount)),
                    5 => (b"2020-02-30,1,2".to_vec(), Some(Rule::BadDate)),
                    6 => (format!("{day},\"1\",\"2\"").into_bytes(), None),
                    _ => (format!("{day},1,2").into_bytes(), None),
                };
                match rule {
                    None => good.push(day),
                    Some(rule) => bad.push((line, rule)),
                }
                data.extend_from_slice(&text);
                data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            let p = parse_file(&data, &RuleSet::default()).unwrap();
            let text = String::from_utf8_lossy(&data);
            assert_eq!(days(&p), good, "{text}");
            let got: Vec<(u64, Rule)> = p.rejects.iter().map(|r| (r.line, r.rule)).collect();
            assert_eq!(got, bad, "{text}");
        }
    }

    #[test]
    fn strict_dates() {
        assert_eq!(parse_day("2020-04-01"), NaiveDate::from_ymd_opt(2020, 4, 1));
        assert_eq!(parse_day("2020-4-01"), None);
        assert_eq!(parse_day("2020-02-30"), None);
        assert_eq!(parse_day("20200401xx"), None);
        assert_eq!(parse_day("0000-01-01"), None);
        assert_eq!(parse_day("0001-01-01"), NaiveDate::from_ymd_opt(1, 1, 1));
    }
}
