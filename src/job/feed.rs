//! `[[feed]]`: a real-time feed of intraday bars from NATS JetStream, as written in the
//! job file ([`FeedSpec`]) and as checked ([`Feed`]). Every bad value is a problem at its
//! file position, collected with the rest of the job's.
//!
//! ```toml
//! [[feed]]
//! name = "bars_1m"
//! stream = "BARS"                 # JetStream stream, created when missing
//! subjects = ["bars.1m.>"]        # the symbol is the subject's last token …
//! symbol = "subject"              # … or "payload" (a `symbol` field / no CSV column)
//! format = "json"                 # or "csv": Date,Open,High,Low,Close,Adj Close,Volume
//! batch_size = 5000               # messages per transaction at most
//! max_batch_delay = "200ms"       # … or this long after a batch's first message
//! ack_wait = "30s"                # redelivery after a consumer died
//! dead_letter_subject = "bars.dead"
//! refresh = ["intraday_hourly", "intraday_daily"]
//! [feed.rules]
//! zero_volume = "reject"
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{suggest, Diagnostic, Diagnostics, Location};
use crate::job::rules::{RuleError, RuleSet};

/// Used when neither the feed nor `NATS_URL` names a server.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// Messages per batch unless the feed says. Measured (`BENCH_BATCH_SIZES` in
/// scripts/bench-stream, docs/PERFORMANCE.md): a 1000-symbol backlog drained at 24 k
/// msg/s with 1,000, 46–54 k with 2,000, 69–74 k with 5,000 and 56–98 k with 10,000 —
/// per-batch costs (the commit's flush, a change-log row per symbol, the rollup spans)
/// shrink per message as batches grow. 5,000 is where the gain levels off, and two
/// processes with two batches in flight each still fit the default `max_ack_pending`.
/// At low rates batches are cut by `max_batch_delay`, so latency does not change.
pub const DEFAULT_BATCH_SIZE: i64 = 5000;

/// The rollups a feed can keep up to date after its commits.
pub const ROLLUPS: [&str; 2] = ["intraday_hourly", "intraday_daily"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSpec {
    pub name: Spanned<String>,
    /// NATS server URL; `NATS_URL` in the environment wins over it.
    pub url: Option<Spanned<String>>,
    pub stream: Spanned<String>,
    pub subjects: Spanned<Vec<Spanned<String>>>,
    /// Durable consumer name (default: `runner_<feed name>`).
    pub consumer: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    /// Where the symbol is: `subject` (its last token) or `payload`.
    pub symbol: Option<Spanned<String>>,
    /// The table the bars go to; only `intraday_bars` for now.
    pub table: Option<Spanned<String>>,
    pub batch_size: Option<Spanned<i64>>,
    pub max_batch_delay: Option<Spanned<String>>,
    pub ack_wait: Option<Spanned<String>>,
    /// Messages handed out and not yet acknowledged, per consumer (all its processes).
    pub max_ack_pending: Option<Spanned<i64>>,
    pub dead_letter_subject: Option<Spanned<String>>,
    pub refresh: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub rules: BTreeMap<String, Spanned<String>>,
}

/// How a message's payload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// `{"symbol": "AAPL", "ts": "2020-04-01T13:30:00Z", "open": 1.0, …}`.
    Json,
    /// One CSV line in the Kaggle column order: `Date,Open,High,Low,Close,Adj Close,Volume`.
    Csv,
}

/// Where a message's symbol is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolFrom {
    Subject,
    Payload,
}

/// A checked feed.
#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    pub url: String,
    pub stream: String,
    pub subjects: Vec<String>,
    pub consumer: String,
    pub format: PayloadFormat,
    pub symbol_from: SymbolFrom,
    pub table: String,
    pub batch_size: usize,
    pub max_batch_delay: Duration,
    pub ack_wait: Duration,
    pub max_ack_pending: i64,
    pub dead_letter_subject: String,
    pub rules: RuleSet,
    /// Rollups (of [`ROLLUPS`]) brought up to date after each commit.
    pub refresh: Vec<String>,
}

