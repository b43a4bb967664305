//! The gradient controller through the service, on a manual clock with
//! synthetic latency: the limit falls as latency climbs past the baseline
//! and grows back as it falls, drops push it down, cancels count for
//! nothing, the floor and ceiling hold, a lucky fast answer does not
//! collapse it, sustained load does not ratchet the baseline up (the
//! periodic probe measures it afresh), and in flight never passes the
//! limit under many concurrent clients.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::oneshot;
use tollgate::clock::{Clock, ManualClock, Nanos};
use tollgate::shed::{Gradient, LoadShedLayer, Snapshot};
use tower::{Layer, Service};

use crate::support::{builder, call, gated, normal, pending, poll, ready, Gated, Shed};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The probe limit of [`settings`]; below the floor, so a probe shows.
const PROBE: usize = 2;

/// Floor 3, ceiling 40; probes of 6 answers at 2 in flight, every 10 s
/// without jitter; the other settings at their defaults (100 ms windows of
/// at least 10 answers, the median, tolerance 1.25, smoothing 0.2).
fn settings() -> Gradient {
    Gradient::new(3, 40)
        .probe_limit(PROBE)
        .probe_samples(6)
        .probe_interval(Duration::from_secs(10))
        .probe_jitter(0.0)
}

/// A layer (no queue: over the limit is shed at once) over a [`Gated`]
/// service the test answers after the latency it chooses.
struct Rig {
    clock: ManualClock,
    layer: LoadShedLayer,
    svc: Shed<Gated>,
    inner: Gated,
}

impl Rig {
    fn new(start: usize, gradient: Gradient) -> Self {
        let clock = ManualClock::new();
        let layer = builder(start, &clock)
            .max_queue(0)
            .gradient(gradient)
            .build()
            .expect("layer");
        let (svc, inner) = gated(&layer);
        Self {
            clock,
            layer,
            svc,
            inner,
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.layer.snapshot()
    }

    fn limit(&self) -> usize {
        self.snapshot().limit
    }

    fn baseline(&self) -> Option<Duration> {
        self.snapshot().baseline_latency
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.clock.now() - 1_000_000_000)
    }

    /// `n` requests at once, all admitted, each answered `status` after
    /// `latency`; their bodies dropped (the outcome counts then).
    fn batch(&mut self, n: usize, latency: Duration, status: StatusCode) {
        self.answer(latency, &vec![status; n]);
    }

    /// As many requests at once as `statuses`, all admitted, answered
    /// with them in turn after `latency`; their bodies dropped.
    fn answer(&mut self, latency: Duration, statuses: &[StatusCode]) {
        let mut calls: Vec<_> = statuses
            .iter()
            .map(|_| call(&mut self.svc, normal()))
            .collect();
        for c in &mut calls {
            pending(c);
        }
        self.clock.advance(latency);
        for &status in statuses {
            self.inner.finish(status);
        }
        for (mut c, &status) in calls.into_iter().zip(statuses) {
            assert_eq!(ready(&mut c).status(), status);
        }
    }

    /// Fills the limit with requests answered after `latency(in flight)`;
    /// answers the limit after.
    fn fill(&mut self, latency: impl Fn(usize) -> Duration) -> usize {
        let n = self.limit();
        self.batch(n, latency(n), StatusCode::OK);
        self.limit()
    }

    /// Fills the limit for `duration`; answers the limit after each batch.
    fn fill_for(&mut self, duration: Duration, latency: impl Fn(usize) -> Duration) -> Vec<usize> {
        let end = self.elapsed() + duration;
        let mut limits = Vec::new();
        while self.elapsed() < end {
            limits.push(self.fill(&latency));
        }
        limits
    }

    /// Answers the probe's requests after `latency` until it ends.
    fn probe(&mut self, latency: Duration) {
        assert_eq!(self.limit(), PROBE, "probing");
        for _ in 0..10 {
            if self.limit() != PROBE {
                return;
            }
            self.batch(PROBE, latency, StatusCode::OK);
        }
        panic!("the probe never ended");
    }
}

