//! Plans replaced while the layer runs, and the per-tier modes: enforce,
//! shadow (observe only) and off (the kill switch).

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::key::{HeaderKey, Key, KeyExtractor, PeerIp, RequestInfo, TierName};
use tollgate::{Mode, Plans, ReloadError, MAIN_RULE};
use tower::Layer;

use crate::support::{
    builder, from, layer, send, single, statuses, with_headers, Calls, Ok200, PEER,
};

fn plans_with_mode(name: &str, quotas: &str, mode: Mode) -> Plans {
    Plans::builder()
        .tier(name, quotas)
        .mode(name, mode)
        .build()
        .expect("valid test plan")
}

#[tokio::test]
async fn a_reload_keeps_the_counters_of_unchanged_limits() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let (layer, reloader) = builder(single("api", "2/minute"), &clock)
        .build_reloadable()
        .expect("layer");
    let mut svc = layer.layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 429]);

    // Same definition of "api", plus a tier: the spent quota stays spent.
    let same = Plans::builder()
        .tier("api", "2/minute")
        .tier("extra", "9/minute")
        .build()
        .expect("plans");
    reloader.replace(MAIN_RULE, same).expect("reload");
    assert_eq!(statuses(&mut svc, PEER, 1).await, [429]);
    assert_eq!(reloader.plans(MAIN_RULE).expect("main").tiers().len(), 2);

    // A changed quota is a new limit: it starts afresh.
    reloader
        .replace(MAIN_RULE, single("api", "4/minute"))
        .expect("reload");
    assert_eq!(statuses(&mut svc, PEER, 5).await, [200, 200, 200, 200, 429]);
    assert_eq!(calls.get(), 6);
    assert_eq!(
        layer.plans().default_tier().limits()[0].quota().count(),
        4,
        "the layer reports the plans in force"
    );
}

#[tokio::test]
async fn a_reload_reaches_every_clone_and_service() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let (layer, reloader) = builder(single("api", "100/minute"), &clock)
        .build_reloadable()
        .expect("layer");
    let mut first = layer.clone().layer(Ok200::new(&calls));
    let mut second = layer.layer(Ok200::new(&calls));
    reloader
        .replace(MAIN_RULE, single("api", "1/minute"))
        .expect("reload");
    assert_eq!(statuses(&mut first, PEER, 1).await, [200]);
    // One new counter, shared by both services.
    assert_eq!(statuses(&mut second, PEER, 1).await, [429]);
    let other = "192.0.2.2:1";
    assert_eq!(statuses(&mut second, other, 2).await, [200, 429]);
    assert_eq!(statuses(&mut first, other, 1).await, [429]);
}

#[tokio::test]
async fn bad_reloads_are_refused_and_the_plans_in_force_stay() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let (layer, reloader) = builder(single("api", "1/minute"), &clock)
        .build_reloadable()
        .expect("layer");
    let mut svc = layer.layer(Ok200::new(&calls));
    assert_eq!(
        reloader.replace("per-ip", single("api", "9/minute")),
        Err(ReloadError::NoSuchRule {
            rule: "per-ip".into(),
            rules: vec![MAIN_RULE.into()]
        })
    );
    // All or nothing: a known rule named beside an unknown one, or twice,
    // changes nothing.
    assert_eq!(
        reloader.replace_all([
            (MAIN_RULE, single("api", "9/minute")),
            ("b", single("b", "1/second"))
        ]),
        Err(ReloadError::NoSuchRule {
            rule: "b".into(),
            rules: vec![MAIN_RULE.into()]
        })
    );
    assert_eq!(
        reloader.replace_all([
            (MAIN_RULE, single("api", "9/minute")),
            (MAIN_RULE, single("api", "8/minute"))
        ]),
        Err(ReloadError::Duplicate {
            rule: MAIN_RULE.into()
        })
    );
    // A bad plan never gets as far as the reloader: building it fails.
    assert!(Plans::single("api", "9/fortnight").is_err());
    assert_eq!(statuses(&mut svc, PEER, 2).await, [200, 429]);
    assert_eq!(
        reloader.plans(MAIN_RULE).expect("main"),
        single("api", "1/minute")
    );
}

