//! The builder: a layer is checked and built once; rules have names.

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::key::{HeaderKey, PeerIp};
use tollgate::{ConfigError, Mode, RateLimitLayer, MAIN_RULE, MAX_RULES};
use tower::Layer;

use crate::support::{builder, send, single, statuses, with_headers, Calls, Ok200, PEER};

#[test]
fn rule_names_are_checked_when_the_layer_is_built() {
    let clock = ManualClock::new();
    let bad = builder(single("api", "1/minute"), &clock)
        .also("per ip", single("per-ip", "1/minute"), PeerIp::new())
        .build();
    assert!(
        matches!(&bad, Err(ConfigError::InvalidName { name }) if name == "per ip"),
        "{bad:?}"
    );
    let unnamed = builder(single("api", "1/minute"), &clock).name("").build();
    assert!(matches!(unnamed, Err(ConfigError::InvalidName { .. })));
    let twice = builder(single("api", "1/minute"), &clock)
        .name("api")
        .also("api", single("per-ip", "1/minute"), PeerIp::new())
        .build_reloadable();
    assert!(
        matches!(&twice, Err(ConfigError::Duplicate { name }) if name == "api"),
        "{:?}",
        twice.map(|_| ())
    );
}

/// A shadow recheck marks a rule by its position in a 32-bit set; a 33rd
/// rule once shifted that set by 32 (a panic in debug builds, and in
/// release a recheck that never skipped the rule). The builder refuses it.
#[test]
fn more_rules_than_a_layer_may_hold_are_refused() {
    let clock = ManualClock::new();
    let mut b = builder(single("api", "1000/minute"), &clock);
    for i in 1..MAX_RULES {
        b = b.also(format!("r{i}"), single("api", "1000/minute"), PeerIp::new());
    }
    let full = b.build().expect("exactly MAX_RULES rules");
    assert_eq!(full.plans_of("r31").map(|p| p.tiers().len()), Some(1));

    let mut b = builder(single("api", "1000/minute"), &clock);
    for i in 1..=MAX_RULES {
        b = b.also(format!("r{i}"), single("api", "1000/minute"), PeerIp::new());
    }
    let over = b.build();
    assert!(
        matches!(over, Err(ConfigError::TooManyRules { count: 33, max: 32 })),
        "{over:?}",
        over = over.map(|_| ())
    );
}

/// All 32 rules in shadow mode and refusing: every one is skipped in turn
/// and the request passes (the recheck ends, whatever the position).
#[tokio::test]
async fn a_shadow_rule_at_the_last_position_is_skipped() {
    let clock = ManualClock::new();
    let shadowed = || {
        tollgate::Plans::builder()
            .tier("s", "1/minute")
            .mode("s", Mode::Shadow)
            .build()
            .expect("plans")
    };
    let mut b = builder(single("api", "1000/minute"), &clock);
    for i in 1..MAX_RULES {
        b = b.also(format!("r{i}"), shadowed(), PeerIp::new());
    }
    let calls = Calls::default();
    let mut svc = b.build().expect("layer").layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 200]);
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn the_reloader_replaces_a_rule_by_its_name_and_leaves_the_others() {
    let clock = ManualClock::new();
    let (layer, reloader) = builder(single("per-peer", "10/minute"), &clock)
        .name("peer")
        .also(
            "tenant",
            single("per-tenant", "10/minute"),
            HeaderKey::new("x-tenant"),
        )
        .headers_on_allowed(true)
        .build_reloadable()
        .expect("layer");
    assert_eq!(reloader.rules(), ["peer", "tenant"]);
    assert!(reloader.plans(MAIN_RULE).is_none(), "renamed");
    let mut svc = layer.clone().layer(Ok200::default());
    let tenant = || with_headers(Some(PEER), &[("x-tenant", b"acme")]);
    reloader
        .replace("tenant", single("per-tenant", "1/minute"))
        .expect("reload");
    assert_eq!(
        layer
            .plans_of("tenant")
            .expect("tenant")
            .default_tier()
            .limits()[0]
            .quota()
            .count(),
        1
    );
    assert_eq!(
        layer.plans(),
        single("per-peer", "10/minute"),
        "the first rule kept"
    );
    let first = send(&mut svc, tenant()).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = send(&mut svc, tenant()).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.json()["policy"], "per-tenant");
}

/// What the setters on a shared layer made possible, and the builder does
/// not: configuring after the reloader was made, or after a clone.
#[tokio::test]
async fn a_clone_of_a_built_layer_is_the_same_layer() {
    let (layer, reloader) = RateLimitLayer::builder(single("api", "2/minute"))
        .headers_on_allowed(true)
        .build_reloadable()
        .expect("layer");
    let copy = layer.clone();
    reloader
        .replace(MAIN_RULE, single("api", "1/minute"))
        .expect("reload");
    assert_eq!(
        copy.plans(),
        single("api", "1/minute"),
        "the reload reached the clone"
    );
    let mut a = layer.layer(Ok200::default());
    let mut b = copy.layer(Ok200::default());
    assert_eq!(statuses(&mut a, PEER, 1).await, [200]);
    assert_eq!(statuses(&mut b, PEER, 1).await, [429], "one counter");
}
