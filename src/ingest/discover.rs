//! Which files an ingest source names, and what each one is: the symbol comes from the
//! file name (`stocks/BRK-B.csv` → `BRK-B`), the asset class from its folder
//! (`stocks/` → `stock`, `etfs/` → `etf`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::job::IngestSource;

/// One per-symbol prices file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub symbol: String,
    pub asset_class: String,
    pub source: String,
}

/// A file left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// The symbol a file holds: its name without the `.csv` extension.
pub fn symbol_of(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?.trim();
    (!stem.is_empty()).then(|| stem.to_owned())
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

/// The files `source`'s patterns match, sorted, without duplicates.
pub fn files_of(source: &IngestSource) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for pattern in &source.patterns {
        let paths = glob::glob(pattern).map_err(|e| format!("bad pattern `{pattern}`: {e}"))?;
        for entry in paths {
            let path = entry.map_err(|e| e.to_string())?;
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The files of the prices sources, one per symbol. A second file for a symbol already
/// seen is left out with a reason rather than silently overwriting the first.
pub fn discover(sources: &[&IngestSource]) -> Result<(Vec<SourceFile>, Vec<Skipped>), String> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut owner: HashMap<String, PathBuf> = HashMap::new();
    for source in sources {
        for path in files_of(source)? {
            let Some(symbol) = symbol_of(&path) else {
                skipped.push(Skipped {
                    path,
                    reason: "no symbol in the file name".into(),
                });
                continue;
            };
            if let Some(first) = owner.get(&symbol) {
                skipped.push(Skipped {
                    reason: format!("symbol `{symbol}` already comes from {}", first.display()),
                    path,
                });
                continue;
            }
            owner.insert(symbol.clone(), path.clone());
            files.push(SourceFile {
                asset_class: asset_class_of(&path),
                symbol,
                path,
                source: source.name.clone(),
            });
        }
    }
    Ok((files, skipped))
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
    }
}
