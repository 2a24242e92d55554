//! Rendering an analysis template to SQL with the job's variables, and turning template
//! errors into diagnostics that point at the template file and line.

use std::path::Path;

use chrono::NaiveDate;
use minijinja::value::Value;
use minijinja::Environment;

use super::env::{to_value, SqlDate};
use crate::error::{Diagnostic, Error, Location};
use crate::job::{Analysis, Job};

/// The variables every template sees: the job's `[vars]` (after `--var`), plus `as_of`
/// (the run's as-of date), `job` (its name) and `timescaledb` (true when in use).
pub fn context(job: &Job, as_of: Option<NaiveDate>, timescaledb: bool) -> Value {
    let mut map: std::collections::BTreeMap<String, Value> = job
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), to_value(v)))
        .collect();
    map.insert(
        "as_of".into(),
        as_of.map_or(Value::from(()), |d| Value::from_object(SqlDate(d))),
    );
    map.insert("job".into(), Value::from(job.name.clone()));
    map.insert("timescaledb".into(), Value::from(timescaledb));
    Value::from(map)
}

/// Render one analysis to SQL.
///
/// # Errors
/// A config error naming the template file and line, with the line's text.
pub fn render(
    env: &Environment<'_>,
    templates_dir: &Path,
    analysis: &Analysis,
    ctx: &Value,
) -> Result<String, Error> {
    let rendered = env
        .get_template(&analysis.template)
        .and_then(|t| t.render(ctx));
    let sql = rendered
        .map(|sql| sql.trim().trim_end_matches(';').trim_end().to_owned())
        .map_err(|e| {
            Error::config(
                template_diagnostic(&e, templates_dir, &analysis.template)
                    .key(format!("analysis.{}", analysis.name)),
            )
        })?;
    if let Err(why) = super::statement::check_one_select(&sql) {
        return Err(Error::config(
            Diagnostic::new(format!(
                "an analysis must be one SELECT: template `{}` of analysis `{}` renders to something else ({why})",
                analysis.template, analysis.name
            ))
            .at(Location::line(&templates_dir.join(&analysis.template), 1))
            .key(format!("analysis.{}.template", analysis.name))
            .help("an analysis reads; use `materialize` to keep its result in a table"),
        ));
    }
    Ok(sql)
}

/// A diagnostic for a minijinja error, located in the template it happened in (which
/// may be an imported macro file rather than the analysis template itself).
pub fn template_diagnostic(
    e: &minijinja::Error,
    templates_dir: &Path,
    fallback: &str,
) -> Diagnostic {
    let name = e.name().unwrap_or(fallback);
    let path = templates_dir.join(name);
    let detail = e
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| e.kind().to_string());
    let source = std::fs::read_to_string(&path).ok();
    // minijinja says "undefined value" without naming it; its error keeps the byte range
    // of the expression, so name it and point at it.
    let undefined = (e.kind() == minijinja::ErrorKind::UndefinedError)
        .then(|| e.range().zip(source.as_deref()))
        .flatten()
        .and_then(|(range, source)| Some((source.get(range.clone())?.trim().to_owned(), range)))
        .filter(|(text, _)| !text.is_empty());
    if let (Some((expression, range)), Some(source)) = (&undefined, &source) {
        let root: String = expression
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut d = Diagnostic::new(format!("template `{name}`: `{expression}` is undefined")).at(
            Location::from_offset(&path, source, range.start, expression.chars().count()),
        );
        if !root.is_empty() && root == *expression {
            d = d.help(format!(
                "templates see the job's [vars], `as_of`, `job` and `timescaledb`; define `{root}` in [vars] or pass --var {root}=…"
            ));
        }
        return d;
    }
    let mut d = Diagnostic::new(format!("template `{name}`: {detail}"));
    if let Some(line) = e.line() {
        let mut loc = Location::line(&path, line);
        if let Some(source) = &source {
            loc.source_line = source.lines().nth(line - 1).map(str::to_owned);
            loc.width = loc
                .source_line
                .as_ref()
                .map_or(1, |l| l.trim_end().chars().count().max(1));
        }
        d = d.at(loc);
    }
    d
}
