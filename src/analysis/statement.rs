//! Is a rendered template one query? An analysis must be a single `SELECT` (or `WITH …
//! SELECT`, `VALUES`, `TABLE`): it is run as the body of a view and read-only, so
//! anything else would fail with a bare syntax or permission error from the server.
//! This check runs at planning time, before the database is touched, so the user gets
//! a sentence naming the analysis and its template instead.
//!
//! It is a light scanner, not a parser: it skips comments and quoted text (strings,
//! quoted identifiers, dollar quotes) to find the first keyword and any second
//! statement. The server still has the last word on everything else.

/// Why the SQL is not one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOneSelect {
    /// The first statement is not a query (`DELETE`, `INSERT`, `CREATE`, …).
    StartsWith(String),
    /// A `;` is followed by another statement.
    SeveralStatements,
    /// Nothing but comments and whitespace.
    Empty,
}

impl std::fmt::Display for NotOneSelect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotOneSelect::StartsWith(word) => write!(f, "it starts with `{word}`"),
            NotOneSelect::SeveralStatements => write!(f, "it holds more than one statement"),
            NotOneSelect::Empty => write!(f, "it renders to no statement at all"),
        }
    }
}

/// Keywords a query may start with.
const QUERY_STARTS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE"];

/// `Ok` when `sql` is one query (a trailing `;` is allowed).
///
/// # Errors
/// What makes it something else.
pub fn check_one_select(sql: &str) -> Result<(), NotOneSelect> {
    let tokens = significant_chunks(sql);
    let Some(first) = tokens.first_word else {
        return Err(NotOneSelect::Empty);
    };
    if !QUERY_STARTS.iter().any(|k| k.eq_ignore_ascii_case(&first)) {
        return Err(NotOneSelect::StartsWith(first.to_ascii_uppercase()));
    }
    if tokens.text_after_semicolon {
        return Err(NotOneSelect::SeveralStatements);
    }
    Ok(())
}

struct Scan {
    first_word: Option<String>,
    text_after_semicolon: bool,
}

/// The first word outside comments (after any opening parentheses), and whether
/// anything but comments and whitespace follows a top-level `;`.
fn significant_chunks(sql: &str) -> Scan {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut first_word = None;
    let mut seen_semicolon = false;
    let mut text_after_semicolon = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if sql[i..].starts_with("--") {
            i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
        } else if sql[i..].starts_with("/*") {
            i = skip_block_comment(sql, i);
        } else {
            if seen_semicolon && c != b';' {
                text_after_semicolon = true;
                break;
            }
            match c {
                b';' => {
                    seen_semicolon = true;
                    i += 1;
                }
                b'\'' | b'"' => i = skip_quoted(bytes, i, c),
                b'$' => i = skip_dollar(sql, i),
                b'(' => i += 1,
                _ if first_word.is_none() && (c.is_ascii_alphabetic() || c == b'_') => {
                    let end = sql[i..]
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .map_or(bytes.len(), |n| i + n);
                    first_word = Some(sql[i..end].to_owned());
                    i = end;
                }
                _ => {
                    if first_word.is_none() {
                        // Something other than a keyword comes first (a number, an
                        // operator): leave it to the server.
                        first_word = Some(String::from("SELECT"));
                    }
                    i += sql[i..].chars().next().map_or(1, char::len_utf8);
                }
            }
        }
    }
    Scan {
        first_word,
        text_after_semicolon,
    }
}

fn skip_block_comment(sql: &str, start: usize) -> usize {
    // PostgreSQL block comments nest.
    let mut depth = 0;
    let mut i = start;
    while i < sql.len() {
        if sql[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if sql[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += sql[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    sql.len()
}

/// Past a `'…'` or `"…"` (a doubled quote stays inside).
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Past a `$tag$…$tag$` string; a lone `$` (a parameter like `$1`) is one character.
fn skip_dollar(sql: &str, start: usize) -> usize {
    let rest = &sql[start + 1..];
    let tag_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if !rest[tag_len..].starts_with('$')
        || rest[..tag_len].starts_with(|c: char| c.is_ascii_digit())
    {
        return start + 1;
    }
    let delimiter = &sql[start..start + tag_len + 2];
    let body = start + delimiter.len();
    sql[body..]
        .find(delimiter)
        .map_or(sql.len(), |n| body + n + delimiter.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_pass() {
        for sql in [
            "SELECT 1",
            "select 1;",
            "  -- note\n/* a /* nested */ comment */ WITH x AS (SELECT 1) SELECT * FROM x;\n-- end",
            "(SELECT 1) UNION (SELECT 2)",
            "VALUES (1)",
            "SELECT ';' AS s, \"a;b\", $$; DELETE$$, $t$;x$t$ FROM t WHERE a = $1",
        ] {
            assert_eq!(check_one_select(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn statements_that_are_not_one_query_are_named() {
        assert_eq!(
            check_one_select("DELETE FROM daily_prices"),
            Err(NotOneSelect::StartsWith("DELETE".into()))
        );
        assert_eq!(
            check_one_select("-- x\ninsert into t values (1)"),
            Err(NotOneSelect::StartsWith("INSERT".into()))
        );
        assert_eq!(
            check_one_select("SELECT 1; DELETE FROM t"),
            Err(NotOneSelect::SeveralStatements)
        );
        assert_eq!(check_one_select("SELECT 1;;\n-- done\n"), Ok(()));
        assert_eq!(check_one_select(" -- only\n"), Err(NotOneSelect::Empty));
    }
}
