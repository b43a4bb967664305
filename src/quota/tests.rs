use std::time::Duration;

use super::*;

type Kind = QuotaParseErrorKind;

const SEC: u64 = 1_000_000_000;

fn quota(text: &str) -> Quota {
    match text.parse::<Quota>() {
        Ok(quota) => quota,
        Err(err) => panic!("{text:?} should parse: {err}"),
    }
}

fn rate(count: u64, period: Duration) -> Quota {
    match Quota::new(count, period) {
        Ok(quota) => quota,
        Err(err) => panic!("{count}/{period:?} should be valid: {err}"),
    }
}

fn parse_err(text: &str) -> QuotaParseError {
    match text.parse::<Quota>() {
        Ok(quota) => panic!("{text:?} should not parse, got {quota:?}"),
        Err(err) => err,
    }
}

fn quotas_err(text: &str) -> QuotaParseError {
    match text.parse::<Quotas>() {
        Ok(quotas) => panic!("{text:?} should not parse, got {quotas:?}"),
        Err(err) => err,
    }
}

/// Asserts an error's kind and span, and that its message renders.
fn assert_err(text: &str, kind: Kind, span: std::ops::Range<usize>) {
    let err = parse_err(text);
    assert_eq!(err.kind(), &kind, "kind for {text:?}: {err}");
    assert_eq!(err.span(), span, "span for {text:?}: {err}");
    assert_eq!(err.segment(), 0);
    assert_eq!(err.input(), text);
    assert!(err.to_string().starts_with("invalid quota "));
}

fn unexpected(found: &str, expected: &'static str) -> Kind {
    Kind::UnexpectedToken {
        found: found.to_owned(),
        expected,
    }
}

// --- constructors and accessors ---

#[test]
fn constructors() {
    let q = Quota::per_second(10).expect("valid");
    assert_eq!(q.count(), 10);
    assert_eq!(q.burst(), 10);
    assert_eq!(q.period(), Duration::from_secs(1));
    assert_eq!(q.period_nanos(), SEC);
    assert_eq!(q.kind(), QuotaKind::Rate);
    assert_eq!(q.emission_interval_nanos(), SEC / 10);

    assert_eq!(
        Quota::per_minute(1).map(|q| q.period()),
        Ok(Duration::from_secs(60))
    );
    assert_eq!(
        Quota::per_hour(1).map(|q| q.period()),
        Ok(Duration::from_secs(3600))
    );
    assert_eq!(
        Quota::per_day(1).map(|q| q.period()),
        Ok(Duration::from_secs(86_400))
    );

    let c = Quota::concurrent(7).expect("valid");
    assert_eq!(c.kind(), QuotaKind::Concurrent);
    assert_eq!(c.count(), 7);
    assert_eq!(c.burst(), 7);
    assert_eq!(c.period(), Duration::ZERO);
    assert_eq!(c.period_nanos(), 0);
    assert_eq!(c.emission_interval_nanos(), 0);
}

#[test]
fn emission_interval_rounds_up() {
    let q = Quota::per_second(3).expect("valid");
    assert_eq!(q.emission_interval_nanos(), 333_333_334);
    // Never faster than the quota: count intervals cover at least the period.
    assert!(q.emission_interval_nanos() * 3 >= SEC);
    let q = rate(1_000_000, Duration::from_millis(1));
    assert_eq!(q.emission_interval_nanos(), 1);
    let q = rate(999_999, Duration::from_millis(1));
    assert_eq!(q.emission_interval_nanos(), 2);
}

