//! Delay mode at scale: 10,000 requests waiting their turn at once through
//! the layer, on paused Tokio time (virtual: the bench never sleeps).
//!
//! `cargo bench --bench waiters` (no criterion: one measured pass). Prints a
//! markdown table and writes the same rows as JSON to
//! `$CARGO_TARGET_DIR/tollgate-bench/waiters.json` (default `target/`).
//!
//! What it measures, beside the reference of as many requests that pass at
//! once (no delay) through the same layer:
//!
//! - **memory per waiter**: bytes held by the allocator (a counting global
//!   allocator: bytes requested, not the allocator's rounding) once every
//!   waiter has been polled and is parked on its timer, divided by their
//!   number; and what is left once all have passed (nothing should be);
//! - **timers**: one Tokio timer per waiter, kept inside its future (the
//!   timer wheel links it in place): no thread and no task of the crate's
//!   own, so the bytes above include it;
//! - **order and rate**: every waiter passes exactly at its slot, `i · T`
//!   after the first, in virtual time;
//! - **time to admit**: wall time to make and poll the 10,000 futures (the
//!   check, the boxed future, the owned keys for cancellation, the timer).

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// the system allocator. The library itself forbids unsafe code.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tollgate::clock::Clock;
use tollgate::key::{ClientIp, PeerAddr};
use tollgate::store::MemoryStore;
use tollgate::{Plans, RateLimitLayer};
use tower::{Layer, Service};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CURRENT.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CURRENT.fetch_add(new_size, Ordering::Relaxed);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn held() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// Waiting requests under `cargo bench`; fewer without `--bench` (`cargo
/// test --all-targets` runs this binary once as a smoke test).
const WAITERS: usize = 10_000;
const SMOKE_WAITERS: usize = 500;

/// The virtual clock Tokio runs (paused), as the store reads it.
#[derive(Clone, Debug)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> u64 {
        1_000_000_000 + u64::try_from(self.0.elapsed().as_nanos()).unwrap()
    }
}

/// Answers at once, noting when (virtual ms since `start`) it ran.
#[derive(Clone)]
struct Noted {
    start: tokio::time::Instant,
    log: Arc<Mutex<Vec<u128>>>,
}

impl Service<Request<()>> for Noted {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<()>) -> Self::Future {
        self.log
            .lock()
            .unwrap()
            .push(self.start.elapsed().as_millis());
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))))
    }
}

fn request(peer: SocketAddr) -> Request<()> {
    Request::builder()
        .extension(PeerAddr(peer))
        .body(())
        .unwrap()
}

struct Row {
    case: &'static str,
    requests: usize,
    bytes_per_request: f64,
    bytes_left_after: usize,
    admit_ms: f64,
    in_order: bool,
}

/// `n` requests from one client through a layer of `quota`: each response
/// future made and polled once (a waiter registers its timer), then handed
/// to a task; virtual time runs until all have answered.
async fn case(case: &'static str, quota: &str, n: usize, interval_ms: u128) -> Row {
    let start = tokio::time::Instant::now();
    let log = Arc::new(Mutex::new(Vec::with_capacity(n + 1)));
    let store = MemoryStore::builder().clock(TokioClock(start)).build();
    let layer = RateLimitLayer::builder(Plans::single("case", quota).unwrap())
        .store(store)
        .key(ClientIp::new())
        .build()
        .unwrap();
    let mut service = layer.layer(Noted {
        start,
        log: Arc::clone(&log),
    });
    let peer: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let mut futures = Vec::with_capacity(n);
    let mut cx = Context::from_waker(Waker::noop());
    let before = held();
    let clock = Instant::now();
    let mut boxes = 0;
    for _ in 0..n {
        assert!(service.poll_ready(&mut cx).is_ready());
        let mut future = Box::pin(service.call(request(peer)));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(response) => {
                assert_eq!(response.unwrap().status(), StatusCode::OK);
            }
            Poll::Pending => {
                // The harness's own box per future is not the crate's.
                boxes += std::mem::size_of_val(&*future);
                futures.push(future);
            }
        }
    }
    let admit_ms = clock.elapsed().as_secs_f64() * 1e3;
    let during = held().saturating_sub(before).saturating_sub(boxes);
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK, "all pass");
    }
    let after = held().saturating_sub(before);
    let calls = log.lock().unwrap().clone();
    let in_order = calls.len() == n
        && calls
            .iter()
            .enumerate()
            .all(|(i, &at)| at == (i as u128) * interval_ms);
    Row {
        case,
        requests: n,
        bytes_per_request: during as f64 / n as f64,
        bytes_left_after: after,
        admit_ms,
        in_order,
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { WAITERS } else { SMOKE_WAITERS };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        // 1000/second, one at once, every other request waits its turn: the
        // last waits n ms.
        let queued = format!("1000/second burst 1 queue {n}");
        let at_once = format!("1000/second burst {}", n + 1);
        vec![
            case("at once (reference)", &at_once, n, 0).await,
            case("waiting their turn", &queued, n, 1).await,
            case(
                "waiting their turn (second run, warm runtime)",
                &queued,
                n,
                1,
            )
            .await,
        ]
    });
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| case | requests | bytes per request while waiting | bytes left after | admit all (ms, wall) | passed at their slots |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---|");
    let mut json = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(
            table,
            "| {} | {} | {:.0} | {} | {:.1} | {} |",
            row.case,
            row.requests,
            row.bytes_per_request,
            row.bytes_left_after,
            row.admit_ms,
            if row.in_order { "yes" } else { "no" }
        );
        let _ = write!(
            json,
            "{}{{\"case\":\"{}\",\"requests\":{},\"bytes_per_request\":{:.1},\"bytes_left_after\":{},\"admit_ms\":{:.2},\"in_order\":{}}}",
            if i > 0 { "," } else { "" },
            row.case,
            row.requests,
            row.bytes_per_request,
            row.bytes_left_after,
            row.admit_ms,
            row.in_order
        );
    }
    json.push(']');
    print!("{table}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("tollgate-bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("waiters.json"), json);
    assert!(
        rows.iter().all(|r| r.in_order),
        "every request passed at its slot"
    );
}
