//! One message's payload → one validated intraday bar, or the reason it cannot be stored.
//!
//! Both formats are first read into the same text fields and then checked by the same
//! data-quality rules as file ingest (`ingest::rules`): a bar without a usable time or
//! close is rejected, a zero open or an unparseable value is repaired to NULL, a high
//! below the low is flagged, unless the feed's `[feed.rules]` say otherwise.

use chrono::{DateTime, NaiveDate, Utc};

use crate::job::feed::{Feed, PayloadFormat, SymbolFrom};
use crate::job::rules::{Outcome, Rule, RuleSet};

/// A bar ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub symbol: String,
    pub ts: DateTime<Utc>,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: f64,
    pub volume: Option<i64>,
}

/// A stored bar's broken rule (flagged or repaired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub rule: Rule,
    pub detail: String,
}

/// Why a message was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub rule: Option<Rule>,
    pub reason: String,
}

impl Rejected {
    fn malformed(reason: impl Into<String>) -> Self {
        Rejected {
            rule: None,
            reason: reason.into(),
        }
    }
}

/// The fields of a message as text, before any check.
#[derive(Debug, Default)]
struct Fields {
    symbol: Option<String>,
    ts: Option<String>,
    open: Option<String>,
    high: Option<String>,
    low: Option<String>,
    close: Option<String>,
    volume: Option<String>,
}

/// How to read a feed's messages.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub format: PayloadFormat,
    pub symbol_from: SymbolFrom,
    pub rules: RuleSet,
}

impl Decoder {
    /// The decoder of `feed`'s messages: its payload format, where the symbol is, its rules.
    pub fn for_feed(feed: &Feed) -> Decoder {
        Decoder {
            format: feed.format,
            symbol_from: feed.symbol_from,
            rules: feed.rules.clone(),
        }
    }

    /// Decode and check one message.
    ///
    /// # Errors
    /// [`Rejected`] with the reason, for the rejects table and the dead-letter subject.
    pub fn decode(&self, subject: &str, payload: &[u8]) -> Result<(Bar, Vec<Flag>), Rejected> {
        let text = std::str::from_utf8(payload)
            .map_err(|_| Rejected::malformed("payload is not UTF-8"))?;
        let mut fields = match self.format {
            PayloadFormat::Json => json_fields(text)?,
            PayloadFormat::Csv => csv_fields(text)?,
        };
        if self.symbol_from == SymbolFrom::Subject {
            fields.symbol = subject.rsplit('.').next().map(str::to_owned);
        }
        Check {
            rules: &self.rules,
            flags: Vec::new(),
        }
        .bar(fields)
    }
}

fn json_fields(text: &str) -> Result<Fields, Rejected> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Rejected::malformed(format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(Rejected::malformed("payload is not a JSON object"));
    };
    let field = |name: &str| -> Option<String> {
        match map.get(name)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    };
    Ok(Fields {
        symbol: field("symbol"),
        ts: field("ts"),
        open: field("open"),
        high: field("high"),
        low: field("low"),
        close: field("close"),
        volume: field("volume"),
    })
}

/// `Date,Open,High,Low,Close,Adj Close,Volume` (adjusted close is not kept intraday).
fn csv_fields(text: &str) -> Result<Fields, Rejected> {
    let line = text.trim_end_matches(['\r', '\n']);
    let cells: Vec<&str> = line.split(',').map(str::trim).collect();
    if cells.len() != 7 {
        return Err(Rejected::malformed(format!(
            "{} CSV fields, expected 7 (Date,Open,High,Low,Close,Adj Close,Volume)",
            cells.len()
        )));
    }
    let cell = |i: usize| Some(cells[i].to_owned()).filter(|s| !s.is_empty());
    Ok(Fields {
        symbol: None,
        ts: cell(0),
        open: cell(1),
        high: cell(2),
        low: cell(3),
        close: cell(4),
        volume: cell(6),
    })
}

/// RFC 3339 (`2020-04-01T13:30:00Z`), a day (`2020-04-01`, its 00:00 UTC), or whole
/// milliseconds since the Unix epoch.
pub fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(day) = text.parse::<NaiveDate>() {
        return Some(day.and_hms_opt(0, 0, 0)?.and_utc());
    }
    let ms: i64 = text.parse().ok()?;
    DateTime::from_timestamp_millis(ms)
}

fn valid_symbol(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol.len() <= 32
        && symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '^' | '$'))
}

struct Check<'a> {
    rules: &'a RuleSet,
    flags: Vec<Flag>,
}

