//! The catalogue of synthetic listings: tickers, stock/ETF split, listing
//! metadata and the first trading day of each symbol.
//!
//! Everything here is drawn from one dedicated random stream, so the
//! catalogue depends only on the seed and the symbol count. Proportions
//! (exchange mix, Nasdaq tiers, financial status, ticker lengths) follow the
//! real `symbols_valid_meta.csv`, so a loader sees the same value shapes.

use std::collections::HashSet;

use rand::seq::index;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::names;

/// Share of symbols that are ETFs (the real dataset has 2,165 of 8,049).
const ETF_SHARE: f64 = 0.25;

/// Share of symbols whose history covers the whole window; the rest list
/// later (IPOs, new funds) on a uniformly drawn day.
const FULL_HISTORY_SHARE: f64 = 0.9;

/// Ticker lengths 1..=5 and how often each occurs in the real data.
const TICKER_LENGTH_WEIGHTS: [(usize, f64); 5] =
    [(1, 0.003), (2, 0.03), (3, 0.355), (4, 0.575), (5, 0.037)];

/// Longest ticker length; the fallback once shorter names keep colliding.
const LONGEST_TICKER: usize = 5;

/// Collisions tolerated at a drawn length before falling back to the longest.
const TICKER_ATTEMPTS_PER_LENGTH: usize = 8;

/// Largest symbol count accepted: keeps random ticker drawing far from
/// exhausting the 11.9 M five-letter names.
pub const MAX_SYMBOLS: usize = 1_000_000;

/// Which directory of the dataset a symbol belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetKind {
    /// Written to `stocks/`.
    Stock,
    /// Written to `etfs/`.
    Etf,
}

impl AssetKind {
    /// Directory name under the output root.
    pub fn directory(self) -> &'static str {
        match self {
            AssetKind::Stock => "stocks",
            AssetKind::Etf => "etfs",
        }
    }
}

/// Listing exchange, as coded in the `Listing Exchange` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// `Q`; the only exchange with a market category and financial status.
    Nasdaq,
    /// `N`.
    Nyse,
    /// `A`.
    NyseAmerican,
    /// `P`.
    NyseArca,
    /// `Z`.
    CboeBzx,
}

impl Exchange {
    /// One-letter code used in the metadata file.
    pub fn code(self) -> &'static str {
        match self {
            Exchange::Nasdaq => "Q",
            Exchange::Nyse => "N",
            Exchange::NyseAmerican => "A",
            Exchange::NyseArca => "P",
            Exchange::CboeBzx => "Z",
        }
    }
}

const STOCK_EXCHANGE_WEIGHTS: [(Exchange, f64); 5] = [
    (Exchange::Nasdaq, 0.51),
    (Exchange::Nyse, 0.43),
    (Exchange::NyseAmerican, 0.043),
    (Exchange::NyseArca, 0.018),
    (Exchange::CboeBzx, 0.003),
];
const ETF_EXCHANGE_WEIGHTS: [(Exchange, f64); 4] = [
    (Exchange::NyseArca, 0.66),
    (Exchange::Nasdaq, 0.18),
    (Exchange::CboeBzx, 0.155),
    (Exchange::NyseAmerican, 0.005),
];
/// Nasdaq market tiers: Global Select, Global Market, Capital Market.
const NASDAQ_CATEGORY_WEIGHTS: [(&str, f64); 3] = [("Q", 0.45), ("G", 0.27), ("S", 0.28)];
/// Nasdaq financial status: normal, deficient, delinquent, deficient and bankrupt.
const FINANCIAL_STATUS_WEIGHTS: [(&str, f64); 4] =
    [("N", 0.94), ("D", 0.056), ("E", 0.003), ("H", 0.001)];

/// One synthetic symbol and everything the metadata file says about it.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Uppercase ticker of 1–5 letters, also the file stem.
    pub ticker: String,
    /// Stock or ETF.
    pub kind: AssetKind,
    /// Listing exchange.
    pub exchange: Exchange,
    /// `Q`/`G`/`S` for Nasdaq listings, a single space otherwise (as in the
    /// real file).
    pub market_category: &'static str,
    /// `N`/`D`/`E`/`H` for Nasdaq listings, empty otherwise.
    pub financial_status: &'static str,
    /// Human-readable name; may contain commas or end with a space.
    pub security_name: String,
    /// Index of the first trading day of the window this symbol has a row for.
    pub first_day: usize,
}

impl Listing {
    /// Number of price rows this symbol has in a window of `day_count` sessions.
    pub fn row_count(&self, day_count: usize) -> usize {
        day_count - self.first_day
    }
}

