//! Connection strings: the database they name, the same server's maintenance database
//! (to create a missing database), and forms safe to print: the password never reaches a
//! log or an error message.
//!
//! Both libpq forms are read: URLs (`postgres://user:password@host:5432/db?sslmode=require`,
//! parsed with the `url` crate) and keyword/value strings (`host=h password='a secret'`,
//! see [`keywords`]). Redaction errs on the side of hiding: a password may hold an unencoded
//! `@`, `/` or `?` that libpq would misread, so everything from the user's `:` to the
//! *last* `@` is hidden, even when that hides the host as well.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// What replaces a password.
const MASK: &str = "***";

/// The connection string with any password replaced by `***`.
pub fn redact(conninfo: &str) -> String {
    match split_scheme(conninfo) {
        Some((scheme, rest)) => redact_url(scheme, rest),
        None => redact_keywords(conninfo),
    }
}

/// `text` (typically an error message, which libpq may fill with the connection
/// string) without the password of `conninfo`, raw or percent-decoded, and with the
/// connection string itself redacted.
pub fn scrub(text: &str, conninfo: &str) -> String {
    let mut scrubbed = text.replace(conninfo, &redact(conninfo));
    let mut secrets = passwords(conninfo);
    // Longest first, so that a password containing another is hidden whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        scrubbed = scrubbed.replace(secret.as_str(), MASK);
    }
    scrubbed
}

/// Whether the password of URL `conninfo` holds an unencoded `@`, `/`, `?` or `#`,
/// which libpq would read as the end of the password (and the rest as host, path or
/// query, echoing pieces of the password in its errors). Runner refuses such a URL
/// before libpq sees it.
pub fn password_needs_encoding(conninfo: &str) -> bool {
    let Some((_, rest)) = split_scheme(conninfo) else {
        return false;
    };
    match split_userinfo(rest) {
        (Some(userinfo), _) => userinfo
            .split_once(':')
            .is_some_and(|(_, password)| password.contains(['@', '/', '?', '#'])),
        (None, _) => false,
    }
}

/// Whether `conninfo` is a URL libpq reads as one (`postgres://`, `postgresql://`).
pub fn is_postgres_url(conninfo: &str) -> bool {
    matches!(split_scheme(conninfo), Some((scheme, _)) if scheme == "postgres" || scheme == "postgresql")
}

/// The database a connection string names, if it names one.
pub fn database_name(conninfo: &str) -> Option<String> {
    match split_scheme(conninfo) {
        Some((scheme, rest)) => {
            let url = parse_url(scheme, rest)?;
            let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
            // libpq lets a `dbname` parameter override the path.
            let from_query = url
                .query()
                .unwrap_or_default()
                .split('&')
                .filter_map(|parameter| parameter.split_once('='))
                .find(|(key, _)| *key == "dbname")
                .map(|(_, value)| decode(value));
            let from_path = url.path().strip_prefix('/').map(decode);
            from_query.or(from_path).filter(|name| !name.is_empty())
        }
        None => keywords::parse(conninfo)
            .ok()?
            .into_iter()
            .rev()
            .find(|(key, _)| key == "dbname")
            .map(|(_, value)| value)
            .filter(|name| !name.is_empty()),
    }
}

/// The same connection string naming another database (user, host and other
/// parameters kept).
pub fn with_database(conninfo: &str, database: &str) -> Option<String> {
    match split_scheme(conninfo) {
        Some((scheme, rest)) => {
            let (userinfo, _) = split_userinfo(rest);
            let mut url = parse_url(scheme, rest)?;
            url.set_path(&format!("/{database}"));
            // A `dbname` parameter would override the path: drop it, keep the rest as
            // written (libpq does not read `+` as a space, so no re-encoding).
            let query: Vec<&str> = url
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|parameter| {
                    !parameter.is_empty() && parameter.split('=').next() != Some("dbname")
                })
                .collect();
            let query = (!query.is_empty()).then(|| query.join("&"));
            url.set_query(query.as_deref());
            // The userinfo is put back as written: the url crate would re-encode it.
            let after_scheme = &url.as_str()[scheme.len() + "://".len()..];
            Some(match userinfo {
                Some(userinfo) => format!("{scheme}://{userinfo}@{after_scheme}"),
                None => format!("{scheme}://{after_scheme}"),
            })
        }
        None => {
            let mut pairs = keywords::parse(conninfo).ok()?;
            pairs.retain(|(key, _)| key != "dbname");
            pairs.push(("dbname".to_owned(), database.to_owned()));
            Some(keywords::render(&pairs))
        }
    }
}