impl Feed {
    /// The subject a bar of `symbol` is published to: the first subject with its
    /// wildcard tail replaced by the symbol.
    pub fn subject_for(&self, symbol: &str) -> String {
        let base = &self.subjects[0];
        let prefix = base
            .strip_suffix(".>")
            .or_else(|| base.strip_suffix(".*"))
            .unwrap_or(base);
        format!("{prefix}.{symbol}")
    }
}

/// Check every `[[feed]]`; problems go to `problems`.
pub fn plan(
    specs: &[FeedSpec],
    path: &Path,
    source: &str,
    problems: &mut Diagnostics,
) -> Vec<Feed> {
    let mut checker = Checker {
        path,
        source,
        problems,
    };
    let mut names = HashSet::new();
    specs
        .iter()
        .map(|spec| {
            let name = spec.name.get_ref().clone();
            if !super::plan::is_identifier(&name) {
                checker.problem(
                    &spec.name,
                    "feed.name",
                    format!("feed name `{name}` must be lowercase letters, digits and `_`"),
                );
            } else if !names.insert(name.clone()) {
                checker.problem(
                    &spec.name,
                    "feed.name",
                    format!("feed `{name}` is defined twice"),
                );
            }
            checker.feed(spec, name)
        })
        .collect()
}

struct Checker<'a> {
    path: &'a Path,
    source: &'a str,
    problems: &'a mut Diagnostics,
}

