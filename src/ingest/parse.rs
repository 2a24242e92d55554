//! Parsing one prices CSV into validated bars, rejects and flags.
//!
//! Columns are found by header name (any order, any case, surrounding spaces ignored),
//! so files with extra or reordered columns load. The quirks of the real files are
//! handled here: a UTF-8 BOM, CRLF line ends, blank lines, rows with every field empty,
//! volumes written as floats (`806400.0`), opens of exactly 0.0, header-only and empty
//! files. Nothing is dropped silently: a row is either a bar or a reject with its line.

use std::collections::HashSet;

use chrono::NaiveDate;

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

/// Where each known column sits in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub width: usize,
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
    pub fn from_header(header: &csv::ByteRecord) -> Result<Self, String> {
        let find = |name: &str| {
            header.iter().position(|h| {
                String::from_utf8_lossy(h)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        let date = find("Date").ok_or("the header has no `Date` column")?;
        let close = find("Close").ok_or("the header has no `Close` column")?;
        Ok(Columns {
            width: header.len(),
            date,
            close,
            open: find("Open"),
            high: find("High"),
            low: find("Low"),
            adj_close: find("Adj Close")
                .or_else(|| find("Adj_Close"))
                .or_else(|| find("AdjClose")),
            volume: find("Volume"),
        })
    }
}

/// Split off a leading BOM and the header line; returns the columns and the byte
/// offset where data rows begin. `Ok(None)` for an empty file.
pub fn read_header(data: &[u8]) -> Result<Option<(Columns, usize)>, String> {
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
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&body[..header_end]);
    let mut header = csv::ByteRecord::new();
    reader
        .read_byte_record(&mut header)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    Ok(Some((Columns::from_header(&header)?, bom + header_end)))
}

/// Parse a whole file.
pub fn parse_file(data: &[u8], rules: &RuleSet) -> Result<Parsed, String> {
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
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    // Line numbers are counted here, lazily and only forward, because the csv reader
    // counts a CRLF row's `\n` as part of the next row.
    let mut lines = LineCounter {
        cursor: 0,
        line: first_line,
    };
    loop {
        let before = reader.position().byte() as usize;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // An unterminated quote or similar: the rest of the file is one bad row.
                let start = row_start(body, before);
                parsed.rejects.push(Reject {
                    line: lines.line_at(body, start),
                    rule: Rule::BadDate,
                    reason: format!("unreadable CSV: {e}"),
                    raw: raw_text(&body[start..]),
                });
                break;
            }
        }
        let end = (reader.position().byte() as usize).min(body.len());
        let mut row = RowCheck {
            rules,
            flags: Vec::new(),
            normalized: 0,
        };
        match row.check(&record, columns, &mut seen) {
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
                let start = row_start(
                    body,
                    record.position().map_or(before, |p| p.byte() as usize),
                )
                .min(end);
                parsed.rejects.push(Reject {
                    line: lines.line_at(body, start),
                    rule,
                    reason,
                    raw: raw_text(&body[start..end]),
                });
            }
        }
    }
    parsed
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

fn raw_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\r', '\n'])
        .to_owned()
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
                Rule::BadDate,
                format!("{} fields, the header has {}", record.len(), columns.width),
            ));
        }
        let field = |i: usize| std::str::from_utf8(&record[i]).map(str::trim);
        let date_text = field(columns.date).unwrap_or("");
        let day = parse_day(date_text).ok_or_else(|| {
            if date_text.is_empty() {
                (Rule::BadDate, "missing date".to_owned())
            } else {
                (
                    Rule::BadDate,
                    format!("bad date `{date_text}` (expected YYYY-MM-DD)"),
                )
            }
        })?;
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
                _ => return Err((Rule::NoClose, format!("unusable close `{text}`"))),
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
                format!("{name} `{text}` is not a number; set to NULL"),
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
                format!("volume `{text}` is not a whole number; set to NULL"),
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
    let year = i32::try_from(num(&b[0..4])?).ok()?;
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
        assert!(parse_file(b"Foo,Bar\n1,2\n", &RuleSet::default())
            .unwrap_err()
            .contains("`Date`"));
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

    #[test]
    fn strict_dates() {
        assert_eq!(parse_day("2020-04-01"), NaiveDate::from_ymd_opt(2020, 4, 1));
        assert_eq!(parse_day("2020-4-01"), None);
        assert_eq!(parse_day("2020-02-30"), None);
        assert_eq!(parse_day("20200401xx"), None);
    }
}
