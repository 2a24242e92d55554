//! `[[ingest]]`: sources, their glob patterns, reject ratio and data-quality rules.

use std::path::Path;

use super::Planner;
use crate::error::suggest;
use crate::job::rules::{RuleError, RuleSet};
use crate::job::spec::{IngestSpec, JobSpec, SourceKind};
use crate::job::vars::Vars;

#[derive(Debug, Clone)]
pub struct IngestSource {
    pub name: String,
    pub kind: SourceKind,
    /// Absolute glob patterns (`ingest::discover` finds the files they match).
    pub patterns: Vec<String>,
    pub max_reject_ratio: Option<f64>,
    /// Outcome of each data-quality rule for this source's rows.
    pub rules: RuleSet,
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
                let resolved = self.resolve(root, p, vars, &key);
                let pattern = resolved.to_string_lossy().into_owned();
                match glob::Pattern::new(&pattern) {
                    Ok(_) => patterns.push(pattern),
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
            });
        }
        sources
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