#[test]
fn burst() {
    let q = Quota::per_second(10).and_then(|q| q.with_burst(20));
    assert_eq!(q.map(|q| q.burst()), Ok(20));
    let q = Quota::per_second(10).and_then(|q| q.with_burst(1));
    assert_eq!(q.map(|q| q.burst()), Ok(1));
    assert_eq!(
        Quota::per_second(10).and_then(|q| q.with_burst(0)),
        Err(QuotaError::BurstZero)
    );
    assert_eq!(
        Quota::per_second(10).and_then(|q| q.with_burst(1_000_000_001)),
        Err(QuotaError::BurstTooLarge {
            burst: 1_000_000_001,
            max: Quota::MAX_BURST
        })
    );
    assert_eq!(
        Quota::concurrent(3).and_then(|q| q.with_burst(5)),
        Err(QuotaError::BurstOnConcurrent { max_in_flight: 3 })
    );
    // 1 per 366 days: the interval is 31_622_400 s; 146 of them overflow 2^62 ns.
    let yearly = rate(1, Quota::MAX_PERIOD);
    let interval = yearly.emission_interval_nanos();
    let max_burst = Quota::MAX_BURST_WINDOW_NANOS / interval;
    assert!(yearly.with_burst(max_burst).is_ok());
    assert_eq!(
        yearly.with_burst(max_burst + 1),
        Err(QuotaError::BurstWindowTooLong {
            burst: max_burst + 1,
            emission_interval_nanos: interval
        })
    );
}

#[test]
fn value_limits() {
    assert_eq!(Quota::per_second(0), Err(QuotaError::CountZero));
    assert!(Quota::per_second(Quota::MAX_COUNT).is_ok());
    assert_eq!(
        Quota::per_second(Quota::MAX_COUNT + 1),
        Err(QuotaError::CountTooLarge {
            count: Quota::MAX_COUNT + 1,
            max: Quota::MAX_COUNT
        })
    );
    assert_eq!(
        Quota::per_second(u64::MAX),
        Err(QuotaError::CountTooLarge {
            count: u64::MAX,
            max: Quota::MAX_COUNT
        })
    );
    assert_eq!(Quota::concurrent(0), Err(QuotaError::ConcurrencyZero));
    assert!(Quota::concurrent(Quota::MAX_CONCURRENCY).is_ok());
    assert_eq!(
        Quota::concurrent(1_000_001),
        Err(QuotaError::ConcurrencyTooLarge {
            max_in_flight: 1_000_001,
            max: Quota::MAX_CONCURRENCY
        })
    );

    assert!(Quota::new(1, Quota::MIN_PERIOD).is_ok());
    assert!(Quota::new(1, Quota::MAX_PERIOD).is_ok());
    let short = Duration::from_micros(999);
    assert_eq!(
        Quota::new(1, short),
        Err(QuotaError::PeriodTooShort {
            period: short,
            min: Quota::MIN_PERIOD
        })
    );
    assert_eq!(
        Quota::new(1, Duration::ZERO),
        Err(QuotaError::PeriodTooShort {
            period: Duration::ZERO,
            min: Quota::MIN_PERIOD
        })
    );
    let long = Quota::MAX_PERIOD + Duration::from_millis(1);
    assert_eq!(
        Quota::new(1, long),
        Err(QuotaError::PeriodTooLong {
            period: long,
            max: Quota::MAX_PERIOD
        })
    );
    assert_eq!(
        Quota::new(1, Duration::MAX),
        Err(QuotaError::PeriodTooLong {
            period: Duration::MAX,
            max: Quota::MAX_PERIOD
        })
    );
    let odd = Duration::from_micros(1500);
    assert_eq!(
        Quota::new(1, odd),
        Err(QuotaError::PeriodNotWholeMilliseconds { period: odd })
    );
    assert_eq!(
        Quota::new(2_000_000, Duration::from_millis(1)),
        Err(QuotaError::RateTooFast {
            count: 2_000_000,
            period: Duration::from_millis(1)
        })
    );
}

#[test]
fn quotas_constructors() {
    assert_eq!(Quotas::new(Vec::new()), Err(QuotaError::NoQuotas));
    assert_eq!(Quotas::try_from(Vec::new()), Err(QuotaError::NoQuotas));
    let q = Quota::per_second(1).expect("valid");
    let quotas = Quotas::from(q);
    assert_eq!(quotas.as_slice(), &[q]);
    assert_eq!(quotas.as_ref(), &[q]);
    assert_eq!(quotas.len(), 1);
    assert_eq!((&quotas).into_iter().count(), 1);
    assert_eq!(quotas.clone().into_vec(), vec![q]);
    assert_eq!(quotas.into_iter().collect::<Vec<_>>(), vec![q]);
}

