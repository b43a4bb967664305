//! Instruction counts per admission decision, under callgrind.
//!
//! Not a timing benchmark: `benches/instructions.sh` runs this binary under
//! `valgrind --tool=callgrind` twice per case (N and N + 100,000 checks) and
//! divides the difference by 100,000, so setup and warm-up cancel out. The
//! counts are stable on a noisy machine; record them so a change that grows
//! the hot path shows up. The script also simulates the caches and counts
//! last-level data misses per check: the `-1m-keys` cases look up a million
//! keys in a pseudo-random order, where misses, not instructions, decide
//! the time.
//!
//! Run by hand: `instructions <case> <checks>`; `instructions list` names
//! the cases.

#![allow(clippy::unwrap_used)] // a harness that cannot set up should stop loudly

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use tollgate::algorithm::AlgorithmKind;
use tollgate::key::Key;
use tollgate::store::{Charge, Checked, MemoryStore, Store};
use tollgate::{Limit, Plans, Quota, RateLimitLayer};
use tower::{Layer, Service};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

const CASES: [&str; 20] = [
    "none-allow",
    "tollgate-gcra-allow",
    "tollgate-gcra-deny",
    "tollgate-fixed-window-allow",
    "tollgate-sliding-window-allow",
    "tollgate-sliding-window-packed-allow",
    "tollgate-sliding-log-allow",
    "tollgate-concurrency-allow",
    "governor-allow",
    "governor-deny",
    "tollgate-gcra-allow-ipv4",
    "governor-allow-ipv4",
    "tollgate-gcra-allow-1m-keys",
    "governor-allow-1m-keys",
    "tollgate-layer-allow",
    "tollgate-layer-429",
    "tollgate-gcra-delay-cancel",
    "tollgate-layer-delay-cancel",
    "tower_governor-allow",
    "tower_governor-429",
];

fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("not ready at once"),
    }
}

fn store_case(kind: AlgorithmKind, quota: Quota, expect: bool, checks: u64) {
    let store = MemoryStore::new();
    let handle = store.bind(&Limit::new("case", quota, kind).unwrap());
    let key = Key::owned("ak_0123456789abcdef", "case").unwrap();
    let charge = [Charge::new(&handle, &key, 1)];
    if !expect {
        let _ = store.check(&charge);
    }
    measured(checks, || {
        let Checked::Ready(Ok(verdict)) = store.check(&charge) else {
            panic!("no answer")
        };
        assert_eq!(black_box(verdict.decision.is_allowed()), expect);
    });
}

/// Runs `check` a few times uncounted (first-use costs: a new key, a clock
/// calibrating on first read), then `checks` times in [`counted`].
fn measured(checks: u64, mut check: impl FnMut()) {
    for _ in 0..3 {
        check();
    }
    counted(checks, &mut check);
}

/// The only function (with what it calls) `benches/instructions.sh` has
/// callgrind count (`--toggle-collect`): the counts hold the checks and
/// nothing of the set-up, whose length varies from run to run (a clock's
/// calibration loop ran 25 instructions per check of noise before).
#[inline(never)]
fn counted<F: FnMut()>(checks: u64, check: &mut F) {
    for _ in 0..checks {
        check();
    }
}

/// The key of the `-ipv4` cases.
const IPV4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

/// Keys in the `-1m-keys` cases.
const MANY_KEYS: usize = 1_000_000;

/// `ak_` and 16 hex digits, as `benches/check.rs` makes them.
fn api_keys() -> Vec<String> {
    (0..MANY_KEYS as u64)
        .map(|i| format!("ak_{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect()
}

/// Key indices in a fixed pseudo-random order (xorshift), the same for
/// every case and run.
struct Order(u64);

impl Default for Order {
    fn default() -> Self {
        Self(0x2545_F491_4F6C_DD1D)
    }
}

impl Order {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % MANY_KEYS as u64) as usize
    }
}

fn request() -> Request<Body> {
    let mut request = Request::builder().body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 1, 2, 3], 40000))));
    request
}

