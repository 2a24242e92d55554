//! The daily indicators of one symbol, computed as templates/market/indicators.sql
//! defines them (its header lists the conventions), operation for operation where the
//! order decides the last bit: the recursive values (EMAs, MACD signal, Wilder's
//! averages) follow `analytics.smooth` exactly, so a series continued from a stored row
//! equals the same series computed from the first day, bit for bit. The rolling windows
//! are summed afresh for every day, oldest value first, for the same reason (a running
//! sum that adds and subtracts would depend on where it started).

use chrono::NaiveDate;

/// One day of a symbol's prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub day: NaiveDate,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: f64,
}

/// The stored row a series continues from: its day and its recursive values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seed {
    pub day: NaiveDate,
    pub seq: i32,
    pub ema12: f64,
    pub ema26: f64,
    pub macd_signal: f64,
    pub rsi_avg_gain: f64,
    pub rsi_avg_loss: f64,
    pub atr14: f64,
}

/// One row of `analytics.indicators`, in its column order (after symbol).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub day: NaiveDate,
    pub seq: i32,
    pub close: f64,
    pub simple_return: Option<f64>,
    pub log_return: Option<f64>,
    pub sma20: Option<f64>,
    pub sma50: Option<f64>,
    pub sma200: Option<f64>,
    pub ema12: Option<f64>,
    pub ema26: Option<f64>,
    pub macd: Option<f64>,
    pub macd_signal: Option<f64>,
    pub macd_hist: Option<f64>,
    pub rsi_avg_gain: Option<f64>,
    pub rsi_avg_loss: Option<f64>,
    pub rsi14: Option<f64>,
    pub bb_middle: Option<f64>,
    pub bb_upper: Option<f64>,
    pub bb_lower: Option<f64>,
    pub tr: Option<f64>,
    pub atr14: Option<f64>,
    pub vol20: Option<f64>,
}

/// Stored days a continued series reads before its first new day: the longest window
/// (sma200) needs 199.
pub const LOOKBACK: usize = 199;

/// Why a symbol's indicators cannot be computed (the SQL fails on the same input).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("close {close} on {day} is not positive: its return has no logarithm")]
pub struct NotPositive {
    pub day: NaiveDate,
    pub close: f64,
}

/// `analytics.smooth`: the first `warmup` inputs are averaged, then
/// `v = alpha * x + (1 - alpha) * v`; a missing input changes nothing.
#[derive(Debug, Clone, Copy)]
struct Smooth {
    alpha: f64,
    warmup: u32,
    seen: u32,
    sum: f64,
    value: Option<f64>,
}

impl Smooth {
    fn new(alpha: f64, warmup: u32) -> Smooth {
        Smooth {
            alpha,
            warmup,
            seen: 0,
            sum: 0.0,
            value: None,
        }
    }

    /// Continue from a stored value, as if warmed up.
    fn continue_from(&mut self, value: f64) {
        self.seen = self.warmup;
        self.value = Some(value);
    }

    /// An exponential moving average seeded with the first value (pandas'
    /// `ewm(span, adjust=False)`).
    fn ema(span: u32) -> Smooth {
        Smooth::new(2.0 / f64::from(span + 1), 1)
    }

    /// Wilder's smoothing: the mean of the first `period` values, then alpha 1/period.
    fn wilder(period: u32) -> Smooth {
        Smooth::new(1.0 / f64::from(period), period)
    }

    fn push(&mut self, x: Option<f64>) -> Option<f64> {
        let Some(x) = x else { return self.value };
        self.seen += 1;
        if self.seen < self.warmup {
            self.sum += x;
        } else if self.seen == self.warmup {
            self.value = Some((self.sum + x) / f64::from(self.warmup));
            self.sum = 0.0;
        } else {
            let v = self.value.expect("warmed up");
            self.value = Some(self.alpha * x + (1.0 - self.alpha) * v);
        }
        self.value
    }
}

/// The last `n` values up to `i`, when all `n` exist (`values[first..]` do).
fn window(values: &[f64], first: usize, i: usize, n: usize) -> Option<&[f64]> {
    let start = (i + 1).checked_sub(n).filter(|&s| s >= first)?;
    Some(&values[start..=i])
}

/// The sum of `w` in four interleaved lanes, then what is left: a fixed order that
/// depends only on the window's values (so a continued series sums exactly as the whole
/// one did), four times faster than one chain of dependent additions.
fn sum(w: &[f64]) -> f64 {
    sum_of(w, |x| x)
}

fn sum_of(w: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0; 4];
    let chunks = w.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (lane, &x) in lanes.iter_mut().zip(c) {
            *lane += f(x);
        }
    }
    rest.iter()
        .fold((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]), |t, &x| {
            t + f(x)
        })
}

fn mean(w: &[f64]) -> f64 {
    sum(w) / w.len() as f64
}

