//! Invented security names in the style of `symbols_valid_meta.csv`.
//!
//! Real names follow a few recognisable patterns that exercise a CSV reader:
//! Nasdaq names carry ` - Common Stock`, many contain a comma (`Foo, Inc.`,
//! which forces quoting), and a handful end with a stray trailing space. The
//! names here are assembled from syllables and word lists so that they look
//! plausible without naming any real company.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::symbols::{AssetKind, Exchange};

/// Share of names written with a trailing space, as ~1% of the real rows are.
const TRAILING_SPACE_PROBABILITY: f64 = 0.012;

const STEM_HEADS: &[&str] = &[
    "Al", "Bel", "Cor", "Dex", "El", "Fen", "Gal", "Hel", "Ix", "Jas", "Kor", "Lum", "Mer", "Nor",
    "Ob", "Pel", "Quin", "Ros", "Sen", "Tor", "Ul", "Vex", "Wyn", "Xan", "Yor", "Zer",
];
const STEM_TAILS: &[&str] = &[
    "a", "ex", "ion", "is", "on", "ara", "ia", "ix", "um", "ent", "ora", "ity", "co", "tek", "gen",
    "vance",
];
const INDUSTRIES: &[&str] = &[
    "Therapeutics",
    "Holdings",
    "Technologies",
    "Energy",
    "Bancorp",
    "Pharmaceuticals",
    "Systems",
    "Capital",
    "Resources",
    "Industries",
    "Group",
    "Realty",
    "Networks",
    "Biosciences",
    "Financial",
    "Minerals",
    "Brands",
    "Semiconductor",
    "Software",
    "Logistics",
];
/// Legal forms; the `, Inc.` variants put a comma in the name.
const LEGAL_FORMS: &[&str] = &[
    ", Inc.",
    ", Inc.",
    ", Inc.",
    " Inc.",
    " Corporation",
    " Corp.",
    " Ltd.",
    " plc",
    " N.V.",
    " Co.",
    " L.P.",
];
const NASDAQ_SECURITY_CLASSES: &[&str] = &[
    " - Common Stock",
    " - Common Stock",
    " - Common Stock",
    " - Class A Common Stock",
    " - Ordinary Shares",
    " - American Depositary Shares",
];
const OTHER_SECURITY_CLASSES: &[&str] = &[
    " Common Stock",
    " Common Stock",
    " Common Shares",
    " Class A Common Stock",
    " Ordinary Shares",
    " American Depositary Shares",
    " Units",
];
const ETF_ISSUERS: &[&str] = &[
    "iShares",
    "Invesco",
    "SPDR",
    "Vanguard",
    "First Trust",
    "ProShares",
    "WisdomTree",
    "Global X",
    "Direxion",
    "VanEck Vectors",
    "Schwab",
    "Xtrackers",
];
const ETF_THEMES: &[&str] = &[
    "MSCI Emerging Markets",
    "S&P 500 Equal Weight",
    "Short-Term Treasury",
    "U.S. Real Estate",
    "NASDAQ-100",
    "Gold Miners",
    "Clean Energy",
    "Dividend Appreciation",
    "High Yield Corporate Bond",
    "Russell 2000 Value",
    "Semiconductor",
    "Cloud Computing",
    "MSCI All Country Asia ex Japan",
    "Investment Grade Floating Rate",
];
const ETF_WRAPPERS: &[&str] = &[
    "ETF",
    "ETF",
    "ETF",
    "Index Fund",
    "Fund",
    "Daily Bull 3X Shares",
];

/// A security name for a listing of `kind` on `exchange`.
pub fn security_name(kind: AssetKind, exchange: Exchange, rng: &mut ChaCha8Rng) -> String {
    let mut name = match kind {
        AssetKind::Stock => stock_name(exchange, rng),
        AssetKind::Etf => format!(
            "{} {} {}",
            pick(ETF_ISSUERS, rng),
            pick(ETF_THEMES, rng),
            pick(ETF_WRAPPERS, rng)
        ),
    };
    if rng.random_bool(TRAILING_SPACE_PROBABILITY) {
        name.push(' ');
    }
    name
}

fn stock_name(exchange: Exchange, rng: &mut ChaCha8Rng) -> String {
    let stem = format!("{}{}", pick(STEM_HEADS, rng), pick(STEM_TAILS, rng));
    let classes = if exchange == Exchange::Nasdaq {
        NASDAQ_SECURITY_CLASSES
    } else {
        OTHER_SECURITY_CLASSES
    };
    format!(
        "{stem} {}{}{}",
        pick(INDUSTRIES, rng),
        pick(LEGAL_FORMS, rng),
        pick(classes, rng)
    )
}

fn pick<'a>(words: &[&'a str], rng: &mut ChaCha8Rng) -> &'a str {
    words[rng.random_range(0..words.len())]
}
