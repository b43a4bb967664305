//! Many tasks and threads at once never exceed the limit, nor the share the
//! lower priorities may use; every request is answered and every place
//! given back.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tollgate::shed::{LoadShedLayer, Priority};
use tower::{Layer, Service, ServiceExt};

use crate::support::{load, req, Counter};

/// Counts who is inside: from the call until its body is dropped.
#[derive(Clone, Debug, Default)]
struct Tracked {
    inside: Counter,
    max_inside: Counter,
    lower_inside: Counter,
    max_lower_inside: Counter,
    calls: Counter,
}

/// The body of a [`Tracked`] call: leaves when it ends or is dropped,
/// whichever comes first (the limiter frees the place at the end of the
/// body, so counting only at drop would see a successor arrive early).
struct Leave {
    data: Option<Bytes>,
    counters: Vec<Counter>,
}

impl Leave {
    fn leave(&mut self) {
        for c in self.counters.drain(..) {
            c.sub();
        }
    }
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Body for Leave {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.data.take();
        if frame.is_none() {
            self.leave();
        }
        Poll::Ready(frame.map(|d| Ok(Frame::data(d))))
    }
}

impl Service<Request<()>> for Tracked {
    type Response = Response<Leave>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Leave>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        self.calls.add();
        let mut counters = vec![self.inside.clone()];
        self.max_inside.raise_to(self.inside.add());
        if request.headers()["x-priority"] != "critical" {
            self.max_lower_inside.raise_to(self.lower_inside.add());
            counters.push(self.lower_inside.clone());
        }
        let leave = Leave {
            data: Some(Bytes::from_static(b"ok")),
            counters,
        };
        Box::pin(async move {
            for _ in 0..3 {
                YieldOnce(false).await;
            }
            Ok(Response::new(leave))
        })
    }
}

/// Pending once (waking itself), then ready: works on any executor or none.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn priority_of(i: usize) -> Priority {
    match i % 4 {
        0 => Priority::Critical,
        1 => Priority::High,
        2 => Priority::Normal,
        _ => Priority::Low,
    }
}

fn layer() -> LoadShedLayer {
    LoadShedLayer::builder(8)
        .max_queue(16)
        .max_queue_wait(Duration::from_secs(30))
        .reserve(Priority::Critical, 25)
        .priority(|req| match req.headers()["x-priority"].as_bytes() {
            b"critical" => Priority::Critical,
            b"high" => Priority::High,
            b"low" => Priority::Low,
            _ => Priority::Normal,
        })
        .build()
        .expect("layer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn many_tasks_never_exceed_the_limit() {
    const TASKS: usize = 64;
    const EACH: usize = 40;
    let layer = layer();
    let inner = Tracked::default();
    let svc = layer.layer(inner.clone());
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let mut svc = svc.clone();
        handles.push(tokio::spawn(async move {
            let (mut ok, mut shed) = (0, 0);
            for i in 0..EACH {
                let request = req(priority_of(t + i));
                let response = svc
                    .ready()
                    .await
                    .expect("ready")
                    .call(request)
                    .await
                    .expect("answer");
                let status = response.status();
                response.into_body().collect().await.expect("body");
                match status {
                    StatusCode::OK => ok += 1,
                    StatusCode::SERVICE_UNAVAILABLE => shed += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
            (ok, shed)
        }));
    }
    let (mut ok, mut shed) = (0, 0);
    for h in handles {
        let (o, s) = h.await.expect("task");
        ok += o;
        shed += s;
    }
    assert_eq!(ok + shed, TASKS * EACH);
    assert_eq!(
        inner.calls.get(),
        ok,
        "only admitted requests reach the service"
    );
    assert!(
        inner.max_inside.get() <= 8,
        "max {}",
        inner.max_inside.get()
    );
    assert!(
        inner.max_lower_inside.get() <= 6,
        "below critical: max {}",
        inner.max_lower_inside.get()
    );
    assert!(inner.max_inside.get() >= 2, "the test did overlap requests");
    let s = layer.snapshot();
    assert_eq!(load(&s), (0, 0), "every place given back");
    assert_eq!(s.admitted as usize, ok);
    assert_eq!(s.shed.total() as usize, shed);
}

#[test]
fn many_threads_never_exceed_the_limit() {
    const THREADS: usize = 16;
    const EACH: usize = 2_000;
    let layer = LoadShedLayer::builder(4)
        .max_queue(0)
        .reserve(Priority::Critical, 25)
        .priority(|req| match req.headers()["x-priority"].as_bytes() {
            b"critical" => Priority::Critical,
            _ => Priority::Low,
        })
        .build()
        .expect("layer");
    let inner = Tracked::default();
    let svc = layer.layer(inner.clone());
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let mut svc = svc.clone();
            scope.spawn(move || {
                let mut held = Vec::new();
                for i in 0..EACH {
                    let priority = if (t + i) % 3 == 0 {
                        Priority::Critical
                    } else {
                        Priority::Low
                    };
                    let mut future = svc.call(req(priority));
                    // The inner future yields; poll it until it answers.
                    let response = loop {
                        if let Poll::Ready(r) = crate::support::poll(&mut future) {
                            break r.expect("answer");
                        }
                    };
                    // Hold some responses a while so that threads overlap.
                    held.push(response);
                    if held.len() > i % 3 {
                        held.clear();
                    }
                }
            });
        }
    });
    assert!(
        inner.max_inside.get() <= 4,
        "max {}",
        inner.max_inside.get()
    );
    assert!(
        inner.max_lower_inside.get() <= 3,
        "below critical: max {}",
        inner.max_lower_inside.get()
    );
    let s = layer.snapshot();
    assert_eq!(load(&s), (0, 0));
    assert_eq!(s.admitted as usize, inner.calls.get());
    assert_eq!(
        s.admitted + s.shed.total(),
        (THREADS * EACH) as u64,
        "every request admitted or shed"
    );
}