fn non_increasing(limits: &[usize]) -> bool {
    limits.windows(2).all(|w| w[1] <= w[0])
}

fn non_decreasing(limits: &[usize]) -> bool {
    limits.windows(2).all(|w| w[1] >= w[0])
}

#[test]
fn it_measures_the_baseline_first_then_resumes_at_max_in_flight() {
    let mut rig = Rig::new(20, settings());
    let s = rig.snapshot();
    assert_eq!(s.limit, PROBE);
    assert_eq!((s.baseline_latency, s.window_latency), (None, None));
    // The probe limit is enforced: a third request is shed.
    let mut a = call(&mut rig.svc, normal());
    let mut b = call(&mut rig.svc, normal());
    pending(&mut a);
    pending(&mut b);
    let mut c = call(&mut rig.svc, normal());
    assert_eq!(ready(&mut c).status(), StatusCode::SERVICE_UNAVAILABLE);
    rig.clock.advance(ms(10));
    rig.inner.finish(StatusCode::OK);
    rig.inner.finish(StatusCode::OK);
    drop(ready(&mut a));
    drop(ready(&mut b));
    rig.probe(ms(10));
    assert_eq!(rig.baseline(), Some(ms(10)));
    assert_eq!(rig.limit(), 20);
}

#[test]
fn latency_past_the_tolerance_lowers_the_limit_and_falling_latency_raises_it() {
    let mut rig = Rig::new(20, settings());
    rig.probe(ms(10));

    // Four times the baseline, well past 1.25 times: down, window by window.
    let down = rig.fill_for(Duration::from_secs(1), |_| ms(40));
    assert!(non_increasing(&down), "{down:?}");
    let low = rig.limit();
    assert!(low < 15, "{down:?}");
    let s = rig.snapshot();
    assert_eq!(s.window_latency, Some(ms(40)));
    assert_eq!(s.baseline_latency, Some(ms(10)), "the baseline stays put");

    // Within the tolerance (12 ms < 12.5 ms): back up, by the headroom.
    let up = rig.fill_for(Duration::from_secs(1), |_| ms(12));
    assert!(non_decreasing(&up), "{up:?}");
    assert!(rig.limit() > low + 3, "{up:?}");
    assert_eq!(rig.snapshot().window_latency, Some(ms(12)));
}

#[test]
fn drops_push_the_limit_down() {
    for status in [StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT] {
        let mut rig = Rig::new(20, settings());
        rig.probe(ms(10));
        // Fast failures: the latency alone would grow the limit.
        let end = rig.elapsed() + ms(800);
        let mut limits = Vec::new();
        while rig.elapsed() < end {
            let n = rig.limit();
            rig.batch(n, ms(10), status);
            limits.push(rig.limit());
        }
        assert!(non_increasing(&limits), "{status}: {limits:?}");
        assert!(rig.limit() < 16, "{status}: {limits:?}");
        // A window of drops has no latency to show.
        assert_eq!(rig.snapshot().window_latency, None);
    }

    // Half the answers dropped, the other half fast: the success share
    // (0.5) brings it down though the latency is the baseline's.
    let mut rig = Rig::new(20, settings());
    rig.probe(ms(10));
    let end = rig.elapsed() + ms(800);
    let mut limits = Vec::new();
    while rig.elapsed() < end {
        let statuses: Vec<_> = (0..rig.limit())
            .map(|i| {
                if i % 2 == 0 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            })
            .collect();
        rig.answer(ms(10), &statuses);
        limits.push(rig.limit());
    }
    assert!(non_increasing(&limits), "{limits:?}");
    assert!(rig.limit() < 16, "{limits:?}");
    assert_eq!(rig.snapshot().window_latency, Some(ms(10)));
}

