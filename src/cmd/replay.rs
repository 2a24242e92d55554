//! `runner replay JOB`: publish generated or file bars to the job's feed.

use crate::cli::ReplayArgs;
use crate::error::{Diagnostic, Error, Result};
use crate::stream::replay::{self, Options, Source};

pub fn replay(args: &ReplayArgs) -> Result<()> {
    let job = super::load_job(&args.job)?;
    let feed = super::stream::pick_feed(&job, args.feed.as_deref())?;
    let source = if args.files.is_empty() {
        Source::Generated {
            seed: args.seed,
            symbols: args.symbols,
            days: args.days,
            end: args.end,
        }
    } else {
        let mut paths = Vec::new();
        for pattern in &args.files {
            let matches = glob::glob(pattern).map_err(|e| {
                Error::config(
                    Diagnostic::new(format!("bad pattern `{pattern}`: {e}")).key("--files"),
                )
            })?;
            paths.extend(
                matches
                    .filter_map(std::result::Result::ok)
                    .filter(|p| p.is_file()),
            );
        }
        paths.sort();
        if paths.is_empty() {
            return Err(Error::config(
                Diagnostic::new("--files matches no file").key("--files"),
            ));
        }
        Source::Files(paths)
    };
    let published = replay::run(
        &feed,
        &Options {
            source,
            rate: args.rate,
            limit: args.limit,
            poison_every: args.poison_every,
        },
    )?;
    crate::outln!("{}", serde_json::to_string(&published).unwrap_or_default());
    Ok(())
}