/// `(scheme, rest)` for `scheme://rest`; `None` for a keyword/value string.
fn split_scheme(conninfo: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = conninfo.trim().split_once("://")?;
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some((scheme, rest))
}

/// `(userinfo, server)` of what follows `scheme://`. The userinfo ends at the last `@`
/// when it holds a password (a `:` before the first `@`, `/` and `?`), so that an
/// unencoded `@`, `/` or `?` in the password stays on the hidden side; otherwise at
/// the first `@` of the authority.
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let first_at = rest.find('@');
    let colon = rest.find(':');
    let has_password = matches!((colon, first_at), (Some(colon), Some(at)) if colon < at)
        && colon.is_some_and(|colon| colon < authority_end);
    let at = if has_password {
        rest.rfind('@')
    } else {
        first_at.filter(|&at| at < authority_end)
    };
    match at {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// The URL without its userinfo, for the url crate to read host, port, path and query.
fn parse_url(scheme: &str, rest: &str) -> Option<url::Url> {
    let (_, server) = split_userinfo(rest);
    url::Url::parse(&format!("{scheme}://{server}")).ok()
}

fn redact_url(scheme: &str, rest: &str) -> String {
    // Query passwords first: their value may hold the `@` that ends a userinfo.
    let rest = redact_query_passwords(rest);
    match split_userinfo(&rest) {
        (Some(userinfo), server) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:{MASK}@{server}"),
            None => format!("{scheme}://{userinfo}@{server}"),
        },
        (None, server) => format!("{scheme}://{server}"),
    }
}

/// `password=...` parameters after the first `?` masked; the value runs to the next
/// `&name=` (an unencoded `&` in a password stays hidden).
fn redact_query_passwords(rest: &str) -> Cow<'_, str> {
    let Some(query_start) = rest.find('?') else {
        return Cow::Borrowed(rest);
    };
    let (head, query) = rest.split_at(query_start + 1);
    let mut out = head.to_owned();
    let mut remaining = query;
    while !remaining.is_empty() {
        let end = next_parameter(remaining, 0);
        let parameter = &remaining[..end];
        match parameter.split_once('=') {
            Some((key, _)) if is_password_key(key) => {
                let end = next_parameter(remaining, key.len() + 1);
                out.push_str(key);
                out.push('=');
                out.push_str(MASK);
                remaining = &remaining[end..];
            }
            _ => {
                out.push_str(parameter);
                remaining = &remaining[end..];
            }
        }
        if let Some(after) = remaining.strip_prefix('&') {
            out.push('&');
            remaining = after;
        }
    }
    Cow::Owned(out)
}

