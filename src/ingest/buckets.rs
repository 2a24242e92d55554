//! Weekly and monthly OHLCV buckets computed from a file's parsed bars, exactly as the
//! aggregates' SQL computes them (`src/db/storage/aggregates.rs`), so that an ingest batch
//! can write the buckets of the symbols it replaces in the same transaction as their
//! prices instead of leaving them to a refresh that reads every row again.
//!
//! "Exactly" means byte for byte: `open`/`close` are the first and last day's values
//! (NULL kept), `high`/`low` the largest and smallest non-NULL values, `volume` the exact
//! `numeric` sum, and `avg_close` is what PostgreSQL's `avg(close::numeric)::float8`
//! gives. That last one is emulated step by step:
//!
//! 1. `float8 → numeric` prints the double with 15 significant digits (`%.15g`), so
//!    each close becomes a decimal `m × 10^k` with `m < 10^15`;
//! 2. the sum of those decimals is exact (here an `i128` at the largest scale among
//!    them, which is also the `numeric` sum's display scale);
//! 3. `numeric / count` rounds (half away from zero) at the scale `select_div_scale`
//!    picks: at least 16 significant digits, at least the sum's scale;
//! 4. `numeric → float8` reads that decimal text with `strtod`, i.e. the nearest double,
//!    which is what Rust's `str::parse::<f64>` gives as well.
//!
//! Whatever falls outside what this emulates exactly (a sum beyond `i128`, `-0.0` among
//! highs or lows, whose order-dependent ties SQL resolves by scan order) makes
//! [`compute`] return `None`: the caller then leaves those symbols to the SQL refresh.

use std::io::Write as _;

use chrono::NaiveDate;

use super::parse::Bar;
use crate::db::copy;
use crate::db::storage::Aggregate;

/// One row of `prices_weekly` / `prices_monthly` (after `symbol`).
#[derive(Debug, Clone, PartialEq)]
pub struct BucketRow {
    pub bucket: NaiveDate,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: f64,
    /// `sum(volume)`: a `numeric` in the table.
    pub volume: Option<i128>,
    pub avg_close: f64,
    pub trading_days: i64,
    pub volume_days: i64,
    pub max_volume: Option<i64>,
}

/// The buckets of one symbol whose rows are exactly `bars` (in any order, days unique),
/// in bucket order; `None` when they cannot be computed exactly here.
pub fn compute(aggregate: Aggregate, bars: &[Bar]) -> Option<Vec<BucketRow>> {
    let sorted = bars.windows(2).all(|w| w[0].day < w[1].day);
    let mut order: Vec<&Bar> = bars.iter().collect();
    if !sorted {
        order.sort_by_key(|b| b.day);
    }
    let mut out = Vec::new();
    let mut current: Option<(NaiveDate, Accumulator)> = None;
    for bar in order {
        let bucket = aggregate.bucket_start(bar.day);
        match &mut current {
            Some((start, acc)) if *start == bucket => acc.add(bar)?,
            _ => {
                if let Some((start, acc)) = current.take() {
                    out.push(acc.finish(start)?);
                }
                let mut acc = Accumulator::new(bar);
                acc.add(bar)?;
                current = Some((bucket, acc));
            }
        }
    }
    if let Some((start, acc)) = current {
        out.push(acc.finish(start)?);
    }
    Some(out)
}

/// One bucket being summed, rows arriving in day order.
struct Accumulator {
    open: Option<f64>,
    high: Option<f64>,
    low: Option<f64>,
    close: f64,
    volume: Option<i128>,
    close_sum: ExactSum,
    rows: i64,
    volume_days: i64,
    max_volume: Option<i64>,
}

impl Accumulator {
    fn new(first: &Bar) -> Accumulator {
        Accumulator {
            open: first.open,
            high: None,
            low: None,
            close: first.close,
            volume: None,
            close_sum: ExactSum::default(),
            rows: 0,
            volume_days: 0,
            max_volume: None,
        }
    }