impl Checker<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        let span = spanned.span();
        Location::from_offset(self.path, self.source, span.start, span.len())
    }

    fn problem<T>(&mut self, at: &Spanned<T>, key: &str, message: String) {
        let loc = self.at(at);
        self.problems
            .push(Diagnostic::new(message).at(loc).key(key.to_owned()));
    }

    fn feed(&mut self, spec: &FeedSpec, name: String) -> Feed {
        let key = |k: &str| format!("feed.{name}.{k}");
        let stream = spec.stream.get_ref().clone();
        if stream.is_empty()
            || !stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.problem(
                &spec.stream,
                &key("stream"),
                format!("stream name `{stream}` must be letters, digits, `_` and `-`"),
            );
        }
        let subjects: Vec<String> = spec
            .subjects
            .get_ref()
            .iter()
            .map(|s| s.get_ref().clone())
            .collect();
        if subjects.is_empty() {
            self.problem(
                &spec.subjects,
                &key("subjects"),
                "`subjects` lists no subject".to_owned(),
            );
        }
        for s in spec.subjects.get_ref() {
            if let Err(error) = check_subject(s.get_ref(), true) {
                self.problem(s, &key("subjects"), error.to_string());
            }
        }
        let format = match spec.format.as_ref().map(|f| (f, f.get_ref().as_str())) {
            None | Some((_, "json")) => PayloadFormat::Json,
            Some((_, "csv")) => PayloadFormat::Csv,
            Some((f, other)) => {
                self.problem(
                    f,
                    &key("format"),
                    format!("unknown format `{other}`: use `json` or `csv`"),
                );
                PayloadFormat::Json
            }
        };
        let symbol_from = match spec.symbol.as_ref().map(|f| (f, f.get_ref().as_str())) {
            None | Some((_, "subject")) => SymbolFrom::Subject,
            Some((f, "payload")) => {
                if format == PayloadFormat::Csv {
                    self.problem(
                        f,
                        &key("symbol"),
                        "a CSV line in the Kaggle column order has no symbol: use `symbol = \"subject\"`".to_owned(),
                    );
                }
                SymbolFrom::Payload
            }
            Some((f, other)) => {
                self.problem(
                    f,
                    &key("symbol"),
                    format!("unknown symbol source `{other}`: use `subject` or `payload`"),
                );
                SymbolFrom::Subject
            }
        };
        if symbol_from == SymbolFrom::Subject {
            for s in spec.subjects.get_ref() {
                if !(s.get_ref().ends_with(".>") || s.get_ref().ends_with(".*")) {
                    self.problem(
                        s,
                        &key("subjects"),
                        format!(
                            "subject `{}` has no wildcard last token to carry the symbol (e.g. `bars.1m.>`)",
                            s.get_ref()
                        ),
                    );
                }
            }
        }
        let table = match &spec.table {
            Some(t) if t.get_ref() != "intraday_bars" => {
                self.problem(
                    t,
                    &key("table"),
                    format!(
                        "unknown table `{}`: feeds write `intraday_bars`",
                        t.get_ref()
                    ),
                );
                "intraday_bars".to_owned()
            }
            _ => "intraday_bars".to_owned(),
        };
        let batch_size = self.positive(
            spec.batch_size.as_ref(),
            &key("batch_size"),
            DEFAULT_BATCH_SIZE,
            100_000,
        );
        let max_ack_pending = self.positive(
            spec.max_ack_pending.as_ref(),
            &key("max_ack_pending"),
            20_000,
            1_000_000,
        );
        let max_batch_delay = self.duration(
            spec.max_batch_delay.as_ref(),
            &key("max_batch_delay"),
            Duration::from_millis(200),
        );
        let ack_wait = self.duration(
            spec.ack_wait.as_ref(),
            &key("ack_wait"),
            Duration::from_secs(30),
        );
        if ack_wait <= max_batch_delay {
            if let Some(a) = &spec.ack_wait {
                self.problem(a, &key("ack_wait"), "`ack_wait` must be longer than `max_batch_delay`, or every batch is redelivered".to_owned());
            }
        }
        let dead_letter_subject = match &spec.dead_letter_subject {
            Some(d) => {
                if let Err(error) = check_subject(d.get_ref(), false) {
                    self.problem(d, &key("dead_letter_subject"), error.to_string());
                } else if subjects.iter().any(|s| subject_matches(s, d.get_ref())) {
                    self.problem(
                        d,
                        &key("dead_letter_subject"),
                        format!("dead-letter subject `{}` is one of the feed's own subjects: rejects would be read again", d.get_ref()),
                    );
                }
                d.get_ref().clone()
            }
            None => format!("runner.dead.{name}"),
        };
        let refresh = match &spec.refresh {
            None => ROLLUPS.iter().map(|r| (*r).to_owned()).collect(),
            Some(list) => {
                let mut out = Vec::new();
                for r in list {
                    if ROLLUPS.contains(&r.get_ref().as_str()) {
                        out.push(r.get_ref().clone());
                    } else {
                        let mut message = format!(
                            "unknown rollup `{}`; feeds refresh {}",
                            r.get_ref(),
                            ROLLUPS.join(", ")
                        );
                        if let Some(s) = suggest(r.get_ref(), ROLLUPS) {
                            message.push_str(&format!(" (did you mean `{s}`?)"));
                        }
                        self.problem(r, &key("refresh"), message);
                    }
                }
                out
            }
        };
        let url = std::env::var("NATS_URL")
            .ok()
            .or_else(|| spec.url.as_ref().map(|u| u.get_ref().clone()))
            .unwrap_or_else(|| DEFAULT_NATS_URL.to_owned());
        let consumer = match &spec.consumer {
            Some(c) => {
                if !super::plan::is_identifier(c.get_ref()) {
                    self.problem(
                        c,
                        &key("consumer"),
                        format!(
                            "consumer name `{}` must be lowercase letters, digits and `_`",
                            c.get_ref()
                        ),
                    );
                }
                c.get_ref().clone()
            }
            None => format!("runner_{name}"),
        };
        let rules = self.rules(spec, &name);
        Feed {
            name,
            url,
            stream,
            subjects,
            consumer,
            format,
            symbol_from,
            table,
            batch_size: usize::try_from(batch_size).unwrap_or(DEFAULT_BATCH_SIZE as usize),
            max_batch_delay,
            ack_wait,
            max_ack_pending,
            dead_letter_subject,
            rules,
            refresh,
        }
    }

    fn positive(&mut self, value: Option<&Spanned<i64>>, key: &str, default: i64, max: i64) -> i64 {
        match value {
            None => default,
            Some(v) if (1..=max).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                self.problem(
                    v,
                    key,
                    format!("must be between 1 and {max}, found {}", v.get_ref()),
                );
                default
            }
        }
    }

    fn duration(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        match value {
            None => default,
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) => d,
                Err(error) => {
                    self.problem(v, key, error.to_string());
                    default
                }
            },
        }
    }

    /// The same rules, outcomes, `min_day` and limits as `[ingest.rules]`.
    fn rules(&mut self, spec: &FeedSpec, name: &str) -> RuleSet {
        let mut rules = RuleSet::default();
        for (rule_name, value) in &spec.rules {
            let key = format!("feed.{name}.rules.{rule_name}");
            if let Err(e) = rules.configure(rule_name, value.get_ref()) {
                let mut message = e.to_string();
                if let RuleError::UnknownRule { .. } = e {
                    if let Some(s) = suggest(rule_name, RuleSet::keys()) {
                        message.push_str(&format!(" (did you mean `{s}`?)"));
                    }
                }
                self.problem(value, &key, message);
            }
        }
        rules
    }
}

