//! The request pipeline: read the keys, charge the store, conclude; again
//! without a rule in shadow mode that would have refused; later when the
//! store answers later.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};

use crate::key::RequestInfo;
use crate::rate_limit::delay::Wait;
use crate::rate_limit::refund::{After, Owned};
use crate::rate_limit::rules::{Rules, Skip, Tiers};
use crate::rate_limit::state::Shared;
use crate::store::{Checked, Permits, Store};

/// What the layer does with a request.
pub(crate) enum Conclusion {
    /// Call the inner service; hold the permits; then add the fields and
    /// settle the refund, when there are any.
    Admit {
        permits: Permits,
        after: Option<Box<After>>,
    },
    /// Answer this instead.
    Answer(Response<Bytes>),
    /// Call the inner service once the wait is over (delay mode).
    Delay(Box<Wait>),
}

impl Conclusion {
    /// Admits a request no limit applies to (every tier charged is off).
    pub(super) fn unchecked() -> Self {
        Conclusion::Admit {
            permits: Permits::none(),
            after: None,
        }
    }
}

pub(crate) enum Evaluation<St: Store> {
    Done(Conclusion),
    Pending(Pending<St>),
}

/// A check the store answers later, and what concluding it needs.
pub(crate) struct Pending<St: Store> {
    pub(crate) future: St::Future,
    tiers: Tiers,
    rules: Arc<Rules<St::Handle>>,
    skip: Skip,
    owned: Option<Box<Owned<St::Handle>>>,
}

/// What a store's answer leads to.
pub(super) enum Step {
    Done(Conclusion),
    /// Admitted to pass later: [`Shared::hold`] completes the wait.
    Delay(Box<Wait>),
    /// A rule in shadow mode would refuse: check again without these rules.
    Recheck(Skip),
}

impl<St: Store> Shared<St> {
    /// Reads the request's keys and tiers and runs the check.
    #[inline]
    pub(crate) fn evaluate<B>(&self, request: &Request<B>) -> Evaluation<St> {
        let info = RequestInfo::new(request);
        let rules = self.rules.load();
        let mut skip: Skip = 0;
        loop {
            let (checked, tiers, owned) = match self.charge(&rules, &info, skip) {
                Ok(charged) => charged,
                Err(conclusion) => return Evaluation::Done(conclusion),
            };
            match checked {
                Checked::Ready(result) => match self.step(&rules, result, &tiers, skip, owned) {
                    Step::Done(conclusion) => return Evaluation::Done(conclusion),
                    Step::Delay(wait) => {
                        let wait = self.hold(&rules, &info, wait);
                        return Evaluation::Done(Conclusion::Delay(wait));
                    }
                    Step::Recheck(more) => skip |= more,
                },
                Checked::Pending(future) => {
                    return Evaluation::Pending(Pending {
                        future,
                        tiers,
                        rules: rules.into_arc(),
                        skip,
                        owned,
                    })
                }
            }
        }
    }

    /// Concludes a check the store answered later, checking again (and
    /// waiting again) when a rule in shadow mode would have refused.
    pub(crate) async fn conclude_pending(
        &self,
        pending: Pending<St>,
        request: &http::request::Parts,
    ) -> Conclusion {
        let Pending {
            mut future,
            mut tiers,
            rules,
            mut skip,
            mut owned,
        } = pending;
        loop {
            let result = future.await;
            match self.step(&rules, result, &tiers, skip, owned.take()) {
                Step::Done(conclusion) => return conclusion,
                Step::Delay(wait) => {
                    let info = RequestInfo::from_parts(request);
                    return Conclusion::Delay(self.hold(&rules, &info, wait));
                }
                Step::Recheck(more) => skip |= more,
            }
            loop {
                let info = RequestInfo::from_parts(request);
                let (checked, next_tiers, next_owned) = match self.charge(&rules, &info, skip) {
                    Ok(charged) => charged,
                    Err(conclusion) => return conclusion,
                };
                tiers = next_tiers;
                match checked {
                    Checked::Ready(result) => {
                        match self.step(&rules, result, &tiers, skip, next_owned) {
                            Step::Done(conclusion) => return conclusion,
                            Step::Delay(wait) => {
                                return Conclusion::Delay(self.hold(&rules, &info, wait))
                            }
                            Step::Recheck(more) => skip |= more,
                        }
                    }
                    Checked::Pending(next) => {
                        future = next;
                        owned = next_owned;
                        break;
                    }
                }
            }
        }
    }
}