// --- grammar forms ---

#[test]
fn slash_unit() {
    assert_eq!(quota("10/s"), Quota::per_second(10).expect("valid"));
    assert_eq!(quota("10/second"), Quota::per_second(10).expect("valid"));
    assert_eq!(quota("1000/day"), Quota::per_day(1000).expect("valid"));
}

#[test]
fn slash_multiplier_unit() {
    assert_eq!(quota("100/5 minutes"), rate(100, Duration::from_secs(300)));
    assert_eq!(quota("100/5minutes"), rate(100, Duration::from_secs(300)));
    assert_eq!(quota("100 / 5 min"), rate(100, Duration::from_secs(300)));
    assert_eq!(quota("1/1 s"), rate(1, Duration::from_secs(1)));
}

#[test]
fn per_unit() {
    assert_eq!(
        quota("10 per second"),
        Quota::per_second(10).expect("valid")
    );
    assert_eq!(quota("10per hour"), Quota::per_hour(10).expect("valid"));
}

#[test]
fn per_multiplier_unit() {
    assert_eq!(quota("100 per 15 min"), rate(100, Duration::from_secs(900)));
}

#[test]
fn with_burst_suffix() {
    let expected = Quota::per_second(10)
        .and_then(|q| q.with_burst(20))
        .expect("valid");
    assert_eq!(quota("10/second burst 20"), expected);
    assert_eq!(quota("10 per 1 s burst 20"), expected);
    assert_eq!(quota("10/s burst20"), expected);
    assert_eq!(
        quota("10/s burst 10"),
        Quota::per_second(10).expect("valid")
    );
}

#[test]
fn concurrent() {
    assert_eq!(quota("2 concurrent"), Quota::concurrent(2).expect("valid"));
    assert_eq!(quota("2concurrent"), Quota::concurrent(2).expect("valid"));
}

#[test]
fn every_unit_spelling() {
    let cases: [(&[&str], u64); 6] = [
        (&["ms", "millisecond", "milliseconds"], 1),
        (&["s", "sec", "second", "seconds"], 1_000),
        (&["m", "min", "minute", "minutes"], 60_000),
        (&["h", "hr", "hour", "hours"], 3_600_000),
        (&["d", "day", "days"], 86_400_000),
        (&["w", "week", "weeks"], 604_800_000),
    ];
    for (spellings, millis) in cases {
        for spelling in spellings {
            let expected = rate(1, Duration::from_millis(millis));
            assert_eq!(quota(&format!("1/{spelling}")), expected, "{spelling}");
            let upper = spelling.to_ascii_uppercase();
            assert_eq!(quota(&format!("1 PER {upper}")), expected, "{upper}");
        }
    }
}

#[test]
fn case_and_whitespace() {
    let expected = Quota::per_minute(10)
        .and_then(|q| q.with_burst(3))
        .expect("valid");
    assert_eq!(quota("  10 Per MINUTE BuRsT 3  "), expected);
    assert_eq!(quota("\t10\n/\r\nminute burst\t3"), expected);
    assert_eq!(quota("10/minute burst 3"), expected);
    assert_eq!(
        quota(" 4 CONCURRENT "),
        Quota::concurrent(4).expect("valid")
    );
    assert_eq!(quota("007/s"), Quota::per_second(7).expect("valid"));
}

#[test]
fn several_quotas() {
    let quotas: Quotas = "100/minute; 1000/day".parse().expect("valid");
    assert_eq!(
        quotas.as_slice(),
        &[
            Quota::per_minute(100).expect("valid"),
            Quota::per_day(1000).expect("valid")
        ]
    );
    let one: Quotas = "5/s".parse().expect("valid");
    assert_eq!(one.len(), 1);
    let trailing: Quotas = "5/s; 3 concurrent ; ".parse().expect("valid");
    assert_eq!(trailing.len(), 2);
    assert_eq!(trailing.to_string(), "5/second; 3 concurrent");
}

// --- Display and round trips ---

