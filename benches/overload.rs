//! Load shedding under overload: a service of known capacity driven at
//! 0.5x, 1x, 2x and 4x that capacity, without admission control and behind
//! `LoadShedLayer`.
//!
//! `cargo bench --bench overload` (no criterion: open-loop runs of a fixed
//! length). Prints a markdown table and writes the same rows as JSON to
//! `$CARGO_TARGET_DIR/tollgate-bench/overload.json` (default `target/`).
//!
//! The service, in process (no sockets): a FIFO queue in front of
//! [`WORKERS`] workers, each answering one request after a simulated
//! [`SERVICE_TIME`] of work (a `tokio::time::sleep`, no CPU). Its nominal
//! capacity is `WORKERS / SERVICE_TIME` = 800 requests per second; since a
//! sleep ends on the timer's next millisecond tick, the bench first measures
//! the real one (the service saturated for 2 s) and offers load as multiples
//! of that. Past it, work queues
//! inside the service and every answer is later, as in a real overloaded
//! server. A worker skips a request whose caller has already gone away.
//!
//! The load is open loop: requests arrive at fixed intervals at the offered
//! rate for [`RUN`], whatever the answers do. When the run ends every
//! request still waiting is dropped (the client goes away). Goodput is the
//! number of `200` answers completed within the run per second; latency
//! percentiles are of those `200` answers, from arrival to answer. 0.5x is
//! the unloaded reference. Each case runs [`ROUNDS`] times; the table shows
//! the medians.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tollgate::shed::LoadShedLayer;
use tower::{Layer, Service, ServiceExt};

/// Requests the service works on at once.
const WORKERS: usize = 8;
/// The simulated work of one request.
const SERVICE_TIME: Duration = Duration::from_millis(10);
/// Offered load, as multiples of the capacity; 0.5 is the unloaded reference.
const LOAD_FACTORS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];
/// The length of one run under `cargo bench`.
const RUN: Duration = Duration::from_secs(2);
/// Rounds of every case under `cargo bench`.
const ROUNDS: usize = 3;

/// `LoadShedLayer` settings: as many in flight as the service has workers,
/// a queue as long, a short wait and CoDel on (its defaults).
const MAX_QUEUE: usize = WORKERS;
const MAX_QUEUE_WAIT: Duration = Duration::from_millis(20);

/// The nominal capacity, `WORKERS / SERVICE_TIME`.
fn nominal_capacity() -> f64 {
    WORKERS as f64 / SERVICE_TIME.as_secs_f64()
}

/// One request waiting in the service's queue.
struct Job {
    reply: oneshot::Sender<()>,
}

/// The overloaded server: an unbounded FIFO queue in front of `WORKERS`
/// workers.
#[derive(Clone)]
struct Server {
    queue: mpsc::UnboundedSender<Job>,
}

impl Server {
    /// Starts the workers; they stop when every clone of the server is gone.
    fn start() -> Self {
        let (queue, rx) = mpsc::unbounded_channel::<Job>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WORKERS {
            let rx = Arc::clone(&rx);
            tokio::spawn(async move {
                loop {
                    // tokio's mutex is fair: idle workers take jobs in turn.
                    let job = rx.lock().await.recv().await;
                    let Some(job) = job else { return };
                    if job.reply.is_closed() {
                        continue; // the client went away while it queued
                    }
                    tokio::time::sleep(SERVICE_TIME).await;
                    let _ = job.reply.send(());
                }
            });
        }
        Self { queue }
    }
}

type Answer = Response<Full<Bytes>>;

