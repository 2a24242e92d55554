//! `[[analysis]]`: names, templates, charts, materialization and dependencies.

use std::collections::HashSet;
use std::path::Path;

use super::{is_identifier, Planner, ReportSettings};
use crate::analysis::native::Native;
use crate::error::suggest;
use crate::job::spec::{AnalysisSpec, JobSpec, Materialize, OutputFormat};
use crate::report::ChartSpec;

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
    /// How long its statement may run before the server cancels it.
    pub statement_timeout: std::time::Duration,
    /// Computed by runner instead of by the template (see `analysis::native`).
    pub native: Option<Native>,
}

impl Planner<'_> {
    pub(super) fn analyses(
        &mut self,
        spec: &JobSpec,
        templates_dir: &Path,
        report: &ReportSettings,
    ) -> Vec<Analysis> {
        let mut seen = HashSet::new();
        let mut analyses = Vec::new();
        let job_timeout = self
            .seconds(spec.statement_timeout.as_ref(), "statement_timeout")
            .unwrap_or(crate::db::timeouts::DEFAULT_STATEMENT_TIMEOUT);
        for a in &spec.analysis {
            let name = a.name.get_ref().clone();
            if !is_identifier(&name) {
                self.problem_at(
                    &a.name,
                    "analysis.name",
                    format!(
                        "analysis name `{name}` must be lowercase letters, digits and `_` (it names files and tables)"
                    ),
                );
            } else if !seen.insert(name.clone()) {
                self.problem_at(
                    &a.name,
                    "analysis.name",
                    format!("analysis `{name}` is defined twice"),
                );
            }
            let template = a.template.get_ref().clone();
            if !templates_dir.join(&template).is_file() {
                self.problem_at(
                    &a.template,
                    format!("analysis.{name}.template"),
                    format!(
                        "template `{template}` of analysis `{name}` not found in `{}`",
                        templates_dir.display()
                    ),
                );
            }
            for chart in &a.chart {
                if let Err(error) = chart.validate(None) {
                    self.problem(format!("analysis.{name}.chart"), error.to_string());
                }
            }
            let materialize = a.materialize.as_ref().map(|m| *m.get_ref());
            self.check_incremental(a, &name, materialize);
            let native = self.native(a, &name, materialize);
            let statement_timeout = self
                .seconds(
                    a.statement_timeout.as_ref(),
                    &format!("analysis.{name}.statement_timeout"),
                )
                .unwrap_or(job_timeout);
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
                statement_timeout: std::time::Duration::from_secs(statement_timeout),
                native,
            });
        }
        self.check_depends_on(spec, &seen);
        analyses
    }

    /// `time_column` and `unique_key` belong to incremental analyses, which need both.
    fn check_incremental(
        &mut self,
        a: &AnalysisSpec,
        name: &str,
        materialize: Option<Materialize>,
    ) {
        let key = format!("analysis.{name}.materialize");
        let incremental = materialize == Some(Materialize::Incremental);
        match (&a.time_column, incremental) {
            (None, true) => {
                let location = a.materialize.as_ref().map(|m| self.at(m));
                self.problem(
                    key,
                    format!(
                        "incremental analysis `{name}` needs `time_column` (the column whose newer values are appended)"
                    ),
                )
                .location = location;
            }
            (Some(t), false) => {
                self.problem_at(
                    t,
                    format!("analysis.{name}.time_column"),
                    "`time_column` only applies to `materialize = \"incremental\"`",
                );
            }
            (Some(t), true) if !a.unique_key.is_empty() && !a.unique_key.contains(t.get_ref()) => {
                self.problem_at(
                    t,
                    format!("analysis.{name}.unique_key"),
                    format!(
                        "`unique_key` must include the time column `{}`",
                        t.get_ref()
                    ),
                );
            }
            _ => {}
        }
        if !a.unique_key.is_empty() && !incremental {
            self.problem(
                format!("analysis.{name}.unique_key"),
                "`unique_key` only applies to `materialize = \"incremental\"`",
            );
        }
    }

    /// `native`: a name runner knows, on an incremental analysis keyed as its rows are.
    fn native(
        &mut self,
        a: &AnalysisSpec,
        name: &str,
        materialize: Option<Materialize>,
    ) -> Option<Native> {
        let spec = a.native.as_ref()?;
        let key = format!("analysis.{name}.native");
        let Some(native) = Native::from_name(spec.get_ref()) else {
            let hint = suggest(spec.get_ref(), Native::NAMES.iter().copied())
                .map(|s| format!("did you mean `{s}`?"));
            self.problem_at(
                spec,
                key,
                format!(
                    "runner computes no `{}` natively (it knows: {})",
                    spec.get_ref(),
                    Native::NAMES.join(", ")
                ),
            )
            .help = hint;
            return None;
        };
        let (time, unique) = native.key();
        let keyed = materialize == Some(Materialize::Incremental)
            && a.time_column.as_ref().map(|t| t.get_ref().as_str()) == Some(time)
            && a.unique_key
                .iter()
                .map(String::as_str)
                .eq(unique.iter().copied());
        if !keyed {
            self.problem_at(
                spec,
                key,
                format!(
                    "native `{}` needs materialize = \"incremental\", time_column = \"{time}\" and unique_key = [{}]",
                    native.name(),
                    unique.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
                ),
            );
            return None;
        }
        Some(native)
    }

    /// Every name in `depends_on` is an analysis of this job.
    fn check_depends_on(&mut self, spec: &JobSpec, names: &HashSet<String>) {
        for a in &spec.analysis {
            for dep in &a.depends_on {
                if names.contains(dep.get_ref()) {
                    continue;
                }
                let hint = suggest(dep.get_ref(), names.iter().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"));
                self.problem_at(
                    dep,
                    format!("analysis.{}.depends_on", a.name.get_ref()),
                    format!(
                        "analysis `{}` depends on `{}`, which this job does not define",
                        a.name.get_ref(),
                        dep.get_ref()
                    ),
                )
                .help = hint;
            }
        }
    }
}