#[tokio::test]
async fn replace_all_swaps_every_rule_at_once() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let (layer, reloader) = builder(single("per-peer", "10/minute"), &clock)
        .also(
            "per-tenant",
            single("per-tenant", "10/minute"),
            HeaderKey::new("x-tenant"),
        )
        .build_reloadable()
        .expect("layer");
    let mut svc = layer.layer(Ok200::new(&calls));
    let tenant = || with_headers(Some(PEER), &[("x-tenant", b"acme")]);
    assert_eq!(send(&mut svc, tenant()).await.status, StatusCode::OK);
    reloader
        .replace_all([
            (MAIN_RULE, single("per-peer", "10/minute")),
            ("per-tenant", single("per-tenant", "2/minute")),
        ])
        .expect("reload");
    // per-peer kept its counter (1 spent); per-tenant is new (2 allowed).
    assert_eq!(send(&mut svc, tenant()).await.status, StatusCode::OK);
    assert_eq!(send(&mut svc, tenant()).await.status, StatusCode::OK);
    let refused = send(&mut svc, tenant()).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["policy"], "per-tenant");
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn mode_off_is_a_kill_switch() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let (layer, reloader) = builder(plans_with_mode("api", "1/minute", Mode::Off), &clock)
        .headers_on_allowed(true)
        .build_reloadable()
        .expect("layer");
    let mut svc = layer.layer(Ok200::new(&calls));
    for _ in 0..5 {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.header("ratelimit").is_none(), "nothing was counted");
    }
    assert_eq!(calls.get(), 5);
    reloader
        .replace(MAIN_RULE, plans_with_mode("api", "1/minute", Mode::Enforce))
        .expect("reload");
    assert_eq!(statuses(&mut svc, PEER, 2).await, [200, 429]);
    assert_eq!(calls.get(), 6);
}

#[tokio::test]
async fn mode_off_for_one_tier_leaves_the_others_enforced() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let plans = Plans::builder()
        .tier("anonymous", "1/minute")
        .tier("internal", "1/minute")
        .mode("internal", Mode::Off)
        .build()
        .expect("plans");
    let extractor = HeaderKey::new("x-team").tiered(|_req: &RequestInfo<'_>, key: &Key<'_>| {
        (key.as_bytes() == b"ops").then_some(TierName::from("internal"))
    });
    let mut svc = builder(plans, &clock)
        .key(extractor)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    let team = |name: &'static [u8]| with_headers(Some(PEER), &[("x-team", name)]);
    for _ in 0..4 {
        assert_eq!(send(&mut svc, team(b"ops")).await.status, StatusCode::OK);
    }
    assert_eq!(send(&mut svc, team(b"web")).await.status, StatusCode::OK);
    assert_eq!(
        send(&mut svc, team(b"web")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_shadow_tier_lets_through_while_other_rules_still_enforce() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    // The new, stricter limit is rolled out in shadow; the per-IP ceiling
    // already in force keeps refusing.
    let mut svc = builder(
        plans_with_mode("new-limit", "1/minute", Mode::Shadow),
        &clock,
    )
    .also("per-ip", single("per-ip", "3/minute"), PeerIp::new())
    .build()
    .expect("layer")
    .layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 200]);
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["policy"], "per-ip");
    assert_eq!(calls.get(), 3);
    // Another client: its first request charges both limits as usual.
    assert_eq!(
        statuses(&mut svc, "192.0.2.9:1", 4).await,
        [200, 200, 200, 429]
    );
}

#[tokio::test]
async fn a_shadow_tier_alone_never_refuses() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc =
        layer(plans_with_mode("api", "1/minute", Mode::Shadow), &clock).layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 4).await, [200, 200, 200, 200]);
    assert_eq!(calls.get(), 4);
}

#[test]
fn modes_parse_and_unknown_tiers_are_refused() {
    assert_eq!("shadow".parse::<Mode>(), Ok(Mode::Shadow));
    assert!("Shadow".parse::<Mode>().is_err());
    let unknown = Plans::builder()
        .tier("a", "1/second")
        .mode("b", Mode::Off)
        .build();
    assert!(matches!(
        unknown,
        Err(tollgate::ConfigError::UnknownTier { tier }) if tier == "b"
    ));
    let _: &dyn KeyExtractor = &PeerIp::new();
}
