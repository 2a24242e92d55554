//! The per-symbol price process: daily OHLC bars, volume and dividend-adjusted
//! closes that look like Yahoo Finance data.
//!
//! Closes follow geometric Brownian motion with a per-symbol drift and
//! volatility; the open gaps away from the previous close, and the high/low
//! extend beyond the open/close, so `low <= open, close <= high` always holds.
//! Quotes are rounded to a tick (cents, or 1/10,000 below $1) and then to
//! `f32`, because Yahoo stores prices as float32 and the Kaggle files print
//! them widened to float64 (`248.72000122070312`). Both roundings are
//! monotone, so they keep the bar consistent.
//!
//! Some symbols pay quarterly dividends. As in Yahoo's data, the price drops
//! by the dividend on the ex-date, and `Adj Close` is the close times the
//! product of `1 - yield` over every *later* ex-date: below the close early in
//! the history, equal to it from the last ex-date on. The dividend schedule is
//! drawn before the walk, so the adjustment factor is known while streaming.

use std::f64::consts::TAU;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::symbols::AssetKind;

/// Trading sessions per year, to turn annual drift/volatility into daily.
const SESSIONS_PER_YEAR: f64 = 252.0;

/// Trading sessions between quarterly ex-dividend dates.
const SESSIONS_PER_QUARTER: usize = 63;

/// Floor for the simulated price, so quotes never round to zero.
const MIN_PRICE: f64 = 0.05;

/// Lowest daily volume written (zero volume is one of the injected defects).
const MIN_VOLUME: f64 = 100.0;

/// Overnight gap as a share of the daily volatility.
const GAP_SHARE_OF_VOLATILITY: f64 = 0.25;

/// High/low extension beyond open/close as a share of the daily volatility.
const RANGE_SHARE_OF_VOLATILITY: f64 = 0.6;

/// Log-volume spread from day to day.
const VOLUME_DAILY_SPREAD: f64 = 0.45;

/// Extra log-volume per standard deviation of the day's price move.
const VOLUME_MOVE_SENSITIVITY: f64 = 0.25;

/// Distributions of the per-symbol parameters for one kind of asset.
struct AssetProfile {
    /// Median and log-spread of the first price.
    start_price: (f64, f64),
    /// Clamp range of the first price.
    start_price_range: (f64, f64),
    /// Mean and standard deviation of the annual drift.
    annual_drift: (f64, f64),
    /// Median and log-spread of the annual volatility.
    annual_volatility: (f64, f64),
    /// Clamp range of the annual volatility.
    annual_volatility_range: (f64, f64),
    /// Median and log-spread of the typical daily volume.
    volume_level: (f64, f64),
    /// Probability that the symbol pays quarterly dividends.
    dividend_probability: f64,
    /// Range of the quarterly dividend yield.
    quarterly_yield: (f64, f64),
}

const STOCK_PROFILE: AssetProfile = AssetProfile {
    start_price: (25.0, 1.0),
    start_price_range: (1.0, 1_500.0),
    annual_drift: (0.06, 0.12),
    annual_volatility: (0.32, 0.4),
    annual_volatility_range: (0.1, 1.2),
    volume_level: (400_000.0, 1.4),
    dividend_probability: 0.45,
    quarterly_yield: (0.003, 0.01),
};

const ETF_PROFILE: AssetProfile = AssetProfile {
    start_price: (40.0, 0.6),
    start_price_range: (5.0, 500.0),
    annual_drift: (0.05, 0.06),
    annual_volatility: (0.17, 0.35),
    annual_volatility_range: (0.05, 0.6),
    volume_level: (80_000.0, 1.6),
    dividend_probability: 0.65,
    quarterly_yield: (0.003, 0.008),
};

/// One session's values, already rounded the way the files print them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyBar {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub adj_close: f64,
    pub volume: u64,
}

/// An ex-dividend date and the adjustment it implies for earlier rows.
#[derive(Debug, Clone, Copy)]
struct ExDividend {
    /// Row (0 = the symbol's first session) on which the price drops.
    row: usize,
    /// `1 - yield`: the share of the previous close kept on the ex-date.
    retained_share: f64,
    /// Product of `retained_share` over this and every later ex-date: the
    /// `Adj Close` factor of every row before this one.
    adjustment_before: f64,
}

