//! Job variables: typed values from `[vars]`, `--var key=value` overrides, and
//! `${name}` / `${name:-default}` expansion in paths and URLs.
//!
//! Overrides take the type of the variable they replace (so `--var symbol=123` stays the
//! string `'123'`), and new variables are typed by their look: integers, floats,
//! booleans, `YYYY-MM-DD` dates and `[a,b]` lists. Expansion happens on parsed values,
//! never on the raw file, so error positions stay right.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// A variable's value: the TOML value model (strings, numbers, booleans, dates, lists).
pub type VarValue = toml::Value;

/// Variables in definition order of their names.
pub type Vars = BTreeMap<String, VarValue>;

/// Why a `--var` or a `${…}` could not be used. Each becomes a config diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    #[error("`--var {arg}` is not of the form KEY=VALUE")]
    NotKeyValue { arg: String },
    #[error("`--var {arg}`: variable names use letters, digits and `_` only")]
    BadName { arg: String },
    #[error("`--var {key}={raw}`: expected {expected}, like the job's `{key}`")]
    WrongType {
        key: String,
        raw: String,
        expected: &'static str,
    },
    #[error("unclosed `${{` in `{text}`")]
    Unclosed { text: String },
    #[error("`${{{name}}}` is not a job variable or environment variable")]
    Unknown { name: String },
}

/// Parse `key=value` from the command line, typed like `existing` when it is set.
pub fn parse_override(
    arg: &str,
    existing: Option<&VarValue>,
) -> Result<(String, VarValue), VarError> {
    let (key, raw) = arg.split_once('=').ok_or_else(|| VarError::NotKeyValue {
        arg: arg.to_owned(),
    })?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(VarError::BadName {
            arg: arg.to_owned(),
        });
    }
    let value = match existing {
        Some(like) => coerce(raw, like).map_err(|expected| VarError::WrongType {
            key: key.to_owned(),
            raw: raw.to_owned(),
            expected,
        })?,
        None => infer(raw),
    };
    Ok((key.to_owned(), value))
}

/// The value `raw` read as the same type as `like`; on failure, what was expected.
fn coerce(raw: &str, like: &VarValue) -> Result<VarValue, &'static str> {
    let raw_trimmed = raw.trim();
    Ok(match like {
        VarValue::String(_) => VarValue::String(raw.to_owned()),
        VarValue::Integer(_) => VarValue::Integer(raw_trimmed.parse().map_err(|_| "an integer")?),
        VarValue::Float(_) => VarValue::Float(raw_trimmed.parse().map_err(|_| "a number")?),
        VarValue::Boolean(_) => {
            VarValue::Boolean(raw_trimmed.parse().map_err(|_| "true or false")?)
        }
        VarValue::Datetime(_) => date_value(raw_trimmed).ok_or("a date (YYYY-MM-DD)")?,
        VarValue::Array(items) => {
            let element_like = items.first();
            let parts = split_list(raw_trimmed);
            let mut values = Vec::with_capacity(parts.len());
            for part in parts {
                values.push(match element_like {
                    Some(like) => coerce(part, like)?,
                    None => infer(part),
                });
            }
            VarValue::Array(values)
        }
        VarValue::Table(_) => return Err("a table, which `--var` cannot set"),
    })
}

/// The most specific type `raw` looks like; a plain string when nothing else fits.
fn infer(raw: &str) -> VarValue {
    let t = raw.trim();
    if t.starts_with('[') && t.ends_with(']') {
        return VarValue::Array(split_list(t).into_iter().map(infer).collect());
    }
    if let Ok(i) = t.parse::<i64>() {
        return VarValue::Integer(i);
    }
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() {
            return VarValue::Float(f);
        }
    }
    match t {
        "true" => return VarValue::Boolean(true),
        "false" => return VarValue::Boolean(false),
        _ => {}
    }
    date_value(t).unwrap_or_else(|| VarValue::String(raw.to_owned()))
}

/// `[a, b]` or `a,b` → `["a", "b"]` (empty list for `[]`).
fn split_list(raw: &str) -> Vec<&str> {
    let inner = raw
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(raw)
        .trim();
    if inner.is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|s| s.trim().trim_matches('"').trim_matches('\''))
        .collect()
}

fn date_value(raw: &str) -> Option<VarValue> {
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    raw.parse::<toml::value::Datetime>()
        .ok()
        .filter(|_| date.to_string() == raw)
        .map(VarValue::Datetime)
}