/// The pipeline on its own, over a memory store on a manual clock: what it
/// concludes, before any service or future is involved.
#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use http::{HeaderMap, StatusCode};

    use super::*;
    use crate::clock::ManualClock;
    use crate::key::{HeaderKey, PeerAddr};
    use crate::plan::mode::Mode;
    use crate::rate_limit::builder::RateLimitLayerBuilder;
    use crate::rate_limit::state::OnStoreError;
    use crate::store::MemoryStore;
    use crate::{Plans, RateLimitLayer};

    type TestStore = MemoryStore<ManualClock>;

    fn plans(name: &str, quota: &str) -> Plans {
        Plans::single(name, quota).expect("plans")
    }

    fn shadowed(name: &str, quota: &str) -> Plans {
        Plans::builder()
            .tier(name, quota)
            .mode(name, Mode::Shadow)
            .build()
            .expect("plans")
    }

    fn builder(main: Plans, clock: &ManualClock) -> RateLimitLayerBuilder<TestStore> {
        let store = MemoryStore::builder().clock(clock.clone()).build();
        RateLimitLayer::builder(main).store(store)
    }

    fn request(peer: &str, tenant: Option<&str>) -> Request<()> {
        let peer: SocketAddr = peer.parse().expect("address");
        let mut request = Request::builder().extension(PeerAddr(peer));
        if let Some(tenant) = tenant {
            request = request.header("x-tenant", tenant);
        }
        request.body(()).expect("request")
    }

    /// What the pipeline concluded, at once (the memory store never waits).
    enum Seen {
        Admit {
            permits: usize,
            headers: Option<HeaderMap>,
        },
        Answer(Response<Bytes>),
        Delay {
            delay: u64,
            cancellable: bool,
        },
    }

    fn evaluate(layer: &RateLimitLayer<TestStore>, request: &Request<()>) -> Seen {
        match layer.shared().evaluate(request) {
            Evaluation::Done(Conclusion::Admit { permits, after }) => Seen::Admit {
                permits: permits.len(),
                headers: after.and_then(|after| after.headers),
            },
            Evaluation::Done(Conclusion::Answer(response)) => Seen::Answer(response),
            Evaluation::Done(Conclusion::Delay(wait)) => Seen::Delay {
                delay: wait.delay,
                cancellable: wait.cancel.is_some(),
            },
            Evaluation::Pending(_) => panic!("a memory store answers at once"),
        }
    }

    fn status(seen: &Seen) -> StatusCode {
        match seen {
            Seen::Admit { .. } | Seen::Delay { .. } => StatusCode::OK,
            Seen::Answer(response) => response.status(),
        }
    }

    #[test]
    fn an_admitted_request_adds_nothing_unless_asked() {
        let clock = ManualClock::new();
        let quiet = builder(plans("api", "2/minute"), &clock)
            .build()
            .expect("layer");
        let seen = evaluate(&quiet, &request("192.0.2.1:1", None));
        assert!(matches!(
            seen,
            Seen::Admit {
                permits: 0,
                headers: None
            }
        ));

        let loud = builder(plans("api", "2/minute"), &clock)
            .headers_on_allowed(true)
            .build()
            .expect("layer");
        let Seen::Admit {
            headers: Some(headers),
            ..
        } = evaluate(&loud, &request("192.0.2.1:1", None))
        else {
            panic!("admitted with fields");
        };
        assert_eq!(headers["ratelimit-policy"], "\"api\";q=2;w=60");
        assert_eq!(headers["ratelimit"], "\"api\";r=1;t=30");
    }

    #[test]
    fn a_refusal_answers_429_with_the_wait_and_recovers_on_the_clock() {
        let clock = ManualClock::new();
        let layer = builder(plans("api", "1/minute"), &clock)
            .build()
            .expect("layer");
        let peer = request("192.0.2.1:1", None);
        assert_eq!(status(&evaluate(&layer, &peer)), StatusCode::OK);
        let Seen::Answer(refused) = evaluate(&layer, &peer) else {
            panic!("refused");
        };
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "60");
        clock.advance(Duration::from_secs(59));
        assert_eq!(
            status(&evaluate(&layer, &peer)),
            StatusCode::TOO_MANY_REQUESTS
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(status(&evaluate(&layer, &peer)), StatusCode::OK);
    }

    /// A shadow rule that would refuse is skipped and the request checked
    /// again: the first check charged nothing (all or nothing), so the
    /// enforced rule is charged exactly once per request.
    #[test]
    fn a_recheck_without_a_shadow_rule_charges_the_others_once() {
        let clock = ManualClock::new();
        let layer = builder(plans("per-ip", "3/minute"), &clock)
            .also(
                "tenant",
                shadowed("tenant", "1/minute"),
                HeaderKey::new("x-tenant"),
            )
            .build()
            .expect("layer");
        let seen: Vec<u16> = (0..4)
            .map(|_| status(&evaluate(&layer, &request("192.0.2.1:1", Some("acme")))).as_u16())
            .collect();
        assert_eq!(
            seen,
            [200, 200, 200, 429],
            "per-ip charged once per request"
        );
        let Seen::Answer(refused) = evaluate(&layer, &request("192.0.2.1:1", Some("acme"))) else {
            panic!("refused");
        };
        assert_eq!(
            refused.headers()["ratelimit"],
            "\"per-ip\";r=0;t=20",
            "the refusal is the enforced rule's"
        );
    }

    #[test]
    fn a_request_without_a_key_is_answered_and_charges_nothing() {
        let clock = ManualClock::new();
        let layer = builder(plans("api", "1/minute"), &clock)
            .also(
                "tenant",
                plans("tenant", "1/minute"),
                HeaderKey::new("x-tenant"),
            )
            .build()
            .expect("layer");
        let keyless = evaluate(&layer, &request("192.0.2.1:1", None));
        assert_eq!(status(&keyless), StatusCode::UNAUTHORIZED);
        // The first rule's key was read, but nothing was charged.
        assert_eq!(
            status(&evaluate(&layer, &request("192.0.2.1:1", Some("a")))),
            StatusCode::OK
        );
    }

    #[test]
    fn a_full_store_fails_closed_or_open_as_configured() {
        let clock = ManualClock::new();
        let full = || {
            MemoryStore::builder()
                .clock(clock.clone())
                .max_keys(1)
                .forget_under_pressure(0)
                .build()
        };
        let closed = RateLimitLayer::builder(plans("api", "5/minute"))
            .store(full())
            .build()
            .expect("layer");
        let open = RateLimitLayer::builder(plans("api", "5/minute"))
            .store(full())
            .on_store_error(OnStoreError::FailOpen)
            .build()
            .expect("layer");
        for layer in [&closed, &open] {
            assert_eq!(
                status(&evaluate(layer, &request("192.0.2.1:1", None))),
                StatusCode::OK
            );
        }
        let Seen::Answer(refused) = evaluate(&closed, &request("192.0.2.2:1", None)) else {
            panic!("fails closed");
        };
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()["retry-after"], "1");
        assert!(matches!(
            evaluate(&open, &request("192.0.2.2:1", None)),
            Seen::Admit {
                permits: 0,
                headers: None
            }
        ));
    }

    #[test]
    fn a_concurrency_limit_admits_with_its_permit() {
        let clock = ManualClock::new();
        let layer = builder(plans("gen", "1 concurrent"), &clock)
            .build()
            .expect("layer");
        let peer = request("192.0.2.1:1", None);
        let held = layer.shared().evaluate(&peer);
        assert_eq!(
            status(&evaluate(&layer, &peer)),
            StatusCode::TOO_MANY_REQUESTS
        );
        drop(held);
        assert!(matches!(
            evaluate(&layer, &peer),
            Seen::Admit { permits: 1, .. }
        ));
    }

    #[tokio::test]
    async fn a_queue_delays_the_excess_in_order_then_refuses() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(1));
        let layer = builder(plans("search", "5/second burst 1 queue 2"), &clock)
            .build()
            .expect("layer");
        let req = request("192.0.2.1:1", None);
        assert!(matches!(evaluate(&layer, &req), Seen::Admit { .. }));
        for expected in [200_000_000, 400_000_000] {
            match evaluate(&layer, &req) {
                Seen::Delay { delay, cancellable } => {
                    assert_eq!(delay, expected);
                    assert!(cancellable, "a waiter can give its place back");
                }
                _ => panic!("the excess waits"),
            }
        }
        let Seen::Answer(refused) = evaluate(&layer, &req) else {
            panic!("beyond the queue: refused");
        };
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "1");
        // Another client is not in this one's queue.
        let other = request("192.0.2.2:1", None);
        assert!(matches!(evaluate(&layer, &other), Seen::Admit { .. }));
    }

    #[test]
    fn without_a_runtime_to_wait_on_a_delay_is_refused_not_passed() {
        let clock = ManualClock::new();
        let layer = builder(plans("search", "5/second burst 1 queue 2"), &clock)
            .build()
            .expect("layer");
        let req = request("192.0.2.1:1", None);
        assert!(matches!(evaluate(&layer, &req), Seen::Admit { .. }));
        let Seen::Answer(refused) = evaluate(&layer, &req) else {
            panic!("no timer: no wait");
        };
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