fn service_case<S>(mut service: S, status: u16, spend_first: bool, checks: u64)
where
    S: Service<Request<Body>>,
    S::Response: ResponseStatus,
    S::Error: std::fmt::Debug,
{
    if spend_first {
        let _ = now(service.call(request()));
    }
    measured(checks, || {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(service.poll_ready(&mut cx).is_ready());
        let response = now(service.call(request())).unwrap();
        assert_eq!(black_box(response.status_code()), status);
    });
}

trait ResponseStatus {
    fn status_code(&self) -> u16;
}

impl<B> ResponseStatus for Response<B> {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

type Inner = tower::util::ServiceFn<
    fn(Request<Body>) -> std::future::Ready<Result<Response<Body>, Infallible>>,
>;

fn inner() -> Inner {
    fn answer(_req: Request<Body>) -> std::future::Ready<Result<Response<Body>, Infallible>> {
        std::future::ready(Ok(Response::new(Body::empty())))
    }
    tower::service_fn(answer as fn(_) -> _)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "list".into());
    if case == "list" {
        for c in CASES {
            println!("{c}");
        }
        return;
    }
    let checks: u64 = args.next().map_or(100_000, |n| n.parse().unwrap());
    let plenty = Quota::per_second(1_000_000_000).unwrap();
    let scarce = Quota::new(1, std::time::Duration::from_secs(3600)).unwrap();
    match case.as_str() {
        "tollgate-gcra-allow" => store_case(AlgorithmKind::Gcra, plenty, true, checks),
        "tollgate-gcra-deny" => store_case(AlgorithmKind::Gcra, scarce, false, checks),
        "tollgate-fixed-window-allow" => {
            store_case(AlgorithmKind::FixedWindow, plenty, true, checks)
        }
        "tollgate-sliding-window-allow" => {
            store_case(AlgorithmKind::SlidingWindow, plenty, true, checks)
        }
        // A quota whose counts fit the 64-bit state (the wide one above
        // does not): what most sliding windows run.
        "tollgate-sliding-window-packed-allow" => store_case(
            AlgorithmKind::SlidingWindow,
            Quota::new(1_048_575, std::time::Duration::from_secs(3600)).unwrap(),
            true,
            checks,
        ),
        "tollgate-sliding-log-allow" => store_case(
            AlgorithmKind::SlidingLog,
            Quota::new(100_000, std::time::Duration::from_millis(1)).unwrap(),
            true,
            checks,
        ),
        "tollgate-concurrency-allow" => store_case(
            AlgorithmKind::Gcra,
            Quota::concurrent(1000).unwrap(),
            true,
            checks,
        ),
        "governor-allow" | "governor-deny" => {
            let allow = case == "governor-allow";
            let quota = if allow {
                governor::Quota::per_second(NonZeroU32::MAX)
            } else {
                governor::Quota::per_hour(NonZeroU32::MIN)
            };
            let limiter = governor::RateLimiter::keyed(quota);
            let key = "ak_0123456789abcdef".to_string();
            if !allow {
                let _ = limiter.check_key(&key);
            }
            measured(checks, || {
                assert_eq!(black_box(limiter.check_key(&key).is_ok()), allow);
            });
        }
        "tollgate-gcra-allow-ipv4" => {
            let store = MemoryStore::new();
            let handle = store.bind(&Limit::new("case", plenty, AlgorithmKind::Gcra).unwrap());
            let key = Key::ip(IPV4);
            let charge = [Charge::new(&handle, &key, 1)];
            measured(checks, || {
                let Checked::Ready(Ok(verdict)) = store.check(&charge) else {
                    panic!("no answer")
                };
                assert!(black_box(verdict.decision.is_allowed()));
            });
        }
        "governor-allow-ipv4" => {
            let limiter =
                governor::RateLimiter::keyed(governor::Quota::per_second(NonZeroU32::MAX));
            measured(checks, || {
                assert!(black_box(limiter.check_key(&IPV4).is_ok()));
            });
        }
        // A million keys in a pseudo-random order: each check misses the
        // caches, which the script's simulated last-level misses show.
        "tollgate-gcra-allow-1m-keys" => {
            // Room to spare: past seven eighths of its bound the store
            // forgets keys used once, and this case measures known keys.
            let store = MemoryStore::builder().max_keys(2 * MANY_KEYS).build();
            let handle = store.bind(&Limit::new("case", plenty, AlgorithmKind::Gcra).unwrap());
            let keys: Vec<Key<'static>> = api_keys()
                .into_iter()
                .map(|k| Key::owned(k, "case").unwrap())
                .collect();
            let check = |i: usize| {
                let charge = [Charge::new(&handle, &keys[i], 1)];
                let Checked::Ready(Ok(verdict)) = store.check(&charge) else {
                    panic!("no answer")
                };
                verdict.decision.is_allowed()
            };
            (0..MANY_KEYS).for_each(|i| assert!(check(i)));
            let mut order = Order::default();
            measured(checks, || assert!(black_box(check(order.next()))));
        }
        "governor-allow-1m-keys" => {
            let limiter =
                governor::RateLimiter::keyed(governor::Quota::per_second(NonZeroU32::MAX));
            let keys = api_keys();
            (0..MANY_KEYS).for_each(|i| assert!(limiter.check_key(&keys[i]).is_ok()));
            let mut order = Order::default();
            measured(checks, || {
                assert!(black_box(limiter.check_key(&keys[order.next()]).is_ok()));
            });
        }
        "none-allow" => service_case(inner(), 200, false, checks),
        "tollgate-layer-allow" => service_case(
            RateLimitLayer::new(Plans::single("case", "1000000000/second").unwrap()).layer(inner()),
            200,
            false,
            checks,
        ),
        "tollgate-layer-429" => service_case(
            RateLimitLayer::new(Plans::single("case", "1/hour").unwrap()).layer(inner()),
            429,
            true,
            checks,
        ),
        // A delayed admission, then its cancellation (the waiter leaves), so
        // every check finds the same queue: the cost of a wait taken and
        // given back.
        "tollgate-gcra-delay-cancel" => {
            let store = MemoryStore::new();
            let quota: Quota = "1/hour burst 1 queue 2".parse().unwrap();
            let handle = store.bind(&Limit::new("case", quota, AlgorithmKind::Gcra).unwrap());
            let key = Key::owned("ak_0123456789abcdef", "case").unwrap();
            let charge = [Charge::new(&handle, &key, 1)];
            let _ = store.check(&charge);
            measured(checks, || {
                let Checked::Ready(Ok(verdict)) = store.check(&charge) else {
                    panic!("no answer")
                };
                let delay = verdict.decision.delay();
                assert!(black_box(delay) > std::time::Duration::ZERO);
                store.cancel(&charge, verdict.receipt.unwrap(), delay);
            });
        }
        // Through the layer: the call, the response future polled once (its
        // timer registered), then dropped (its place given back).
        "tollgate-layer-delay-cancel" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let _entered = runtime.enter();
            let layer =
                RateLimitLayer::new(Plans::single("case", "1/hour burst 1 queue 2").unwrap());
            let mut service = layer.layer(inner());
            let _ = now(service.call(request()));
            measured(checks, || {
                let mut cx = Context::from_waker(Waker::noop());
                assert!(service.poll_ready(&mut cx).is_ready());
                let mut future = Box::pin(service.call(request()));
                assert!(black_box(future.as_mut().poll(&mut cx)).is_pending());
            });
        }
        "tower_governor-allow" | "tower_governor-429" => {
            let allow = case == "tower_governor-allow";
            let config = if allow {
                GovernorConfigBuilder::default()
                    .per_nanosecond(1)
                    .burst_size(NonZeroU32::MAX.get())
                    .finish()
                    .unwrap()
            } else {
                GovernorConfigBuilder::default()
                    .per_second(3600)
                    .burst_size(1)
                    .finish()
                    .unwrap()
            };
            let service = GovernorLayer::new(config).layer(inner());
            service_case(service, if allow { 200 } else { 429 }, !allow, checks);
        }
        other => panic!("unknown case {other:?}; try `list`"),
    }
}