#[test]
fn cancelled_requests_are_not_sampled() {
    let mut rig = Rig::new(20, settings());
    // Cancels during the probe do not end it.
    for _ in 0..10 {
        let mut a = call(&mut rig.svc, normal());
        pending(&mut a);
        rig.clock.advance(ms(10));
        drop(a);
    }
    assert_eq!(rig.limit(), PROBE);
    assert_eq!(rig.baseline(), None);
    rig.probe(ms(10));

    // Slow requests the callers gave up on: the same timing answered
    // would bring the limit down (see above); cancelled, nothing moves.
    for _ in 0..20 {
        let mut calls: Vec<_> = (0..20).map(|_| call(&mut rig.svc, normal())).collect();
        for c in &mut calls {
            pending(c);
        }
        rig.clock.advance(ms(100));
        drop(calls);
    }
    let s = rig.snapshot();
    assert_eq!(s.limit, 20);
    assert_eq!(s.window_latency, None, "no window ended");
    assert_eq!(s.cancelled, 0, "they were running, not waiting");
    assert_eq!((s.in_flight, s.queued), (0, 0));
}

#[test]
fn the_ceiling_holds() {
    let mut rig = Rig::new(20, settings().smoothing(1.0));
    rig.probe(ms(10));
    let limits = rig.fill_for(Duration::from_secs(3), |_| ms(10));
    assert!(limits.iter().all(|&l| l <= 40), "{limits:?}");
    assert_eq!(rig.limit(), 40, "{limits:?}");
}

#[test]
fn the_floor_holds() {
    // The probe at the floor, and a service that is fast up to 3 in flight
    // and very slow past it: every window pushes as hard as it can.
    let gradient = settings().probe_limit(3).smoothing(1.0);
    let mut rig = Rig::new(20, gradient);
    rig.probe_at(3, ms(10));
    let limits = rig.fill_for(Duration::from_secs(5), |n| {
        if n <= 3 {
            ms(10)
        } else {
            ms(200)
        }
    });
    assert!(limits.iter().all(|&l| l >= 3), "{limits:?}");
    assert_eq!(limits.iter().min(), Some(&3), "{limits:?}");
}

impl Rig {
    /// [`Rig::probe`] with another probe limit.
    fn probe_at(&mut self, probe: usize, latency: Duration) {
        let before = self.baseline();
        for _ in 0..10 {
            if self.baseline() != before {
                return;
            }
            self.batch(probe, latency, StatusCode::OK);
        }
        panic!("the probe never ended");
    }
}

#[test]
fn one_lucky_fast_answer_does_not_collapse_the_limit() {
    let mut rig = Rig::new(20, settings());
    // One answer in 50 µs among 10 ms ones: a raw minimum would take it
    // for the unloaded latency, and every later 11 ms window would look
    // like a queue 100 times deep.
    rig.batch(1, Duration::from_micros(50), StatusCode::OK);
    rig.probe(ms(10));
    assert_eq!(rig.baseline(), Some(ms(10)));
    let limits = rig.fill_for(Duration::from_secs(1), |_| ms(11));
    assert!(non_decreasing(&limits), "{limits:?}");
    assert!(rig.limit() > 20, "{limits:?}");

    // Nor does one in a window once running.
    let before = rig.limit();
    rig.batch(1, Duration::from_micros(50), StatusCode::OK);
    let limits = rig.fill_for(ms(500), |_| ms(11));
    assert!(limits.iter().all(|&l| l >= before), "{limits:?}");
    assert_eq!(rig.baseline(), Some(ms(10)));
}

#[test]
fn sustained_load_does_not_ratchet_the_baseline_up() {
    // Unloaded (2 in flight, as in a probe) the service answers in 10 ms;
    // loaded, in 40 ms, for 30 s on end. An average of every answer (the
    // long-term RTT of Gradient2) would drift to 40 ms and stop seeing the
    // queue; probes measure at low concurrency only.
    let mut rig = Rig::new(20, settings());
    rig.probe(ms(10));
    let loaded = |n: usize| if n <= PROBE { ms(10) } else { ms(40) };
    let end = rig.elapsed() + Duration::from_secs(30);
    let mut probes = 0;
    let mut limits = Vec::new();
    while rig.elapsed() < end {
        let before = rig.limit();
        let after = rig.fill(loaded);
        if after == PROBE && before != PROBE {
            probes += 1;
        }
        assert_eq!(rig.baseline(), Some(ms(10)), "at {:?}", rig.elapsed());
        limits.push(after);
    }
    assert!(probes >= 3, "probes {probes}");
    // Outside probes the limit sits at the floor, where 40 ms answers put it.
    let tail = &limits[limits.len() - 20..];
    assert!(tail.iter().all(|&l| l <= 4), "{tail:?}");
}

