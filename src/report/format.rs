//! How values are shown to people in the Markdown and HTML documents.
//!
//! The CSV files keep PostgreSQL's exact text; the documents are for reading, so numbers get
//! thousands separators and a sensible number of decimals. Formatting works on the decimal
//! text itself rather than on `f64` wherever it can, so a `numeric` with 20 significant
//! digits is rounded correctly instead of picking up binary floating-point noise.
//!
//! The rules for a numeric cell:
//! * integers are kept exact, with separators: `1234567` → `1,234,567`;
//! * magnitudes of at least 1 get two decimals: `1234.5` → `1,234.50`;
//! * magnitudes below 1 get four significant digits, at least two decimals and no trailing
//!   zeros beyond that: `0.0123456` → `0.01235`, `0.5` → `0.50`;
//! * only tiny (< 1e-6) or huge (≥ 1e21) non-integers use scientific notation: `1.235e-7`;
//! * `NaN`, `Infinity` and `-Infinity` are shown as PostgreSQL prints them.

use crate::table::Table;

/// Decimals shown for numbers whose magnitude is at least 1.
const DECIMALS_AT_LEAST_ONE: usize = 2;
/// Significant digits shown for numbers whose magnitude is below 1.
const SIGNIFICANT_DIGITS_BELOW_ONE: usize = 4;
/// Non-integers below this magnitude are shown in scientific notation…
const TINY: f64 = 1e-6;
/// …which in decimal text means at least this many zeros right after the decimal point.
const TINY_LEADING_ZEROS: usize = 6;
/// Non-integers at or above this magnitude are shown in scientific notation…
const HUGE: f64 = 1e21;
/// …which in decimal text means more than this many integer digits.
const HUGE_INTEGER_DIGITS: usize = 21;

/// Formats PostgreSQL's text form of a number for reading (see the module docs for the
/// rules), or returns `None` when `text` is not a number, so the caller can show it as is.
pub fn format_number(text: &str) -> Option<String> {
    let text = text.trim();
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Some(text.to_owned());
    }
    if let Some(decimal) = PlainDecimal::parse(text) {
        return Some(decimal.format());
    }
    // PostgreSQL prints `real`/`double precision` values beyond ±1e15 or below 1e-4 in
    // exponent form, e.g. `1.5e-05`.
    let value: f64 = text.parse().ok().filter(|value: &f64| value.is_finite())?;
    if is_tiny_or_huge(value) {
        return Some(format_scientific(value));
    }
    // Rust's `Display` for `f64` never uses exponent notation.
    PlainDecimal::parse(&value.to_string()).map(|decimal| decimal.format())
}

/// Inserts `,` between groups of three digits: `"1234567"` → `"1,234,567"`.
///
/// `digits` must be the digits of a non-negative integer (no sign, no decimal point).
pub fn group_thousands(digits: &str) -> String {
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A count with thousands separators: `1234` → `1,234`.
pub fn format_count(count: usize) -> String {
    group_thousands(&count.to_string())
}

/// An integer with thousands separators: `-1234` → `-1,234`.
pub fn format_integer(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    format!(
        "{sign}{}",
        group_thousands(&value.unsigned_abs().to_string())
    )
}

/// `"1 row"`, `"0 rows"`, `"1,234 rows"`.
pub fn rows_phrase(count: usize) -> String {
    let noun = if count == 1 { "row" } else { "rows" };
    format!("{} {noun}", format_count(count))
}

/// `"1 more row"`, `"1,234 more rows"`.
pub fn more_rows_phrase(count: usize) -> String {
    let noun = if count == 1 { "row" } else { "rows" };
    format!("{} more {noun}", format_count(count))
}

/// `"3 rows."`, or `"Showing 50 of 1,234 rows."` when only `shown_rows` are shown.
pub fn row_count_sentence(total_rows: usize, shown_rows: usize) -> String {
    if shown_rows < total_rows {
        format!(
            "Showing {} of {}.",
            format_count(shown_rows),
            rows_phrase(total_rows)
        )
    } else {
        format!("{}.", rows_phrase(total_rows))
    }
}

/// `value` with exactly `decimals` decimals and thousands separators, never `-0`.
/// Used for chart axis labels.
pub fn format_fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    PlainDecimal::parse(&text)
        .map(|decimal| decimal.to_text())
        .unwrap_or(text)
}

fn is_tiny_or_huge(value: f64) -> bool {
    let magnitude = value.abs();
    magnitude >= HUGE || (magnitude != 0.0 && magnitude < TINY)
}

