//! When a job runs by itself: the top-level `schedule`, `timezone` and `missed` keys,
//! checked into a [`Schedule`] that tells the next and the previous scheduled instant.
//!
//! ```toml
//! schedule = "30 6 * * 1-5"        # minute hour day-of-month month day-of-week
//! timezone = "America/New_York"    # IANA name; default UTC
//! missed = "run_once"              # or "skip": what `runner daemon` does after downtime
//! ```
//!
//! The expression is parsed by `croner` but kept to what cron itself understands (five
//! fields, numbers, names, `* , - /`, and `@hourly`-style nicknames), because
//! `runner schedule` writes it unchanged into a crontab: the daemon and cron must agree.
//!
//! Daylight saving time, the same in the daemon as in cronie with `CRON_TZ`: a time that
//! does not exist on the spring-forward day (02:30 in New York on 2026-03-08) runs at
//! the first minute after the gap (03:00 EDT); a time that exists twice on the fall-back
//! day (01:30 on 2026-11-01) runs once, at its first occurrence (01:30 EDT).

use std::ops::Range;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use toml::Spanned;

use crate::error::{suggest, Diagnostic, Diagnostics, Location};

/// What `runner daemon` does with scheduled times that passed while it was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Forget them: wait for the next scheduled time.
    Skip,
    /// Run once at start when at least one scheduled time passed since the job's last run
    /// (the default: a nightly job down over night still produces the morning's report).
    RunOnce,
}

/// A job's checked schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as written (trimmed): what a crontab line gets.
    pub expression: String,
    pub timezone: Tz,
    pub missed: Missed,
    cron: Cron,
}

impl Schedule {
    /// The first scheduled instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // croner steps whole seconds; from a whole second "strictly after" stays exact.
        let start = after.with_nanosecond(0)?.with_timezone(&self.timezone);
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.with_timezone(&Utc))
    }

    /// The latest scheduled instant at or before `at`.
    pub fn previous_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = at.with_nanosecond(0)?.with_timezone(&self.timezone);
        let previous = self.cron.find_previous_occurrence(&start, true).ok()?;
        Some(previous.with_timezone(&Utc))
    }

    /// `instant` as a wall-clock time in the schedule's zone: `2026-03-09 06:30:00 EDT`.
    pub fn local(&self, instant: DateTime<Utc>) -> String {
        self.timezone
            .from_utc_datetime(&instant.naive_utc())
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

/// The schedule keys of a job file as written.
pub struct ScheduleKeys<'a> {
    pub schedule: Option<&'a Spanned<String>>,
    pub timezone: Option<&'a Spanned<String>>,
    pub missed: Option<&'a Spanned<String>>,
}

/// Check the schedule keys; every problem goes to `problems` at its position (`at`
/// turns a byte span of the job file into a location).
pub fn plan(
    keys: &ScheduleKeys<'_>,
    at: &dyn Fn(Range<usize>) -> Location,
    problems: &mut Diagnostics,
) -> Option<Schedule> {
    let mut problem =
        |spanned: &Spanned<String>, key: &str, message: String, help: Option<String>| {
            let mut d = Diagnostic::new(message).at(at(spanned.span())).key(key);
            d.help = help;
            problems.push(d);
        };
    let Some(schedule) = keys.schedule else {
        for (key, value) in [("timezone", keys.timezone), ("missed", keys.missed)] {
            if let Some(value) = value {
                problem(
                    value,
                    key,
                    format!("`{key}` is set but the job has no `schedule`"),
                    None,
                );
            }
        }
        return None;
    };
    let timezone = match keys.timezone {
        None => Some(Tz::UTC),
        Some(name) => match Tz::from_str(name.get_ref().trim()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let written = name.get_ref().trim();
                let help = match suggest(written, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()))
                {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "an IANA zone name such as `America/New_York` or `UTC`".into(),
                };
                problem(
                    name,
                    "timezone",
                    format!("unknown time zone `{written}`"),
                    Some(help),
                );
                None
            }
        },
    };
    let missed = match keys.missed.map(|m| (m, m.get_ref().trim())) {
        None | Some((_, "run_once")) => Some(Missed::RunOnce),
        Some((_, "skip")) => Some(Missed::Skip),
        Some((spanned, other)) => {
            problem(
                spanned,
                "missed",
                format!("`missed` must be `run_once` or `skip`, found `{other}`"),
                None,
            );
            None
        }
    };
    let expression = schedule.get_ref().trim().to_owned();
    let cron = match parse_expression(&expression) {
        Ok(cron) => Some(cron),
        Err(error) => {
            let help =
                "five fields: minute hour day-of-month month day-of-week, e.g. \"30 6 * * 1-5\"";
            problem(schedule, "schedule", error.to_string(), Some(help.into()));
            None
        }
    };
    Some(Schedule {
        expression,
        timezone: timezone?,
        missed: missed?,
        cron: cron?,
    })
}