/// Iterator over the daily bars of one symbol, oldest first.
pub struct PriceWalk {
    rng: ChaCha8Rng,
    normals: StandardNormal,
    previous_close: f64,
    daily_log_drift: f64,
    daily_volatility: f64,
    volume_level: f64,
    dividends: Vec<ExDividend>,
    next_dividend: usize,
    row: usize,
    rows: usize,
}

impl PriceWalk {
    /// A walk of `rows` sessions for an asset of `kind`; every parameter and
    /// every daily shock is drawn from `rng`, so the walk is a pure function
    /// of the generator's state.
    pub fn new(kind: AssetKind, rows: usize, mut rng: ChaCha8Rng) -> Self {
        let profile = match kind {
            AssetKind::Stock => &STOCK_PROFILE,
            AssetKind::Etf => &ETF_PROFILE,
        };
        let mut normals = StandardNormal::default();

        let (low, high) = profile.start_price_range;
        let start_price = lognormal(profile.start_price, &mut normals, &mut rng).clamp(low, high);
        let annual_drift =
            profile.annual_drift.0 + profile.annual_drift.1 * normals.sample(&mut rng);
        let (low, high) = profile.annual_volatility_range;
        let annual_volatility =
            lognormal(profile.annual_volatility, &mut normals, &mut rng).clamp(low, high);
        let volume_level = lognormal(profile.volume_level, &mut normals, &mut rng).max(MIN_VOLUME);
        let dividends = draw_dividends(profile, rows, &mut rng);

        let daily_volatility = annual_volatility / SESSIONS_PER_YEAR.sqrt();
        PriceWalk {
            rng,
            normals,
            previous_close: quote(start_price),
            daily_log_drift: annual_drift / SESSIONS_PER_YEAR
                - daily_volatility * daily_volatility / 2.0,
            daily_volatility,
            volume_level,
            dividends,
            next_dividend: 0,
            row: 0,
            rows,
        }
    }
}

impl Iterator for PriceWalk {
    type Item = DailyBar;

