//! `runner generate`: synthetic data in the Kaggle layout.

use crate::cli::GenerateArgs;
use crate::error::{Context, Result};
use crate::generate::{generate as write_dataset, GenerateOptions};

pub fn generate(args: &GenerateArgs) -> Result<()> {
    let options = GenerateOptions {
        out: args.out.clone(),
        symbols: args.symbols,
        years: args.years,
        seed: args.seed,
        end: args.end,
        dirty: !args.clean,
        tickers: args.tickers.clone(),
        etf_tickers: args.etf_tickers.clone(),
    };
    let started = std::time::Instant::now();
    let summary = write_dataset(&options)
        .with_context(|| format!("generating into {}", args.out.display()))?;
    crate::outln!(
        "generated {} files, {} rows ({} deliberately malformed), {:.1} MB in {:.2}s into {}",
        summary.files,
        summary.rows,
        summary.dirty_rows,
        summary.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