/// Nicknames cron and croner both know.
const NICKNAMES: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// The five fields: name and range.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Day and month names cron accepts in its fields.
const NAMES: [&str; 19] = [
    "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
    "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Why a schedule expression is refused; each names the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown schedule nickname `{expression}` (known: {})", NICKNAMES.join(", "))]
    UnknownNickname { expression: String },
    #[error(
        "schedule `{expression}` has {count} field{}, cron needs 5",
        if *count == 1 { "" } else { "s" }
    )]
    FieldCount { expression: String, count: usize },
    #[error(
        "schedule `{expression}`: `{character}` in `{field}` is not cron syntax (numbers, names, `* , - /`)"
    )]
    NotCronSyntax {
        expression: String,
        character: char,
        field: String,
    },
    #[error("schedule `{expression}`: {what} {number} is out of range {low}-{high}")]
    OutOfRange {
        expression: String,
        what: &'static str,
        number: u32,
        low: u32,
        high: u32,
    },
    /// croner refused it, with its reason (see [`describe`]).
    #[error("schedule `{expression}`: {reason}")]
    Croner { expression: String, reason: String },
}

/// Parse a cron expression, refusing what a crontab would not understand.
fn parse_expression(expression: &str) -> Result<Cron, ScheduleError> {
    if expression.starts_with('@') {
        if !NICKNAMES.contains(&expression.to_ascii_lowercase().as_str()) {
            return Err(ScheduleError::UnknownNickname {
                expression: expression.to_owned(),
            });
        }
    } else {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount {
                expression: expression.to_owned(),
                count: fields.len(),
            });
        }
        for (field, (what, low, high)) in fields.iter().zip(FIELDS) {
            let mut rest = field.to_ascii_uppercase();
            for name in NAMES {
                rest = rest.replace(name, "");
            }
            if let Some(c) = rest
                .chars()
                .find(|c| !(c.is_ascii_digit() || matches!(c, '*' | ',' | '-' | '/')))
            {
                return Err(ScheduleError::NotCronSyntax {
                    expression: expression.to_owned(),
                    character: c,
                    field: (*field).to_owned(),
                });
            }
            // croner says only "Number out of bounds"; name the field and its range.
            for part in field.split(',') {
                let base = part.split('/').next().unwrap_or_default();
                for number in base.split('-').filter_map(|n| n.parse::<u32>().ok()) {
                    if !(low..=high).contains(&number) {
                        return Err(ScheduleError::OutOfRange {
                            expression: expression.to_owned(),
                            what,
                            number,
                            low,
                            high,
                        });
                    }
                }
            }
        }
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|e| ScheduleError::Croner {
            expression: expression.to_owned(),
            reason: describe(&e),
        })
}

