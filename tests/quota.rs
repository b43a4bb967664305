//! Property tests for the quota grammar: valid quotas round-trip through
//! text, and no input makes the parser panic.

use std::time::Duration;

use proptest::prelude::*;
use tollgate::quota::{Quota, QuotaError, QuotaParseError, QuotaParseErrorKind, Quotas};

/// Units as (spellings, length in milliseconds).
const UNITS: [(&[&str], u64); 6] = [
    (&["ms", "millisecond", "milliseconds"], 1),
    (&["s", "sec", "second", "seconds"], 1_000),
    (&["m", "min", "minute", "minutes"], 60_000),
    (&["h", "hr", "hour", "hours"], 3_600_000),
    (&["d", "day", "days"], 86_400_000),
    (&["w", "week", "weeks"], 604_800_000),
];

const MAX_PERIOD_MILLIS: u64 = 366 * 86_400_000;

/// How a rate quota is spelled.
#[derive(Debug, Clone)]
struct Spelling {
    per_word: bool,
    explicit_one: bool,
    spelling: usize,
    uppercase: bool,
    space: &'static str,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (
        any::<bool>(),
        any::<bool>(),
        0usize..4,
        any::<bool>(),
        prop::sample::select(vec!["", " ", "  ", "\t", " \n "]),
    )
        .prop_map(
            |(per_word, explicit_one, spelling, uppercase, space)| Spelling {
                per_word,
                explicit_one,
                spelling,
                uppercase,
                space,
            },
        )
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 1u64..=100,
        4 => 1u64..=Quota::MAX_COUNT,
        1 => 0u64..=2 * Quota::MAX_COUNT,
        1 => any::<u64>(),
    ]
}

fn burst() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(prop_oneof![
        4 => 1u64..=100,
        4 => 1u64..=Quota::MAX_BURST,
        1 => any::<u64>(),
    ])
}

/// (unit index, multiplier): mostly valid periods, sometimes beyond the limits.
fn period() -> impl Strategy<Value = (usize, u64)> {
    (0usize..UNITS.len()).prop_flat_map(|unit| {
        let max_n = MAX_PERIOD_MILLIS / UNITS[unit].1;
        (
            Just(unit),
            prop_oneof![8 => 1..=max_n, 1 => 0..=max_n.saturating_mul(2)],
        )
    })
}

fn rate_text(count: u64, unit: usize, n: u64, burst: Option<u64>, how: &Spelling) -> String {
    let (spellings, _) = UNITS[unit];
    let mut unit_word = spellings[how.spelling % spellings.len()].to_owned();
    let mut separator = if how.per_word { " per " } else { "/" }.to_owned();
    let mut burst_word = "burst".to_owned();
    if how.uppercase {
        unit_word.make_ascii_uppercase();
        separator.make_ascii_uppercase();
        burst_word.make_ascii_uppercase();
    }
    let s = how.space;
    let mut text = format!("{s}{count}{s}{separator}{s}");
    if n != 1 || how.explicit_one {
        text.push_str(&format!("{n} "));
    }
    text.push_str(&format!("{s}{unit_word}{s}"));
    if let Some(burst) = burst {
        text.push_str(&format!(" {burst_word} {s}{burst}{s}"));
    }
    text
}

/// Checks what every parse error must satisfy, whatever the input.
fn check_error(input: &str, err: &QuotaParseError) -> Result<(), TestCaseError> {
    let span = err.span();
    prop_assert_eq!(err.input(), input);
    prop_assert!(
        span.start <= span.end && span.end <= input.len(),
        "{:?}",
        span
    );
    prop_assert!(input.is_char_boundary(span.start) && input.is_char_boundary(span.end));
    prop_assert_eq!(err.token(), &input[span.clone()]);
    prop_assert!(err.segment() <= input.matches(';').count());
    let message = err.to_string();
    prop_assert!(message.starts_with("invalid quota "), "{}", message);
    prop_assert!(message.len() < 2_000, "{}", message);
    Ok(())
}

