//! Turns a [`JobSpec`] into a checked [`Job`]: variables merged with `--var`, paths
//! resolved against the project root, names and templates checked. Every problem is
//! collected with its position, so one `runner check` shows them all.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use toml::Spanned;

use super::spec::{JobSpec, Materialize, OutputFormat, SourceKind};
use super::vars::{self, Vars};
use crate::error::{suggest, Diagnostic, Diagnostics, Error, Location, Result};
use crate::report::ChartSpec;

/// Used when neither the job nor `DATABASE_URL` names a database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/stocks";

/// A validated job, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub description: Option<String>,
    /// The job file.
    pub path: PathBuf,
    /// Relative paths in the job resolve against this folder: the folder holding the
    /// job's `jobs/` folder, or the job file's own folder when it is not in one.
    pub root: PathBuf,
    pub database_url: String,
    /// All variables after `--var` overrides; `as_of` is kept apart.
    pub vars: Vars,
    /// `vars.as_of`, when given; otherwise the run uses the latest loaded trading day.
    pub as_of: Option<NaiveDate>,
    pub templates_dir: PathBuf,
    pub ingest: Vec<IngestSource>,
    pub analyses: Vec<Analysis>,
    pub report: ReportSettings,
    /// `[storage]`, checked.
    pub storage: crate::db::storage::StorageSettings,
    /// `[[feed]]`, checked (`runner stream`, `runner replay`).
    pub feeds: Vec<super::feed::Feed>,
}

#[derive(Debug, Clone)]
pub struct IngestSource {
    pub name: String,
    pub kind: SourceKind,
    /// Absolute glob patterns.
    pub patterns: Vec<String>,
    pub max_reject_ratio: Option<f64>,
    /// Outcome of each data-quality rule for this source's rows.
    pub rules: crate::ingest::rules::RuleSet,
}

impl IngestSource {
    /// The files the patterns match, sorted, without duplicates.
    pub fn files(&self) -> std::result::Result<Vec<PathBuf>, String> {
        let mut files = Vec::new();
        for pattern in &self.patterns {
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
}

#[derive(Debug, Clone)]
pub struct Analysis {
    pub name: String,
    pub description: Option<String>,
    /// The template's name inside the templates folder (what the loader resolves).
    pub template: String,
    pub outputs: Vec<OutputFormat>,
    pub charts: Vec<ChartSpec>,
    /// Whether (and how) the result is kept in `analytics.<name>`.
    pub materialize: Option<Materialize>,
    /// Declared dependencies; `ref('…')` in the template adds more when rendered.
    pub depends_on: Vec<String>,
    /// Incremental: the column whose newer values are appended.
    pub time_column: Option<String>,
    /// Incremental: the columns identifying a row.
    pub unique_key: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Reports of this job go below `dir/<as_of>/`, with `dir/latest` pointing at the newest.
    pub dir: PathBuf,
    pub formats: Vec<OutputFormat>,
    pub max_rows: usize,
}

/// Read, parse and check the job at `path` with `--var` overrides applied.
///
/// # Errors
/// [`Error::Config`] listing every problem with its file position or key.
pub fn load(path: &Path, overrides: &[String]) -> Result<Job> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        Error::config(Diagnostic::new(format!(
            "cannot read job file `{}`: {e}",
            path.display()
        )))
    })?;
    let spec: JobSpec = toml::from_str(&source).map_err(|e| {
        let mut d = Diagnostic::new(format!("invalid job file: {}", e.message().trim_end()));
        if let Some(span) = e.span() {
            d = d.at(Location::from_offset(path, &source, span.start, span.len()));
        }
        if let Some(help) = unknown_key_hint(e.message()) {
            d = d.help(help);
        }
        Error::config(d)
    })?;
    Planner {
        path,
        source: &source,
        problems: Diagnostics::default(),
    }
    .plan(spec, overrides)
}

/// "did you mean" for serde's `unknown field `x`, expected one of `a`, `b``.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    suggest(unknown, candidates).map(|s| format!("did you mean `{s}`?"))
}

struct Planner<'a> {
    path: &'a Path,
    source: &'a str,
    problems: Diagnostics,
}