#[test]
fn canonical_display() {
    let cases = [
        ("10/s burst 20", "10/second burst 20"),
        ("1000 per d", "1000/day"),
        ("100/300 s", "100/5 minutes"),
        ("2 concurrent", "2 concurrent"),
        ("1/7 days", "1/week"),
        ("1/14 d", "1/2 weeks"),
        ("5/1500 ms", "5/1500 milliseconds"),
        ("5/1000 ms", "5/second"),
        ("3/90 min", "3/90 minutes"),
        ("3/120 min", "3/2 hours"),
        ("1/366 days", "1/366 days"),
        ("10/s burst 10", "10/second"),
        ("5/s burst 1 queue 10", "5/second burst 1 queue 10"),
        ("5 per second queue 3", "5/second queue 3"),
        ("5/s queue 0", "5/second"),
        (
            "5/s burst 1 queue 10 wait 2s",
            "5/second burst 1 queue 10 wait 2 seconds",
        ),
        (
            "5/s queue 10 wait 1500 ms",
            "5/second queue 10 wait 1500 milliseconds",
        ),
        ("5/s queue 10 wait 60 s", "5/second queue 10 wait 1 minute"),
        (
            "5/s QUEUE 10 WAIT 1 Second",
            "5/second queue 10 wait 1 second",
        ),
    ];
    for (input, canonical) in cases {
        assert_eq!(quota(input).to_string(), canonical, "{input}");
        assert_eq!(quota(canonical), quota(input), "{canonical}");
    }
}

#[test]
fn round_trip() {
    let mut all = Vec::new();
    for count in [1, 2, 3, 7, 1000, Quota::MAX_COUNT] {
        for millis in [
            1,
            999,
            1_000,
            1_500,
            60_000,
            86_400_000,
            604_800_000,
            31_622_400_000,
        ] {
            let Ok(q) = Quota::new(count, Duration::from_millis(millis)) else {
                continue;
            };
            for burst in [1, count, 2 * count] {
                if let Ok(q) = q.with_burst(burst) {
                    all.push(q);
                    for queue in [1, 10] {
                        if let Ok(queued) = q.with_queue(queue) {
                            all.push(queued);
                            for wait in [1, 1_500, 60_000] {
                                let wait = Duration::from_millis(wait);
                                all.extend(queued.with_max_wait(wait));
                            }
                        }
                    }
                }
            }
        }
    }
    for n in [1, 2, Quota::MAX_CONCURRENCY] {
        all.push(Quota::concurrent(n).expect("valid"));
    }
    assert!(all.len() > 50);
    for q in &all {
        let text = q.to_string();
        assert_eq!(text.parse::<Quota>().as_ref(), Ok(q), "{text}");
    }
    for chunk in all.chunks(10) {
        let quotas = Quotas::new(chunk.to_vec()).expect("non-empty");
        let text = quotas.to_string();
        assert_eq!(text.parse::<Quotas>(), Ok(quotas), "{text}");
    }
}

// --- errors: kind and span ---

#[test]
fn error_empty() {
    assert_err("", Kind::Empty, 0..0);
    assert_err("   ", Kind::Empty, 0..3);
}

#[test]
fn error_too_long() {
    let long = format!("1/s{}", " ".repeat(MAX_QUOTA_TEXT_LEN));
    let len = long.len();
    assert_err(
        &long,
        Kind::TooLong {
            len,
            max: MAX_QUOTA_TEXT_LEN,
        },
        0..len,
    );
    // Exactly 1 KiB is accepted.
    let max = format!("1/s{}", " ".repeat(MAX_QUOTA_TEXT_LEN - 3));
    assert_eq!(quota(&max), Quota::per_second(1).expect("valid"));
    // The message quotes a shortened input.
    let message = parse_err(&"é".repeat(2000)).to_string();
    assert!(message.len() < 300, "{message}");
}

#[test]
fn error_not_ascii() {
    assert_err("10/sécond", Kind::NotAscii { character: 'é' }, 4..6);
    assert_err("１0/s", Kind::NotAscii { character: '１' }, 0..3);
    let err = quotas_err("1/s; 2/s; 3/ş");
    assert_eq!(err.segment(), 2);
    assert_eq!(err.span(), 12..14);
}

