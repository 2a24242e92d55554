//! Weekly and monthly OHLCV buckets computed from a file's parsed bars, exactly as the
//! aggregates' SQL computes them (`src/db/storage/aggregates.rs`), so that an ingest batch
//! can write the buckets of the symbols it replaces in the same transaction as their
//! prices instead of leaving them to a refresh that reads every row again.
//!
//! "Exactly" means byte for byte: `open`/`close` are the first and last day's values
//! (NULL kept), `high`/`low` the largest and smallest non-NULL values, `volume` the exact
//! `numeric` sum, and `avg_close` is the SQL's `sum(close ORDER BY day) / count(*)`: the
//! closes added as doubles in day order, then divided by the row count, the same IEEE
//! operations in the same order here as in the server.
//!
//! Whatever falls outside what this reproduces exactly (`-0.0` among highs or lows,
//! whose order-dependent ties SQL resolves by scan order) makes [`compute`] return
//! `None`: the caller then leaves those symbols to the SQL refresh.

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
                    out.push(acc.finish(start));
                }
                let mut acc = Accumulator::new(bar);
                acc.add(bar)?;
                current = Some((bucket, acc));
            }
        }
    }
    if let Some((start, acc)) = current {
        out.push(acc.finish(start));
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
    /// The closes added in day order.
    close_sum: f64,
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
            close_sum: 0.0,
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
        self.close_sum += bar.close;
        self.rows += 1;
        Some(())
    }

    fn finish(self, bucket: NaiveDate) -> BucketRow {
        BucketRow {
            bucket,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            avg_close: self.close_sum / self.rows as f64,
            trading_days: self.rows,
            volume_days: self.volume_days,
            max_volume: self.max_volume,
        }
    }
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
    fn average_close_adds_in_day_order() {
        // SELECT sum(x ORDER BY d) / count(*) FROM (VALUES (1, 0.1::float8), (2, 0.2), (3, 0.3)) t(d, x)
        // → 0.20000000000000004 ((0.1 + 0.2) + 0.3 = 0.6000000000000001); added in the
        // other order, 0.3 + 0.2 + 0.1 = 0.6 would give 0.2.
        let bars = [
            bar("2020-01-06", None, 0.1, None),
            bar("2020-01-07", None, 0.2, None),
            bar("2020-01-08", None, 0.3, None),
        ];
        let mut reversed = bars.to_vec();
        reversed.reverse();
        for input in [&bars[..], &reversed[..]] {
            let week = &compute(Aggregate::Weekly, input).unwrap()[0];
            assert_eq!(week.avg_close, 0.200_000_000_000_000_04);
        }
        assert_ne!((0.3 + 0.2 + 0.1) / 3.0, 0.200_000_000_000_000_04);
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
}
