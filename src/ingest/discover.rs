//! Which files an ingest source names, and what each one is: the symbol comes from the
//! file name as written (`stocks/BRK-B.csv` → `BRK-B`), the asset class from its folder
//! (`stocks/` → `stock`, `etfs/` → `etf`).
//!
//! Nothing a pattern sees is dropped in silence. A folder that does not exist is a
//! [`DiscoverError`], not an empty source; directories, broken links, names that match
//! only when case is ignored and names that are not UTF-8 are [`Skipped`] with why; and
//! two files for one symbol — or for names that differ only in case or surrounding
//! spaces — are a [`Conflict`] unless one source has the higher `priority`.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::job::{IngestSource, SourcePattern};

/// A pattern that could not be read: the source is missing, not empty.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("pattern `{pattern}`: folder {} does not exist", folder.display())]
    FolderMissing { pattern: String, folder: PathBuf },
    #[error("pattern `{pattern}`: {} is not a folder", folder.display())]
    NotAFolder { pattern: String, folder: PathBuf },
    #[error("pattern `{pattern}`: cannot list {}: {source}", folder.display())]
    Unlistable {
        pattern: String,
        folder: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pattern `{pattern}`: {source}")]
    BadPattern {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    /// Decided against the manifest (see `ingest::load_prices`): files were loaded
    /// through this pattern before, and now it finds none.
    #[error(
        "pattern `{pattern}` matches no file in {}, but {} loaded before came from it \
         (e.g. {example}); their rows are kept",
        folder.display(),
        if *loaded == 1 { "1 file".to_owned() } else { format!("{loaded} files") }
    )]
    NoLongerMatches {
        pattern: String,
        folder: PathBuf,
        loaded: usize,
        example: String,
    },
}

/// One per-symbol prices file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub symbol: String,
    pub asset_class: String,
    pub source: String,
}

/// Something a pattern matched and that is not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: SkipReason,
}

/// Why a match is not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("a directory, not a file")]
    Directory,
    #[error("a broken symbolic link")]
    BrokenLink,
    #[error("not a regular file")]
    NotAFile,
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("the file name is not valid UTF-8")]
    NotUtf8,
    #[error(
        "matches `{pattern}` only when case is ignored; not loaded (patterns are \
         case-sensitive: add one for this spelling to load it)"
    )]
    CaseVariant { pattern: String },
    #[error("no symbol in the file name")]
    NoSymbol,
    #[error("also matched by source `{0}`, which loads it")]
    AlsoMatched(String),
    #[error("shadowed by {} (source `{winner}` has the higher priority)", by.display())]
    Shadowed { by: PathBuf, winner: String },
}

/// Files whose symbols cannot be told apart, none of them with the higher priority:
/// none is loaded, and what is loaded for the symbol stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Each file with the symbol its name gives, sorted by path.
    pub files: Vec<(PathBuf, String)>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let symbol = &self.files[0].1;
        if self.files.iter().all(|(_, s)| s == symbol) {
            let paths: Vec<String> = self
                .files
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect();
            write!(
                f,
                "symbol `{symbol}` comes from {} files: {}",
                paths.len(),
                paths.join(", ")
            )?;
        } else {
            let names: Vec<String> = self
                .files
                .iter()
                .map(|(p, s)| format!("`{s}` ({})", p.display()))
                .collect();
            write!(
                f,
                "symbols {} differ only in case or surrounding spaces",
                names.join(", ")
            )?;
        }
        write!(
            f,
            "; none is loaded and the rows already loaded are kept (remove the stray file, \
             or give one source a higher `priority`)"
        )
    }
}

/// The symbol a file holds: its name without the extension, exactly as written.
pub fn symbol_of(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    (!stem.trim().is_empty()).then(|| stem.to_owned())
}

/// What two symbols are compared by: names that differ only in case or surrounding
/// spaces are one symbol to a reader, so they must not load as two.
pub fn symbol_key(symbol: &str) -> String {
    symbol.trim().to_lowercase()
}

/// `stocks` → `stock`, `etfs` → `etf`; other folders keep their name.
pub fn asset_class_of(path: &Path) -> String {
    let folder = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match folder.as_str() {
        "stocks" => "stock".to_owned(),
        "etfs" => "etf".to_owned(),
        "" => "unknown".to_owned(),
        other => other.to_owned(),
    }
}

/// What one pattern found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Regular files it matched, sorted.
    pub files: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
}