/// Where the parameter starting at `query[0]` ends: the next `&` (at or after `from`)
/// that is followed by `name=`, or the end.
fn next_parameter(query: &str, from: usize) -> usize {
    let mut search = from;
    while let Some(offset) = query[search..].find('&') {
        let amp = search + offset;
        let after = &query[amp + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '%'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('=') {
            return amp;
        }
        search = amp + 1;
    }
    query.len()
}

fn is_password_key(key: &str) -> bool {
    percent_decode_str(key)
        .decode_utf8_lossy()
        .eq_ignore_ascii_case("password")
}

fn redact_keywords(conninfo: &str) -> String {
    match keywords::parse(conninfo) {
        Ok(pairs) => {
            let masked: Vec<(String, String)> = pairs
                .into_iter()
                .map(|(key, value)| {
                    if key.eq_ignore_ascii_case("password") {
                        (key, MASK.to_owned())
                    } else {
                        (key, value)
                    }
                })
                .collect();
            keywords::render(&masked)
        }
        // Unreadable (an unclosed quote, say): keep what comes before the password.
        Err(_) => match find_ignore_ascii_case(conninfo, "password") {
            Some(start) => format!("{}password={MASK}", &conninfo[..start]),
            None => conninfo.to_owned(),
        },
    }
}

fn find_ignore_ascii_case(text: &str, word: &str) -> Option<usize> {
    text.to_ascii_lowercase().find(word)
}

/// Every form the password of `conninfo` may take in a message: as written and
/// percent-decoded (URLs), or as parsed and as quoted (keyword/value strings).
fn passwords(conninfo: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut add = |raw: &str| {
        found.push(raw.to_owned());
        let decoded = percent_decode_str(raw).decode_utf8_lossy();
        if decoded != raw {
            found.push(decoded.into_owned());
        }
    };
    match split_scheme(conninfo) {
        Some((_, rest)) => {
            if let (Some(userinfo), _) = split_userinfo(rest) {
                if let Some((_, password)) = userinfo.split_once(':') {
                    add(password);
                }
            }
            if let Some((_, query)) = rest.split_once('?') {
                let mut remaining = query;
                while !remaining.is_empty() {
                    let end = next_parameter(remaining, 0);
                    if let Some((key, _)) = remaining[..end].split_once('=') {
                        if is_password_key(key) {
                            let end = next_parameter(remaining, key.len() + 1);
                            add(&remaining[key.len() + 1..end]);
                            remaining = &remaining[end..];
                        } else {
                            remaining = &remaining[end..];
                        }
                    } else {
                        remaining = &remaining[end..];
                    }
                    remaining = remaining.strip_prefix('&').unwrap_or(remaining);
                }
            }
        }
        None => {
            if let Ok(pairs) = keywords::parse(conninfo) {
                for (key, value) in pairs {
                    if key.eq_ignore_ascii_case("password") {
                        found.push(keywords::quote(&value));
                        found.push(value);
                    }
                }
            }
        }
    }
    found
}

/// libpq's keyword/value connection strings: `keyword = value` pairs separated by
/// whitespace; a value is quoted with `'...'` when empty or holding spaces, and a
/// backslash escapes the next character (`\'`, `\\`) quoted or not.
pub mod keywords {
    /// Why a keyword/value string cannot be read (libpq would refuse it too).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ParseError {
        /// A keyword without `=` after it.
        MissingEquals(String),
        /// A quoted value without its closing quote.
        UnterminatedQuote(String),
    }

    /// The `(keyword, value)` pairs, in order, values unquoted and unescaped.
    pub fn parse(text: &str) -> Result<Vec<(String, String)>, ParseError> {
        let mut pairs = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.peek().is_none() {
                return Ok(pairs);
            }
            let mut keyword = String::new();
            while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
                keyword.push(c);
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.next() != Some('=') {
                return Err(ParseError::MissingEquals(keyword));
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut value = String::new();
            if chars.next_if_eq(&'\'').is_some() {
                loop {
                    match chars.next() {
                        None => return Err(ParseError::UnterminatedQuote(keyword)),
                        Some('\'') => break,
                        Some('\\') => {
                            if let Some(escaped) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        Some(c) => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    if c == '\\' {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    } else {
                        value.push(c);
                    }
                }
            }
            pairs.push((keyword, value));
        }
    }

    /// The pairs written back as libpq reads them.
    pub fn render(pairs: &[(String, String)]) -> String {
        pairs
            .iter()
            .map(|(key, value)| format!("{key}={}", quote(value)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `value` as written in a connection string: bare when it can be, else quoted with
    /// `'` and `\` escaped.
    pub fn quote(value: &str) -> String {
        let needs_quotes = value.is_empty()
            || value
                .chars()
                .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
        if !needs_quotes {
            return value.to_owned();
        }
        let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
        format!("'{escaped}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_everywhere() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("postgres://u@h/db?password=x&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require"
        );
        assert_eq!(
            redact("host=h password=x user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn redacts_quoted_keyword_passwords_with_spaces() {
        assert_eq!(
            redact("host=h password='a secret phrase' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact(r"host = h  password = 'it\'s a \\secret' dbname='my db'"),
            "host=h password=*** dbname='my db'"
        );
        // libpq has no '' escape: this string is unreadable, and nothing after
        // `password` is shown.
        assert_eq!(
            redact("host=h password='it''s a secret' user=u"),
            "host=h password=***"
        );
        assert_eq!(
            redact("host=h password='never closed"),
            "host=h password=***"
        );
    }

    #[test]
    fn redacts_unencoded_at_slash_and_question_mark_in_url_passwords() {
        assert_eq!(
            redact("postgres://u:p@ss/w@host/db"),
            "postgres://u:***@host/db"
        );
        assert_eq!(
            redact("postgresql://u:a/b?c@host:5432/db?sslmode=require"),
            "postgresql://u:***@host:5432/db?sslmode=require"
        );
        assert_eq!(
            redact("postgres://h/db?password=p@ss&w&sslmode=disable"),
            "postgres://h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            redact("postgres://h/db?PASS%57ORD=x"),
            "postgres://h/db?PASS%57ORD=***"
        );
    }

    #[test]
    fn redacts_any_scheme_and_never_panics_on_bad_escapes() {
        assert_eq!(redact("mysql://u:pw@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact("postgres://u:%é@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            database_name("postgres://u:%é@h/d%é%"),
            Some("d%é%".to_owned())
        );
    }

    #[test]
    fn scrub_removes_the_password_raw_and_decoded() {
        let url = "postgres://u:p%40ss@h/db";
        assert_eq!(
            scrub(
                "could not connect to postgres://u:p%40ss@h/db: password p@ss rejected (p%40ss)",
                url
            ),
            "could not connect to postgres://u:***@h/db: password *** rejected (***)"
        );
        assert_eq!(
            scrub(
                "FATAL: bad password 'it\\'s' / it's",
                r"host=h password='it\'s'"
            ),
            "FATAL: bad password *** / ***"
        );
        assert_eq!(scrub("no secret here", "postgres://h/db"), "no secret here");
    }

    #[test]
    fn passwords_libpq_would_misread_are_found() {
        assert!(password_needs_encoding("postgres://u:p@ss@h/db"));
        assert!(password_needs_encoding("postgresql://u:a/b?c@h:5432/db"));
        assert!(password_needs_encoding("postgres://u:a#b@h/db"));
        assert!(!password_needs_encoding("postgres://u:p%40ss@h/db"));
        assert!(!password_needs_encoding("postgres://u@h/db?x=a@b"));
        assert!(!password_needs_encoding("host=h password=a@b/c"));
    }

    #[test]
    fn finds_and_replaces_the_database() {
        assert_eq!(
            database_name("postgres://u@h:5432/stocks?x=1").as_deref(),
            Some("stocks")
        );
        assert_eq!(database_name("postgres://u@h:5432"), None);
        assert_eq!(
            database_name("postgres://h/my%20db").as_deref(),
            Some("my db")
        );
        assert_eq!(
            database_name("postgres://h/ignored?dbname=stocks").as_deref(),
            Some("stocks")
        );
        assert_eq!(
            database_name("host=h dbname='my db'").as_deref(),
            Some("my db")
        );
        assert_eq!(
            with_database("postgres://u:p@h:5432/stocks?sslmode=disable", "postgres").as_deref(),
            Some("postgres://u:p@h:5432/postgres?sslmode=disable")
        );
        assert_eq!(
            with_database("postgres://u:p@ss@h/stocks?dbname=stocks", "postgres").as_deref(),
            Some("postgres://u:p@ss@h/postgres")
        );
        assert_eq!(
            with_database("host=h password='a b' dbname=stocks", "postgres").as_deref(),
            Some("host=h password='a b' dbname=postgres")
        );
    }

    #[test]
    fn keyword_strings_parse_as_libpq_reads_them() {
        let pairs = keywords::parse(r"host=h port = 5432 password='it\'s a \\ secret' x=a\ b e=''")
            .expect("valid");
        let expected = [
            ("host", "h"),
            ("port", "5432"),
            ("password", r"it's a \ secret"),
            ("x", "a b"),
            ("e", ""),
        ];
        assert_eq!(
            pairs,
            expected.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        assert_eq!(
            keywords::parse("host"),
            Err(keywords::ParseError::MissingEquals("host".to_owned()))
        );
        assert_eq!(
            keywords::render(&pairs),
            r"host=h port=5432 password='it\'s a \\ secret' x='a b' e=''"
        );
    }
}
