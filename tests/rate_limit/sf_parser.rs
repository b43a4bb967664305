//! The structured-field parser itself, on good and bad examples.

use crate::sf::*;

fn s(text: &str) -> Bare {
    Bare::String(text.into())
}

#[test]
fn parses_good_lists() {
    let items =
        parse_list(br#""a";q=10;w=60, "b";q=2;qu="concurrent-requests""#).expect("valid list");
    assert_eq!(
        items,
        vec![
            Item {
                value: s("a"),
                params: vec![
                    ("q".into(), Bare::Integer(10)),
                    ("w".into(), Bare::Integer(60))
                ],
            },
            Item {
                value: s("b"),
                params: vec![
                    ("q".into(), Bare::Integer(2)),
                    ("qu".into(), s("concurrent-requests"))
                ],
            },
        ]
    );
    let escaped = parse_list(br#""a\"b\\c";r=0"#).expect("escapes");
    assert_eq!(escaped[0].value, s("a\"b\\c"));
    let spaced = parse_list(b"  \"a\"; q=1\t,\t\"b\";k.x-y_z*=tok/en:1;flag;neg=-3;no=?0  ")
        .expect("whitespace where allowed");
    assert_eq!(spaced.len(), 2);
    assert_eq!(spaced[0].int("q"), Some(1));
    assert_eq!(
        spaced[1].param("k.x-y_z*"),
        Some(&Bare::Token("tok/en:1".into()))
    );
    assert_eq!(spaced[1].param("flag"), Some(&Bare::Boolean(true)));
    assert_eq!(spaced[1].int("neg"), Some(-3));
    assert_eq!(spaced[1].param("no"), Some(&Bare::Boolean(false)));
    assert_eq!(parse_list(b"").expect("empty"), vec![]);
    let max = parse_list(b"\"a\";q=999999999999999").expect("15 digits");
    assert_eq!(max[0].int("q"), Some(999_999_999_999_999));
    let dup = parse_list(b"\"a\";q=1;w=2;q=3").expect("repeated key");
    assert_eq!(
        dup[0].params,
        vec![
            ("q".into(), Bare::Integer(3)),
            ("w".into(), Bare::Integer(2))
        ]
    );
}

#[test]
fn refuses_bad_lists() {
    for bad in [
        &b"\"a\" ;q=1"[..],
        b"\"a\";Q=1",
        b"\"a\";1q=1",
        b"\"a\";=1",
        b"\"a\";q=",
        b"\"a\";q=-",
        b"\"a\";q=1234567890123456",
        b"\"a\";q=1.5",
        b"\"a",
        b"\"a\\x\"",
        b"\"a\tb\"",
        b"\"caf\xc3\xa9\"",
        b"\"a\",",
        b"\"a\", ",
        b",\"a\"",
        b"\"a\" \"b\"",
        b"\"a\";q=?2",
        b"\"a\";q=:aGk=:",
        b"(\"a\" \"b\")",
    ] {
        assert!(
            parse_list(bad).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn checks_ratelimit_policy_items() {
    let ok = policy(br#""m";q=10;w=60, "c";q=2;qu="concurrent-requests""#).expect("valid");
    assert_eq!(ok[0].w, Some(60));
    assert!(ok[1].concurrent);
    for bad in [
        &b""[..],
        b"\"m\";q=0;w=60",
        b"\"m\";w=60",
        b"\"m\";q=1",
        b"\"m\";q=1;w=0",
        b"\"m\";q=1;w=\"60\"",
        b"\"m\";q=\"1\";w=60",
        b"\"m\";q=1;qu=\"requests\"",
        b"\"m\";q=1;qu=concurrent-requests",
        b"m;q=1;w=60",
    ] {
        assert!(
            policy(bad).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn checks_ratelimit_items() {
    let ok = ratelimit(br#""m";r=0;t=0, "d";r=7;t=2, "c";r=1"#).expect("valid");
    assert_eq!((ok[1].r, ok[1].t), (7, Some(2)));
    // t is optional (section 4.1).
    assert_eq!((ok[2].r, ok[2].t), (1, None));
    for bad in [
        &b""[..],
        b"\"m\";r=-1;t=0",
        b"\"m\";t=0",
        b"\"m\";r=0;t=-5",
        b"\"m\";r=?1;t=0",
        b"m;r=0;t=0",
    ] {
        assert!(
            ratelimit(bad).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn checks_retry_after() {
    assert_eq!(retry_after(b"1"), Ok(1));
    assert_eq!(retry_after(b"86400"), Ok(86400));
    for bad in [
        &b""[..],
        b"0",
        b"-1",
        b"1.5",
        b" 1",
        b"1s",
        b"Wed, 21 Oct 2015",
    ] {
        assert!(retry_after(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn cross_checks_fields() {
    let mut headers = http::HeaderMap::new();
    headers.insert("ratelimit", http::HeaderValue::from_static("\"x\";r=0;t=1"));
    assert!(check_fields(&headers).is_err(), "RateLimit alone");
    headers.insert(
        "ratelimit-policy",
        http::HeaderValue::from_static("\"y\";q=1;w=1"),
    );
    assert!(check_fields(&headers).is_err(), "unknown policy name");
    headers.insert(
        "ratelimit-policy",
        http::HeaderValue::from_static("\"x\";q=1;w=1"),
    );
    headers.insert("retry-after", http::HeaderValue::from_static("1"));
    assert!(check_fields(&headers).is_ok());
    headers.append("retry-after", http::HeaderValue::from_static("2"));
    assert!(check_fields(&headers).is_err(), "repeated Retry-After");
}
