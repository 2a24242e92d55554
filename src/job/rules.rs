//! Data-quality rules for price rows, and what each one does to a row: reject it,
//! repair it, or keep it and flag it. The defaults keep every row whose date and close
//! are usable, because throwing away a good close for a bad open loses real data.
//!
//! A source's rules are written as `[ingest.rules]` (`zero_open = "flag"`), plus
//! `min_day = "1900-01-01"`: the earliest plausible day. The latest plausible day is
//! today, set by the run from its clock (`RuleSet::with_today`).

use chrono::NaiveDate;
use serde::Serialize;

/// What happens to a row that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Not loaded; written to the rejects file and table with the reason.
    Reject,
    /// Loaded with the offending value fixed (and recorded as a flag).
    Repair,
    /// Loaded as is; the problem goes to the `data_quality` table.
    Flag,
}

/// Every rule runner checks, with its name in the `data_quality` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A NUL byte in the row. Always rejects: no field of it can be trusted.
    NulByte,
    /// A byte sequence that is not UTF-8 (a Latin-1 `é`, say). Always rejects.
    InvalidUtf8,
    /// A quote opened and not closed on the same line. Always rejects; the next line is
    /// read as a row of its own, so one stray quote costs one row.
    UnterminatedQuote,
    /// More or fewer fields than the header. Always rejects: the columns would shift.
    FieldCount,
    /// Date missing or not `YYYY-MM-DD` (year 0 does not exist). Always rejects: a row
    /// without a day has no key.
    BadDate,
    /// A day before the source's `min_day` (default 1900-01-01): a typo, not history.
    BeforeMinDay,
    /// A day after today (by the run's clock): a typo, or data from the future.
    AfterToday,
    /// A day seen earlier in the same file. Always rejects: the key must be unique.
    DuplicateDay,
    /// Close missing, unparseable or not positive. Always rejects.
    NoClose,
    /// Every field after the date empty (e.g. `2001-09-12,,,,,,`). Always rejects.
    EmptyRow,
    /// Open of exactly 0.0, an artifact of the source's early history: becomes NULL.
    ZeroOpen,
    /// Open/high/low/adj close/volume present but unparseable: becomes NULL.
    BadField,
    /// High below low.
    HighBelowLow,
    /// High/low do not bracket open and close.
    RangeMismatch,
    /// Volume of zero.
    ZeroVolume,
    /// Negative volume or price: becomes NULL.
    NegativeValue,
}

impl Rule {
    /// Every rule, in the order they are documented.
    pub const ALL: [Rule; 16] = [
        Rule::NulByte,
        Rule::InvalidUtf8,
        Rule::UnterminatedQuote,
        Rule::FieldCount,
        Rule::BadDate,
        Rule::BeforeMinDay,
        Rule::AfterToday,
        Rule::DuplicateDay,
        Rule::NoClose,
        Rule::EmptyRow,
        Rule::ZeroOpen,
        Rule::BadField,
        Rule::HighBelowLow,
        Rule::RangeMismatch,
        Rule::ZeroVolume,
        Rule::NegativeValue,
    ];

    /// The rule called `name` (its `data_quality` name, as written in job files).
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::NulByte => "nul_byte",
            Rule::InvalidUtf8 => "invalid_utf8",
            Rule::UnterminatedQuote => "unterminated_quote",
            Rule::FieldCount => "field_count",
            Rule::BadDate => "bad_date",
            Rule::BeforeMinDay => "before_min_day",
            Rule::AfterToday => "after_today",
            Rule::DuplicateDay => "duplicate_day",
            Rule::NoClose => "no_close",
            Rule::EmptyRow => "empty_row",
            Rule::ZeroOpen => "zero_open",
            Rule::BadField => "bad_field",
            Rule::HighBelowLow => "high_below_low",
            Rule::RangeMismatch => "range_mismatch",
            Rule::ZeroVolume => "zero_volume",
            Rule::NegativeValue => "negative_value",
        }
    }

    /// What the rule does by default.
    pub fn default_outcome(self) -> Outcome {
        self.allowed()[0]
    }

    /// The outcomes a job may choose, the default first.
    pub fn allowed(self) -> &'static [Outcome] {
        use Outcome::{Flag, Reject, Repair};
        match self {
            Rule::NulByte
            | Rule::InvalidUtf8
            | Rule::UnterminatedQuote
            | Rule::FieldCount
            | Rule::BadDate
            | Rule::DuplicateDay
            | Rule::NoClose
            | Rule::EmptyRow => &[Reject],
            Rule::BeforeMinDay | Rule::AfterToday => &[Reject, Flag],
            Rule::ZeroOpen | Rule::BadField | Rule::NegativeValue => &[Repair, Flag, Reject],
            Rule::HighBelowLow | Rule::RangeMismatch | Rule::ZeroVolume => &[Flag, Reject],
        }
    }
}

impl Outcome {
    /// `reject`, `repair` or `flag`, as written in job files.
    pub fn from_name(name: &str) -> Option<Outcome> {
        match name {
            "reject" => Some(Outcome::Reject),
            "repair" => Some(Outcome::Repair),
            "flag" => Some(Outcome::Flag),
            _ => None,
        }
    }
}

/// Why a rule setting of a job file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("unknown rule `{name}`; known rules: {}", known_names())]
    UnknownRule { name: String },
    #[error("unknown outcome `{outcome}` for rule `{rule}`: use `reject`, `repair` or `flag`")]
    UnknownOutcome { rule: &'static str, outcome: String },
    #[error("rule `{}` can only reject: such a row cannot be stored", .0.name())]
    RejectOnly(Rule),
    #[error("rule `{}` has no repair; use `flag` or `reject`", .0.name())]
    NoRepair(Rule),
    #[error("`min_day` must be a date (YYYY-MM-DD) after year 0, found `{0}`")]
    BadMinDay(String),
}