/// Standard deviation: population (`ddof` 0) or sample (`ddof` 1), two-pass.
fn stddev(w: &[f64], ddof: usize) -> f64 {
    let m = mean(w);
    (sum_of(w, |x| (x - m) * (x - m)) / (w.len() - ddof) as f64).sqrt()
}

/// The indicators of the days in `bars` (one symbol, ascending days) after `emit_after`
/// (all when None).
///
/// With a `seed`, `bars` holds the stored days up to the seed's day (at most
/// [`LOOKBACK`] of them, for the windows) and then the new days; the recursive values
/// continue from the seed. Without one, `bars` is the symbol's whole history.
///
/// # Errors
/// A close that is not positive (the daily prices never hold one: ingest rejects it).
pub fn compute(
    bars: &[Bar],
    seed: Option<&Seed>,
    emit_after: Option<NaiveDate>,
) -> Result<Vec<Row>, NotPositive> {
    if let Some(bad) = bars.iter().find(|b| b.close <= 0.0 || b.close.is_nan()) {
        return Err(NotPositive {
            day: bad.day,
            close: bad.close,
        });
    }
    let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    // From index 1 on (a first day has no return; its slot is never read).
    let log_returns: Vec<f64> = (0..bars.len())
        .map(|i| {
            if i == 0 {
                f64::NAN
            } else {
                (closes[i] / closes[i - 1]).ln()
            }
        })
        .collect();
    let mut ema12 = Smooth::ema(12);
    let mut ema26 = Smooth::ema(26);
    let mut signal = Smooth::ema(9);
    let mut gain = Smooth::wilder(14);
    let mut loss = Smooth::wilder(14);
    let mut atr = Smooth::wilder(14);
    let mut seq = 0;
    if let Some(s) = seed {
        ema12.continue_from(s.ema12);
        ema26.continue_from(s.ema26);
        signal.continue_from(s.macd_signal);
        gain.continue_from(s.rsi_avg_gain);
        loss.continue_from(s.rsi_avg_loss);
        atr.continue_from(s.atr14);
        seq = s.seq;
    }
    let first_new = seed.map(|s| s.day);
    let mut rows = Vec::new();
    for (i, bar) in bars.iter().enumerate() {
        if first_new.is_some_and(|d| bar.day <= d) {
            continue;
        }
        let prev = (i > 0).then(|| bars[i - 1].close);
        let close = bar.close;
        let (change_gain, change_loss, tr) = match prev {
            None => (None, None, bar.high.zip(bar.low).map(|(h, l)| h - l)),
            Some(p) => (
                Some(if close > p { close - p } else { 0.0 }),
                Some(if close < p { p - close } else { 0.0 }),
                // greatest() skips NULLs: NULL only when high and low both are.
                [
                    bar.high.zip(bar.low).map(|(h, l)| h - l),
                    bar.high.map(|h| (h - p).abs()),
                    bar.low.map(|l| (l - p).abs()),
                ]
                .into_iter()
                .flatten()
                .reduce(f64::max),
            ),
        };
        let ema12 = ema12.push(Some(close));
        let ema26 = ema26.push(Some(close));
        let macd = ema12.zip(ema26).map(|(a, b)| a - b);
        let macd_signal = signal.push(macd);
        let rsi_avg_gain = gain.push(change_gain);
        let rsi_avg_loss = loss.push(change_loss);
        let atr14 = atr.push(tr);
        seq += 1;
        if emit_after.is_some_and(|d| bar.day <= d) {
            continue;
        }
        let sma20 = window(&closes, 0, i, 20).map(mean);
        let close_std20 = window(&closes, 0, i, 20).map(|w| stddev(w, 0));
        rows.push(Row {
            day: bar.day,
            seq,
            close,
            simple_return: prev.map(|p| close / p - 1.0),
            log_return: (i > 0).then(|| log_returns[i]),
            sma20,
            sma50: window(&closes, 0, i, 50).map(mean),
            sma200: window(&closes, 0, i, 200).map(mean),
            ema12,
            ema26,
            macd,
            macd_signal,
            macd_hist: macd.zip(macd_signal).map(|(m, s)| m - s),
            rsi_avg_gain,
            rsi_avg_loss,
            rsi14: match (rsi_avg_gain, rsi_avg_loss) {
                // avg_loss = 0 (or -0): 100, as the CASE in the template.
                (_, Some(0.0)) => Some(100.0),
                (Some(g), Some(l)) => Some(100.0 - 100.0 / (1.0 + g / l)),
                _ => None,
            },
            bb_middle: sma20,
            bb_upper: sma20.zip(close_std20).map(|(m, s)| m + 2.0 * s),
            bb_lower: sma20.zip(close_std20).map(|(m, s)| m - 2.0 * s),
            tr,
            atr14,
            vol20: window(&log_returns, 1, i, 20).map(|w| stddev(w, 1) * 252f64.sqrt()),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed a stored `row` gives a later run, once its averages exist (what
    /// `native::continued` reads back from the table).
    fn seed_of(row: &Row) -> Option<Seed> {
        Some(Seed {
            day: row.day,
            seq: row.seq,
            ema12: row.ema12?,
            ema26: row.ema26?,
            macd_signal: row.macd_signal?,
            rsi_avg_gain: row.rsi_avg_gain?,
            rsi_avg_loss: row.rsi_avg_loss?,
            atr14: row.atr14?,
        })
    }

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Duration::days(n)
    }

    /// A wandering series with gaps in high/low.
    fn bars(n: usize) -> Vec<Bar> {
        (0..n)
            .map(|i| {
                let x = i as f64;
                let close = 50.0 + 10.0 * (x / 17.0).sin() + (x * 0.37).cos();
                Bar {
                    day: day(i as i64),
                    high: (i % 11 != 3).then_some(close + 1.0 + (x / 5.0).sin().abs()),
                    low: (i % 13 != 5).then_some(close - 1.0 - (x / 7.0).cos().abs()),
                    close,
                }
            })
            .collect()
    }

    #[test]
    fn hand_checked_first_days() {
        let b = [
            Bar {
                day: day(0),
                high: Some(11.0),
                low: Some(9.0),
                close: 10.0,
            },
            Bar {
                day: day(1),
                high: Some(12.0),
                low: Some(10.5),
                close: 11.0,
            },
            Bar {
                day: day(2),
                high: None,
                low: Some(9.0),
                close: 9.5,
            },
        ];
        let rows = compute(&b, None, None).unwrap();
        assert_eq!(rows[0].tr, Some(2.0));
        assert_eq!(rows[0].simple_return, None);
        assert_eq!(rows[0].ema12, Some(10.0));
        assert_eq!(rows[0].macd, Some(0.0));
        // tr = max(12 - 10.5, |12 - 10|, |10.5 - 10|) = 2; then only |9 - 11| = 2.
        assert_eq!(rows[1].tr, Some(2.0));
        assert_eq!(rows[2].tr, Some(2.0));
        assert_eq!(rows[1].simple_return, Some(11.0 / 10.0 - 1.0));
        assert_eq!(rows[1].log_return, Some((1.1f64).ln()));
        // ema12 = 2/13 * 11 + 11/13 * 10
        assert_eq!(
            rows[1].ema12,
            Some(2.0 / 13.0 * 11.0 + (1.0 - 2.0 / 13.0) * 10.0)
        );
        assert_eq!(rows[2].seq, 3);
        assert!(rows.iter().all(|r| r.sma20.is_none() && r.rsi14.is_none()));
    }

    #[test]
    fn windows_and_wilder_averages_start_when_full() {
        let b = bars(260);
        let rows = compute(&b, None, None).unwrap();
        let first =
            |f: fn(&Row) -> Option<f64>| rows.iter().position(|r| f(r).is_some()).unwrap() + 1;
        assert_eq!(first(|r| r.sma20), 20);
        assert_eq!(first(|r| r.sma200), 200);
        assert_eq!(first(|r| r.atr14), 14);
        assert_eq!(first(|r| r.rsi14), 15);
        assert_eq!(first(|r| r.vol20), 21);
        // sma20 on day 20 is the plain mean of the first 20 closes.
        let mean20: f64 = b[..20].iter().map(|b| b.close).sum::<f64>() / 20.0;
        assert!((rows[19].sma20.unwrap() - mean20).abs() < 1e-12);
        // Wilder: day 14's ATR is the mean of the first 14 true ranges.
        let tr14: f64 = rows[..14].iter().map(|r| r.tr.unwrap()).sum::<f64>() / 14.0;
        assert!((rows[13].atr14.unwrap() - tr14).abs() < 1e-12);
        let pop: f64 = (b[..20]
            .iter()
            .map(|b| (b.close - mean20).powi(2))
            .sum::<f64>()
            / 20.0)
            .sqrt();
        assert!((rows[19].bb_upper.unwrap() - (mean20 + 2.0 * pop)).abs() < 1e-12);
    }

    #[test]
    fn a_continued_series_equals_the_whole_one_bit_for_bit() {
        let b = bars(400);
        let whole = compute(&b, None, None).unwrap();
        for stored in [30, 199, 250, 399] {
            let seed = seed_of(&whole[stored - 1]).unwrap();
            let from = stored.saturating_sub(LOOKBACK);
            let continued = compute(&b[from..], Some(&seed), None).unwrap();
            assert_eq!(continued, whole[stored..], "continued after day {stored}");
        }
    }

    #[test]
    fn emit_after_keeps_only_later_days_of_a_recomputed_series() {
        let b = bars(40);
        let whole = compute(&b, None, None).unwrap();
        let later = compute(&b, None, Some(day(9))).unwrap();
        assert_eq!(later, whole[10..]);
    }

    #[test]
    fn a_close_that_is_not_positive_is_refused() {
        let mut b = bars(5);
        b[3].close = 0.0;
        assert_eq!(
            compute(&b, None, None),
            Err(NotPositive {
                day: day(3),
                close: 0.0
            })
        );
    }
}
