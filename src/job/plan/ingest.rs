//! `[[ingest]]`: sources, their glob patterns, reject ratio and data-quality rules.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::{env_var, Planner};
use crate::error::suggest;
use crate::job::rules::{RuleError, RuleSet};
use crate::job::spec::{IngestSpec, JobSpec, OnMissing, SourceKind};
use crate::job::vars::{self, Vars};

#[derive(Debug, Clone)]
pub struct IngestSource {
    pub name: String,
    pub kind: SourceKind,
    /// Its `paths` (`ingest::discover` finds the files they match).
    pub patterns: Vec<SourcePattern>,
    pub max_reject_ratio: Option<f64>,
    /// Outcome of each data-quality rule for this source's rows.
    pub rules: RuleSet,
    /// The higher wins when two sources hold a file for one symbol.
    pub priority: i64,
    /// What happens to the rows of a symbol whose file is gone.
    pub on_missing: OnMissing,
}

/// One `paths` entry, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePattern {
    /// As written in the job file (`${data_dir}/stocks/*.csv`), for messages.
    pub written: String,
    /// The absolute glob. The project root and every `${…}` value are escaped, so a
    /// folder named `data[1]` or `*x` matches only itself.
    pub glob: String,
    /// Where the pattern starts: its leading components without wildcards. When this
    /// folder does not exist the input is missing, which is not the same as empty.
    pub folder: PathBuf,
}

impl Planner<'_> {
    pub(super) fn ingest(&mut self, spec: &JobSpec, root: &Path, vars: &Vars) -> Vec<IngestSource> {
        let mut sources = Vec::new();
        for (i, src) in spec.ingest.iter().enumerate() {
            let name = src
                .name
                .as_ref()
                .map(|n| n.get_ref().clone())
                .unwrap_or_else(|| default_name(src.kind, i));
            let key = format!("ingest.{name}.paths");
            if src.paths.get_ref().is_empty() {
                self.problem_at(&src.paths, key.clone(), "`paths` lists no files");
            }
            let mut patterns = Vec::new();
            for p in src.paths.get_ref() {
                let Some(pattern) = self.resolve_glob(root, p, vars, &key) else {
                    continue;
                };
                match glob::Pattern::new(&pattern) {
                    Ok(_) => patterns.push(SourcePattern {
                        written: p.get_ref().clone(),
                        folder: literal_folder(&pattern),
                        glob: pattern,
                    }),
                    Err(e) => {
                        self.problem_at(p, key.clone(), format!("bad glob pattern: {e}"));
                    }
                }
            }
            let max_reject_ratio = src.max_reject_ratio.as_ref().map(|r| {
                let value = *r.get_ref();
                if !(0.0..=1.0).contains(&value) {
                    self.problem_at(
                        r,
                        format!("ingest.{name}.max_reject_ratio"),
                        format!("`max_reject_ratio` must be between 0 and 1, found {value}"),
                    );
                }
                value
            });
            let rules = self.rules(src, &name);
            sources.push(IngestSource {
                name,
                kind: src.kind,
                patterns,
                max_reject_ratio,
                rules,
                priority: src.priority.unwrap_or(0),
                on_missing: src.on_missing,
            });
        }
        sources
    }

    /// A `paths` entry as an absolute glob: the root and the expanded `${…}` values are
    /// escaped (they name folders), the text written in the job keeps its wildcards.
    fn resolve_glob(
        &mut self,
        root: &Path,
        value: &Spanned<String>,
        vars: &Vars,
        key: &str,
    ) -> Option<String> {
        match vars::expand_with(value.get_ref(), vars, env_var, glob::Pattern::escape) {
            Ok(expanded) if Path::new(&expanded).is_absolute() => Some(expanded),
            Ok(expanded) => {
                let root = glob::Pattern::escape(&root.to_string_lossy());
                Some(
                    Path::new(&root)
                        .join(expanded)
                        .to_string_lossy()
                        .into_owned(),
                )
            }
            Err(message) => {
                self.problem_at(value, key, message.to_string());
                None
            }
        }
    }

    /// `[ingest.rules]`: each key a rule name and each value an outcome the rule
    /// allows, or `min_day` and a date.
    fn rules(&mut self, src: &IngestSpec, name: &str) -> RuleSet {
        let mut rules = RuleSet::default();
        for (rule_name, value) in &src.rules {
            let key = format!("ingest.{name}.rules.{rule_name}");
            if let Err(e) = rules.configure(rule_name, value.get_ref()) {
                let hint = matches!(e, RuleError::UnknownRule { .. })
                    .then(|| suggest(rule_name, RuleSet::keys()))
                    .flatten()
                    .map(|s| format!("did you mean `{s}`?"));
                self.problem_at(value, key, e.to_string()).help = hint;
            }
        }
        rules
    }
}

/// A source without `name` is named by its kind, plus its position after the first
/// source (`prices`, then `symbols_1`).
fn default_name(kind: SourceKind, index: usize) -> String {
    let kind = match kind {
        SourceKind::Prices => "prices",
        SourceKind::Symbols => "symbols",
    };
    if index > 0 {
        format!("{kind}_{index}")
    } else {
        kind.to_owned()
    }
}

/// The leading components of `pattern` that hold no wildcard, unescaped: the folder a
/// glob like `/d/data[[]1[]]/stocks/*.csv` starts from (`/d/data[1]/stocks`).
fn literal_folder(pattern: &str) -> PathBuf {
    let mut folder = PathBuf::new();
    let mut components = pattern.split('/').peekable();
    if pattern.starts_with('/') {
        folder.push("/");
        components.next();
    }
    while let Some(component) = components.next() {
        // The last component names the files, not a folder.
        if components.peek().is_none() {
            break;
        }
        match unescape_literal(component) {
            Some(literal) if literal.is_empty() || literal == "." => {}
            Some(literal) => folder.push(literal),
            None => break,
        }
    }
    folder
}

/// `component` as plain text when it has no wildcard (`[x]` is an escaped `x`).
fn unescape_literal(component: &str) -> Option<String> {
    let chars: Vec<char> = component.chars().collect();
    let mut out = String::with_capacity(component.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' | '?' => return None,
            '[' if i + 2 < chars.len() && chars[i + 2] == ']' && chars[i + 1] != '!' => {
                out.push(chars[i + 1]);
                i += 3;
            }
            '[' => return None,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_the_literal_start_of_the_pattern() {
        let escaped = glob::Pattern::escape("/d/data[1]*x");
        assert_eq!(escaped, "/d/data[[]1[]][*]x");
        assert_eq!(
            literal_folder(&format!("{escaped}/stocks/*.csv")),
            Path::new("/d/data[1]*x/stocks")
        );
        assert_eq!(literal_folder("/d/*/x/*.csv"), Path::new("/d"));
        assert_eq!(literal_folder("/d/[ab]/x.csv"), Path::new("/d"));
        assert_eq!(literal_folder("/d/./meta.csv"), Path::new("/d"));
        assert_eq!(literal_folder("/d/**/*.csv"), Path::new("/d"));
    }
}