/// Everything `pattern` matches, and what of it cannot be loaded. Its folder must
/// exist; the folders between it and the file names may themselves be wildcards.
pub fn scan(pattern: &SourcePattern) -> Result<Scan, DiscoverError> {
    let written = || pattern.written.clone();
    match std::fs::metadata(&pattern.folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(DiscoverError::NotAFolder {
                pattern: written(),
                folder: pattern.folder.clone(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DiscoverError::FolderMissing {
                pattern: written(),
                folder: pattern.folder.clone(),
            })
        }
        Err(source) => {
            return Err(DiscoverError::Unlistable {
                pattern: written(),
                folder: pattern.folder.clone(),
                source,
            })
        }
    }
    let bad = |source| DiscoverError::BadPattern {
        pattern: written(),
        source,
    };
    let (dirs_glob, names_glob) = pattern
        .glob
        .rsplit_once('/')
        .unwrap_or((".", pattern.glob.as_str()));
    let names = glob::Pattern::new(names_glob).map_err(bad)?;
    let mut dirs = Vec::new();
    for entry in glob::glob(if dirs_glob.is_empty() { "/" } else { dirs_glob }).map_err(bad)? {
        match entry {
            Ok(dir) if dir.is_dir() => dirs.push(dir),
            Ok(_) => {}
            Err(e) => {
                return Err(DiscoverError::Unlistable {
                    pattern: written(),
                    folder: e.path().to_owned(),
                    source: e.into(),
                })
            }
        }
    }
    let mut found = Scan::default();
    for dir in dirs {
        let entries = std::fs::read_dir(&dir).map_err(|source| DiscoverError::Unlistable {
            pattern: written(),
            folder: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| DiscoverError::Unlistable {
                pattern: written(),
                folder: dir.clone(),
                source,
            })?;
            let path = entry.path();
            match name_match(&names, &entry.file_name()) {
                NameMatch::No => {}
                NameMatch::Exact => match kind_of(&path) {
                    None => found.files.push(path),
                    Some(reason) => found.skipped.push(Skipped { path, reason }),
                },
                NameMatch::IgnoringCase => found.skipped.push(Skipped {
                    path,
                    reason: SkipReason::CaseVariant {
                        pattern: names_glob.to_owned(),
                    },
                }),
                NameMatch::NotUtf8 => found.skipped.push(Skipped {
                    path,
                    reason: SkipReason::NotUtf8,
                }),
            }
        }
    }
    found.files.sort();
    found.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

enum NameMatch {
    No,
    Exact,
    IgnoringCase,
    /// Not UTF-8, so no pattern can match it as written; its lossy form matches.
    NotUtf8,
}

fn name_match(names: &glob::Pattern, name: &OsStr) -> NameMatch {
    let ignoring_case = glob::MatchOptions {
        case_sensitive: false,
        ..glob::MatchOptions::new()
    };
    match name.to_str() {
        Some(text) if names.matches(text) => NameMatch::Exact,
        Some(text) if names.matches_with(text, ignoring_case) => NameMatch::IgnoringCase,
        Some(_) => NameMatch::No,
        None if names.matches_with(&name.to_string_lossy(), ignoring_case) => NameMatch::NotUtf8,
        None => NameMatch::No,
    }
}

/// Why `path` cannot be loaded, or None for a regular file (or a link to one).
fn kind_of(path: &Path) -> Option<SkipReason> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some(SkipReason::Directory),
        Ok(_) => Some(SkipReason::NotAFile),
        Err(_) if path.is_symlink() => Some(SkipReason::BrokenLink),
        Err(e) => Some(SkipReason::Unreadable(e.to_string())),
    }
}

