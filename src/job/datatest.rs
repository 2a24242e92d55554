//! `[[test]]` sections: data tests on sources, analyses and materializations, in the
//! spirit of `dbt test` and source freshness. Each test is a query returning the
//! failing rows; none means it passed.
//!
//! ```toml
//! [[test]]
//! kind = "unique"          # unique, not_null, accepted_range, row_count, freshness,
//!                          # no_gaps, or custom (a template returning failing rows)
//! on = "daily_prices"      # a table of runner's (daily_prices, symbols, prices_weekly,
//!                          # prices_monthly, intraday_bars) or an analysis of the job
//! columns = ["symbol", "day"]
//! severity = "error"       # or "warn": reported, but the run still exits 0
//! ```

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Diagnostic, Location};
use crate::job::Analysis;

/// Runner's own tables a test may be `on`.
pub const TABLES: [&str; 5] = [
    "daily_prices",
    "symbols",
    "prices_weekly",
    "prices_monthly",
    "intraday_bars",
];

/// A `[[test]]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    pub name: Option<Spanned<String>>,
    pub kind: Spanned<String>,
    pub on: Option<Spanned<String>>,
    #[serde(default)]
    pub columns: Vec<String>,
    pub column: Option<String>,
    pub min: Option<Spanned<toml::Value>>,
    pub max: Option<Spanned<toml::Value>>,
    /// freshness: at most this many weekdays behind.
    pub within: Option<Spanned<i64>>,
    /// freshness: measured against `as_of` (default) or `today`.
    pub of: Option<Spanned<String>>,
    /// freshness, no_gaps: checked per value of this column (default `symbol`).
    pub partition: Option<String>,
    /// custom: the template, relative to the templates folder.
    pub template: Option<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
    pub description: Option<String>,
}

/// How much a failing test matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported; the run's exit code stays 0.
    Warn,
    /// Fails the run with [`crate::error::EXIT_TESTS`].
    Error,
}

/// Where the rows under test come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One of [`TABLES`].
    Table(String),
    /// An analysis of the job (its kept relation, or its query when not materialized).
    Analysis(String),
}

/// What a test checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Unique {
        columns: Vec<String>,
    },
    NotNull {
        columns: Vec<String>,
    },
    AcceptedRange {
        column: String,
        min: Option<String>,
        max: Option<String>,
    },
    RowCount {
        min: Option<i64>,
        max: Option<i64>,
    },
    Freshness {
        column: String,
        partition: Option<String>,
        within: i64,
        of_today: bool,
    },
    NoGaps {
        column: String,
        partition: String,
    },
    Custom {
        template: String,
    },
}

/// A checked `[[test]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTest {
    pub name: String,
    pub description: Option<String>,
    pub target: Option<Target>,
    pub check: Check,
    pub severity: Severity,
}

