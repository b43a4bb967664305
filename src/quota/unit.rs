//! Period units: their spellings, lengths and canonical names.

use std::fmt;
use std::time::Duration;

/// The list of units quoted in error messages.
pub(super) const EXPECTED_UNITS: &str = "second, minute, hour, day, week or millisecond";

/// A period unit of the quota grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl Unit {
    /// Largest first: the canonical form uses the largest unit dividing the period.
    const LARGEST_FIRST: [Unit; 6] = [
        Unit::Week,
        Unit::Day,
        Unit::Hour,
        Unit::Minute,
        Unit::Second,
        Unit::Millisecond,
    ];

    /// Looks up a unit word, ignoring ASCII case.
    pub(super) fn from_word(word: &str) -> Option<Unit> {
        const SPELLINGS: [(&str, Unit); 21] = [
            ("ms", Unit::Millisecond),
            ("millisecond", Unit::Millisecond),
            ("milliseconds", Unit::Millisecond),
            ("s", Unit::Second),
            ("sec", Unit::Second),
            ("second", Unit::Second),
            ("seconds", Unit::Second),
            ("m", Unit::Minute),
            ("min", Unit::Minute),
            ("minute", Unit::Minute),
            ("minutes", Unit::Minute),
            ("h", Unit::Hour),
            ("hr", Unit::Hour),
            ("hour", Unit::Hour),
            ("hours", Unit::Hour),
            ("d", Unit::Day),
            ("day", Unit::Day),
            ("days", Unit::Day),
            ("w", Unit::Week),
            ("week", Unit::Week),
            ("weeks", Unit::Week),
        ];
        SPELLINGS
            .iter()
            .find(|(spelling, _)| spelling.eq_ignore_ascii_case(word))
            .map(|&(_, unit)| unit)
    }

    /// The unit's length in milliseconds.
    pub(super) fn millis(self) -> u64 {
        match self {
            Unit::Millisecond => 1,
            Unit::Second => 1_000,
            Unit::Minute => 60_000,
            Unit::Hour => 3_600_000,
            Unit::Day => 86_400_000,
            Unit::Week => 604_800_000,
        }
    }

    /// The canonical (singular) name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Unit::Millisecond => "millisecond",
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
        }
    }

    /// Splits a whole number of milliseconds (at least 1) into the largest
    /// unit dividing it and a multiplier.
    pub(super) fn canonical(millis: u64) -> (u64, Unit) {
        for unit in Unit::LARGEST_FIRST {
            if millis.is_multiple_of(unit.millis()) {
                return (millis / unit.millis(), unit);
            }
        }
        (millis, Unit::Millisecond)
    }
}

/// Writes a whole-millisecond period as `"<unit>"` for one unit or
/// `"<n> <unit>s"` otherwise, as the quota grammar spells it.
pub(super) fn write_period(f: &mut fmt::Formatter<'_>, millis: u64) -> fmt::Result {
    match Unit::canonical(millis) {
        (1, unit) => f.write_str(unit.name()),
        (n, unit) => write!(f, "{n} {}s", unit.name()),
    }
}

/// Displays a period in the grammar's words when it is a positive whole
/// number of milliseconds (`"5 minutes"`), else as `Duration`'s `Debug`.
pub(super) struct PeriodText(pub(super) Duration);

impl fmt::Display for PeriodText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole_millis = self.0.subsec_nanos().is_multiple_of(1_000_000);
        match u64::try_from(self.0.as_millis()) {
            Ok(millis) if whole_millis && millis > 0 => match Unit::canonical(millis) {
                (1, unit) => write!(f, "1 {}", unit.name()),
                (n, unit) => write!(f, "{n} {}s", unit.name()),
            },
            _ => write!(f, "{:?}", self.0),
        }
    }
}
