//! `[[ingest]]`: sources, their glob patterns, reject ratio and data-quality rules.

use std::path::Path;

use super::Planner;
use crate::error::suggest;
use crate::job::rules::{Outcome, Rule, RuleSet};
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

    /// `[ingest.rules]`: each key a rule name, each value an outcome the rule allows.
    fn rules(&mut self, src: &IngestSpec, name: &str) -> RuleSet {
        let mut rules = RuleSet::default();
        for (rule_name, outcome) in &src.rules {
            let key = format!("ingest.{name}.rules.{rule_name}");
            let Some(rule) = Rule::from_name(rule_name) else {
                let known: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                let hint = suggest(rule_name, known.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"));
                self.problem_at(
                    outcome,
                    key,
                    format!(
                        "unknown rule `{rule_name}`; known rules: {}",
                        known.join(", ")
                    ),
                )
                .help = hint;
                continue;
            };
            let Some(outcome_value) = Outcome::from_name(outcome.get_ref()) else {
                self.problem_at(
                    outcome,
                    key,
                    format!(
                        "unknown outcome `{}` for rule `{rule_name}`: use `reject`, `repair` or `flag`",
                        outcome.get_ref()
                    ),
                );
                continue;
            };
            if let Err(message) = rules.set(rule, outcome_value) {
                self.problem_at(outcome, key, message);
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