#[test]
fn error_expected_number() {
    let found = |s: &str| Kind::ExpectedNumber {
        found: s.to_owned(),
    };
    assert_err("abc/s", found("abc"), 0..3);
    assert_err("-5/s", found("-"), 0..1);
    assert_err("+5/s", found("+"), 0..1);
    assert_err("/s", found("/"), 0..1);
    assert_err("10/s burst", found(""), 10..10);
    assert_err("10/s burst x", found("x"), 11..12);
    assert_err("10/s burst -1", found("-"), 11..12);
}

#[test]
fn error_number_too_large() {
    let huge = "99999999999999999999999";
    assert_err(&format!("{huge}/s"), Kind::NumberTooLarge, 0..23);
    assert_err(&format!("1/{huge} s"), Kind::NumberTooLarge, 2..25);
    assert_err(&format!("1/s burst {huge}"), Kind::NumberTooLarge, 10..33);
    assert_err(&format!("{huge} concurrent"), Kind::NumberTooLarge, 0..23);
    // Fits in u64, but not once multiplied by a week in milliseconds.
    assert_err("1/18446744073709551615 weeks", Kind::NumberTooLarge, 2..22);
    // u64::MAX itself parses, then is refused as a value.
    assert_err(
        "18446744073709551615/s",
        Kind::Value(QuotaError::CountTooLarge {
            count: u64::MAX,
            max: Quota::MAX_COUNT,
        }),
        0..20,
    );
}

#[test]
fn error_missing_unit() {
    assert_err("10/", Kind::MissingUnit, 3..3);
    assert_err("10 per", Kind::MissingUnit, 6..6);
    assert_err("10/5", Kind::MissingUnit, 4..4);
    assert_err("10 / 5  ", Kind::MissingUnit, 6..6);
}

#[test]
fn error_unknown_unit() {
    let unknown = |s: &str| Kind::UnknownUnit { unit: s.to_owned() };
    assert_err("10/fortnight", unknown("fortnight"), 3..12);
    assert_err("10/5 months", unknown("months"), 5..11);
    assert_err("10/burst 5", unknown("burst"), 3..8);
    assert_err("10/us", unknown("us"), 3..5);
}

#[test]
fn error_unexpected_token() {
    let after_count = "\"/\", \"per\" or \"concurrent\"";
    assert_err("10", unexpected("", after_count), 2..2);
    assert_err("10 x", unexpected("x", after_count), 3..4);
    assert_err("1.5/s", unexpected(".", after_count), 1..2);
    assert_err("1_000/s", unexpected("_", after_count), 1..2);
    assert_err("10//s", unexpected("/", "a number or a unit"), 3..4);
    assert_err("10/5/s", unexpected("/", "a unit"), 4..5);
    let after_rate = "\"burst\", \"queue\" or the end of the quota";
    assert_err("10/s 5", unexpected("5", after_rate), 5..6);
    assert_err("10/s; 5/m", unexpected(";", after_rate), 4..5);
    assert_err("10/s per", unexpected("per", after_rate), 5..8);
    assert_err("10/s wait 1s", unexpected("wait", after_rate), 5..9);
    let after_burst = "\"queue\" or the end of the quota";
    assert_err(
        "10/s burst 5 burst 6",
        unexpected("burst", after_burst),
        13..18,
    );
    assert_err(
        "10/s burst 5 wait 1s",
        unexpected("wait", after_burst),
        13..17,
    );
    let after_queue = "\"wait\" or the end of the quota";
    assert_err(
        "10/s queue 5 burst 6",
        unexpected("burst", after_queue),
        13..18,
    );
    let end = "the end of the quota";
    assert_err(
        "10/s queue 5 wait 1s queue 2",
        unexpected("queue", end),
        21..26,
    );
    assert_err("2 concurrent burst 3", unexpected("burst", end), 13..18);
    assert_err("2 concurrent/s", unexpected("/", end), 12..13);
}

