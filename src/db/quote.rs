//! SQL quoting: the only two ways a value from a job file or `--var` may reach SQL text.

/// A string literal: `O'Brien` → `'O''Brien'`. Backslashes are plain characters with
/// `standard_conforming_strings = on` (the default since PostgreSQL 9.1), which runner
/// sets on every connection so this stays true.
pub fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// An identifier: `weird"name` → `"weird""name"`. Always quoted, so case is kept and
/// keywords are safe.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A possibly schema-qualified name: `public.daily_prices` → `"public"."daily_prices"`.
pub fn qualified_ident(name: &str) -> String {
    name.split('.').map(ident).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_quote_characters() {
        assert_eq!(literal("x'); DROP TABLE t; --"), "'x''); DROP TABLE t; --'");
        assert_eq!(literal(r"a\b"), r"'a\b'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            qualified_ident("public.daily_prices"),
            "\"public\".\"daily_prices\""
        );
    }
}