/// Four significant digits in exponent notation, without padding zeros: `1.5e-7`.
fn format_scientific(value: f64) -> String {
    let precision = SIGNIFICANT_DIGITS_BELOW_ONE - 1;
    let text = format!("{value:.precision$e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

/// A number written as `[-]digits[.digits]`, split into sign, integer and fraction digits.
#[derive(Debug, Clone, PartialEq)]
struct PlainDecimal {
    negative: bool,
    /// Integer digits without leading zeros (empty for zero).
    integer: String,
    /// Fraction digits; `None` when the text had no decimal point.
    fraction: Option<String>,
}

impl PlainDecimal {
    fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (integer, fraction) = match unsigned.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (unsigned, None),
        };
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        let has_digits = !integer.is_empty() || fraction.is_some_and(|f| !f.is_empty());
        if !has_digits || !all_digits(integer) || !fraction.is_none_or(all_digits) {
            return None;
        }
        Some(Self {
            negative,
            integer: integer.trim_start_matches('0').to_owned(),
            fraction: fraction.map(str::to_owned),
        })
    }

    /// Applies the display rules from the module docs.
    fn format(self) -> String {
        let Some(fraction) = self.fraction.as_deref() else {
            return self.to_text();
        };
        if !self.integer.is_empty() {
            if self.integer.len() > HUGE_INTEGER_DIGITS {
                return self.to_scientific();
            }
            return self.rounded(DECIMALS_AT_LEAST_ONE).to_text();
        }
        match fraction.bytes().position(|digit| digit != b'0') {
            None => self.rounded(DECIMALS_AT_LEAST_ONE).to_text(),
            Some(leading_zeros) if leading_zeros >= TINY_LEADING_ZEROS => self.to_scientific(),
            Some(leading_zeros) => {
                let decimals = leading_zeros + SIGNIFICANT_DIGITS_BELOW_ONE;
                self.rounded(decimals)
                    .without_trailing_zeros(DECIMALS_AT_LEAST_ONE)
                    .to_text()
            }
        }
    }

    fn to_scientific(&self) -> String {
        let text = self.to_text().replace(',', "");
        text.parse()
            .map(format_scientific)
            .unwrap_or_else(|_| self.to_text())
    }

    /// Rounds half away from zero to exactly `decimals` fraction digits.
    fn rounded(&self, decimals: usize) -> Self {
        let fraction = self.fraction.as_deref().unwrap_or("");
        let round_up = fraction
            .as_bytes()
            .get(decimals)
            .is_some_and(|d| *d >= b'5');
        let mut digits: Vec<u8> = self.integer.bytes().collect();
        digits.extend(fraction.bytes().take(decimals));
        digits.resize(self.integer.len() + decimals, b'0');
        if round_up && increment_decimal_digits(&mut digits) {
            digits.insert(0, b'1');
        }
        let split = digits.len() - decimals;
        let (integer, fraction) = digits.split_at(split);
        Self {
            negative: self.negative,
            integer: String::from_utf8_lossy(integer)
                .trim_start_matches('0')
                .to_owned(),
            fraction: Some(String::from_utf8_lossy(fraction).into_owned()),
        }
    }

    /// Drops trailing fraction zeros, keeping at least `min_decimals` digits.
    fn without_trailing_zeros(mut self, min_decimals: usize) -> Self {
        if let Some(fraction) = self.fraction.as_mut() {
            let significant = fraction.trim_end_matches('0').len();
            fraction.truncate(significant.max(min_decimals).min(fraction.len()));
        }
        self
    }

    fn is_zero(&self) -> bool {
        self.integer.is_empty()
            && self
                .fraction
                .as_deref()
                .unwrap_or("")
                .bytes()
                .all(|d| d == b'0')
    }

    /// The number with thousands separators, `0` for an empty integer part, no `-0`.
    fn to_text(&self) -> String {
        let sign = if self.negative && !self.is_zero() {
            "-"
        } else {
            ""
        };
        let integer = if self.integer.is_empty() {
            "0".to_owned()
        } else {
            group_thousands(&self.integer)
        };
        match &self.fraction {
            Some(fraction) if !fraction.is_empty() => format!("{sign}{integer}.{fraction}"),
            _ => format!("{sign}{integer}"),
        }
    }
}

/// Adds one to the decimal number in `digits` (ASCII digits); returns whether it overflowed
/// (all nines became zeros).
fn increment_decimal_digits(digits: &mut [u8]) -> bool {
    for digit in digits.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return false;
        }
    }
    true
}

/// What a document shows of one result table: display text per cell, which columns are
/// numeric (right-aligned), and how many rows did not fit.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePreview {
    pub headers: Vec<String>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<DisplayCell>>,
    /// Rows of the table beyond the preview's row limit.
    pub hidden_rows: usize,
}

/// A cell as a document shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum DisplayCell {
    Null,
    Text(String),
}

/// How every document spells SQL NULL.
pub const NULL_TEXT: &str = "NULL";

impl TablePreview {
    /// The first `max_rows` rows of `table`, numbers formatted for reading.
    pub fn new(table: &Table, max_rows: usize) -> Self {
        let numeric: Vec<bool> = table.columns.iter().map(|c| c.is_numeric()).collect();
        let rows = table
            .rows
            .iter()
            .take(max_rows)
            .map(|row| display_row(row, &numeric))
            .collect();
        Self {
            headers: table.columns.iter().map(|c| c.name.clone()).collect(),
            numeric,
            rows,
            hidden_rows: table.rows.len().saturating_sub(max_rows),
        }
    }

