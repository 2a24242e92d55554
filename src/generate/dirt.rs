//! Deliberate defects, so loaders are exercised on the faults the real
//! Kaggle files contain.
//!
//! The real data has rows with only a date (`2001-09-12,,,,,,`), opens of
//! exactly `0.0`, volumes printed as floats (`806400.0`), zero volume, and
//! rows a validator should flag. Synthetic data reproduces these, plus a
//! malformed date and a missing close, at about one row in
//! [`ROWS_PER_DEFECT`], and at least one of each kind in any dataset of a
//! couple of thousand rows, so small samples still exercise every path.
//!
//! Defect positions are drawn up front from their own random stream, over all
//! rows of all symbols, so they are independent of thread scheduling and do
//! not disturb the prices: a dirty dataset differs from the clean one with the
//! same seed only on the defective rows. A symbol's last row is never
//! defective, so `Adj Close == Close` on the final row always holds.

use rand::seq::index;
use rand_chacha::ChaCha8Rng;

/// Typical number of rows per injected defect.
pub const ROWS_PER_DEFECT: usize = 20_000;

/// Upper bound on the defect share in tiny datasets: one per this many rows.
const MIN_ROWS_PER_DEFECT: usize = 100;

/// A way in which one written row departs from a clean row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefectKind {
    /// Date present, every other field empty: `2001-09-12,,,,,,`.
    EmptyFields,
    /// `Open` written as exactly `0.0`.
    ZeroOpen,
    /// `Volume` written as a float: `806400.0`.
    FloatVolume,
    /// `High` and `Low` swapped, so high < low.
    HighBelowLow,
    /// `Volume` written as `0`.
    ZeroVolume,
    /// A date that does not exist, such as `2019-13-45`.
    MalformedDate,
    /// `Close` empty, every other field present.
    MissingClose,
}

impl DefectKind {
    /// Every kind, in the order they are dealt out.
    pub const ALL: [DefectKind; 7] = [
        DefectKind::EmptyFields,
        DefectKind::ZeroOpen,
        DefectKind::FloatVolume,
        DefectKind::HighBelowLow,
        DefectKind::ZeroVolume,
        DefectKind::MalformedDate,
        DefectKind::MissingClose,
    ];
}

/// One defective row of a symbol's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defect {
    /// Row index within the symbol's file (0 = first data row).
    pub row: usize,
    pub kind: DefectKind,
}

/// Chooses the defective rows for symbols with the given row counts.
///
/// Returns, per symbol, its defects sorted by row.
pub fn plan_defects(rows_per_symbol: &[usize], rng: &mut ChaCha8Rng) -> Vec<Vec<Defect>> {
    // Every row but each symbol's last may carry a defect.
    let eligible_per_symbol: Vec<usize> = rows_per_symbol
        .iter()
        .map(|rows| rows.saturating_sub(1))
        .collect();
    let eligible: usize = eligible_per_symbol.iter().sum();
    let count = (eligible / ROWS_PER_DEFECT)
        .max(DefectKind::ALL.len())
        .min(eligible / MIN_ROWS_PER_DEFECT);

    // Kinds are dealt round-robin in draw order, then positions are sorted.
    let mut positions: Vec<(usize, DefectKind)> = index::sample(rng, eligible, count)
        .into_iter()
        .zip(DefectKind::ALL.iter().copied().cycle())
        .collect();
    positions.sort_unstable_by_key(|&(position, _)| position);

    let mut plan = vec![Vec::new(); rows_per_symbol.len()];
    let mut pending = positions.into_iter().peekable();
    let mut symbol_start = 0;
    for (symbol_defects, eligible_rows) in plan.iter_mut().zip(eligible_per_symbol) {
        let symbol_end = symbol_start + eligible_rows;
        while let Some((position, kind)) = pending.next_if(|&(position, _)| position < symbol_end) {
            symbol_defects.push(Defect {
                row: position - symbol_start,
                kind,
            });
        }
        symbol_start = symbol_end;
    }
    plan
}

/// An impossible date in `year`, varied by `variant` so loaders meet more
/// than one shape (`2019-13-45`, `2019-00-12`, `2019-02-30`).
pub fn malformed_date(year: i32, variant: usize) -> String {
    const IMPOSSIBLE_MONTH_DAYS: [&str; 3] = ["13-45", "00-12", "02-30"];
    format!(
        "{year:04}-{}",
        IMPOSSIBLE_MONTH_DAYS[variant % IMPOSSIBLE_MONTH_DAYS.len()]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn small_datasets_get_every_kind_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let plan = plan_defects(&[1_000, 1, 0, 1_200], &mut rng);
        let defects: Vec<Defect> = plan.iter().flatten().copied().collect();
        assert_eq!(defects.len(), DefectKind::ALL.len());
        for kind in DefectKind::ALL {
            assert!(defects.iter().any(|defect| defect.kind == kind));
        }
        assert!(plan[1].is_empty() && plan[2].is_empty());
        assert!(plan[0].iter().all(|defect| defect.row < 999));
        assert!(plan[3].iter().all(|defect| defect.row < 1_199));
    }

    #[test]
    fn large_datasets_get_about_one_in_twenty_thousand() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let plan = plan_defects(&[3_001; 2_000], &mut rng);
        let total: usize = plan.iter().map(Vec::len).sum();
        assert_eq!(total, 300);
        for symbol_defects in &plan {
            assert!(symbol_defects
                .windows(2)
                .all(|pair| pair[0].row < pair[1].row));
        }
    }

    #[test]
    fn tiny_datasets_get_few_or_none() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        assert_eq!(plan_defects(&[50], &mut rng), vec![Vec::new()]);
        let total: usize = plan_defects(&[251], &mut rng).iter().map(Vec::len).sum();
        assert_eq!(total, 2);
    }

    #[test]
    fn malformed_dates_do_not_parse() {
        for variant in 0..3 {
            let text = malformed_date(2019, variant);
            assert_eq!(text.len(), 10);
            assert!(chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").is_err());
        }
    }
}