/// Check the `[[test]]` sections against the job's analyses. `at` turns a span of the
/// job file into a location.
pub fn plan(
    specs: &[TestSpec],
    analyses: &[Analysis],
    at: &dyn Fn(Range<usize>) -> Location,
) -> (Vec<DataTest>, Vec<Diagnostic>) {
    let mut tests = Vec::new();
    let mut problems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let key = format!("test[{i}]");
        let mut problem = |message: String, span: Range<usize>, field: &str| {
            problems.push(
                Diagnostic::new(message)
                    .at(at(span))
                    .key(format!("{key}.{field}")),
            );
        };
        let kind_span = spec.kind.span();
        let target = match &spec.on {
            Some(on) => {
                let name = on.get_ref().trim();
                if analyses.iter().any(|a| a.name == name) {
                    Some(Target::Analysis(name.to_owned()))
                } else if TABLES.contains(&name) {
                    Some(Target::Table(name.to_owned()))
                } else {
                    problem(
                        format!(
                            "`on = \"{name}\"` is neither an analysis of this job nor one of {}",
                            TABLES.join(", ")
                        ),
                        on.span(),
                        "on",
                    );
                    continue;
                }
            }
            None => None,
        };
        let need_target = |problem: &mut dyn FnMut(String, Range<usize>, &str)| {
            if target.is_none() {
                problem(
                    format!("a `{}` test needs `on`", spec.kind.get_ref()),
                    kind_span.clone(),
                    "on",
                );
            }
        };
        let columns = || spec.columns.clone();
        let column = |default: &str| spec.column.clone().unwrap_or_else(|| default.to_owned());
        let bound = |v: &Option<Spanned<toml::Value>>| -> Option<String> {
            v.as_ref().map(|v| match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let check = match spec.kind.get_ref().as_str() {
            "unique" | "not_null" => {
                need_target(&mut problem);
                if spec.columns.is_empty() {
                    problem(
                        format!("a `{}` test needs `columns`", spec.kind.get_ref()),
                        kind_span.clone(),
                        "columns",
                    );
                }
                if spec.kind.get_ref() == "unique" {
                    Check::Unique { columns: columns() }
                } else {
                    Check::NotNull { columns: columns() }
                }
            }
            "accepted_range" => {
                need_target(&mut problem);
                if spec.column.is_none() || (spec.min.is_none() && spec.max.is_none()) {
                    problem(
                        "an `accepted_range` test needs `column` and `min` and/or `max`".to_owned(),
                        kind_span.clone(),
                        "column",
                    );
                }
                Check::AcceptedRange {
                    column: column(""),
                    min: bound(&spec.min),
                    max: bound(&spec.max),
                }
            }
            "row_count" => {
                need_target(&mut problem);
                let int =
                    |v: &Option<Spanned<toml::Value>>,
                     field: &str,
                     problem: &mut dyn FnMut(String, Range<usize>, &str)| {
                        v.as_ref().and_then(|v| match v.get_ref() {
                            toml::Value::Integer(n) => Some(*n),
                            _ => {
                                problem(
                                    format!("`{field}` of a `row_count` test must be an integer"),
                                    v.span(),
                                    field,
                                );
                                None
                            }
                        })
                    };
                let min = int(&spec.min, "min", &mut problem);
                let max = int(&spec.max, "max", &mut problem);
                Check::RowCount { min, max }
            }
            "freshness" => {
                need_target(&mut problem);
                let of_today = match &spec.of {
                    None => false,
                    Some(of) => match of.get_ref().as_str() {
                        "as_of" => false,
                        "today" => true,
                        other => {
                            problem(
                                format!("`of = \"{other}\"`: expected \"as_of\" or \"today\""),
                                of.span(),
                                "of",
                            );
                            false
                        }
                    },
                };
                let within = match &spec.within {
                    Some(w) if *w.get_ref() >= 0 => *w.get_ref(),
                    Some(w) => {
                        problem(
                            "`within` must be 0 or more weekdays".to_owned(),
                            w.span(),
                            "within",
                        );
                        0
                    }
                    None => {
                        problem(
                            "a `freshness` test needs `within` (weekdays)".to_owned(),
                            kind_span.clone(),
                            "within",
                        );
                        0
                    }
                };
                Check::Freshness {
                    column: column("day"),
                    partition: spec.partition.clone(),
                    within,
                    of_today,
                }
            }
            "no_gaps" => {
                need_target(&mut problem);
                Check::NoGaps {
                    column: column("day"),
                    partition: spec
                        .partition
                        .clone()
                        .unwrap_or_else(|| "symbol".to_owned()),
                }
            }
            "custom" => match &spec.template {
                Some(t) => Check::Custom {
                    template: t.get_ref().clone(),
                },
                None => {
                    problem(
                        "a `custom` test needs `template` (a query returning the failing rows)"
                            .to_owned(),
                        kind_span.clone(),
                        "template",
                    );
                    continue;
                }
            },
            other => {
                problem(
                    format!(
                        "unknown test kind `{other}`: expected unique, not_null, accepted_range, \
                         row_count, freshness, no_gaps or custom"
                    ),
                    kind_span.clone(),
                    "kind",
                );
                continue;
            }
        };
        let severity = match spec
            .severity
            .as_ref()
            .map(|s| (s.get_ref().as_str(), s.span()))
        {
            None | Some(("error", _)) => Severity::Error,
            Some(("warn", _)) => Severity::Warn,
            Some((other, span)) => {
                problem(
                    format!("`severity = \"{other}\"`: expected \"error\" or \"warn\""),
                    span,
                    "severity",
                );
                Severity::Error
            }
        };
        let name = match &spec.name {
            Some(n) => n.get_ref().clone(),
            None => default_name(spec, target.as_ref()),
        };
        tests.push(DataTest {
            name,
            description: spec.description.clone(),
            target,
            check,
            severity,
        });
    }
    (tests, problems)
}

/// `unique_daily_prices_symbol_day`, `freshness_daily_prices`, …
fn default_name(spec: &TestSpec, target: Option<&Target>) -> String {
    let mut parts = vec![spec.kind.get_ref().clone()];
    match target {
        Some(Target::Table(t) | Target::Analysis(t)) => parts.push(t.clone()),
        None => {}
    }
    parts.extend(spec.columns.iter().cloned());
    parts.extend(spec.column.iter().cloned());
    if let Some(t) = &spec.template {
        parts.push(
            t.get_ref()
                .trim_end_matches(".sql")
                .replace(['/', '.'], "_"),
        );
    }
    parts.join("_")
}
