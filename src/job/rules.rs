//! Data-quality rules for price rows, and what each one does to a row: reject it,
//! repair it, or keep it and flag it. The defaults keep every row whose date and close
//! are usable, because throwing away a good close for a bad open loses real data.

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
    /// Date missing or not `YYYY-MM-DD`. Always rejects: a row without a day has no key.
    BadDate,
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
    pub const ALL: [Rule; 10] = [
        Rule::BadDate,
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
            Rule::BadDate => "bad_date",
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
        match self {
            Rule::BadDate | Rule::DuplicateDay | Rule::NoClose | Rule::EmptyRow => Outcome::Reject,
            Rule::ZeroOpen | Rule::BadField | Rule::NegativeValue => Outcome::Repair,
            Rule::HighBelowLow | Rule::RangeMismatch | Rule::ZeroVolume => Outcome::Flag,
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

/// The outcome of each rule for one ingest source.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    overrides: Vec<(Rule, Outcome)>,
}

impl RuleSet {
    pub fn outcome(&self, rule: Rule) -> Outcome {
        self.overrides
            .iter()
            .find(|(r, _)| *r == rule)
            .map_or_else(|| rule.default_outcome(), |(_, o)| *o)
    }

    /// Set a rule's outcome. Keys whose rows cannot be stored (no date, no close, a
    /// duplicate key) cannot be downgraded from reject.
    pub fn set(&mut self, rule: Rule, outcome: Outcome) -> Result<(), String> {
        if rule.default_outcome() == Outcome::Reject && outcome != Outcome::Reject {
            return Err(format!(
                "rule `{}` can only reject: such a row cannot be stored",
                rule.name()
            ));
        }
        if outcome == Outcome::Repair
            && matches!(
                rule,
                Rule::HighBelowLow | Rule::RangeMismatch | Rule::ZeroVolume
            )
        {
            return Err(format!(
                "rule `{}` has no repair; use `flag` or `reject`",
                rule.name()
            ));
        }
        self.overrides.retain(|(r, _)| *r != rule);
        self.overrides.push((rule, outcome));
        Ok(())
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
        assert!(rules
            .set(Rule::NoClose, Outcome::Flag)
            .unwrap_err()
            .contains("can only reject"));
        assert!(rules
            .set(Rule::HighBelowLow, Outcome::Repair)
            .unwrap_err()
            .contains("no repair"));
    }
}