impl Check<'_> {
    fn bar(mut self, f: Fields) -> Result<(Bar, Vec<Flag>), Rejected> {
        let symbol = f.symbol.unwrap_or_default();
        if !valid_symbol(&symbol) {
            return Err(Rejected::malformed(format!("bad symbol `{symbol}`")));
        }
        let ts = match f.ts.as_deref() {
            None => return Err(rejected(Rule::BadDate, "missing ts")),
            Some(t) => parse_ts(t).ok_or_else(|| {
                rejected(
                    Rule::BadDate,
                    format!("bad ts `{t}` (expected RFC 3339, YYYY-MM-DD or epoch milliseconds)"),
                )
            })?,
        };
        // The same plausible days as file ingest: `min_day`, and today (the rules' day
        // if the caller set one, else now, in UTC+14 so no exchange is ahead of it).
        let day = ts.date_naive();
        if day < self.rules.min_day {
            self.apply(
                Rule::BeforeMinDay,
                format!("day {day} is before min_day {}", self.rules.min_day),
                Some(()),
                Some(()),
            )?;
        }
        let today = self
            .rules
            .today
            .unwrap_or_else(|| (Utc::now() + chrono::Duration::hours(14)).date_naive());
        if day > today {
            self.apply(
                Rule::AfterToday,
                format!("day {day} is after today ({today})"),
                Some(()),
                Some(()),
            )?;
        }
        if [&f.open, &f.high, &f.low, &f.close, &f.volume]
            .iter()
            .all(|v| v.is_none())
        {
            return Err(rejected(
                Rule::EmptyRow,
                "every field but the time is empty",
            ));
        }
        let close = match f.close.as_deref() {
            None => return Err(rejected(Rule::NoClose, "missing close")),
            Some(t) => match t.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => v,
                _ => return Err(rejected(Rule::NoClose, format!("unusable close `{t}`"))),
            },
        };
        let mut open = self.price(f.open.as_deref(), "open")?;
        if open == Some(0.0) {
            open = self.apply(
                Rule::ZeroOpen,
                "open of 0.0 set to NULL".to_owned(),
                open,
                None,
            )?;
        }
        let high = self.price(f.high.as_deref(), "high")?;
        let low = self.price(f.low.as_deref(), "low")?;
        let volume = self.volume(f.volume.as_deref())?;
        if let (Some(h), Some(l)) = (high, low) {
            if h < l {
                self.apply(
                    Rule::HighBelowLow,
                    format!("high {h} < low {l}"),
                    Some(()),
                    Some(()),
                )?;
            } else {
                let bracketed = |v: Option<f64>| v.is_none_or(|v| l <= v && v <= h);
                if !bracketed(open) || !bracketed(Some(close)) {
                    self.apply(
                        Rule::RangeMismatch,
                        format!("low {l} / high {h} do not bracket open/close"),
                        Some(()),
                        Some(()),
                    )?;
                }
            }
        }
        if volume == Some(0) {
            self.apply(Rule::ZeroVolume, "volume 0".to_owned(), Some(()), Some(()))?;
        }
        Ok((
            Bar {
                symbol,
                ts,
                open,
                high,
                low,
                close,
                volume,
            },
            self.flags,
        ))
    }

    fn apply<T>(
        &mut self,
        rule: Rule,
        detail: String,
        flagged: Option<T>,
        repaired: Option<T>,
    ) -> Result<Option<T>, Rejected> {
        match self.rules.outcome(rule) {
            Outcome::Reject => Err(rejected(rule, detail)),
            Outcome::Flag => {
                self.flags.push(Flag { rule, detail });
                Ok(flagged)
            }
            Outcome::Repair => {
                self.flags.push(Flag { rule, detail });
                Ok(repaired)
            }
        }
    }

    fn price(&mut self, text: Option<&str>, name: &str) -> Result<Option<f64>, Rejected> {
        let Some(text) = text else { return Ok(None) };
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            Ok(v) if v.is_finite() => self.apply(
                Rule::NegativeValue,
                format!("{name} {v} set to NULL"),
                Some(v),
                None,
            ),
            _ => self.apply(
                Rule::BadField,
                format!("{name} `{text}` is not a number; set to NULL"),
                None,
                None,
            ),
        }
    }

    fn volume(&mut self, text: Option<&str>) -> Result<Option<i64>, Rejected> {
        let Some(text) = text else { return Ok(None) };
        let parsed = text.parse::<i64>().ok().or_else(|| {
            // `806400.0`: integral floats are the same number.
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15)
                .map(|v| v as i64)
        });
        match parsed {
            Some(v) if v >= 0 => Ok(Some(v)),
            Some(v) => self.apply(
                Rule::NegativeValue,
                format!("volume {v} set to NULL"),
                Some(v),
                None,
            ),
            None => self.apply(
                Rule::BadField,
                format!("volume `{text}` is not a whole number; set to NULL"),
                None,
                None,
            ),
        }
    }
}