#[test]
fn a_baseline_measured_in_a_bad_moment_is_measured_again() {
    let mut rig = Rig::new(20, settings());
    // The first probe caught the service in a slow moment.
    rig.probe(ms(100));
    let probed_at = rig.elapsed();
    assert_eq!(rig.baseline(), Some(ms(100)));

    // It recovers: 4 workers, 10 ms each; past 4 in flight answers queue.
    let shared = |n: usize| ms(10 * (n as u64).div_ceil(4).max(1));
    // Against the stale baseline, 100 ms answers look fine: the limit
    // climbs to the ceiling and a queue ten answers deep stands inside.
    let mut probe_started = None;
    while probe_started.is_none() {
        if rig.fill(shared) == PROBE {
            probe_started = Some(rig.elapsed());
        }
        assert!(rig.elapsed() < probed_at + Duration::from_secs(11));
        if rig.elapsed() < probed_at + Duration::from_secs(10) {
            assert_eq!(rig.baseline(), Some(ms(100)));
        }
    }
    let probe_started = probe_started.unwrap_or_default();
    // The periodic probe (10 s, no jitter) came on time, at the ceiling.
    assert!(probe_started >= probed_at + Duration::from_secs(10));
    rig.probe(shared(PROBE));
    assert_eq!(rig.baseline(), Some(ms(10)));
    assert_eq!(rig.limit(), 40, "it resumes where it was");

    // Measured afresh, the queue shows: the limit comes down to what the
    // workers take.
    let limits = rig.fill_for(Duration::from_secs(3), shared);
    assert!(rig.limit() <= 10, "{limits:?}");
    assert_eq!(rig.baseline(), Some(ms(10)));
}

#[test]
fn a_limit_stuck_at_the_floor_measures_again_early() {
    // The service got slower for good: 40 ms at any concurrency.
    let mut rig = Rig::new(20, settings().probe_interval(Duration::from_secs(600)));
    rig.probe(ms(10));
    let start = rig.elapsed();
    let mut early = None;
    while early.is_none() {
        if rig.fill(|_| ms(40)) == PROBE {
            early = Some(rig.elapsed() - start);
        }
        assert!(rig.elapsed() - start < Duration::from_secs(30), "no probe");
    }
    rig.probe(ms(40));
    assert_eq!(rig.baseline(), Some(ms(40)));
    let limits = rig.fill_for(Duration::from_secs(2), |_| ms(40));
    assert!(rig.limit() > 4, "free to grow again: {limits:?}");
}

#[test]
fn probes_recur_with_a_bounded_jitter() {
    let mut rig = Rig::new(
        10,
        settings()
            .probe_interval(Duration::from_secs(1))
            .probe_jitter(50.0),
    );
    rig.probe(ms(10));
    let mut ended = rig.elapsed();
    for _ in 0..6 {
        loop {
            if rig.fill(|_| ms(10)) == PROBE {
                break;
            }
            assert!(rig.elapsed() - ended < Duration::from_secs(2), "late");
        }
        let gap = rig.elapsed() - ended;
        // At least the interval; at most 1.5 times it, plus the batch that
        // saw the probe begin.
        assert!(gap >= Duration::from_secs(1), "{gap:?}");
        assert!(gap <= ms(1510), "{gap:?}");
        rig.probe(ms(10));
        ended = rig.elapsed();
    }
}

/// A service with `WORKERS` workers sharing its time: a call answers after
/// 10 ms × ⌈inside / WORKERS⌉, inside counted as it enters. At each call it
/// reads the layer's snapshot and notes any request in flight past the
/// limit.
#[derive(Clone)]
struct Workers {
    clock: ManualClock,
    layer: LoadShedLayer,
    state: Arc<Mutex<WorkersState>>,
}