/// The files `source`'s patterns match, sorted, without duplicates; the first pattern
/// that cannot be read is the error.
pub fn files_of(source: &IngestSource) -> Result<Vec<PathBuf>, DiscoverError> {
    let mut files = Vec::new();
    for pattern in &source.patterns {
        files.extend(scan(pattern)?.files);
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// What one pattern of a prices source found.
#[derive(Debug)]
pub struct PatternOutcome {
    pub source: String,
    pub pattern: SourcePattern,
    /// Regular files it matched; an error when it could not be read.
    pub matched: Result<usize, DiscoverError>,
}

/// The prices sources' files, at most one per symbol.
#[derive(Debug, Default)]
pub struct Discovery {
    pub files: Vec<SourceFile>,
    pub skipped: Vec<Skipped>,
    pub conflicts: Vec<Conflict>,
    pub patterns: Vec<PatternOutcome>,
}

impl Discovery {
    /// Every symbol some path names, loaded or not (conflicting, shadowed, a case
    /// variant): none of them is gone, so `on_missing = "delete"` never touches them.
    pub fn symbols_seen(&self) -> HashSet<String> {
        self.files
            .iter()
            .map(|f| f.symbol.clone())
            .chain(
                self.conflicts
                    .iter()
                    .flat_map(|c| c.files.iter().map(|(_, s)| s.clone())),
            )
            .chain(self.skipped.iter().filter_map(|s| symbol_of(&s.path)))
            .collect()
    }
}

/// The files of the prices sources, one per symbol: where two files (or names that
/// differ only in case or surrounding spaces) claim one symbol, the source with the
/// higher `priority` wins and the other is skipped as shadowed; without a winner the
/// symbol is a [`Conflict`] and none of its files loads.
pub fn discover(sources: &[&IngestSource]) -> Discovery {
    let mut discovery = Discovery::default();
    // Candidates by path first: one file matched by two sources is one file.
    let mut by_path: BTreeMap<PathBuf, (usize, SourceFile)> = BTreeMap::new();
    for (order, source) in sources.iter().enumerate() {
        for pattern in &source.patterns {
            let matched = scan(pattern).map(|found| {
                let count = found.files.len();
                discovery.skipped.extend(found.skipped);
                for path in found.files {
                    let Some(symbol) = symbol_of(&path) else {
                        discovery.skipped.push(Skipped {
                            path,
                            reason: SkipReason::NoSymbol,
                        });
                        continue;
                    };
                    if let Some((first, _)) = by_path.get(&path) {
                        let first = sources[*first];
                        if first.name != source.name {
                            let replaces = source.priority > first.priority;
                            let kept = if replaces { *source } else { first };
                            discovery.skipped.push(Skipped {
                                path: path.clone(),
                                reason: SkipReason::AlsoMatched(kept.name.clone()),
                            });
                            if !replaces {
                                continue;
                            }
                        } else {
                            continue;
                        }
                    }
                    by_path.insert(path.clone(), (order, source_file(path, symbol, source)));
                }
                count
            });
            discovery.patterns.push(PatternOutcome {
                source: source.name.clone(),
                pattern: pattern.clone(),
                matched,
            });
        }
    }
    // Then by symbol, as a reader would tell them apart.
    let mut by_key: BTreeMap<String, Vec<(usize, SourceFile)>> = BTreeMap::new();
    for (order, file) in by_path.into_values() {
        by_key
            .entry(symbol_key(&file.symbol))
            .or_default()
            .push((order, file));
    }
    let mut chosen: Vec<(usize, SourceFile)> = Vec::new();
    for (_, mut claims) in by_key {
        if claims.len() == 1 {
            chosen.extend(claims);
            continue;
        }
        let priority = |order: usize| sources[order].priority;
        let top = claims.iter().map(|(o, _)| priority(*o)).max().unwrap_or(0);
        let winners = claims.iter().filter(|(o, _)| priority(*o) == top).count();
        if winners > 1 {
            claims.sort_by(|a, b| a.1.path.cmp(&b.1.path));
            discovery.conflicts.push(Conflict {
                files: claims
                    .into_iter()
                    .map(|(_, f)| (f.path, f.symbol))
                    .collect(),
            });
            continue;
        }
        let at = claims
            .iter()
            .position(|(o, _)| priority(*o) == top)
            .unwrap_or(0);
        let winner = claims.remove(at);
        for (_, loser) in claims {
            discovery.skipped.push(Skipped {
                path: loser.path,
                reason: SkipReason::Shadowed {
                    by: winner.1.path.clone(),
                    winner: winner.1.source.clone(),
                },
            });
        }
        chosen.push(winner);
    }
    // Sources in job order, files in path order: batches keep a symbol's rows together.
    chosen.sort_by(|a, b| (a.0, &a.1.path).cmp(&(b.0, &b.1.path)));
    discovery.files = chosen.into_iter().map(|(_, f)| f).collect();
    discovery.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    discovery
}

fn source_file(path: PathBuf, symbol: String, source: &IngestSource) -> SourceFile {
    SourceFile {
        asset_class: asset_class_of(&path),
        symbol,
        path,
        source: source.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_and_class_come_from_the_path() {
        let p = Path::new("/d/stocks/BRK-B.csv");
        assert_eq!(symbol_of(p).as_deref(), Some("BRK-B"));
        assert_eq!(asset_class_of(p), "stock");
        assert_eq!(asset_class_of(Path::new("/d/etfs/SPY.csv")), "etf");
        assert_eq!(
            symbol_of(Path::new("/d/etfs/A.B#.csv")).as_deref(),
            Some("A.B#")
        );
        // As written: a stray space is part of the name (and a conflict with `AAPL`).
        assert_eq!(
            symbol_of(Path::new("/d/AAPL .csv")).as_deref(),
            Some("AAPL ")
        );
        assert_eq!(symbol_key("AAPL "), symbol_key("aapl"));
        assert_eq!(symbol_of(Path::new("/d/ .csv")), None);
    }

    fn source(name: &str, priority: i64, dir: &Path, pattern: &str) -> IngestSource {
        let root = glob::Pattern::escape(&dir.to_string_lossy());
        IngestSource {
            name: name.into(),
            kind: crate::job::SourceKind::Prices,
            patterns: vec![SourcePattern {
                written: pattern.into(),
                glob: format!("{root}/{pattern}"),
                folder: dir.join(pattern).parent().unwrap().to_owned(),
            }],
            max_reject_ratio: None,
            rules: Default::default(),
            priority,
            on_missing: crate::job::OnMissing::Keep,
        }
    }

    #[test]
    fn priority_settles_claims_and_one_file_in_two_sources_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a/X.csv", "b/X.csv", "a/Y.csv"] {
            std::fs::create_dir_all(dir.path().join(f).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(f), "Date,Close\n").unwrap();
        }
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let symbols = |d: &Discovery| -> Vec<(String, String)> {
            d.files
                .iter()
                .map(|f| (f.source.clone(), f.symbol.clone()))
                .collect()
        };

        let tied = discover(&[
            &source("a", 0, dir.path(), "a/*.csv"),
            &source("b", 0, dir.path(), "b/*.csv"),
        ]);
        assert_eq!(symbols(&tied), [("a".to_owned(), "Y".to_owned())]);
        assert_eq!(
            tied.conflicts,
            [Conflict {
                files: vec![(a.join("X.csv"), "X".into()), (b.join("X.csv"), "X".into())]
            }]
        );

        let b_wins = discover(&[
            &source("a", 0, dir.path(), "a/*.csv"),
            &source("b", 2, dir.path(), "b/*.csv"),
        ]);
        assert_eq!(
            symbols(&b_wins),
            [
                ("a".to_owned(), "Y".to_owned()),
                ("b".to_owned(), "X".to_owned())
            ]
        );
        assert_eq!(
            b_wins.skipped,
            [Skipped {
                path: a.join("X.csv"),
                reason: SkipReason::Shadowed {
                    by: b.join("X.csv"),
                    winner: "b".into()
                }
            }]
        );
        assert!(b_wins.conflicts.is_empty());

        let twice = discover(&[
            &source("a", 0, dir.path(), "a/*.csv"),
            &source("c", 0, dir.path(), "a/Y.csv"),
        ]);
        assert_eq!(
            symbols(&twice),
            [
                ("a".to_owned(), "X".to_owned()),
                ("a".to_owned(), "Y".to_owned())
            ]
        );
        assert_eq!(
            twice.skipped,
            [Skipped {
                path: a.join("Y.csv"),
                reason: SkipReason::AlsoMatched("a".into())
            }]
        );
    }

    #[test]
    fn conflicts_name_every_file() {
        let same = Conflict {
            files: vec![
                ("/d/etfs/SPY.csv".into(), "SPY".into()),
                ("/d/stocks/SPY.csv".into(), "SPY".into()),
            ],
        };
        assert!(same
            .to_string()
            .starts_with("symbol `SPY` comes from 2 files: /d/etfs/SPY.csv, /d/stocks/SPY.csv; "));
        let spaced = Conflict {
            files: vec![
                ("/d/AAPL .csv".into(), "AAPL ".into()),
                ("/d/AAPL.csv".into(), "AAPL".into()),
            ],
        };
        assert!(spaced.to_string().starts_with(
            "symbols `AAPL ` (/d/AAPL .csv), `AAPL` (/d/AAPL.csv) differ only in case or surrounding spaces; "
        ));
    }
}