fn rejected(rule: Rule, reason: impl Into<String>) -> Rejected {
    Rejected {
        rule: Some(rule),
        reason: format!("{}: {}", rule.name(), reason.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(format: PayloadFormat, symbol_from: SymbolFrom) -> Decoder {
        Decoder {
            format,
            symbol_from,
            rules: RuleSet::default(),
        }
    }

    #[test]
    fn implausible_days_follow_the_ingest_rules() {
        let mut d = decoder(PayloadFormat::Json, SymbolFrom::Subject);
        d.rules = RuleSet::default().with_today(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap());
        let bar = |ts: &str| format!(r#"{{"ts":"{ts}","close":1}}"#);
        let reason =
            |ts: &str, d: &Decoder| d.decode("bars.X", bar(ts).as_bytes()).unwrap_err().reason;
        assert_eq!(
            reason("1899-12-31", &d),
            "before_min_day: day 1899-12-31 is before min_day 1900-01-01"
        );
        assert_eq!(
            reason("2092-01-01T00:00:00Z", &d),
            "after_today: day 2092-01-01 is after today (2026-12-03)"
        );
        assert!(d
            .decode("bars.X", bar("2026-12-03T23:59:00Z").as_bytes())
            .is_ok());
        d.rules.configure("after_today", "flag").unwrap();
        let (_, flags) = d.decode("bars.X", bar("2092-01-01").as_bytes()).unwrap();
        assert_eq!(flags[0].rule, Rule::AfterToday);
    }

    #[test]
    fn json_with_the_symbol_in_the_subject() {
        let d = decoder(PayloadFormat::Json, SymbolFrom::Subject);
        let (bar, flags) = d
            .decode(
                "bars.1m.AAPL",
                br#"{"ts":"2020-04-01T13:30:00Z","open":1.5,"high":2,"low":1,"close":1.75,"volume":100}"#,
            )
            .unwrap();
        assert_eq!(bar.symbol, "AAPL");
        assert_eq!(bar.ts.to_rfc3339(), "2020-04-01T13:30:00+00:00");
        assert_eq!(
            (bar.open, bar.high, bar.close, bar.volume),
            (Some(1.5), Some(2.0), 1.75, Some(100))
        );
        assert!(flags.is_empty());
    }

    #[test]
    fn csv_kaggle_line_and_rules() {
        let d = decoder(PayloadFormat::Csv, SymbolFrom::Subject);
        let (bar, flags) = d
            .decode("p.MSFT", b"2020-04-01,0.0,3,2,2.5,2.4,806400.0\n")
            .unwrap();
        assert_eq!(bar.ts.to_rfc3339(), "2020-04-01T00:00:00+00:00");
        assert_eq!((bar.open, bar.volume), (None, Some(806_400)));
        assert_eq!(flags[0].rule, Rule::ZeroOpen);
        let e = d.decode("p.MSFT", b"2020-04-01,1,1,1,,1,5").unwrap_err();
        assert_eq!(e.reason, "no_close: missing close");
        let e = d.decode("p.MSFT", b"garbage").unwrap_err();
        assert_eq!(
            e.reason,
            "1 CSV fields, expected 7 (Date,Open,High,Low,Close,Adj Close,Volume)"
        );
    }

    #[test]
    fn json_rejects_say_why() {
        let d = decoder(PayloadFormat::Json, SymbolFrom::Payload);
        let reason = |p: &str| d.decode("x.y", p.as_bytes()).unwrap_err().reason;
        assert!(reason("{not json").starts_with("invalid JSON: "));
        assert_eq!(reason("[1]"), "payload is not a JSON object");
        assert_eq!(reason(r#"{"ts":"2020-04-01","close":1}"#), "bad symbol ``");
        assert_eq!(
            reason(r#"{"symbol":"A","ts":"yesterday","close":1}"#),
            "bad_date: bad ts `yesterday` (expected RFC 3339, YYYY-MM-DD or epoch milliseconds)"
        );
        assert_eq!(
            reason(r#"{"symbol":"A","ts":1585747800000,"close":-1}"#),
            "no_close: unusable close `-1`"
        );
        let (bar, _) = d
            .decode("x.y", br#"{"symbol":"A","ts":1585747800000,"close":"2.5"}"#)
            .unwrap();
        assert_eq!(bar.ts.to_rfc3339(), "2020-04-01T13:30:00+00:00");
    }
}