/// Why a feed value is refused; each becomes a config diagnostic at the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedValueError {
    #[error("`{text}` is not a duration like `200ms`, `5s` or `1m`")]
    NotADuration { text: String },
    #[error("`{text}` must be longer than zero")]
    ZeroDuration { text: String },
    #[error("`{subject}` is not a valid {}subject", if *wildcards { "" } else { "publish " })]
    BadSubject { subject: String, wildcards: bool },
}

/// `250ms`, `2s`, `1m`: a short duration.
pub fn parse_duration(text: &str) -> Result<Duration, FeedValueError> {
    let bad = || FeedValueError::NotADuration {
        text: text.to_owned(),
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let amount: u64 = t[..split].parse().map_err(|_| bad())?;
    let duration = match t[split..].trim() {
        "ms" => Duration::from_millis(amount),
        "s" => Duration::from_secs(amount),
        "m" | "min" => Duration::from_secs(amount * 60),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(FeedValueError::ZeroDuration {
            text: text.to_owned(),
        });
    }
    Ok(duration)
}

/// A NATS subject: dot-separated tokens, no spaces; wildcards (`*` tokens, a final `>`)
/// only where subscribing (`wildcards`).
fn check_subject(subject: &str, wildcards: bool) -> Result<(), FeedValueError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let last = tokens.len() - 1;
    for (i, token) in tokens.iter().enumerate() {
        let ok = !token.is_empty()
            && !token.chars().any(char::is_whitespace)
            && match *token {
                "*" => wildcards,
                ">" => wildcards && i == last,
                t => !t.contains(['*', '>']),
            };
        if !ok {
            return Err(FeedValueError::BadSubject {
                subject: subject.to_owned(),
                wildcards,
            });
        }
    }
    Ok(())
}

/// Whether the subscription `pattern` matches the subject `subject`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_subjects() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("2 hours").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(check_subject("bars.1m.>", true).is_ok());
        assert!(check_subject("bars.>.x", true).is_err());
        assert!(check_subject("bars.*", false).is_err());
        assert!(subject_matches("bars.1m.>", "bars.1m.AAPL"));
        assert!(subject_matches("bars.*.AAPL", "bars.1m.AAPL"));
        assert!(!subject_matches("bars.1m.>", "bars.dead"));
        assert!(!subject_matches("bars.1m.>", "bars.1m"));
    }
}