/// Draws `count` listings sorted by ticker, for a window of `day_count`
/// (at least one) trading days.
///
/// About a quarter are ETFs, with at least one stock and one ETF when
/// `count >= 2`.
pub fn plan_listings(count: usize, day_count: usize, rng: &mut ChaCha8Rng) -> Vec<Listing> {
    let mut tickers = draw_unique_tickers(count, rng);
    tickers.sort_unstable();

    let mut is_etf = vec![false; count];
    for etf_position in index::sample(rng, count, etf_count(count)) {
        is_etf[etf_position] = true;
    }

    tickers
        .into_iter()
        .zip(is_etf)
        .map(|(ticker, etf)| {
            let kind = if etf { AssetKind::Etf } else { AssetKind::Stock };
            draw_listing(ticker, kind, day_count, rng)
        })
        .collect()
}

/// ETFs among `count` symbols: ~25%, and never all or none once there are two.
fn etf_count(count: usize) -> usize {
    if count < 2 {
        return 0;
    }
    let share = (count as f64 * ETF_SHARE).round() as usize;
    share.clamp(1, count - 1)
}

fn draw_listing(ticker: String, kind: AssetKind, day_count: usize, rng: &mut ChaCha8Rng) -> Listing {
    let exchange = match kind {
        AssetKind::Stock => pick_weighted(&STOCK_EXCHANGE_WEIGHTS, rng),
        AssetKind::Etf => pick_weighted(&ETF_EXCHANGE_WEIGHTS, rng),
    };
    let (market_category, financial_status) = if exchange == Exchange::Nasdaq {
        (
            pick_weighted(&NASDAQ_CATEGORY_WEIGHTS, rng),
            pick_weighted(&FINANCIAL_STATUS_WEIGHTS, rng),
        )
    } else {
        (" ", "")
    };
    let security_name = names::security_name(kind, exchange, rng);
    let lists_later = day_count > 1 && !rng.random_bool(FULL_HISTORY_SHARE);
    let first_day = if lists_later {
        rng.random_range(1..day_count)
    } else {
        0
    };
    Listing {
        ticker,
        kind,
        exchange,
        market_category,
        financial_status,
        security_name,
        first_day,
    }
}

/// `count` distinct tickers in draw order.
fn draw_unique_tickers(count: usize, rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut seen = HashSet::with_capacity(count);
    let mut tickers = Vec::with_capacity(count);
    while tickers.len() < count {
        let mut length = pick_weighted(&TICKER_LENGTH_WEIGHTS, rng);
        let mut attempts = 0;
        let ticker = loop {
            let candidate = random_ticker(length, rng);
            if !seen.contains(&candidate) {
                break candidate;
            }
            attempts += 1;
            if attempts == TICKER_ATTEMPTS_PER_LENGTH {
                length = LONGEST_TICKER;
            }
        };
        seen.insert(ticker.clone());
        tickers.push(ticker);
    }
    tickers
}

fn random_ticker(length: usize, rng: &mut ChaCha8Rng) -> String {
    (0..length)
        .map(|_| char::from(rng.random_range(b'A'..=b'Z')))
        .collect()
}

/// Picks a value with probability proportional to its weight.
fn pick_weighted<T: Copy>(choices: &[(T, f64)], rng: &mut ChaCha8Rng) -> T {
    let total: f64 = choices.iter().map(|(_, weight)| weight).sum();
    let mut remaining = rng.random::<f64>() * total;
    for &(value, weight) in choices {
        if remaining < weight {
            return value;
        }
        remaining -= weight;
    }
    choices[choices.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tickers_are_unique_sorted_uppercase() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let listings = plan_listings(3_000, 100, &mut rng);
        let tickers: Vec<&str> = listings.iter().map(|l| l.ticker.as_str()).collect();
        assert!(tickers.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(tickers
            .iter()
            .all(|t| (1..=5).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn stock_etf_split_keeps_both_kinds() {
        assert_eq!(etf_count(1), 0);
        assert_eq!(etf_count(2), 1);
        assert_eq!(etf_count(3), 1);
        assert_eq!(etf_count(8_000), 2_000);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let listings = plan_listings(2, 10, &mut rng);
        assert!(listings.iter().any(|l| l.kind == AssetKind::Etf));
        assert!(listings.iter().any(|l| l.kind == AssetKind::Stock));
    }

    #[test]
    fn nasdaq_only_fields_follow_the_exchange() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for listing in plan_listings(500, 10, &mut rng) {
            let nasdaq = listing.exchange == Exchange::Nasdaq;
            assert_eq!(listing.market_category == " ", !nasdaq);
            assert_eq!(listing.financial_status.is_empty(), !nasdaq);
            assert!(listing.first_day < 10);
        }
    }
}