impl Planner<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        let span = spanned.span();
        Location::from_offset(self.path, self.source, span.start, span.len())
    }

    fn problem(&mut self, d: Diagnostic) {
        self.problems.push(d);
    }

    fn plan(mut self, spec: JobSpec, overrides: &[String]) -> Result<Job> {
        let root = project_root(self.path);
        let vars = self.vars(&spec, overrides);
        let as_of = self.as_of(&spec, &vars);
        let database_url = self.database_url(&spec, &vars);
        let templates_dir = match &spec.templates_dir {
            Some(dir) => self.resolve(&root, dir, &vars, "templates_dir"),
            None => root.join("templates"),
        };
        if !templates_dir.is_dir() {
            let d = Diagnostic::new(format!(
                "templates folder `{}` does not exist",
                templates_dir.display()
            ))
            .key("templates_dir");
            let d = match &spec.templates_dir {
                Some(s) => d.at(self.at(s)),
                None => d,
            };
            self.problem(d);
        }
        let ingest = self.ingest(&spec, &root, &vars);
        let report = self.report(&spec, &root, &vars);
        let analyses = self.analyses(&spec, &templates_dir, &report);
        let storage = self.storage(&spec);
        let feeds = super::feed::plan(&spec.feed, self.path, self.source, &mut self.problems);
        let name = spec.name.get_ref().trim().to_owned();
        if !is_identifier(&name) {
            let loc = self.at(&spec.name);
            self.problem(
                Diagnostic::new(format!(
                    "job name `{name}` must be lowercase letters, digits and `_`"
                ))
                .at(loc)
                .key("name"),
            );
        }
        self.problems.into_result()?;
        Ok(Job {
            name,
            description: spec.description,
            path: self.path.to_owned(),
            root,
            database_url,
            vars,
            as_of,
            templates_dir,
            ingest,
            analyses,
            report,
            storage,
            feeds,
        })
    }

    /// `[storage]` with defaults filled in; every bad value is a problem at its key.
    fn storage(&mut self, spec: &JobSpec) -> crate::db::storage::StorageSettings {
        use crate::db::storage::{Aggregate, PgInterval, StorageSettings};
        let s = &spec.storage;
        let mut settings = StorageSettings::default();
        let interval =
            |planner: &mut Self, value: &Spanned<String>, key: &str| -> Option<PgInterval> {
                match PgInterval::parse(value.get_ref()) {
                    Ok(i) => Some(i),
                    Err(message) => {
                        let loc = planner.at(value);
                        planner.problem(
                            Diagnostic::new(message)
                                .at(loc)
                                .key(format!("storage.{key}")),
                        );
                        None
                    }
                }
            };
        if let Some(v) = &s.chunk_interval {
            if let Some(i) = interval(self, v, "chunk_interval") {
                settings.chunk_days = i.approx_days();
            }
        }
        if let Some(v) = &s.compress_after {
            settings.compress_after =
                interval(self, v, "compress_after").or(settings.compress_after);
        }
        if s.compression == Some(false) {
            settings.compress_after = None;
        }
        if let Some(v) = &s.retention {
            settings.retention = interval(self, v, "retention");
        }
        if let Some(names) = &s.aggregates {
            settings.aggregates.clear();
            for name in names {
                match Aggregate::from_name(name.get_ref()) {
                    Some(a) => {
                        settings.aggregates.insert(a);
                    }
                    None => {
                        let loc = self.at(name);
                        self.problem(
                            Diagnostic::new(format!(
                                "unknown aggregate `{}`; runner keeps `weekly` and `monthly`",
                                name.get_ref()
                            ))
                            .at(loc)
                            .key("storage.aggregates"),
                        );
                    }
                }
            }
        }
        settings.maintain_after_ingest = s.maintain_after_ingest.unwrap_or(false);
        settings
    }

    fn vars(&mut self, spec: &JobSpec, overrides: &[String]) -> Vars {
        let mut vars: Vars = spec
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect();
        for arg in overrides {
            match vars::parse_override(
                arg,
                arg.split_once('=').and_then(|(k, _)| vars.get(k.trim())),
            ) {
                Ok((key, value)) => {
                    vars.insert(key, value);
                }
                Err(message) => self.problem(Diagnostic::new(message).key("--var")),
            }
        }
        vars
    }

    fn as_of(&mut self, spec: &JobSpec, vars: &Vars) -> Option<NaiveDate> {
        let value = vars.get("as_of")?;
        let date = vars::as_date(value);
        if date.is_none() {
            let mut d = Diagnostic::new(format!(
                "`as_of` must be a date (YYYY-MM-DD), found `{value}`"
            ))
            .key("vars.as_of");
            if let Some(s) = spec.vars.get("as_of") {
                d = d.at(self.at(s));
            }
            self.problem(d);
        }
        date
    }

    fn database_url(&mut self, spec: &JobSpec, vars: &Vars) -> String {
        match &spec.database_url {
            Some(url) => match vars::expand(url.get_ref(), vars, env_var) {
                Ok(expanded) => expanded,
                Err(message) => {
                    let loc = self.at(url);
                    self.problem(Diagnostic::new(message).at(loc).key("database_url"));
                    String::new()
                }
            },
            None => env_var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
        }
    }

    /// Expand `${…}` in a path value and make it absolute.
    fn resolve(&mut self, root: &Path, value: &Spanned<String>, vars: &Vars, key: &str) -> PathBuf {
        match vars::expand(value.get_ref(), vars, env_var) {
            Ok(expanded) => root.join(expanded),
            Err(message) => {
                let loc = self.at(value);
                self.problem(Diagnostic::new(message).at(loc).key(key));
                PathBuf::new()
            }
        }
    }

    fn ingest(&mut self, spec: &JobSpec, root: &Path, vars: &Vars) -> Vec<IngestSource> {
        let mut sources = Vec::new();
        for (i, src) in spec.ingest.iter().enumerate() {
            let name = src
                .name
                .as_ref()
                .map(|n| n.get_ref().clone())
                .unwrap_or_else(|| {
                    format!(
                        "{}{}",
                        kind_name(src.kind),
                        if i > 0 {
                            format!("_{i}")
                        } else {
                            String::new()
                        }
                    )
                });
            let key = format!("ingest.{name}.paths");
            if src.paths.get_ref().is_empty() {
                let loc = self.at(&src.paths);
                self.problem(
                    Diagnostic::new("`paths` lists no files")
                        .at(loc)
                        .key(key.clone()),
                );
            }
            let mut patterns = Vec::new();
            for p in src.paths.get_ref() {
                let resolved = self.resolve(root, p, vars, &key);
                let pattern = resolved.to_string_lossy().into_owned();
                match glob::Pattern::new(&pattern) {
                    Ok(_) => patterns.push(pattern),
                    Err(e) => {
                        let loc = self.at(p);
                        self.problem(
                            Diagnostic::new(format!("bad glob pattern: {e}"))
                                .at(loc)
                                .key(key.clone()),
                        );
                    }
                }
            }
            let max_reject_ratio = src.max_reject_ratio.as_ref().map(|r| {
                let value = *r.get_ref();
                if !(0.0..=1.0).contains(&value) {
                    let loc = self.at(r);
                    self.problem(
                        Diagnostic::new(format!(
                            "`max_reject_ratio` must be between 0 and 1, found {value}"
                        ))
                        .at(loc)
                        .key(format!("ingest.{name}.max_reject_ratio")),
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
    fn rules(
        &mut self,
        src: &super::spec::IngestSpec,
        name: &str,
    ) -> crate::ingest::rules::RuleSet {
        use crate::ingest::rules::{Outcome, Rule, RuleSet};
        let mut rules = RuleSet::default();
        for (rule_name, outcome) in &src.rules {
            let key = format!("ingest.{name}.rules.{rule_name}");
            let loc = self.at(outcome);
            let Some(rule) = Rule::from_name(rule_name) else {
                let known: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                let mut d = Diagnostic::new(format!(
                    "unknown rule `{rule_name}`; known rules: {}",
                    known.join(", ")
                ))
                .at(loc)
                .key(key);
                if let Some(s) = suggest(rule_name, known) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                self.problem(d);
                continue;
            };
            let Some(outcome_value) = Outcome::from_name(outcome.get_ref()) else {
                self.problem(
                    Diagnostic::new(format!(
                        "unknown outcome `{}` for rule `{rule_name}`: use `reject`, `repair` or `flag`",
                        outcome.get_ref()
                    ))
                    .at(loc)
                    .key(key),
                );
                continue;
            };
            if let Err(message) = rules.set(rule, outcome_value) {
                self.problem(Diagnostic::new(message).at(loc).key(key));
            }
        }
        rules
    }

    fn report(&mut self, spec: &JobSpec, root: &Path, vars: &Vars) -> ReportSettings {
        let dir = match &spec.report.dir {
            Some(dir) => self.resolve(root, dir, vars, "report.dir"),
            None => root.join("reports").join(spec.name.get_ref().trim()),
        };
        ReportSettings {
            dir,
            formats: spec.report.formats.clone().unwrap_or_else(|| {
                vec![
                    OutputFormat::Csv,
                    OutputFormat::Markdown,
                    OutputFormat::Html,
                ]
            }),
            max_rows: spec.report.max_rows.unwrap_or(50),
        }
    }

    fn analyses(
        &mut self,
        spec: &JobSpec,
        templates_dir: &Path,
        report: &ReportSettings,
    ) -> Vec<Analysis> {
        let mut seen = HashSet::new();
        let mut analyses = Vec::new();
        for a in &spec.analysis {
            let name = a.name.get_ref().clone();
            if !is_identifier(&name) {
                let loc = self.at(&a.name);
                self.problem(
                    Diagnostic::new(format!(
                        "analysis name `{name}` must be lowercase letters, digits and `_` (it names files and tables)"
                    ))
                    .at(loc)
                    .key("analysis.name"),
                );
            } else if !seen.insert(name.clone()) {
                let loc = self.at(&a.name);
                self.problem(
                    Diagnostic::new(format!("analysis `{name}` is defined twice"))
                        .at(loc)
                        .key("analysis.name"),
                );
            }
            let template = a.template.get_ref().clone();
            if !templates_dir.join(&template).is_file() {
                let loc = self.at(&a.template);
                self.problem(
                    Diagnostic::new(format!(
                        "template `{template}` of analysis `{name}` not found in `{}`",
                        templates_dir.display()
                    ))
                    .at(loc)
                    .key(format!("analysis.{name}.template")),
                );
            }
            for chart in &a.chart {
                if let Err(message) = chart.validate(None) {
                    self.problem(Diagnostic::new(message).key(format!("analysis.{name}.chart")));
                }
            }
            let materialize = a.materialize.as_ref().map(|m| *m.get_ref());
            self.check_incremental(a, &name, materialize);
            analyses.push(Analysis {
                name,
                description: a.description.clone(),
                template,
                outputs: a.outputs.clone().unwrap_or_else(|| report.formats.clone()),
                charts: a.chart.clone(),
                materialize,
                depends_on: a.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
                time_column: a.time_column.as_ref().map(|t| t.get_ref().clone()),
                unique_key: a.unique_key.clone(),
            });
        }
        self.check_depends_on(spec, &seen);
        analyses
    }

    /// `time_column` and `unique_key` belong to incremental analyses, which need both.
    fn check_incremental(
        &mut self,
        a: &super::spec::AnalysisSpec,
        name: &str,
        materialize: Option<Materialize>,
    ) {
        let key = format!("analysis.{name}.materialize");
        let incremental = materialize == Some(Materialize::Incremental);
        match (&a.time_column, incremental) {
            (None, true) => {
                let mut d = Diagnostic::new(format!(
                    "incremental analysis `{name}` needs `time_column` (the column whose newer values are appended)"
                ))
                .key(key.clone());
                if let Some(m) = &a.materialize {
                    d = d.at(self.at(m));
                }
                self.problem(d);
            }
            (Some(t), false) => {
                let loc = self.at(t);
                self.problem(
                    Diagnostic::new(
                        "`time_column` only applies to `materialize = \"incremental\"`",
                    )
                    .at(loc)
                    .key(format!("analysis.{name}.time_column")),
                );
            }
            (Some(t), true) if !a.unique_key.is_empty() && !a.unique_key.contains(t.get_ref()) => {
                let loc = self.at(t);
                self.problem(
                    Diagnostic::new(format!(
                        "`unique_key` must include the time column `{}`",
                        t.get_ref()
                    ))
                    .at(loc)
                    .key(format!("analysis.{name}.unique_key")),
                );
            }
            _ => {}
        }
        if !a.unique_key.is_empty() && !incremental {
            self.problem(
                Diagnostic::new("`unique_key` only applies to `materialize = \"incremental\"`")
                    .key(format!("analysis.{name}.unique_key")),
            );
        }
    }

    /// Every name in `depends_on` is an analysis of this job.
    fn check_depends_on(&mut self, spec: &JobSpec, names: &HashSet<String>) {
        for a in &spec.analysis {
            for dep in &a.depends_on {
                if names.contains(dep.get_ref()) {
                    continue;
                }
                let loc = self.at(dep);
                let mut d = Diagnostic::new(format!(
                    "analysis `{}` depends on `{}`, which this job does not define",
                    a.name.get_ref(),
                    dep.get_ref()
                ))
                .at(loc)
                .key(format!("analysis.{}.depends_on", a.name.get_ref()));
                if let Some(s) = suggest(dep.get_ref(), names.iter().map(String::as_str)) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                self.problem(d);
            }
        }
    }
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Prices => "prices",
        SourceKind::Symbols => "symbols",
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Lowercase ASCII identifier: safe as a file name and as an unquoted SQL name.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48
}

/// The folder relative job paths resolve against (see [`Job::root`]).
fn project_root(job_path: &Path) -> PathBuf {
    let absolute = std::path::absolute(job_path).unwrap_or_else(|_| job_path.to_owned());
    let dir = absolute.parent().map(Path::to_owned).unwrap_or_default();
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(parent)) if name == "jobs" => parent.to_owned(),
        _ => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_the_closest_known_key() {
        let msg = "unknown field `templat`, expected one of `name`, `description`, `template`, `outputs`, `chart`";
        assert_eq!(
            unknown_key_hint(msg).as_deref(),
            Some("did you mean `template`?")
        );
    }

    #[test]
    fn root_is_above_a_jobs_folder() {
        assert_eq!(
            project_root(Path::new("/p/jobs/q.toml")),
            PathBuf::from("/p")
        );
        assert_eq!(
            project_root(Path::new("/p/other/q.toml")),
            PathBuf::from("/p/other")
        );
    }

    #[test]
    fn identifiers_are_lowercase_words() {
        assert!(is_identifier("weekly_avg_close2"));
        assert!(!is_identifier("Weekly"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