/// Parses `input` both ways and checks the results agree and round-trip.
fn check_any(input: &str) -> Result<(), TestCaseError> {
    let one = input.parse::<Quota>();
    let many = input.parse::<Quotas>();
    match &one {
        Ok(quota) => {
            let reparsed = quota.to_string().parse::<Quota>();
            prop_assert_eq!(reparsed.as_ref(), Ok(quota));
            prop_assert_eq!(many.as_ref().map(|q| q.as_slice()), Ok(&[*quota][..]));
        }
        Err(err) => check_error(input, err)?,
    }
    match &many {
        Ok(quotas) => {
            prop_assert!(!quotas.is_empty());
            // Canonical text may outgrow the input ("1/s" is "1/second").
            let canonical = quotas.to_string();
            if canonical.len() <= tollgate::quota::MAX_QUOTA_TEXT_LEN {
                let reparsed = canonical.parse::<Quotas>();
                prop_assert_eq!(reparsed.as_ref(), Ok(quotas));
            }
        }
        Err(err) => check_error(input, err)?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any (count, unit, n, burst) parses exactly as the constructors build it,
    /// and a valid quota's canonical text parses back to it.
    #[test]
    fn rate_text_matches_constructors(
        count in count(),
        (unit, n) in period(),
        burst in burst(),
        how in spelling(),
    ) {
        let text = rate_text(count, unit, n, burst, &how);
        let period = Duration::from_millis(n.saturating_mul(UNITS[unit].1));
        let expected = Quota::new(count, period)
            .and_then(|quota| burst.map_or(Ok(quota), |burst| quota.with_burst(burst)));
        let parsed = text.parse::<Quota>();
        match expected {
            Ok(quota) => {
                prop_assert_eq!(parsed.as_ref(), Ok(&quota), "{}", text);
                let canonical = quota.to_string();
                prop_assert_eq!(canonical.parse::<Quota>(), Ok(quota), "{}", canonical);
                prop_assert_eq!(quota.count(), count);
                prop_assert_eq!(quota.period(), period);
                prop_assert_eq!(quota.burst(), burst.unwrap_or(count));
                let interval = quota.emission_interval_nanos();
                prop_assert!(interval >= 1);
                prop_assert!(u128::from(interval) * u128::from(count) >= period.as_nanos());
                prop_assert!(u128::from(interval - 1) * u128::from(count) < period.as_nanos());
            }
            Err(value) => {
                let err = parsed.expect_err("refused by the constructors");
                prop_assert_eq!(err.kind(), &QuotaParseErrorKind::Value(value), "{}", text);
                check_error(&text, &err)?;
            }
        }
    }

    #[test]
    fn concurrent_text_matches_constructor(n in 0u64..=2_000_000, upper in any::<bool>()) {
        let text = format!("{n} {}", if upper { "CONCURRENT" } else { "concurrent" });
        match Quota::concurrent(n) {
            Ok(quota) => {
                prop_assert_eq!(text.parse::<Quota>(), Ok(quota));
                prop_assert_eq!(quota.to_string().parse::<Quota>(), Ok(quota));
            }
            Err(value) => {
                let err = text.parse::<Quota>().expect_err("refused by the constructor");
                prop_assert_eq!(err.kind(), &QuotaParseErrorKind::Value(value));
            }
        }
    }

    /// Valid lists round-trip through their canonical text.
    #[test]
    fn quotas_round_trip(
        parts in prop::collection::vec(
            (1u64..=1_000, 0usize..UNITS.len(), 1u64..=10, prop::option::of(1u64..=1_000)),
            1..8,
        ),
        trailing in any::<bool>(),
    ) {
        let mut quotas = Vec::new();
        for (count, unit, n, burst) in parts {
            let quota = Quota::new(count, Duration::from_millis(n * UNITS[unit].1))
                .and_then(|quota| burst.map_or(Ok(quota), |burst| quota.with_burst(burst)));
            // A long burst window may be refused; the rest are valid.
            match quota {
                Ok(quota) => quotas.push(quota),
                Err(QuotaError::BurstWindowTooLong { .. }) => {}
                Err(other) => return Err(TestCaseError::fail(other.to_string())),
            }
        }
        prop_assume!(!quotas.is_empty());
        let quotas = Quotas::new(quotas).expect("non-empty");
        let mut text = quotas.to_string();
        if trailing {
            text.push(';');
        }
        prop_assert_eq!(text.parse::<Quotas>(), Ok(quotas));
    }

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        check_any(&input)?;
    }

    #[test]
    fn arbitrary_printable_never_panic(input in "\\PC{0,64}") {
        check_any(&input)?;
    }

    #[test]
    fn huge_numbers_never_panic(
        input in "[0-9]{1,60} ?(/|per|concurrent)? ?[0-9]{0,60} ?[a-zA-Z]{0,12}( burst [0-9]{0,60})?",
    ) {
        check_any(&input)?;
    }

    #[test]
    fn token_soup_never_panics(
        tokens in prop::collection::vec(
            prop::sample::select(vec![
                "1", "0", "10", "007", "18446744073709551615", "18446744073709551616",
                "99999999999999999999999999", "/", "per", "PER", "burst", "concurrent",
                "s", "ms", "m", "w", "weeks", "fortnight", ";", ";;", " ", "\t", "-", "+",
                ".", "_", "é", "\u{0}", "\u{200b}", "１", "\"",
            ]),
            0..24,
        ),
        glue in prop::sample::select(vec!["", " "]),
    ) {
        check_any(&tokens.join(glue))?;
    }

    #[test]
    fn long_inputs_never_panic(input in "[0-9a-z/; é]{1000,1100}") {
        check_any(&input)?;
        if input.len() > 1024 {
            let err = input.parse::<Quota>().expect_err("too long");
            prop_assert!(
                matches!(err.kind(), QuotaParseErrorKind::TooLong { .. }),
                "{:?}",
                err.kind()
            );
        }
    }
}