#[derive(Default)]
struct WorkersState {
    inside: usize,
    due: Vec<(Nanos, oneshot::Sender<()>)>,
    over_limit: Vec<(usize, usize)>,
    entries: usize,
}

const WORKERS: usize = 8;

impl Workers {
    /// Answers the calls due by now.
    fn tick(&self) {
        let now = self.clock.now();
        let mut state = self.state.lock().expect("workers");
        let (done, waiting): (Vec<_>, Vec<_>) = state.due.drain(..).partition(|(at, _)| *at <= now);
        state.due = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<Request<()>> for Workers {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<()>) -> Self::Future {
        let snapshot = self.layer.snapshot();
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock().expect("workers");
            state.entries += 1;
            state.inside += 1;
            if snapshot.in_flight > snapshot.limit || state.inside > snapshot.limit {
                let seen = (snapshot.in_flight.max(state.inside), snapshot.limit);
                state.over_limit.push(seen);
            }
            let rounds = state.inside.div_ceil(WORKERS).max(1) as u64;
            let latency = ms(10 * rounds);
            state
                .due
                .push((self.clock.now() + latency.as_nanos() as u64, tx));
        }
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let _ = rx.await;
            state.lock().expect("workers").inside -= 1;
            Ok(Response::new(Full::new(Bytes::from_static(b"done"))))
        })
    }
}

#[test]
fn in_flight_never_passes_the_limit_under_many_clients() {
    const CLIENTS: usize = 60;
    let clock = ManualClock::new();
    let layer = builder(30, &clock)
        .max_queue(0)
        .gradient(settings())
        .build()
        .expect("layer");
    let workers = Workers {
        clock: clock.clone(),
        layer: layer.clone(),
        state: Arc::default(),
    };
    let mut svc = layer.layer(workers.clone());
    type Call = <Shed<Workers> as Service<Request<()>>>::Future;
    let mut clients: Vec<Option<Call>> = (0..CLIENTS).map(|_| None).collect();
    // (answered, latency sum in ms) over the last 2 of 6 simulated seconds.
    let (mut answered, mut latency_ms, mut shed) = (0u64, 0u64, 0u64);
    let mut started: Vec<Nanos> = vec![0; CLIENTS];
    let mut limits = Vec::new();
    for tick in 0..6_000u64 {
        clock.advance(ms(1));
        workers.tick();
        let measuring = tick >= 4_000;
        for (i, client) in clients.iter_mut().enumerate() {
            if let Some(future) = client.as_mut() {
                if let Poll::Ready(result) = poll(future) {
                    let response = result.expect("answer");
                    if measuring && response.status() == StatusCode::OK {
                        answered += 1;
                        latency_ms += (clock.now() - started[i]) / 1_000_000;
                    }
                    *client = None;
                }
            }
            if client.is_none() {
                let mut future = call(&mut svc, normal());
                match poll(&mut future) {
                    Poll::Ready(result) => {
                        assert_eq!(
                            result.expect("answer").status(),
                            StatusCode::SERVICE_UNAVAILABLE
                        );
                        shed += u64::from(measuring);
                    }
                    Poll::Pending => {
                        started[i] = clock.now();
                        *client = Some(future);
                    }
                }
            }
        }
        if tick % 100 == 0 {
            limits.push(layer.snapshot().limit);
        }
    }
    let state = workers.state.lock().expect("workers");
    assert!(state.over_limit.is_empty(), "{:?}", state.over_limit);
    assert!(state.entries > 1_000, "entries {}", state.entries);
    // The controller found the service's size: 8 workers at 10 ms take
    // about 10 in flight within the 1.25 tolerance, against the 60 clients
    // that would queue 75 ms deep without it.
    let tail = &limits[limits.len() - 20..];
    assert!(tail.iter().all(|&l| (4..=20).contains(&l)), "{limits:?}");
    assert!(answered > 0 && shed > 0, "answered {answered}, shed {shed}");
    let mean = latency_ms / answered;
    assert!(mean <= 25, "mean latency {mean} ms, limits {limits:?}");
}
