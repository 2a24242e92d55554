//! The minijinja environment analyses render in, configured so that SQL injection takes
//! a visible opt-in.
//!
//! Every `{{ value }}` is auto-escaped as a SQL literal: strings are quoted, numbers and
//! booleans printed, dates become `DATE '…'`, none becomes `NULL`, lists become `(a, b)`
//! for `IN`. Identifiers go through `|ident`; raw SQL only through `|safe` (or `|sql`).
//! Dialect helpers (`bucket`, `first`, `last`, `gapfill_series`) render TimescaleDB
//! functions when the extension is there and plain PostgreSQL equivalents otherwise.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use minijinja::value::{Object, ObjectRepr, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

use crate::db::quote;
use crate::db::storage::settings::{PgInterval, Unit};
use crate::job::vars::{self, VarValue};

/// Which SQL dialect the helpers render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Timescale,
    Postgres,
}

/// A date value: renders as `DATE 'YYYY-MM-DD'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlDate(pub NaiveDate);

impl Object for SqlDate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Build the environment for templates in `templates_dir`.
pub fn environment(templates_dir: &Path, dialect: Dialect) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(minijinja::path_loader(templates_dir));
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Custom("sql"));
    env.set_formatter(sql_formatter);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("ident", ident_filter);
    env.add_filter("literal", literal_filter);
    env.add_filter("sql", sql_filter);
    env.add_filter("date", date_filter);
    env.add_filter("interval", interval_filter);
    env.add_function("bucket", move |width: String, column: String| {
        bucket(dialect, &width, &column)
    });
    env.add_function("first", move |value: String, time: String| {
        first_last(dialect, &value, &time, true)
    });
    env.add_function("last", move |value: String, time: String| {
        first_last(dialect, &value, &time, false)
    });
    env.add_function(
        "gapfill_series",
        move |start: Value, end: Value, width: String| gapfill_series(&start, &end, &width),
    );
    env.add_function("ohlcv", ohlcv);
    env
}

/// The auto-escaping formatter: every value printed is a SQL literal unless marked safe.
fn sql_formatter(out: &mut Output, _state: &State, value: &Value) -> Result<(), Error> {
    let text = if value.is_safe() {
        value.to_string()
    } else {
        literal(value)?
    };
    out.write_str(&text).map_err(Error::from)
}

/// `value` as a SQL literal.
pub fn literal(value: &Value) -> Result<String, Error> {
    if let Some(date) = value.downcast_object_ref::<SqlDate>() {
        return Ok(format!("DATE '{}'", date.0));
    }
    Ok(match value.kind() {
        ValueKind::None => "NULL".to_owned(),
        ValueKind::Undefined => {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "undefined value in SQL",
            ));
        }
        ValueKind::Bool => if value.is_true() { "TRUE" } else { "FALSE" }.to_owned(),
        ValueKind::Number => number_literal(value)?,
        ValueKind::String => quote::literal(value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()?
                .map(|item| literal(&item))
                .collect::<Result<_, _>>()?;
            if items.is_empty() {
                // `IN ()` is a syntax error; `IN (NULL)` matches nothing, as intended.
                "(NULL)".to_owned()
            } else {
                format!("({})", items.join(", "))
            }
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("a {other} cannot be used as a SQL value; pick one of its fields"),
            ))
        }
    })
}

fn number_literal(value: &Value) -> Result<String, Error> {
    if value.is_integer() {
        if let Some(i) = value.as_i64() {
            return Ok(i.to_string());
        }
    }
    let f = f64::try_from(value.clone())?;
    if !f.is_finite() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{f} is not a SQL number"),
        ));
    }
    // Rust prints floats without exponent, which PostgreSQL reads as numeric exactly.
    Ok(if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    })
}

fn ident_filter(value: &Value) -> Result<Value, Error> {
    let name = value
        .as_str()
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "`ident` takes a string"))?;
    if name.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "`ident` of an empty string",
        ));
    }
    Ok(Value::from_safe_string(quote::ident(name)))
}

fn literal_filter(value: &Value) -> Result<Value, Error> {
    Ok(Value::from_safe_string(literal(value)?))
}