    fn next(&mut self) -> Option<DailyBar> {
        if self.row >= self.rows {
            return None;
        }
        let mut reference = self.previous_close;
        if let Some(dividend) = self.dividends.get(self.next_dividend) {
            if dividend.row == self.row {
                reference *= dividend.retained_share;
                self.next_dividend += 1;
            }
        }
        let adjustment = self
            .dividends
            .get(self.next_dividend)
            .map_or(1.0, |dividend| dividend.adjustment_before);

        let rng = &mut self.rng;
        let return_shock = self.normals.sample(rng);
        let gap_shock = self.normals.sample(rng);
        let high_shock = self.normals.sample(rng).abs();
        let low_shock = self.normals.sample(rng).abs();
        let volume_shock = self.normals.sample(rng);

        let sigma = self.daily_volatility;
        let close =
            (reference * (self.daily_log_drift + sigma * return_shock).exp()).max(MIN_PRICE);
        let open = (reference * (GAP_SHARE_OF_VOLATILITY * sigma * gap_shock).exp()).max(MIN_PRICE);
        let high = open.max(close) * (RANGE_SHARE_OF_VOLATILITY * sigma * high_shock).exp();
        let low = open.min(close) * (-RANGE_SHARE_OF_VOLATILITY * sigma * low_shock).exp();
        let volume = self.volume_level
            * (VOLUME_DAILY_SPREAD * volume_shock + VOLUME_MOVE_SENSITIVITY * return_shock.abs())
                .exp();

        let close = quote(close);
        self.previous_close = close;
        self.row += 1;
        Some(DailyBar {
            open: quote(open),
            high: quote(high),
            low: quote(low),
            close,
            adj_close: f64::from((close * adjustment) as f32),
            volume: volume.round().max(MIN_VOLUME) as u64,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.rows - self.row;
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for PriceWalk {}

/// Rounds a simulated price to the exchange tick, then to float32 precision.
fn quote(price: f64) -> f64 {
    let ticks_per_dollar = if price >= 1.0 { 100.0 } else { 10_000.0 };
    let on_tick = (price * ticks_per_dollar).round() / ticks_per_dollar;
    f64::from(on_tick as f32)
}

/// The quarterly ex-dividend schedule of a symbol with `rows` sessions
/// (empty for non-payers), with the adjustment factors precomputed.
fn draw_dividends(profile: &AssetProfile, rows: usize, rng: &mut ChaCha8Rng) -> Vec<ExDividend> {
    if !rng.random_bool(profile.dividend_probability) {
        return Vec::new();
    }
    let (low_yield, high_yield) = profile.quarterly_yield;
    let base_yield = rng.random_range(low_yield..high_yield);
    let first_row = rng.random_range(1..=SESSIONS_PER_QUARTER);
    let mut dividends: Vec<ExDividend> = (first_row..rows)
        .step_by(SESSIONS_PER_QUARTER)
        .map(|row| ExDividend {
            row,
            retained_share: 1.0 - base_yield * rng.random_range(0.9..1.1),
            adjustment_before: 1.0,
        })
        .collect();
    let mut adjustment = 1.0;
    for dividend in dividends.iter_mut().rev() {
        adjustment *= dividend.retained_share;
        dividend.adjustment_before = adjustment;
    }
    dividends
}

/// `exp(N(ln median, spread²))`.
fn lognormal(
    (median, log_spread): (f64, f64),
    normals: &mut StandardNormal,
    rng: &mut ChaCha8Rng,
) -> f64 {
    (median.ln() + log_spread * normals.sample(rng)).exp()
}

/// Standard normal variates by the Box–Muller transform, which yields them
/// in pairs; the second of each pair is kept for the next call. (`rand` 0.9
/// has no normal distribution without `rand_distr`.)
#[derive(Debug, Default)]
struct StandardNormal {
    spare: Option<f64>,
}

impl StandardNormal {
    fn sample(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        // `1 - u` lies in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt();
        let (sin, cos) = (TAU * rng.random::<f64>()).sin_cos();
        self.spare = Some(radius * sin);
        radius * cos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn walk(kind: AssetKind, rows: usize, seed: u64) -> Vec<DailyBar> {
        PriceWalk::new(kind, rows, ChaCha8Rng::seed_from_u64(seed)).collect()
    }

    #[test]
    fn bars_are_consistent_and_positive() {
        for seed in 0..40 {
            let kind = if seed % 3 == 0 {
                AssetKind::Etf
            } else {
                AssetKind::Stock
            };
            let bars = walk(kind, 800, seed);
            assert_eq!(bars.len(), 800);
            for bar in &bars {
                assert!(bar.low > 0.0 && bar.volume >= 100, "{bar:?}");
                assert!(bar.low <= bar.open.min(bar.close), "{bar:?}");
                assert!(bar.high >= bar.open.max(bar.close), "{bar:?}");
                assert!(bar.adj_close <= bar.close, "{bar:?}");
                assert_eq!(f64::from(bar.close as f32), bar.close);
            }
            let last = bars.last().expect("800 bars");
            assert_eq!(last.adj_close, last.close);
        }
    }

    #[test]
    fn dividend_payers_have_adjusted_history() {
        let adjusted = (0..40)
            .map(|seed| walk(AssetKind::Etf, 600, seed))
            .filter(|bars| bars[0].adj_close < bars[0].close)
            .count();
        assert!(adjusted > 10, "only {adjusted} of 40 ETFs pay dividends");
    }

    #[test]
    fn dividend_adjustment_compounds_backwards() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let profile = AssetProfile {
            dividend_probability: 1.0,
            ..STOCK_PROFILE
        };
        let dividends = draw_dividends(&profile, 300, &mut rng);
        assert!(dividends.len() >= 4);
        let last = dividends[dividends.len() - 1];
        assert_eq!(last.adjustment_before, last.retained_share);
        let expected_first: f64 = dividends.iter().map(|d| d.retained_share).product();
        assert!((dividends[0].adjustment_before - expected_first).abs() < 1e-12);
    }
}