    fn add(&mut self, bar: &Bar) -> Option<()> {
        for (slot, value, keep_larger) in [
            (&mut self.high, bar.high, true),
            (&mut self.low, bar.low, false),
        ] {
            if let Some(v) = value {
                if v == 0.0 && v.is_sign_negative() {
                    return None;
                }
                *slot = Some(match *slot {
                    Some(s) if (keep_larger && s >= v) || (!keep_larger && s <= v) => s,
                    _ => v,
                });
            }
        }
        self.close = bar.close;
        if let Some(v) = bar.volume {
            self.volume = Some(self.volume.unwrap_or(0) + i128::from(v));
            self.volume_days += 1;
            self.max_volume = Some(self.max_volume.map_or(v, |m| m.max(v)));
        }
        self.close_sum.add(float8_numeric(bar.close)?)?;
        self.rows += 1;
        Some(())
    }

    fn finish(self, bucket: NaiveDate) -> Option<BucketRow> {
        Some(BucketRow {
            bucket,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            avg_close: self.close_sum.average(self.rows)?,
            trading_days: self.rows,
            volume_days: self.volume_days,
            max_volume: self.max_volume,
        })
    }
}

/// A decimal `mantissa × 10^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    /// At most 17 significant digits (a double's shortest form), so an `i64` holds it.
    mantissa: i64,
    exponent: i32,
}

impl Decimal {
    /// Digits after the decimal point PostgreSQL keeps for it (its `dscale`).
    fn scale(self) -> u32 {
        u32::try_from(-self.exponent).unwrap_or(0)
    }
}

/// PostgreSQL's `float8::numeric`: the value printed with `%.15g` (15 significant
/// digits, trailing zeros dropped). `None` for non-finite values.
fn float8_numeric(x: f64) -> Option<Decimal> {
    if !x.is_finite() {
        return None;
    }
    // A subnormal's ulp is no longer small against its 15th digit.
    if x != 0.0 && !x.is_normal() {
        return float8_numeric_exact(x);
    }
    // Shortest digits that read back as `x` (at most 17): when there are at most 15 of
    // them they are also `x` rounded to 15 digits (they are within half an ulp of `x`,
    // far less than half a unit of the 15th digit).
    let mut shortest = ryu::Buffer::new();
    let d = parse_decimal(shortest.format_finite(x))?;
    let digits = significant_digits(i128::from(d.mantissa));
    if digits <= 15 {
        return Some(d);
    }
    // Longer ones round to 15 digits on the same side as `x` itself, except when their
    // tail is exactly half a unit: the tie point between two 15-digit decimals has 16
    // digits, so if it lay strictly between the shortest digits and `x` it would be a
    // shorter or closer decimal reading back as `x`, which the shortest digits are not.
    // (Formatting every close exactly was a fifth of the ingest's CPU.)
    let unit = 10u64.pow(digits - 15);
    let magnitude = d.mantissa.unsigned_abs();
    let (kept, tail) = (magnitude / unit, magnitude % unit);
    if tail * 2 == unit {
        return float8_numeric_exact(x);
    }
    let mut rounded = kept + u64::from(tail * 2 > unit);
    let mut exponent = d.exponent + i32::try_from(digits - 15).ok()?;
    while rounded.is_multiple_of(10) {
        rounded /= 10;
        exponent += 1;
    }
    let rounded = i64::try_from(rounded).ok()?;
    Some(Decimal {
        mantissa: if d.mantissa < 0 { -rounded } else { rounded },
        exponent,
    })
}

/// [`float8_numeric`] by formatting `x` exactly to 15 significant digits.
fn float8_numeric_exact(x: f64) -> Option<Decimal> {
    let mut buf = [0u8; 40];
    let mut cursor = &mut buf[..];
    write!(cursor, "{x:.14e}").ok()?;
    let written = 40 - cursor.len();
    parse_decimal(std::str::from_utf8(&buf[..written]).ok()?)
}