/// The explicit opt-in for raw SQL text.
fn sql_filter(value: &Value) -> Value {
    Value::from_safe_string(value.to_string())
}

fn date_filter(value: &Value) -> Result<Value, Error> {
    if value.downcast_object_ref::<SqlDate>().is_some() {
        return Ok(value.clone());
    }
    let text = value.as_str().unwrap_or_default();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| Value::from_object(SqlDate(d)))
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("`{value}` is not a date (YYYY-MM-DD)"),
            )
        })
}

fn interval_filter(value: &Value) -> Result<Value, Error> {
    let width = Width::parse(&value.to_string())?;
    Ok(Value::from_safe_string(format!(
        "INTERVAL {}",
        quote::literal(&width.text())
    )))
}

/// A bucket width: whole days (and weeks), or whole months (and quarters, years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    Days(u32),
    Months(u32),
}

impl Width {
    /// Read with the storage settings' interval parser, so that a width means what an
    /// interval in `[storage]` means.
    fn parse(text: &str) -> Result<Width, Error> {
        let interval = PgInterval::parse_bucket_width(text).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("bucket width `{text}` must be like `1 day`, `2 weeks`, `1 month`, `1 quarter` or `1 year`"),
            )
        })?;
        let n = interval.amount;
        Ok(match interval.unit {
            Unit::Days => Width::Days(n),
            Unit::Weeks => Width::Days(n * 7),
            Unit::Months => Width::Months(n),
            Unit::Years => Width::Months(n * 12),
        })
    }

    fn text(self) -> String {
        match self {
            Width::Days(n) => format!("{n} days"),
            Width::Months(n) => format!("{n} months"),
        }
    }
}

/// Bucket start of `column` for `width`, as a date. TimescaleDB's `time_bucket` counts
/// day buckets from 2000-01-03 (a Monday) and month buckets from 2000-01-01; the plain
/// PostgreSQL form uses the same origins, so both give identical buckets.
fn bucket(dialect: Dialect, width: &str, column: &str) -> Result<Value, Error> {
    let width = Width::parse(width)?;
    let col = quote::qualified_ident(column);
    let sql = match (dialect, width) {
        (Dialect::Timescale, w) => format!("time_bucket(INTERVAL '{}', {col})", w.text()),
        (Dialect::Postgres, Width::Days(n)) => {
            format!("date_bin(INTERVAL '{n} days', {col}::timestamp, TIMESTAMP '2000-01-03')::date")
        }
        (Dialect::Postgres, Width::Months(1)) => format!("date_trunc('month', {col})::date"),
        (Dialect::Postgres, Width::Months(n)) => format!(
            "(DATE '2000-01-01' + (floor(((extract(year FROM {col})::int - 2000) * 12 \
             + extract(month FROM {col})::int - 1) / {n}.0)::int * {n}) * INTERVAL '1 month')::date"
        ),
    };
    Ok(Value::from_safe_string(sql))
}

/// `first(value, time)` / `last(value, time)` aggregates.
fn first_last(dialect: Dialect, value: &str, time: &str, first: bool) -> Value {
    let (v, t) = (quote::qualified_ident(value), quote::qualified_ident(time));
    let sql = match (dialect, first) {
        (Dialect::Timescale, true) => format!("first({v}, {t})"),
        (Dialect::Timescale, false) => format!("last({v}, {t})"),
        (Dialect::Postgres, true) => format!("(array_agg({v} ORDER BY {t}))[1]"),
        (Dialect::Postgres, false) => format!("(array_agg({v} ORDER BY {t} DESC))[1]"),
    };
    Value::from_safe_string(sql)
}

/// A set-returning expression of every bucket start from `start` to `end`, to LEFT JOIN
/// aggregated buckets against so empty buckets show as rows with NULLs.
fn gapfill_series(start: &Value, end: &Value, width: &str) -> Result<Value, Error> {
    let width = Width::parse(width)?;
    Ok(Value::from_safe_string(format!(
        "generate_series({}::timestamp, {}::timestamp, INTERVAL '{}')::date",
        literal(start)?,
        literal(end)?,
        width.text()
    )))
}