    /// [`TablePreview::new`] for a result of `total_rows` rows of which `table` holds
    /// the first ones.
    pub fn of_result(table: &Table, max_rows: usize, total_rows: usize) -> Self {
        let mut preview = Self::new(table, max_rows);
        preview.hidden_rows = total_rows.saturating_sub(preview.rows.len());
        preview
    }
}

fn display_row(row: &[Option<String>], numeric: &[bool]) -> Vec<DisplayCell> {
    row.iter()
        .enumerate()
        .map(|(index, cell)| match cell {
            None => DisplayCell::Null,
            Some(text) if numeric.get(index).copied().unwrap_or(false) => {
                DisplayCell::Text(format_number(text).unwrap_or_else(|| text.clone()))
            }
            Some(text) => DisplayCell::Text(text.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(text: &str) -> String {
        format_number(text).unwrap_or_else(|| panic!("{text:?} should be a number"))
    }

    #[test]
    fn integers_stay_exact_with_separators() {
        assert_eq!(formatted("0"), "0");
        assert_eq!(formatted("7"), "7");
        assert_eq!(formatted("999"), "999");
        assert_eq!(formatted("1000"), "1,000");
        assert_eq!(formatted("1234567"), "1,234,567");
        assert_eq!(formatted("-1234567"), "-1,234,567");
        assert_eq!(
            formatted("9223372036854775807"),
            "9,223,372,036,854,775,807"
        );
        assert_eq!(formatted("007"), "7");
    }

    #[test]
    fn magnitudes_of_at_least_one_get_two_decimals() {
        assert_eq!(formatted("1234.5"), "1,234.50");
        assert_eq!(formatted("185.6400"), "185.64");
        assert_eq!(formatted("2.345"), "2.35");
        assert_eq!(formatted("-2.345"), "-2.35");
        assert_eq!(formatted("999.995"), "1,000.00");
        assert_eq!(formatted("1.0"), "1.00");
        // More digits than an f64 holds are still rounded exactly.
        assert_eq!(
            formatted("12345678901234567.125"),
            "12,345,678,901,234,567.13"
        );
    }

    #[test]
    fn magnitudes_below_one_get_four_significant_digits() {
        assert_eq!(formatted("0.123456"), "0.1235");
        assert_eq!(formatted("0.0123456"), "0.01235");
        assert_eq!(formatted("-0.000123456"), "-0.0001235");
        assert_eq!(formatted("0.5"), "0.50");
        assert_eq!(formatted("0.05"), "0.05");
        assert_eq!(formatted("0.1000"), "0.10");
        assert_eq!(formatted("0.99996"), "1.00");
        assert_eq!(formatted("0.000"), "0.00");
        assert_eq!(formatted("-0.0"), "0.00");
    }

    #[test]
    fn only_tiny_and_huge_values_use_scientific_notation() {
        assert_eq!(formatted("0.00000012345"), "1.235e-7");
        assert_eq!(formatted("1.5e-07"), "1.5e-7");
        assert_eq!(formatted("1.5e-05"), "0.000015");
        assert_eq!(formatted("1e+20"), "100,000,000,000,000,000,000");
        assert_eq!(formatted("2.5e+30"), "2.5e30");
        assert_eq!(formatted("-1.23456789e+22"), "-1.235e22");
        assert_eq!(formatted("6.02e+23"), "6.02e23");
    }

    #[test]
    fn special_values_and_non_numbers() {
        assert_eq!(formatted("NaN"), "NaN");
        assert_eq!(formatted("Infinity"), "Infinity");
        assert_eq!(formatted("-Infinity"), "-Infinity");
        for text in ["", "-", ".", "abc", "1,234", "1.2.3", "2024-01-02", "inf"] {
            assert_eq!(format_number(text), None, "{text:?}");
        }
    }

    #[test]
    fn counts_and_fixed_decimals() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_integer(-1_234), "-1,234");
        assert_eq!(format_integer(i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(rows_phrase(1), "1 row");
        assert_eq!(rows_phrase(1234), "1,234 rows");
        assert_eq!(more_rows_phrase(1), "1 more row");
        assert_eq!(more_rows_phrase(1234), "1,234 more rows");
        assert_eq!(format_fixed(1234.5, 1), "1,234.5");
        assert_eq!(format_fixed(-0.0001, 2), "0.00");
        assert_eq!(format_fixed(-1500.0, 0), "-1,500");
    }

    #[test]
    fn preview_formats_only_numeric_columns_and_counts_hidden_rows() {
        let table = Table::from_text(
            &[("symbol", "text"), ("volume", "bigint")],
            &[
                &[Some("1234"), Some("1234")],
                &[Some("B"), None],
                &[Some("C"), Some("1")],
            ],
        );
        let preview = TablePreview::new(&table, 2);
        assert_eq!(preview.numeric, [false, true]);
        assert_eq!(
            preview.rows,
            [
                vec![
                    DisplayCell::Text("1234".into()),
                    DisplayCell::Text("1,234".into())
                ],
                vec![DisplayCell::Text("B".into()), DisplayCell::Null],
            ]
        );
        assert_eq!(preview.hidden_rows, 1);
    }
}