/// Read `-12.345e-6` style text into a decimal without trailing zeros in the mantissa.
/// Runs once per close of every loaded row, so it works in `u64` (the digits of a
/// double fit; more fail the checked arithmetic and leave the symbol to SQL): `i128`
/// division is a library call and made this the ingest's hottest loop.
fn parse_decimal(text: &str) -> Option<Decimal> {
    let (number, exp) = match text.split_once(['e', 'E']) {
        Some((n, e)) => (n, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let mut mantissa: u64 = 0;
    let mut exponent = exp;
    let mut after_point = false;
    for c in number.bytes() {
        match c {
            b'.' => after_point = true,
            b'0'..=b'9' => {
                mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                if after_point {
                    exponent -= 1;
                }
            }
            _ => return None,
        }
    }
    if mantissa == 0 {
        return Some(Decimal {
            mantissa: 0,
            exponent: 0,
        });
    }
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    let mantissa = i64::try_from(mantissa).ok()?;
    Some(Decimal {
        mantissa: if negative { -mantissa } else { mantissa },
        exponent,
    })
}

fn significant_digits(v: i128) -> u32 {
    v.unsigned_abs().checked_ilog10().map_or(1, |l| l + 1)
}

/// `10^n` as an `i128`, from a table: it is asked for once per row.
fn pow10(n: u32) -> Option<i128> {
    const POWERS: [i128; 39] = {
        let mut table = [1i128; 39];
        let mut i = 1;
        while i < 39 {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
        table
    };
    POWERS.get(n as usize).copied()
}

/// An exact `numeric` sum: `value × 10^-scale`, `scale` the largest of the addends'.
#[derive(Debug, Default, Clone, Copy)]
struct ExactSum {
    value: i128,
    scale: u32,
}

impl ExactSum {
    fn add(&mut self, d: Decimal) -> Option<()> {
        let scale = d.scale();
        if scale > self.scale {
            self.value = self.value.checked_mul(pow10(scale - self.scale)?)?;
            self.scale = scale;
        }
        // `d` at the sum's scale: its exponent plus the scale is never negative.
        let shift = u32::try_from(i64::from(d.exponent) + i64::from(self.scale)).ok()?;
        let term = i128::from(d.mantissa).checked_mul(pow10(shift)?)?;
        self.value = self.value.checked_add(term)?;
        Some(())
    }

    /// `(sum / n)::float8` as PostgreSQL computes `avg(numeric)::float8`.
    fn average(self, n: i64) -> Option<f64> {
        if n <= 0 {
            return None;
        }
        let n = i128::from(n);
        let rscale = div_scale(self.value, self.scale, n)?;
        let numerator = self.value.checked_mul(pow10(rscale - self.scale)?)?;
        let (mut q, r) = (numerator / n, numerator % n);
        // Half away from zero, like `round_var`.
        if 2 * r.abs() >= n {
            q += numerator.signum();
        }
        decimal_to_f64(q, rscale)
    }
}

/// NBASE digits of PostgreSQL's `numeric`: four decimal digits each.
const DEC_DIGITS: i32 = 4;

/// `select_div_scale` of PostgreSQL's numeric.c for `dividend × 10^-scale / divisor`
/// (a positive integer of scale 0): enough digits for 16 significant ones
/// (`NUMERIC_MIN_SIG_DIGITS`), never less than either input's display scale.
fn div_scale(dividend: i128, scale: u32, divisor: i128) -> Option<u32> {
    let (weight1, first1) = weight_and_first_digit(dividend, scale)?;
    let (weight2, first2) = weight_and_first_digit(divisor, 0)?;
    let mut qweight = weight1 - weight2;
    if first1 <= first2 {
        qweight -= 1;
    }
    let rscale = (16 - qweight * DEC_DIGITS)
        .max(i32::try_from(scale).ok()?)
        .clamp(0, 1000);
    u32::try_from(rscale).ok()
}

/// The weight (power of 10000) of the leading NBASE digit of `value × 10^-scale`, and
/// that digit; (0, 0) for zero, as `select_div_scale` treats it.
fn weight_and_first_digit(value: i128, scale: u32) -> Option<(i32, i128)> {
    let value = value.checked_abs()?;
    if value == 0 {
        return Some((0, 0));
    }
    let exponent10 =
        i32::try_from(significant_digits(value)).ok()? - 1 - i32::try_from(scale).ok()?;
    let weight = exponent10.div_euclid(DEC_DIGITS);
    // value × 10^-scale / 10000^weight, truncated: the leading NBASE digit.
    let shift = weight * DEC_DIGITS + i32::try_from(scale).ok()?;
    let first = if shift >= 0 {
        value / pow10(shift.unsigned_abs())?
    } else {
        value.checked_mul(pow10(shift.unsigned_abs())?)?
    };
    Some((weight, first))
}

/// `q × 10^-scale` read the way `float8in` reads `numeric_out`'s text: nearest double.
fn decimal_to_f64(q: i128, scale: u32) -> Option<f64> {
    let digits = q.unsigned_abs().to_string();
    let scale = scale as usize;
    let mut text = String::with_capacity(digits.len() + scale + 3);
    if q < 0 {
        text.push('-');
    }
    if digits.len() > scale {
        text.push_str(&digits[..digits.len() - scale]);
        text.push('.');
        text.push_str(&digits[digits.len() - scale..]);
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', scale - digits.len()));
        text.push_str(&digits);
    }
    text.parse().ok()
}

/// One bucket row in PostgreSQL's binary COPY format, columns in the aggregate
/// tables' order.
pub fn encode_binary_row(buf: &mut Vec<u8>, symbol: &[u8], row: &BucketRow) {
    copy::row(buf, 11);
    copy::text(buf, symbol);
    copy::date(buf, row.bucket);
    for value in [row.open, row.high, row.low, Some(row.close)] {
        copy::float8(buf, value);
    }
    match row.volume {
        Some(v) => push_numeric(buf, v),
        None => copy::null(buf),
    }
    copy::float8(buf, Some(row.avg_close));
    for value in [
        Some(row.trading_days),
        Some(row.volume_days),
        row.max_volume,
    ] {
        copy::int8(buf, value);
    }
}

/// An integer as a binary `numeric`: NBASE (10000) digits, most significant first,
/// trailing zero digits left out (the weight places the rest), display scale 0.
fn push_numeric(buf: &mut Vec<u8>, value: i128) {
    let mut magnitude = value.unsigned_abs();
    let mut digits = Vec::new(); // least significant first
    while magnitude > 0 {
        digits.push((magnitude % 10_000) as i16);
        magnitude /= 10_000;
    }
    let weight = digits.len().saturating_sub(1) as i16;
    let trailing_zeros = digits.iter().take_while(|&&d| d == 0).count();
    let digits = &digits[trailing_zeros..];
    let sign: u16 = if value < 0 { 0x4000 } else { 0 };
    buf.extend_from_slice(&((8 + 2 * digits.len()) as i32).to_be_bytes());
    buf.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    buf.extend_from_slice(&weight.to_be_bytes());
    buf.extend_from_slice(&sign.to_be_bytes());
    buf.extend_from_slice(&0i16.to_be_bytes());
    for d in digits.iter().rev() {
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn bar(day: &str, open: Option<f64>, close: f64, volume: Option<i64>) -> Bar {
        Bar {
            day: d(day),
            open,
            high: Some(close + 1.0),
            low: Some(close - 1.0),
            close,
            adj_close: Some(close),
            volume,
        }
    }

    #[test]
    fn float8_to_numeric_keeps_fifteen_digits_like_postgres() {
        let dec = |x: f64| {
            let d = float8_numeric(x).unwrap();
            (d.mantissa, d.exponent)
        };
        // SELECT (0.1::float8 + 0.2::float8)::numeric → 0.3
        assert_eq!(dec(0.1 + 0.2), (3, -1));
        // 123456789012.4375 is a tie at 15 digits: %.15g rounds it to even, …438.
        assert_eq!(dec(123_456_789_012.437_5), (123_456_789_012_438, -3));
        assert_eq!(dec(0.5133928656578064), (513_392_865_657_806, -15));
        assert_eq!(dec(1e-5), (1, -5));
        assert_eq!(dec(1_234_567.0), (1_234_567, 0));
        assert_eq!(dec(1.5e20), (15, 19));
    }

    #[test]
    fn averages_round_like_numeric_division() {
        let avg = |closes: &[f64]| {
            let mut sum = ExactSum::default();
            for &c in closes {
                sum.add(float8_numeric(c).unwrap()).unwrap();
            }
            sum.average(closes.len() as i64).unwrap()
        };
        // avg(1.1, 2.2, 3.3) = 2.2000000000000000 → 2.2
        assert_eq!(avg(&[1.1, 2.2, 3.3]), 2.2);
        // 12346.178 / 2 at scale 16 → 6173.089
        assert_eq!(avg(&[12345.678, 0.5]), 6173.089);
        // 2 / 3: the count's first digit is larger, so 20 digits: 0.66666666666666666667.
        // SELECT avg(x::numeric)::float8 FROM (VALUES (1::float8), (1), (0)) t(x) → 0.6666666666666666
        assert_eq!(avg(&[1.0, 1.0, 0.0]), 0.666_666_666_666_666_6);
        assert_eq!(div_scale(2, 0, 3), Some(20));
        assert_eq!(div_scale(12_346_178, 3, 2), Some(16));
        // 10000 / 3: sum weight 1 (first digit 1), count weight 0 (3): 16 - 0 = 16.
        assert_eq!(div_scale(10_000, 0, 3), Some(16));
        // 99 / 10000: weights 0 and 1, first digits 99 > 1: 16 - (0 - 1) * 4 = 20,
        // as `SELECT scale(99::numeric / 10000)` says.
        assert_eq!(div_scale(99, 0, 10_000), Some(20));
    }

    #[test]
    fn buckets_follow_first_last_and_nulls() {
        let bars = [
            bar("2020-01-02", None, 10.0, Some(100)),
            bar("2020-01-03", Some(11.0), 12.0, None),
            bar("2020-01-06", Some(13.0), 14.0, Some(5)),
        ];
        let weeks = compute(Aggregate::Weekly, &bars).unwrap();
        assert_eq!(weeks.len(), 2);
        assert_eq!(weeks[0].bucket, d("2019-12-30"));
        assert_eq!(weeks[0].open, None);
        assert_eq!(weeks[0].close, 12.0);
        assert_eq!((weeks[0].high, weeks[0].low), (Some(13.0), Some(9.0)));
        assert_eq!(weeks[0].volume, Some(100));
        assert_eq!((weeks[0].trading_days, weeks[0].volume_days), (2, 1));
        assert_eq!(weeks[0].avg_close, 11.0);
        assert_eq!(weeks[1].bucket, d("2020-01-06"));
        // Out of order input gives the same buckets.
        let mut shuffled = bars.to_vec();
        shuffled.reverse();
        assert_eq!(compute(Aggregate::Weekly, &shuffled).unwrap(), weeks);
        let months = compute(Aggregate::Monthly, &bars).unwrap();
        assert_eq!(months.len(), 1);
        assert_eq!(months[0].bucket, d("2020-01-01"));
        assert_eq!(months[0].close, 14.0);
        assert_eq!(months[0].max_volume, Some(100));
    }

    #[test]
    fn negative_zero_is_left_to_sql() {
        let mut b = bar("2020-01-02", None, 1.0, None);
        b.low = Some(-0.0);
        assert_eq!(compute(Aggregate::Weekly, &[b]), None);
    }

    #[test]
    fn numeric_binary_layout() {
        let mut buf = Vec::new();
        push_numeric(&mut buf, 12_300_000_000);
        // 12300000000 = 123 | 0000 | 0000 → one digit 123, weight 2.
        assert_eq!(buf, [0, 0, 0, 10, 0, 1, 0, 2, 0, 0, 0, 0, 0, 123]);
        buf.clear();
        push_numeric(&mut buf, 0);
        assert_eq!(buf, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
    #[test]
    fn fifteen_digits_from_the_shortest_form_equal_exact_formatting() {
        // Doubles of every kind a price file holds: float32-derived closes (the Kaggle
        // files' 20.93000030517578), short decimals, random bit patterns, ties.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for i in 0..400_000u64 {
            let r = next();
            let x = match i % 4 {
                0 => f64::from(f32::from_bits((r >> 32) as u32)),
                1 => (r % 10_000_000) as f64 / 10f64.powi((r % 9) as i32),
                2 => f64::from_bits(r),
                _ => (r % 1_000_000_000_000_000) as f64 * 10f64.powi((r % 30) as i32 - 20) + 0.5,
            };
            if !x.is_finite() {
                continue;
            }
            assert_eq!(
                float8_numeric(x),
                float8_numeric_exact(x),
                "{x:e} ({:#x})",
                x.to_bits()
            );
            checked += 1;
        }
        assert!(checked > 350_000);
        for x in [
            1.0000000000000005,
            0.1 + 0.2,
            123456789012345.5,
            2.5e-300,
            f64::from_bits(0x44b5_2d02_c7e1_4af6),
        ] {
            assert_eq!(float8_numeric(x), float8_numeric_exact(x), "{x:e}");
        }
    }
}