/// croner's message without its own prefixes.
fn describe(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    match error {
        CronError::InvalidPattern(m)
        | CronError::IllegalCharacters(m)
        | CronError::ComponentError(m) => m.trim_end_matches('.').to_owned(),
        other => other.to_string().trim_end_matches('.').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(expression: &str, zone: &str) -> Schedule {
        Schedule {
            expression: expression.into(),
            timezone: Tz::from_str(zone).unwrap(),
            missed: Missed::RunOnce,
            cron: parse_expression(expression).unwrap(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekdays_at_half_past_six_in_new_york() {
        let s = schedule("30 6 * * 1-5", "America/New_York");
        // Friday 2026-03-06 after the run: next is Monday 06:30 EST-turned-EDT.
        let next = s.next_after(utc("2026-03-06T12:00:00Z")).unwrap();
        assert_eq!(next, utc("2026-03-09T10:30:00Z"));
        assert_eq!(s.local(next), "2026-03-09 06:30:00 EDT");
        // In winter the same wall-clock time is an hour later in UTC.
        assert_eq!(
            s.next_after(utc("2026-01-05T00:00:00Z")).unwrap(),
            utc("2026-01-05T11:30:00Z")
        );
        // Strictly after: at the instant itself, the next is the day after.
        assert_eq!(
            s.next_after(utc("2026-03-09T10:30:00Z")).unwrap(),
            utc("2026-03-10T10:30:00Z")
        );
        assert_eq!(
            s.previous_at_or_before(utc("2026-03-09T10:30:00.5Z"))
                .unwrap(),
            utc("2026-03-09T10:30:00Z")
        );
        assert_eq!(
            s.previous_at_or_before(utc("2026-03-09T10:29:59Z"))
                .unwrap(),
            utc("2026-03-06T11:30:00Z")
        );
    }

    #[test]
    fn a_time_skipped_by_spring_forward_runs_right_after_the_gap() {
        // 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT, 02:30 never happens.
        let s = schedule("30 2 * * *", "America/New_York");
        let on_the_day = s.next_after(utc("2026-03-08T05:00:00Z")).unwrap();
        assert_eq!(on_the_day, utc("2026-03-08T07:00:00Z"));
        assert_eq!(s.local(on_the_day), "2026-03-08 03:00:00 EDT");
        // The day before and after are ordinary.
        assert_eq!(
            s.next_after(utc("2026-03-07T00:00:00Z")).unwrap(),
            utc("2026-03-07T07:30:00Z")
        );
        assert_eq!(
            s.next_after(on_the_day).unwrap(),
            utc("2026-03-09T06:30:00Z")
        );
    }

    #[test]
    fn fall_back_runs_a_repeated_time_once_and_an_unrepeated_one_normally() {
        // 2026-11-01 in New York: 02:00 EDT goes back to 01:00 EST, 01:00–01:59 twice.
        let s = schedule("30 2 * * *", "America/New_York");
        let at = s.next_after(utc("2026-11-01T04:00:00Z")).unwrap();
        assert_eq!(at, utc("2026-11-01T07:30:00Z"));
        assert_eq!(s.local(at), "2026-11-01 02:30:00 EST");
        assert_eq!(s.next_after(at).unwrap(), utc("2026-11-02T07:30:00Z"));

        let repeated = schedule("30 1 * * *", "America/New_York");
        let first = repeated.next_after(utc("2026-11-01T04:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        assert_eq!(repeated.local(first), "2026-11-01 01:30:00 EDT");
        // Not again at 01:30 EST (06:30Z): the next is the day after.
        assert_eq!(
            repeated.next_after(first).unwrap(),
            utc("2026-11-02T06:30:00Z")
        );
    }

    #[test]
    fn names_and_nicknames_are_cron_syntax() {
        let s = schedule("0 18 * JAN-MAR mon-fri", "UTC");
        assert_eq!(
            s.next_after(utc("2026-03-31T18:00:00Z")).unwrap(),
            utc("2027-01-01T18:00:00Z")
        );
        let daily = schedule("@daily", "UTC");
        assert_eq!(
            daily.next_after(utc("2026-03-31T18:00:00Z")).unwrap(),
            utc("2026-04-01T00:00:00Z")
        );
    }

    #[test]
    fn expressions_cron_would_not_take_are_refused_with_a_reason() {
        let err = |e: &str| parse_expression(e).unwrap_err().to_string();
        assert_eq!(
            err("30 6 * *"),
            "schedule `30 6 * *` has 4 fields, cron needs 5"
        );
        assert_eq!(
            err("0 30 6 * * 1-5"),
            "schedule `0 30 6 * * 1-5` has 6 fields, cron needs 5"
        );
        assert_eq!(
            err("30 6 L * *"),
            "schedule `30 6 L * *`: `L` in `L` is not cron syntax (numbers, names, `* , - /`)"
        );
        assert_eq!(
            err("30 6 * * 5#2"),
            "schedule `30 6 * * 5#2`: `#` in `5#2` is not cron syntax (numbers, names, `* , - /`)"
        );
        assert_eq!(
            err("@reboot"),
            "unknown schedule nickname `@reboot` (known: @yearly, @annually, @monthly, @weekly, @daily, @hourly)"
        );
        assert_eq!(
            err("61 6 * * *"),
            "schedule `61 6 * * *`: minute 61 is out of range 0-59"
        );
        assert_eq!(
            err("30 6 0 * *"),
            "schedule `30 6 0 * *`: day of month 0 is out of range 1-31"
        );
        assert_eq!(
            err("30 6 * * 1-5/0"),
            "schedule `30 6 * * 1-5/0`: Step cannot be zero"
        );
    }
}