#[test]
fn error_value() {
    let value = Kind::Value;
    assert_err("0/s", value(QuotaError::CountZero), 0..1);
    assert_err(
        "1000000001/s",
        value(QuotaError::CountTooLarge {
            count: 1_000_000_001,
            max: Quota::MAX_COUNT,
        }),
        0..10,
    );
    assert_err(
        "1/0 s",
        value(QuotaError::PeriodTooShort {
            period: Duration::ZERO,
            min: Quota::MIN_PERIOD,
        }),
        2..5,
    );
    assert_err(
        "1 per 367 days",
        value(QuotaError::PeriodTooLong {
            period: Duration::from_secs(367 * 86_400),
            max: Quota::MAX_PERIOD,
        }),
        6..14,
    );
    assert_err(
        "1/53 weeks",
        value(QuotaError::PeriodTooLong {
            period: Duration::from_secs(53 * 7 * 86_400),
            max: Quota::MAX_PERIOD,
        }),
        2..10,
    );
    assert_err(
        "2000000/ms",
        value(QuotaError::RateTooFast {
            count: 2_000_000,
            period: Duration::from_millis(1),
        }),
        0..10,
    );
    assert_err("1/s burst 0", value(QuotaError::BurstZero), 10..11);
    assert_err(
        "1/s burst 1000000001",
        value(QuotaError::BurstTooLarge {
            burst: 1_000_000_001,
            max: Quota::MAX_BURST,
        }),
        10..20,
    );
    assert_err(
        "1/366 days burst 146",
        value(QuotaError::BurstWindowTooLong {
            burst: 146,
            emission_interval_nanos: 31_622_400 * SEC,
        }),
        17..20,
    );
    assert_err("0 concurrent", value(QuotaError::ConcurrencyZero), 0..1);
    assert_err(
        "1000001 concurrent",
        value(QuotaError::ConcurrencyTooLarge {
            max_in_flight: 1_000_001,
            max: Quota::MAX_CONCURRENCY,
        }),
        0..7,
    );
}

#[test]
fn error_segments() {
    let err = quotas_err("");
    assert_eq!(
        (err.segment(), err.span(), err.kind()),
        (0, 0..0, &Kind::Empty)
    );
    let err = quotas_err(";");
    assert_eq!(
        (err.segment(), err.span(), err.kind()),
        (0, 0..0, &Kind::Empty)
    );
    let err = quotas_err("1/s;;");
    assert_eq!(
        (err.segment(), err.span(), err.kind()),
        (1, 4..4, &Kind::Empty)
    );
    let err = quotas_err("1/s; ;2/s");
    assert_eq!(
        (err.segment(), err.span(), err.kind()),
        (1, 4..5, &Kind::Empty)
    );
    let err = quotas_err("100/minute; 10/fortnight");
    assert_eq!(err.segment(), 1);
    assert_eq!(err.span(), 15..24);
    assert_eq!(err.token(), "fortnight");
    assert_eq!(
        err.to_string(),
        "invalid quota \"100/minute; 10/fortnight\" at bytes 15..24 (quota #2): \
         unknown unit \"fortnight\" (expected second, minute, hour, day, week or millisecond)"
    );
}

#[test]
fn error_messages() {
    let message = |text: &str| parse_err(text).to_string();
    assert_eq!(
        message("10/fortnight"),
        "invalid quota \"10/fortnight\" at bytes 3..12: unknown unit \"fortnight\" \
         (expected second, minute, hour, day, week or millisecond)"
    );
    assert_eq!(
        message("10/s burst"),
        "invalid quota \"10/s burst\" at bytes 10..10: expected a number, found end of quota"
    );
    assert_eq!(
        message("10"),
        "invalid quota \"10\" at bytes 2..2: unexpected end of quota \
         (expected \"/\", \"per\" or \"concurrent\")"
    );
    assert_eq!(
        message("1 per 367 days"),
        "invalid quota \"1 per 367 days\" at bytes 6..14: \
         period 367 days is too long (at most 366 days)"
    );
    assert_eq!(
        message("2000000/ms"),
        "invalid quota \"2000000/ms\" at bytes 0..10: rate 2000000 per 1 millisecond \
         is too fast (more than one request per nanosecond)"
    );
    assert_eq!(
        message("10/sécond"),
        "invalid quota \"10/sécond\" at bytes 4..6: non-ASCII character 'é'"
    );
    assert_eq!(
        message("\"1\"/s"),
        "invalid quota \"\\\"1\\\"/s\" at bytes 0..1: expected a number, found \"\\\"\""
    );
    assert_eq!(
        QuotaError::PeriodTooShort {
            period: Duration::from_micros(10),
            min: Quota::MIN_PERIOD
        }
        .to_string(),
        "period 10µs is too short (at least 1 millisecond)"
    );
}