fn known_names() -> String {
    let mut names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
    names.push("min_day");
    names.join(", ")
}

/// The earliest plausible day when a source sets no `min_day`.
pub const DEFAULT_MIN_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(day) => day,
    None => panic!("1900-01-01 is a date"),
};

/// The outcome of each rule for one ingest source, and its plausible days.
#[derive(Debug, Clone)]
pub struct RuleSet {
    overrides: Vec<(Rule, Outcome)>,
    /// Days before this break [`Rule::BeforeMinDay`].
    pub min_day: NaiveDate,
    /// Days after this break [`Rule::AfterToday`]; set by the run (None: not checked).
    pub today: Option<NaiveDate>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            overrides: Vec::new(),
            min_day: DEFAULT_MIN_DAY,
            today: None,
        }
    }
}

impl RuleSet {
    pub fn outcome(&self, rule: Rule) -> Outcome {
        self.overrides
            .iter()
            .find(|(r, _)| *r == rule)
            .map_or_else(|| rule.default_outcome(), |(_, o)| *o)
    }

    /// The same rules, checking days against `today` too.
    #[must_use]
    pub fn with_today(mut self, today: NaiveDate) -> Self {
        self.today = Some(today);
        self
    }

    /// Set a rule's outcome. Keys whose rows cannot be stored (no date, no close, a
    /// duplicate key, unreadable bytes) cannot be downgraded from reject.
    ///
    /// # Errors
    /// An outcome the rule does not allow.
    pub fn set(&mut self, rule: Rule, outcome: Outcome) -> Result<(), RuleError> {
        if !rule.allowed().contains(&outcome) {
            return Err(if rule.allowed() == [Outcome::Reject] {
                RuleError::RejectOnly(rule)
            } else {
                RuleError::NoRepair(rule)
            });
        }
        self.overrides.retain(|(r, _)| *r != rule);
        self.overrides.push((rule, outcome));
        Ok(())
    }

    /// One `[…rules]` entry as written in a job file: a rule name and its outcome, or
    /// `min_day` and a date.
    ///
    /// # Errors
    /// An unknown rule or outcome, an outcome the rule does not allow, a bad date.
    pub fn configure(&mut self, key: &str, value: &str) -> Result<(), RuleError> {
        if key == "min_day" {
            self.min_day = crate::ingest::parse::parse_day(value.trim())
                .ok_or_else(|| RuleError::BadMinDay(value.to_owned()))?;
            return Ok(());
        }
        let rule = Rule::from_name(key).ok_or_else(|| RuleError::UnknownRule {
            name: key.to_owned(),
        })?;
        let outcome = Outcome::from_name(value).ok_or_else(|| RuleError::UnknownOutcome {
            rule: rule.name(),
            outcome: value.to_owned(),
        })?;
        self.set(rule, outcome)
    }

    /// Every key [`RuleSet::configure`] knows, for "did you mean" hints.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        Rule::ALL
            .into_iter()
            .map(Rule::name)
            .chain(std::iter::once("min_day"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_keep_usable_rows() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_name(rule.name()), Some(rule));
        }
        assert_eq!(Rule::from_name("zero-open"), None);
        let mut rules = RuleSet::default();
        assert_eq!(rules.outcome(Rule::ZeroOpen), Outcome::Repair);
        rules.set(Rule::ZeroOpen, Outcome::Flag).unwrap();
        rules.set(Rule::ZeroVolume, Outcome::Reject).unwrap();
        assert_eq!(rules.outcome(Rule::ZeroOpen), Outcome::Flag);
        assert_eq!(rules.outcome(Rule::ZeroVolume), Outcome::Reject);
        assert_eq!(
            rules
                .set(Rule::NoClose, Outcome::Flag)
                .unwrap_err()
                .to_string(),
            "rule `no_close` can only reject: such a row cannot be stored"
        );
        assert_eq!(
            rules
                .set(Rule::HighBelowLow, Outcome::Repair)
                .unwrap_err()
                .to_string(),
            "rule `high_below_low` has no repair; use `flag` or `reject`"
        );
    }

    #[test]
    fn implausible_days_reject_by_default_and_may_be_flagged() {
        let mut rules = RuleSet::default();
        assert_eq!(rules.outcome(Rule::BeforeMinDay), Outcome::Reject);
        assert_eq!(rules.outcome(Rule::AfterToday), Outcome::Reject);
        assert_eq!(rules.min_day, NaiveDate::from_ymd_opt(1900, 1, 1).unwrap());
        rules.configure("after_today", "flag").unwrap();
        rules.configure("min_day", "1850-06-01").unwrap();
        assert_eq!(rules.outcome(Rule::AfterToday), Outcome::Flag);
        assert_eq!(rules.min_day, NaiveDate::from_ymd_opt(1850, 6, 1).unwrap());
        assert_eq!(
            rules.configure("min_day", "0000-01-01").unwrap_err(),
            RuleError::BadMinDay("0000-01-01".into())
        );
        assert_eq!(
            rules.configure("before_min_day", "repair").unwrap_err(),
            RuleError::NoRepair(Rule::BeforeMinDay)
        );
        assert_eq!(
            rules.configure("nul_byte", "flag").unwrap_err(),
            RuleError::RejectOnly(Rule::NulByte)
        );
        assert!(rules
            .configure("min_dy", "x")
            .unwrap_err()
            .to_string()
            .ends_with("zero_volume, negative_value, min_day"));
    }
}
