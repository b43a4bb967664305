//! Header-field rendering: any plan, algorithm, cost and sequence of
//! requests and clock moves through the layer renders `RateLimit-Policy`,
//! `RateLimit` and `Retry-After` that an independent RFC 9651 parser
//! (`sfv`) reads as Lists of Items with the draft's parameters: every
//! policy item has a non-negative integer `q` and a positive `w`; every
//! `RateLimit` item names a policy of `RateLimit-Policy` with non-negative
//! integers `r` and `t`, `r` at most that policy's `q` and `t` at least 1
//! (more quota never comes at once); a 429 carries a `Retry-After` of whole
//! seconds, never before `t`, unless the request can never pass (its cost
//! above what the limit ever admits at once).
#![no_main]

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use sfv::{BareItem, List, ListEntry, Parser};
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::key::PeerAddr;
use tollgate::store::MemoryStore;
use tollgate::{Plans, RateLimitLayer};
use tower_layer::Layer;
use tower_service::Service;

#[derive(Clone)]
struct Ok200;

impl<B> Service<Request<B>> for Ok200 {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        ready(Ok(Response::new("ok".to_owned())))
    }
}

/// The item's integer parameter `name`.
fn int(params: &sfv::Parameters, name: &str) -> Option<i64> {
    params
        .iter()
        .find(|(k, _)| k.as_str() == name)
        .and_then(|(_, v)| match v {
            BareItem::Integer(i) => Some(i64::from(*i)),
            _ => None,
        })
}

/// The names and parameters of a List field's Items.
fn items(field: &str) -> Vec<(String, sfv::Parameters)> {
    let list: List = Parser::new(field)
        .parse()
        .unwrap_or_else(|e| panic!("{field:?} is not an RFC 9651 List: {e}"));
    list.into_iter()
        .map(|entry| match entry {
            ListEntry::Item(item) => {
                let name = match &item.bare_item {
                    BareItem::String(s) => s.as_str().to_owned(),
                    BareItem::Token(t) => t.as_str().to_owned(),
                    other => panic!("{field:?}: an item of {other:?}"),
                };
                (name, item.params)
            }
            ListEntry::InnerList(_) => panic!("{field:?}: an inner list"),
        })
        .collect()
}

const ALGORITHMS: [AlgorithmKind; 4] = [
    AlgorithmKind::Gcra,
    AlgorithmKind::FixedWindow,
    AlgorithmKind::SlidingWindow,
    AlgorithmKind::SlidingLog,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let count = 1 + u64::from(data[0]) % 20;
    let period = [1u64, 2, 60, 3_600, 86_400][usize::from(data[1]) % 5];
    let burst_n = (data[2] % 3 != 0).then(|| 1 + u64::from(data[2]) % 40);
    let burst = burst_n.map_or(String::new(), |b| format!(" burst {b}"));
    let second = data[3] % 2 == 1;
    let algorithm = ALGORITHMS[usize::from(data[4]) % 4];
    let mut quotas = format!("{count}/{period} seconds{burst}");
    if second {
        quotas.push_str(&format!("; {}/day", count * 50));
    }
    let Ok(plans) = Plans::builder().tier("t", &quotas).algorithm(algorithm).build() else {
        return;
    };
    let clock = ManualClock::new();
    clock.set(1_000_000_000 * (1 + u64::from(data[5])));
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let cost_byte = data[6];
    let cost = 1 + u64::from(cost_byte % 4);
    // What the first limit can ever admit at once (a request costing more
    // can never pass, and is told no Retry-After).
    let capacity = match algorithm {
        AlgorithmKind::Gcra => burst_n.unwrap_or(count),
        _ => count.min(burst_n.unwrap_or(count)),
    };
    let mut svc = RateLimitLayer::builder(plans)
        .store(store)
        .headers_on_allowed(true)
        .legacy_headers(data[7] % 2 == 1)
        .cost(move |_| cost)
        .build()
        .expect("one rule, valid settings")
        .layer(Ok200);
    let mut cx = Context::from_waker(Waker::noop());
    for op in data[8..].chunks(2) {
        clock.advance(Duration::from_millis(u64::from(op[0]) * u64::from(op[0]) * 7));
        let peer: SocketAddr = ([192, 0, 2, 1 + op.get(1).copied().unwrap_or(0) % 3], 1).into();
        let request = Request::builder()
            .uri("/")
            .extension(PeerAddr(peer))
            .body(())
            .expect("request");
        let future = svc.call(request);
        let Poll::Ready(response) = pin!(future).poll(&mut cx) else {
            panic!("the memory store answers at once");
        };
        let response = response.expect("infallible");
        let field = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("header fields are ASCII").to_owned())
        };
        let policy = field("ratelimit-policy").expect("RateLimit-Policy on every answer");
        let policies = items(&policy);
        assert!(!policies.is_empty());
        for (name, params) in &policies {
            let q = int(params, "q").unwrap_or_else(|| panic!("{policy}: {name} without q"));
            let w = int(params, "w").unwrap_or_else(|| panic!("{policy}: {name} without w"));
            assert!(q >= 0 && w > 0, "{policy}");
        }
        let limit = field("ratelimit").expect("RateLimit on every answer");
        let mut longest_t = 0;
        for (name, params) in items(&limit) {
            let (_, named) = policies
                .iter()
                .find(|(p, _)| *p == name)
                .unwrap_or_else(|| panic!("{limit} names {name}, not in {policy}"));
            let q = int(named, "q").expect("q");
            let r = int(&params, "r").unwrap_or_else(|| panic!("{limit}: without r"));
            let t = int(&params, "t").unwrap_or_else(|| panic!("{limit}: without t"));
            assert!(r >= 0 && t >= 1, "{limit}");
            assert!(r <= q, "{limit}: r above q in {policy}");
            longest_t = longest_t.max(t);
        }
        if response.status() == StatusCode::TOO_MANY_REQUESTS && cost <= capacity {
            let retry = field("retry-after").expect("Retry-After on a 429 that can pass later");
            assert!(
                !retry.is_empty() && retry.bytes().all(|b| b.is_ascii_digit()),
                "Retry-After {retry:?}"
            );
            let retry: i64 = retry.parse().expect("delta-seconds");
            assert!(retry >= longest_t, "Retry-After {retry} before t in {limit}");
        }
    }
});