/// The date inside a TOML value, when it is a plain date.
pub fn as_date(value: &VarValue) -> Option<NaiveDate> {
    match value {
        VarValue::Datetime(dt) if dt.time.is_none() => {
            let d = dt.date?;
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        VarValue::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
        _ => None,
    }
}

/// Expand `${name}` and `${name:-default}` from `vars` (scalars only), then the process
/// environment. `$$` is a literal `$`. Unknown names without default are an error.
pub fn expand(
    text: &str,
    vars: &Vars,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, VarError> {
    expand_with(text, vars, env, str::to_owned)
}

/// [`expand`], with each substituted value passed through `quote` first: a glob pattern
/// takes `${data_dir}` as a literal folder name, whatever `[` or `*` it holds.
pub fn expand_with(
    text: &str,
    vars: &Vars,
    env: impl Fn(&str) -> Option<String>,
    quote: impl Fn(&str) -> String,
) -> Result<String, VarError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body_and_tail) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let end = body_and_tail.find('}').ok_or_else(|| VarError::Unclosed {
            text: text.to_owned(),
        })?;
        let body = &body_and_tail[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let value = vars
            .get(name)
            .and_then(scalar_text)
            .or_else(|| env(name).filter(|v| !v.is_empty()))
            .or_else(|| default.map(str::to_owned))
            .ok_or_else(|| VarError::Unknown {
                name: name.to_owned(),
            })?;
        out.push_str(&quote(&value));
        rest = &body_and_tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The text of a scalar variable, as it appears in a path.
fn scalar_text(value: &VarValue) -> Option<String> {
    match value {
        VarValue::String(s) => Some(s.clone()),
        VarValue::Integer(i) => Some(i.to_string()),
        VarValue::Float(f) => Some(f.to_string()),
        VarValue::Boolean(b) => Some(b.to_string()),
        VarValue::Datetime(d) => Some(d.to_string()),
        VarValue::Array(_) | VarValue::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, VarValue)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn overrides_keep_the_declared_type() {
        let like = VarValue::String("AAPL".into());
        assert_eq!(
            parse_override("symbol=123", Some(&like)).unwrap().1,
            VarValue::String("123".into())
        );
        let like = VarValue::Integer(12);
        assert_eq!(
            parse_override("weeks=4", Some(&like)).unwrap().1,
            VarValue::Integer(4)
        );
        let err = parse_override("weeks=four", Some(&like))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected an integer"), "{err}");
    }

    #[test]
    fn new_variables_are_typed_by_their_look() {
        assert_eq!(infer("5"), VarValue::Integer(5));
        assert_eq!(infer("2.5"), VarValue::Float(2.5));
        assert_eq!(infer("true"), VarValue::Boolean(true));
        assert_eq!(
            as_date(&infer("2020-03-31")),
            NaiveDate::from_ymd_opt(2020, 3, 31)
        );
        assert_eq!(infer("2020-02-30"), VarValue::String("2020-02-30".into()));
        assert_eq!(
            infer("[AAPL, MSFT]"),
            VarValue::Array(vec![
                VarValue::String("AAPL".into()),
                VarValue::String("MSFT".into())
            ])
        );
        assert_eq!(
            infer("x'); DROP TABLE t; --"),
            VarValue::String("x'); DROP TABLE t; --".into())
        );
    }

    #[test]
    fn list_overrides_take_the_element_type() {
        let like = VarValue::Array(vec![VarValue::Integer(1)]);
        assert_eq!(
            parse_override("n=[3,4]", Some(&like)).unwrap().1,
            VarValue::Array(vec![VarValue::Integer(3), VarValue::Integer(4)])
        );
    }

    #[test]
    fn rejects_malformed_overrides() {
        assert!(parse_override("novalue", None).is_err());
        assert!(parse_override("bad key=1", None).is_err());
    }

    #[test]
    fn expands_vars_then_env_then_default() {
        let v = vars(&[("data_dir", VarValue::String("/d".into()))]);
        let env = |k: &str| (k == "HOME").then(|| "/root".to_owned());
        assert_eq!(
            expand("${data_dir}/stocks/*.csv", &v, env).unwrap(),
            "/d/stocks/*.csv"
        );
        assert_eq!(expand("${HOME}/x", &v, env).unwrap(), "/root/x");
        assert_eq!(expand("${NOPE:-fallback}", &v, env).unwrap(), "fallback");
        assert_eq!(expand("cost $$5", &v, env).unwrap(), "cost $5");
        assert!(expand("${NOPE}", &v, env)
            .unwrap_err()
            .to_string()
            .contains("`${NOPE}`"));
    }
}