impl Service<Request<()>> for Server {
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<()>) -> Self::Future {
        let (reply, done) = oneshot::channel();
        let sent = self.queue.send(Job { reply }).is_ok();
        Box::pin(async move {
            let status = if sent && done.await.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let mut response = Response::new(Full::new(Bytes::from_static(b"done")));
            *response.status_mut() = status;
            Ok(response)
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// The server alone: every request queues inside it.
    None,
    /// The server behind `LoadShedLayer`.
    Shed,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Shed => "shed",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::None => "no admission control",
            Mode::Shed => "LoadShedLayer",
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct Run {
    goodput_rps: f64,
    shed_rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// One answer: when it completed (from the start of the run), its status and
/// its latency.
struct Outcome {
    done: Duration,
    status: StatusCode,
    latency: Duration,
}

/// One open-loop run at `rate` requests per second for `length`.
async fn one_run(mode: Mode, rate: f64, length: Duration) -> Run {
    let server = Server::start();
    let layer = LoadShedLayer::builder(WORKERS)
        .max_queue(MAX_QUEUE)
        .max_queue_wait(MAX_QUEUE_WAIT)
        .build()
        .unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let end = start + length;
    let mut tasks = Vec::new();
    for i in 0u32.. {
        let due = start + period * i;
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let outcomes = Arc::clone(&outcomes);
        let arrived = due;
        let task = match mode {
            Mode::None => {
                let service = server.clone();
                tokio::spawn(async move {
                    let response = service.oneshot(Request::new(())).await.unwrap();
                    record(&outcomes, start, arrived, response.status());
                })
            }
            Mode::Shed => {
                let service = layer.layer(server.clone());
                tokio::spawn(async move {
                    let response = service.oneshot(Request::new(())).await.unwrap();
                    record(&outcomes, start, arrived, response.status());
                    // Dropping the response (and its body) frees the place.
                })
            }
        };
        tasks.push(task);
    }
    tokio::time::sleep_until(end).await;
    // The run is over: every request still waiting goes away.
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    drop(server);

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let secs = length.as_secs_f64();
    let within: Vec<&Outcome> = outcomes.iter().filter(|o| o.done <= length).collect();
    let mut ok: Vec<f64> = within
        .iter()
        .filter(|o| o.status == StatusCode::OK)
        .map(|o| o.latency.as_secs_f64() * 1e3)
        .collect();
    let shed = within
        .iter()
        .filter(|o| o.status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    ok.sort_by(f64::total_cmp);
    Run {
        goodput_rps: ok.len() as f64 / secs,
        shed_rps: shed as f64 / secs,
        p50_ms: percentile(&ok, 0.50),
        p99_ms: percentile(&ok, 0.99),
    }
}

fn record(outcomes: &Mutex<Vec<Outcome>>, start: Instant, arrived: Instant, status: StatusCode) {
    let now = Instant::now();
    outcomes.lock().unwrap().push(Outcome {
        done: now - start,
        status,
        latency: now - arrived,
    });
}

/// The nearest-rank percentile of sorted values (NaN when there are none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The medians over rounds of one case.
struct Row {
    mode: Mode,
    load: f64,
    rounds: usize,
    run: Run,
}

fn summarize(mode: Mode, load: f64, runs: &[Run]) -> Row {
    let field = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    Row {
        mode,
        load,
        rounds: runs.len(),
        run: Run {
            goodput_rps: field(|r| r.goodput_rps),
            shed_rps: field(|r| r.shed_rps),
            p50_ms: field(|r| r.p50_ms),
            p99_ms: field(|r| r.p99_ms),
        },
    }
}

fn table(rows: &[Row], capacity: f64) -> String {
    let mut out = String::from(
        "| mode | load | offered req/s | goodput req/s | shed req/s | p50 ms (200s) | p99 ms (200s) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {}x | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} |\n",
            r.mode.label(),
            r.load,
            capacity * r.load,
            r.run.goodput_rps,
            r.run.shed_rps,
            r.run.p50_ms,
            r.run.p99_ms,
        ));
    }
    out
}

/// A JSON number, or `null` for a case with no answers.
fn num(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64((v * 100.0).round() / 100.0)
        .map_or(serde_json::Value::Null, Into::into)
}

fn json(rows: &[Row], run: Duration, capacity: f64) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "mode": r.mode.name(),
                "load_factor": r.load,
                "offered_rps": num(capacity * r.load),
                "capacity_rps": num(capacity),
                "nominal_capacity_rps": nominal_capacity(),
                "goodput_rps": num(r.run.goodput_rps),
                "shed_rps": num(r.run.shed_rps),
                "p50_ms": num(r.run.p50_ms),
                "p99_ms": num(r.run.p99_ms),
                "rounds": r.rounds,
                "run_s": run.as_secs_f64(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap()
}

fn output_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("tollgate-bench").join("overload.json")
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
    // this is a quick smoke run that writes no results.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    let (run, rounds) = if bench {
        (RUN, ROUNDS)
    } else {
        (Duration::from_millis(200), 1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    println!(
        "# tollgate under overload\n\nservice: FIFO queue in front of {WORKERS} workers, \
         {} ms of simulated work each: nominal capacity {:.0} req/s. Open-loop arrivals at fixed \
         intervals, {:.1} s per run, {rounds} round(s), medians. LoadShedLayer: \
         max_in_flight {WORKERS}, max_queue {MAX_QUEUE}, max_queue_wait {} ms, CoDel on \
         (5 ms / 100 ms).\n",
        SERVICE_TIME.as_millis(),
        nominal_capacity(),
        run.as_secs_f64(),
        MAX_QUEUE_WAIT.as_millis(),
    );

    let modes = [Mode::None, Mode::Shed];
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); modes.len() * LOAD_FACTORS.len()];
    let capacity = runtime.block_on(async {
        // Warm up the runtime and the timer.
        one_run(Mode::Shed, nominal_capacity(), Duration::from_millis(100)).await;
        // The capacity the service really has: a sleep ends on the timer's
        // next millisecond tick, so a request takes a little longer than
        // SERVICE_TIME. Saturate the service and count its answers.
        let calibrate = if bench { Duration::from_secs(2) } else { run };
        let capacity = one_run(Mode::None, 4.0 * nominal_capacity(), calibrate)
            .await
            .goodput_rps;
        tokio::time::sleep(Duration::from_millis(50)).await;
        println!(
            "measured capacity: {capacity:.0} req/s (nominal {:.0}); load factors are of the \
             measured capacity\n",
            nominal_capacity()
        );
        for _ in 0..rounds {
            for (m, &mode) in modes.iter().enumerate() {
                for (l, &load) in LOAD_FACTORS.iter().enumerate() {
                    let rate = capacity * load;
                    runs[m * LOAD_FACTORS.len() + l].push(one_run(mode, rate, run).await);
                    // Let the aborted requests' timers and workers settle.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        capacity
    });
    let rows: Vec<Row> = modes
        .iter()
        .enumerate()
        .flat_map(|(m, &mode)| {
            let runs = &runs;
            LOAD_FACTORS
                .iter()
                .enumerate()
                .map(move |(l, &load)| summarize(mode, load, &runs[m * LOAD_FACTORS.len() + l]))
        })
        .collect();
    print!("{}", table(&rows, capacity));

    if bench {
        let path = output_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, json(&rows, run, capacity)).unwrap();
        println!("\nwrote {}", path.display());
    } else {
        println!("\nsmoke run (no --bench): no results written");
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
