//! Warnings a user needs: input that is not wrong enough to stop a run but would
//! otherwise pass in silence.
//!
//! * a `--var` name nothing reads (a typo like `--var symbl=MSFT` would leave the
//!   job's `symbol` in force), with the closest name;
//! * a symbol variable (`symbol`, `symbols`, `*_symbol`, `*_symbols`: what the
//!   shipped templates filter on) whose value matches no loaded symbol, so its
//!   analyses come out empty.

use std::collections::BTreeSet;
use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};

use crate::analysis::env::{environment, Dialect};
use crate::error::{suggest, Result};
use crate::job::{Job, VarValue};

/// Names every template sees besides the job's variables.
const BUILTIN: &[&str] = &["as_of", "job", "timescaledb", "this", "is_incremental"];

/// One warning per `--var` override whose name neither the job file nor any template
/// reads.
pub fn unknown_overrides(job: &Job, overrides: &[String]) -> Vec<String> {
    let names: Vec<&str> = overrides
        .iter()
        .filter_map(|arg| arg.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    let mut known: BTreeSet<String> = job.declared_vars.clone();
    known.extend(BUILTIN.iter().map(|s| (*s).to_owned()));
    if let Ok(text) = std::fs::read_to_string(&job.path) {
        known.extend(expanded_names(&text));
    }
    known.extend(template_names(&job.templates_dir));
    names
        .into_iter()
        .filter(|name| !known.contains(*name))
        .map(|name| {
            let mut warning = format!(
                "warning: `--var {name}`: neither the job nor its templates use a variable `{name}`, so it changes nothing"
            );
            if let Some(close) = suggest(name, known.iter().map(String::as_str)) {
                warning.push_str(&format!("; did you mean `{close}`?"));
            }
            warning
        })
        .collect()
}

/// The names in `${name}` and `${name:-default}` of a job file.
fn expanded_names(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(['}', ':'])?;
            Some(rest[..end].trim().to_owned())
        })
        .collect()
}

/// The variables the templates below `dir` read (macro files included).
fn template_names(dir: &Path) -> BTreeSet<String> {
    let env = environment(dir, Dialect::Postgres);
    let mut names = BTreeSet::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = path
                .strip_prefix(dir)
                .ok()
                .and_then(|p| p.to_str())
                .map(|p| p.replace('\\', "/"))
            {
                if let Ok(template) = env.get_template(&name) {
                    names.extend(template.undeclared_variables(false));
                }
            }
        }
    }
    names
}

/// The symbol variables of `job` with the symbols they name.
fn symbol_vars(job: &Job) -> Vec<(&str, Vec<&str>)> {
    job.vars
        .iter()
        .filter_map(|(name, value)| {
            let one = name == "symbol" || name.ends_with("_symbol");
            let many = name == "symbols" || name.ends_with("_symbols");
            let values: Vec<&str> = match value {
                VarValue::String(s) if one => vec![s.as_str()],
                VarValue::Array(items) if many => items.iter().filter_map(|v| v.as_str()).collect(),
                _ => return None,
            };
            (!values.is_empty()).then_some((name.as_str(), values))
        })
        .collect()
}

#[derive(QueryableByName)]
struct Symbol {
    #[diesel(sql_type = Text)]
    symbol: String,
}

/// One warning per symbol variable value that no loaded price has.
///
/// # Errors
/// When the database cannot be asked.
pub fn unmatched_symbols(conn: &mut PgConnection, job: &Job) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (name, values) in symbol_vars(job) {
        let missing: Vec<Symbol> = diesel::sql_query(
            "SELECT s.symbol FROM unnest($1::text[]) WITH ORDINALITY AS s(symbol, n) \
             WHERE NOT EXISTS (SELECT 1 FROM daily_prices p WHERE p.symbol = s.symbol) ORDER BY n",
        )
        .bind::<Array<Text>, _>(&values)
        .load(conn)
        .map_err(crate::db::db_error("looking up the symbol variables"))?;
        if missing.is_empty() {
            continue;
        }
        let known: Vec<Symbol> =
            diesel::sql_query("SELECT symbol FROM symbols UNION SELECT symbol FROM ingest_files")
                .load(conn)
                .unwrap_or_default();
        for m in missing {
            let mut warning = format!(
                "`{name}` = `{}` matches no symbol with prices in the database; its analyses will be empty",
                m.symbol
            );
            if let Some(close) = suggest(&m.symbol, known.iter().map(|k| k.symbol.as_str())) {
                warning.push_str(&format!(" (did you mean `{close}`?)"));
            }
            warnings.push(warning);
        }
    }
    Ok(warnings)
}