/// `ohlcv('weekly')` / `ohlcv('monthly')`: the relation holding that OHLCV aggregate
/// of `daily_prices` (a continuous aggregate on TimescaleDB, a table runner refreshes
/// on plain PostgreSQL; see `db::storage::aggregates` for its columns).
fn ohlcv(period: &str) -> Result<Value, Error> {
    crate::db::storage::Aggregate::from_name(period)
        .map(|a| Value::from_safe_string(quote::ident(a.relation())))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("ohlcv(`{period}`): runner keeps `weekly` and `monthly` aggregates"),
            )
        })
}

/// A job variable as a template value (dates become [`SqlDate`]).
pub fn to_value(value: &VarValue) -> Value {
    match value {
        VarValue::String(s) => Value::from(s.clone()),
        VarValue::Integer(i) => Value::from(*i),
        VarValue::Float(f) => Value::from(*f),
        VarValue::Boolean(b) => Value::from(*b),
        VarValue::Datetime(dt) => match vars::as_date(value) {
            Some(d) => Value::from_object(SqlDate(d)),
            None => Value::from(dt.to_string()),
        },
        VarValue::Array(items) => Value::from(items.iter().map(to_value).collect::<Vec<_>>()),
        VarValue::Table(t) => Value::from(
            t.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(dialect: Dialect, template: &str, ctx: Value) -> Result<String, Error> {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(dir.path(), dialect);
        env.render_str(template, ctx)
    }

    fn pg(template: &str, ctx: Value) -> String {
        render(Dialect::Postgres, template, ctx).unwrap()
    }

    #[test]
    fn every_value_type_renders_as_a_literal() {
        let date = Value::from_object(SqlDate(NaiveDate::from_ymd_opt(2020, 4, 1).unwrap()));
        let ctx = minijinja::context! {
            s => "O'Brien", i => 42, f => 2.5, whole => 3.0, t => true, n => Value::from(()),
            d => date, l => vec!["AAPL", "MSFT"], e => Vec::<String>::new(), nums => vec![1, 2],
        };
        assert_eq!(
            pg("{{ s }}|{{ i }}|{{ f }}|{{ whole }}|{{ t }}|{{ n }}|{{ d }}|{{ l }}|{{ e }}|{{ nums }}", ctx),
            "'O''Brien'|42|2.5|3.0|TRUE|NULL|DATE '2020-04-01'|('AAPL', 'MSFT')|(NULL)|(1, 2)"
        );
    }

    #[test]
    fn injection_attempts_stay_inside_the_literal() {
        let ctx = minijinja::context! { symbol => "x'); DROP TABLE daily_prices; --" };
        assert_eq!(
            pg("WHERE symbol = {{ symbol }}", ctx),
            "WHERE symbol = 'x''); DROP TABLE daily_prices; --'"
        );
    }

    #[test]
    fn identifiers_and_raw_sql_need_explicit_filters() {
        let ctx = minijinja::context! { col => "close\"; --", frag => "ORDER BY 1" };
        assert_eq!(
            pg("{{ col|ident }} {{ frag|sql }} {{ frag }}", ctx),
            "\"close\"\"; --\" ORDER BY 1 'ORDER BY 1'"
        );
    }

    #[test]
    fn undefined_variables_are_errors() {
        let err = render(Dialect::Postgres, "{{ nope }}", minijinja::context! {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
    }

    #[test]
    fn bucket_renders_per_dialect() {
        assert_eq!(
            render(
                Dialect::Timescale,
                "{{ bucket('1 week', 'day') }}",
                minijinja::context! {}
            )
            .unwrap(),
            "time_bucket(INTERVAL '7 days', \"day\")"
        );
        assert_eq!(
            pg("{{ bucket('1 week', 'day') }}", minijinja::context! {}),
            "date_bin(INTERVAL '7 days', \"day\"::timestamp, TIMESTAMP '2000-01-03')::date"
        );
        assert_eq!(
            pg("{{ bucket('1 month', 'p.day') }}", minijinja::context! {}),
            "date_trunc('month', \"p\".\"day\")::date"
        );
        assert!(render(
            Dialect::Postgres,
            "{{ bucket('1 fortnight', 'day') }}",
            minijinja::context! {}
        )
        .is_err());
    }
}