// --- delay mode: queue and wait ---

#[test]
fn queue_and_wait() {
    let nginx = quota("5/second burst 1 queue 10");
    assert_eq!(nginx.count(), 5);
    assert_eq!(nginx.burst(), 1);
    assert_eq!(nginx.queue(), 10);
    assert_eq!(nginx.max_wait(), None);
    let built = rate(5, Duration::from_secs(1))
        .with_burst(1)
        .and_then(|q| q.with_queue(10))
        .expect("valid");
    assert_eq!(built, nginx);
    assert_ne!(nginx, quota("5/second burst 1"));

    let capped = quota("5/s burst 1 queue 10 wait 1s");
    assert_eq!(capped.max_wait(), Some(Duration::from_secs(1)));
    // A queue of 0 refuses at once and drops the wait with it.
    let cleared = capped.with_queue(0).expect("valid");
    assert_eq!((cleared.queue(), cleared.max_wait()), (0, None));
    assert_eq!(cleared, quota("5/s burst 1"));
}

#[test]
fn queue_and_wait_refused_values() {
    let concurrent = Quota::concurrent(2).expect("valid");
    assert_eq!(
        concurrent.with_queue(1),
        Err(QuotaError::QueueOnConcurrent { max_in_flight: 2 })
    );
    let five = rate(5, Duration::from_secs(1));
    assert_eq!(
        five.with_queue(Quota::MAX_QUEUE + 1),
        Err(QuotaError::QueueTooLarge {
            queue: Quota::MAX_QUEUE + 1,
            max: Quota::MAX_QUEUE
        })
    );
    let slow = rate(1, Quota::MAX_PERIOD);
    assert!(matches!(
        slow.with_queue(Quota::MAX_QUEUE),
        Err(QuotaError::QueueWindowTooLong { .. })
    ));
    assert_eq!(
        five.with_max_wait(Duration::from_secs(1)),
        Err(QuotaError::WaitWithoutQueue)
    );
    let queued = five.with_queue(3).expect("valid");
    for wait in [Duration::ZERO, Quota::MAX_PERIOD + Duration::from_millis(1)] {
        assert!(matches!(
            queued.with_max_wait(wait),
            Err(QuotaError::WaitOutOfRange { .. })
        ));
    }
    assert_eq!(
        queued.with_max_wait(Duration::from_micros(1500)),
        Err(QuotaError::WaitNotWholeMilliseconds {
            wait: Duration::from_micros(1500)
        })
    );
    // In text, the span covers the value refused.
    let value = Kind::Value;
    assert_err(
        "2 concurrent queue 1",
        unexpected("queue", "the end of the quota"),
        13..18,
    );
    assert_err(
        "5/s queue 2000000000",
        value(QuotaError::QueueTooLarge {
            queue: 2_000_000_000,
            max: Quota::MAX_QUEUE,
        }),
        10..20,
    );
    assert_err(
        "5/s queue 2 wait 400 days",
        value(QuotaError::WaitOutOfRange {
            wait: Duration::from_secs(400 * 86_400),
            min: Quota::MIN_PERIOD,
            max: Quota::MAX_PERIOD,
        }),
        17..25,
    );
    assert_err(
        "5/s queue",
        Kind::ExpectedNumber {
            found: String::new(),
        },
        9..9,
    );
}
