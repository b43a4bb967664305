//! The gradient adaptive concurrency controller: [`Gradient`].
//!
//! It moves the limit on requests in flight window by window, from how far
//! the latency of the last window has drifted above the latency the service
//! shows unloaded, in the spirit of Netflix's `Gradient2Limit` and Envoy's
//! adaptive concurrency filter; see [`Gradient`] for the rule, its defaults
//! and their sources.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{Layer, Service, ServiceExt};
//! use tollgate::clock::ManualClock;
//! use tollgate::shed::{Gradient, LoadShedLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = ManualClock::new();
//! let layer = LoadShedLayer::builder(20)
//!     .gradient(
//!         Gradient::default()
//!             .tolerance(1.5)
//!             .window(Duration::from_millis(200))
//!             .probe_samples(4),
//!     )
//!     .clock(clock.clone())
//!     .build()?;
//!
//! // It starts by measuring the unloaded latency, the limit pinned at 3.
//! assert_eq!(layer.snapshot().limit, 3);
//! assert_eq!(layer.snapshot().baseline_latency, None);
//!
//! let service_clock = clock.clone();
//! let mut service = layer.layer(tower::service_fn(move |_req: Request<()>| {
//!     // A service that answers in 20 ms.
//!     service_clock.advance(Duration::from_millis(20));
//!     async { Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new()))) }
//! }));
//! for _ in 0..4 {
//!     let response = service.ready().await?.call(Request::new(())).await?;
//!     assert_eq!(response.status(), StatusCode::OK);
//! }
//! // Four answers measured the baseline; the limit is back to 20 and
//! // moves from there, window by window.
//! let snapshot = layer.snapshot();
//! assert_eq!(snapshot.baseline_latency, Some(Duration::from_millis(20)));
//! assert_eq!(snapshot.limit, 20);
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use super::adaptive::check_bounds;
use super::adaptive::{Latencies, Outcome};
use super::error::LimitSettingError;
use crate::clock::nanos_saturating;
use crate::clock::Nanos;
use crate::jitter::Jitter;

/// The most success latencies one window keeps: past it, a uniform sample
/// of the window's successes (reservoir sampling), so memory stays fixed
/// and no request allocates.
const RESERVOIR: usize = 256;
/// The most samples a min-RTT probe may ask for.
const MAX_PROBE_SAMPLES: usize = 10_000;
/// The least a window's gradient may be: one window takes at most half the
/// limit (before smoothing), as in both Gradient2 and Envoy.
const MIN_GRADIENT: f64 = 0.5;
/// Envoy measures the min RTT again at once after this many consecutive
/// windows ending at the floor: the baseline is likely wrong.
const FLOOR_WINDOWS: u32 = 5;
/// Latencies below this count as this much: below it differences are noise
/// (Gradient2's windowed limit ignores samples under 100 µs).
const RESOLUTION: Nanos = 100_000;

/// An adaptive limit on requests in flight that follows the latency
/// gradient: how far the short-term latency has drifted from the latency
/// the service shows unloaded.
///
/// # The rule
///
/// Time is cut in windows (default **100 ms**). At the end of a window with
/// enough answers (default **10**), the controller takes the window's
/// latency (a percentile of its successes, default the **median**) and
/// compares it with the *baseline*, the latency measured unloaded (below):
///
/// ```text
/// latency gradient = clamp(baseline × tolerance / window latency, 0.5, 1)
/// success gradient = clamp(1 − drops / answers, 0.5, 1)
/// gradient         = min(latency gradient, success gradient)
/// target           = limit × gradient + √(limit × gradient)
/// limit            = limit × (1 − smoothing) + target × smoothing
/// ```
///
/// clamped to the floor and ceiling. While the latency stays within the
/// tolerance of the baseline the gradient is 1 and the square-root headroom
/// grows the limit; as a queue forms inside the service its latency rises
/// and the limit falls, at most halved per window before smoothing. A
/// window whose peak in flight stayed under half the limit does not grow
/// it (the service was not using it: no evidence it can take more), as in
/// Gradient2. The limit is kept with its fraction; the reported limit is
/// its whole part.
///
/// # Outcomes
///
/// As for [`Aimd`](super::Aimd): a **success** (any answer but `503` and
/// `504`) gives a latency sample, measured from the inner call to the
/// response head; a **drop** (`503`, `504`, an error of the inner service)
/// counts against the success gradient, so a window of drops pushes the
/// limit down; an **ignored** request (the caller went away) is not
/// sampled at all.
///
/// # The baseline and its failure modes
///
/// The baseline is measured the way Envoy does: the controller pins the
/// limit at the probe limit (default **3**), lets the requests already in
/// flight drain, and takes the percentile of the next answers (default
/// **50**) of requests admitted during the probe. It does so when the layer
/// is built, then every probe interval (default **60 s**) plus a random
/// jitter (default up to **15%** of the interval, so that the instances of
/// a fleet do not all probe at once), and at once after 5 windows in a row
/// ending at the floor.
///
/// - *One lucky fast answer cannot collapse the limit*: the baseline is a
///   percentile of a whole probe's answers, never a raw minimum, and the
///   window latency is a percentile too; an outlier moves neither.
/// - *The baseline cannot ratchet up under sustained load*: it is never
///   fed loaded latencies (unlike an average of every answer, which under a
///   standing queue drifts towards the loaded latency, so the queue is never
///   seen); each probe measures it afresh at low concurrency, so a baseline
///   taken in a bad moment lasts one interval at most. A limit stuck at the
///   floor, the sign of a service that really got slower, re-measures early.
///
/// The cost: during a probe at most the probe limit run, so with a queue
/// some requests wait and more are shed (Envoy documents the same rise of
/// 503s). The requests already in flight must end before the probe's own
/// are admitted, so long-lived responses (streams) hold the limit low for
/// as long as they last: for such services prefer [`Aimd`](super::Aimd).
/// Until the first probe ends the limit is the probe limit, not
/// `max_in_flight`; `max_in_flight` is where the limit resumes after it.
///
/// # Defaults and their sources
///
/// | setting | default | source |
/// |---|---|---|
/// | floor, ceiling ([`Gradient::new`]) | 3, 1000 ([`Gradient::default`]) | Envoy: `min_concurrency_limit` defaults to `min_concurrency` (3); `max_concurrency_limit` 1000 |
/// | [`tolerance`](Gradient::tolerance) | 1.25 | Envoy: min-RTT `buffer` 25% |
/// | [`smoothing`](Gradient::smoothing) | 0.2 | Gradient2 `smoothing` (Envoy has none, i.e. 1) |
/// | gradient range | 0.5 to 1 (fixed) | Gradient2 (Envoy: 0.5 to 2) |
/// | headroom | √(limit × gradient) (fixed) | Envoy, "pinned to the square root"; Gradient2's default `queueSize` is 4 |
/// | [`window`](Gradient::window) | 100 ms | Envoy's documented example `concurrency_update_interval` (required there; Gradient2's `WindowedLimit` uses 1 s) |
/// | [`min_window_samples`](Gradient::min_window_samples) | 10 | Gradient2's `WindowedLimit` `windowSize` |
/// | [`percentile`](Gradient::percentile) | 50 | Envoy `sample_aggregate_percentile` |
/// | [`probe_interval`](Gradient::probe_interval) | 60 s | Envoy's documented example min-RTT `interval` (required there) |
/// | [`probe_jitter`](Gradient::probe_jitter) | 15% | Envoy `jitter` |
/// | [`probe_limit`](Gradient::probe_limit) | 3 | Envoy `min_concurrency` |
/// | [`probe_samples`](Gradient::probe_samples) | 50 | Envoy `request_count` |
/// | early probe | after 5 windows at the floor (fixed) | Envoy |
/// | latencies under 100 µs | count as 100 µs (fixed) | Gradient2's `WindowedLimit` ignores them |
///
/// # Cost
///
/// Each request that ends adds one sample under the lock the layer takes
/// for that release anyway: a push into a buffer allocated once per layer
/// (past 256 in a window, a random replacement). The percentile, a linear
/// selection over at most 256 samples, runs once per window.
///
/// ```
/// use std::time::Duration;
/// use tollgate::shed::{Gradient, LoadShedLayer};
///
/// let layer = LoadShedLayer::builder(40)
///     .gradient(
///         Gradient::new(8, 400)
///             .tolerance(1.5)
///             .smoothing(0.5)
///             .percentile(90.0)
///             .probe_interval(Duration::from_secs(30)),
///     )
///     .build()?;
/// // Measuring the baseline first: the probe limit.
/// assert_eq!(layer.snapshot().limit, 3);
/// # Ok::<(), tollgate::shed::ShedConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gradient {
    min: usize,
    max: usize,
    tolerance: f64,
    smoothing: f64,
    window: Duration,
    min_window_samples: usize,
    percentile: f64,
    probe_interval: Duration,
    probe_jitter: f64,
    probe_limit: usize,
    probe_samples: usize,
}

impl Gradient {
    /// A limit that moves between `min` (at least 1) and `max`, every other
    /// setting at its default (see the [table](Gradient#defaults-and-their-sources)).
    pub const fn new(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            tolerance: 1.25,
            smoothing: 0.2,
            window: Duration::from_millis(100),
            min_window_samples: 10,
            percentile: 50.0,
            probe_interval: Duration::from_secs(60),
            probe_jitter: 15.0,
            probe_limit: 3,
            probe_samples: 50,
        }
    }

    /// How much slower than the baseline a window may be before the limit
    /// falls, as a ratio (default 1.25; at least 1).
    #[must_use]
    pub const fn tolerance(mut self, ratio: f64) -> Self {
        self.tolerance = ratio;
        self
    }

    /// How much of the new estimate each window takes: 1 replaces the limit
    /// with it, 0.2 (the default) moves a fifth of the way (above 0, at
    /// most 1).
    #[must_use]
    pub const fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }

    /// How long a window lasts at least (default 100 ms).
    #[must_use]
    pub const fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How many answers a window needs before it moves the limit (default
    /// 10; at least 1). A window with fewer goes on until it has them.
    #[must_use]
    pub const fn min_window_samples(mut self, samples: usize) -> Self {
        self.min_window_samples = samples;
        self
    }

    /// Which percentile of a window's (and a probe's) latencies stands for
    /// it, in percent (default 50, the median; above 0, at most 100).
    #[must_use]
    pub const fn percentile(mut self, percentile: f64) -> Self {
        self.percentile = percentile;
        self
    }

    /// How often the baseline is measured again (default 60 s).
    #[must_use]
    pub const fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// The most a probe is delayed past its interval, at random, in percent
    /// of the interval (default 15; from 0 to 100).
    #[must_use]
    pub const fn probe_jitter(mut self, percent: f64) -> Self {
        self.probe_jitter = percent;
        self
    }

    /// The limit while the baseline is measured (default 3; at least 1, at
    /// most the ceiling; it may lie below the floor).
    #[must_use]
    pub const fn probe_limit(mut self, limit: usize) -> Self {
        self.probe_limit = limit;
        self
    }

    /// How many answers a probe measures the baseline from (default 50;
    /// from 1 to 10 000).
    #[must_use]
    pub const fn probe_samples(mut self, samples: usize) -> Self {
        self.probe_samples = samples;
        self
    }

    /// The floor.
    pub const fn min_limit(&self) -> usize {
        self.min
    }

    /// The ceiling.
    pub const fn max_limit(&self) -> usize {
        self.max
    }

    /// Whether the settings hold together with a starting limit of `initial`.
    pub(crate) fn check(&self, initial: usize) -> Result<(), LimitSettingError> {
        check_bounds(self.min, self.max, initial)?;
        if !(self.tolerance >= 1.0 && self.tolerance.is_finite()) {
            return Err(LimitSettingError::Tolerance);
        }
        if !(self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(LimitSettingError::Smoothing);
        }
        if self.window.is_zero() {
            return Err(LimitSettingError::ZeroWindow);
        }
        if self.min_window_samples == 0 {
            return Err(LimitSettingError::ZeroWindowSamples);
        }
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(LimitSettingError::Percentile);
        }
        if self.probe_interval.is_zero() {
            return Err(LimitSettingError::ZeroProbeInterval);
        }
        if !(0.0..=100.0).contains(&self.probe_jitter) {
            return Err(LimitSettingError::ProbeJitter);
        }
        if self.probe_limit == 0 || self.probe_limit > self.max {
            return Err(LimitSettingError::ProbeLimit {
                limit: self.probe_limit,
                ceiling: self.max,
            });
        }
        if self.probe_samples == 0 || self.probe_samples > MAX_PROBE_SAMPLES {
            return Err(LimitSettingError::ProbeSamples {
                samples: self.probe_samples,
                max: MAX_PROBE_SAMPLES,
            });
        }
        Ok(())
    }

    /// The gradient of a window whose latency percentile was `window`
    /// (`None`: no success in it), with `drops` of its `answers` dropped.
    pub(crate) fn gradient(
        &self,
        baseline: Nanos,
        window: Option<Nanos>,
        drops: u64,
        answers: u64,
    ) -> f64 {
        let latency = match window {
            Some(window) => {
                let expected = self.tolerance * baseline.max(RESOLUTION) as f64;
                expected / window.max(RESOLUTION) as f64
            }
            None => MIN_GRADIENT,
        };
        let success = if answers == 0 {
            1.0
        } else {
            1.0 - drops as f64 / answers as f64
        };
        latency.min(success).clamp(MIN_GRADIENT, 1.0)
    }

    /// The limit (with its fraction) after a window of `gradient`, whose
    /// peak in flight was `peak_in_flight`.
    pub(crate) fn next_limit(&self, limit: f64, gradient: f64, peak_in_flight: usize) -> f64 {
        let scaled = limit * gradient;
        let target = scaled + scaled.sqrt();
        let mut next = limit * (1.0 - self.smoothing) + target * self.smoothing;
        if (peak_in_flight as f64) * 2.0 < limit {
            // The service did not use the limit: no evidence for more.
            next = next.min(limit);
        }
        next.clamp(self.min as f64, self.max as f64)
    }

    /// `interval` plus up to `jitter` percent of it, from the random `draw`.
    fn jittered_interval(&self, draw: u64) -> Nanos {
        let interval = nanos_saturating(self.probe_interval);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let span = (interval as f64 * self.probe_jitter / 100.0) as u64;
        interval.saturating_add(draw.checked_rem(span.saturating_add(1)).unwrap_or(0))
    }
}

impl Default for Gradient {
    /// [`Gradient::new(3, 1000)`](Gradient::new): Envoy's floor and ceiling.
    fn default() -> Self {
        Self::new(3, 1000)
    }
}

/// What the controller is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Measuring the baseline since `since`, the limit pinned at the probe
    /// limit; `resume` is the limit to go back to.
    Probe { since: Nanos, resume: f64 },
    /// Moving the limit window by window until `next_probe`.
    Steady { next_probe: Nanos },
}

/// The gradient controller's state, fed one sample per request that ends
/// with an outcome, under the layer's lock.
pub(crate) struct GradientState {
    settings: Gradient,
    /// The limit with its fraction (outside probes).
    estimate: f64,
    phase: Phase,
    /// The current window's success latencies (a uniform sample of them
    /// once full), or the probe's; allocated once, never grown.
    samples: Vec<Nanos>,
    /// Successes this window (more than `samples` holds once it is full).
    successes: u64,
    /// Drops this window.
    drops: u64,
    /// The most requests in flight at an end this window.
    peak_in_flight: usize,
    /// When the current window may end.
    window_end: Nanos,
    /// The last probe's percentile.
    baseline: Option<Nanos>,
    /// The last window's percentile (`None` before one, or if it had no
    /// success).
    window_latency: Option<Nanos>,
    /// Windows in a row that ended with the limit at the floor.
    floor_windows: u32,
    /// Pseudo-random draws for the reservoir and the jitter.
    rng: Jitter,
}

impl GradientState {
    /// A controller started at `now`, probing first; it resumes at
    /// `initial` once the probe ends.
    pub(crate) fn start(settings: Gradient, initial: usize, now: Nanos) -> Self {
        let capacity = RESERVOIR.max(settings.probe_samples);
        let mut state = Self {
            settings,
            estimate: initial as f64,
            phase: Phase::Steady { next_probe: now },
            samples: Vec::with_capacity(capacity),
            successes: 0,
            drops: 0,
            peak_in_flight: 0,
            window_end: now,
            baseline: None,
            window_latency: None,
            floor_windows: 0,
            // Different in every process, so that a fleet's probes drift apart.
            rng: Jitter::per_process(),
        };
        state.begin_probe(now);
        state
    }

    /// The current limit.
    pub(crate) fn limit(&self) -> usize {
        match self.phase {
            Phase::Probe { .. } => self.settings.probe_limit,
            Phase::Steady { .. } => whole(self.estimate),
        }
    }

    pub(crate) fn latencies(&self) -> Latencies {
        Latencies {
            baseline: self.baseline,
            window: self.window_latency,
        }
    }

    /// A request ended at `now` with `outcome`, `in_flight` running
    /// (counting it); answers the limit.
    pub(crate) fn sample(&mut self, in_flight: usize, outcome: Outcome, now: Nanos) -> usize {
        match self.phase {
            Phase::Probe { since, resume } => {
                // Only answers to requests admitted under the probe limit
                // tell the unloaded latency; drops tell nothing of it.
                if let Outcome::Success { latency, started } = outcome {
                    if started >= since && self.samples.len() < self.settings.probe_samples {
                        self.samples.push(latency);
                    }
                }
                if self.samples.len() >= self.settings.probe_samples {
                    self.baseline = percentile(&mut self.samples, self.settings.percentile);
                    self.estimate = resume;
                    let draw = self.draw();
                    let next_probe = now.saturating_add(self.settings.jittered_interval(draw));
                    self.phase = Phase::Steady { next_probe };
                    self.floor_windows = 0;
                    self.reset_window(now);
                }
            }
            Phase::Steady { next_probe } => {
                self.record(in_flight, outcome);
                let answers = self.successes.saturating_add(self.drops);
                if now >= self.window_end && answers >= self.settings.min_window_samples as u64 {
                    self.close_window();
                    self.reset_window(now);
                }
                if now >= next_probe || self.floor_windows >= FLOOR_WINDOWS {
                    self.begin_probe(now);
                }
            }
        }
        self.limit()
    }

    /// Adds one answer to the current window.
    fn record(&mut self, in_flight: usize, outcome: Outcome) {
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
        match outcome {
            Outcome::Drop => self.drops = self.drops.saturating_add(1),
            Outcome::Success { latency, .. } => {
                self.successes = self.successes.saturating_add(1);
                if self.samples.len() < RESERVOIR {
                    self.samples.push(latency);
                } else {
                    // Keep each of the window's successes with the same
                    // chance (reservoir sampling).
                    let slot = self.rng.up_to(self.successes.saturating_sub(1));
                    if let Some(kept) = usize::try_from(slot)
                        .ok()
                        .and_then(|slot| self.samples.get_mut(slot))
                    {
                        *kept = latency;
                    }
                }
            }
        }
    }

    /// Moves the limit by the window just ended.
    fn close_window(&mut self) {
        let Some(baseline) = self.baseline else {
            return;
        };
        let window = percentile(&mut self.samples, self.settings.percentile);
        self.window_latency = window;
        let answers = self.successes.saturating_add(self.drops);
        let gradient = self
            .settings
            .gradient(baseline, window, self.drops, answers);
        self.estimate = self
            .settings
            .next_limit(self.estimate, gradient, self.peak_in_flight);
        if whole(self.estimate) <= self.settings.min {
            self.floor_windows = self.floor_windows.saturating_add(1);
        } else {
            self.floor_windows = 0;
        }
    }

    fn reset_window(&mut self, now: Nanos) {
        self.samples.clear();
        self.successes = 0;
        self.drops = 0;
        self.peak_in_flight = 0;
        self.window_end = now.saturating_add(nanos_saturating(self.settings.window));
    }

    /// Pins the limit at the probe limit and measures the baseline afresh.
    fn begin_probe(&mut self, now: Nanos) {
        self.reset_window(now);
        self.floor_windows = 0;
        self.phase = Phase::Probe {
            since: now,
            resume: self.estimate,
        };
    }

    /// The next pseudo-random number.
    fn draw(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

impl fmt::Debug for GradientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GradientState")
            .field("estimate", &self.estimate)
            .field("phase", &self.phase)
            .field("baseline", &self.baseline)
            .field("window_latency", &self.window_latency)
            .field("samples", &self.samples.len())
            .field("drops", &self.drops)
            .finish_non_exhaustive()
    }
}

/// The whole part of a limit.
fn whole(limit: f64) -> usize {
    // Limits are clamped to the floor and ceiling, both usize.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = limit as usize;
    whole
}

/// The nearest-rank `percentile` (in percent) of `samples`, which it
/// reorders; `None` when there are none.
fn percentile(samples: &mut [Nanos], percentile: f64) -> Option<Nanos> {
    let len = samples.len();
    if len == 0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = (percentile / 100.0 * len as f64).ceil() as usize;
    let index = rank.clamp(1, len) - 1;
    let (_, nth, _) = samples.select_nth_unstable(index);
    Some(*nth)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    /// A success at `now` that took `latency`.
    fn ok(latency: Nanos, now: Nanos) -> Outcome {
        Outcome::Success {
            latency,
            started: now.saturating_sub(latency),
        }
    }

    /// `state` fed a success at `now` that took `latency`.
    fn answer(state: &mut GradientState, in_flight: usize, latency: Nanos, now: Nanos) -> usize {
        state.sample(in_flight, ok(latency, now), now)
    }

    /// A controller whose probe takes 4 answers, without jitter.
    fn quick() -> Gradient {
        Gradient::new(2, 100)
            .probe_samples(4)
            .probe_limit(1)
            .probe_jitter(0.0)
            .min_window_samples(2)
    }

    #[test]
    fn the_gradient_is_the_clamped_ratio_and_the_success_share() {
        let g = Gradient::default();
        // Within the tolerance: 1.
        assert_eq!(g.gradient(10 * MS, Some(12 * MS), 0, 10), 1.0);
        // 1.25 × 10 / 20.
        assert!((g.gradient(10 * MS, Some(20 * MS), 0, 10) - 0.625).abs() < 1e-12);
        // Never below one half.
        assert_eq!(g.gradient(10 * MS, Some(1000 * MS), 0, 10), 0.5);
        // A fifth of the answers dropped: 0.8, below the latency's 1.
        assert!((g.gradient(10 * MS, Some(10 * MS), 2, 10) - 0.8).abs() < 1e-12);
        // Only drops: the least.
        assert_eq!(g.gradient(10 * MS, None, 10, 10), 0.5);
        // Latencies under 100 µs count as 100 µs: no gradient from noise.
        assert_eq!(g.gradient(0, Some(90_000), 0, 10), 1.0);
        assert_eq!(g.gradient(0, Some(0), 0, 10), 1.0);
    }

    #[test]
    fn the_next_limit_adds_root_headroom_smoothed_within_bounds() {
        let g = Gradient::new(2, 1000);
        // 100 × 1 + √100 = 110, a fifth of the way: 102.
        assert!((g.next_limit(100.0, 1.0, 100) - 102.0).abs() < 1e-9);
        // 100 × 0.5 + √50 ≈ 57.07; 80 + 11.41 ≈ 91.41.
        let down = g.next_limit(100.0, 0.5, 100);
        assert!((down - (80.0 + 0.2 * (50.0 + 50f64.sqrt()))).abs() < 1e-9);
        // Without smoothing, the target itself.
        let raw = Gradient::new(2, 1000).smoothing(1.0);
        assert!((raw.next_limit(16.0, 1.0, 16) - 20.0).abs() < 1e-9);
        // Unused limit: no growth, but decrease still applies.
        assert_eq!(g.next_limit(100.0, 1.0, 49), 100.0);
        assert!(g.next_limit(100.0, 0.5, 10) < 100.0);
        // The floor and the ceiling.
        assert_eq!(Gradient::new(95, 101).next_limit(100.0, 1.0, 100), 101.0);
        assert_eq!(
            Gradient::new(95, 101)
                .smoothing(1.0)
                .next_limit(100.0, 0.5, 100),
            95.0
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&mut [], 50.0), None);
        assert_eq!(percentile(&mut [7], 1.0), Some(7));
        let mut v = [5, 1, 4, 2, 3];
        assert_eq!(percentile(&mut v, 50.0), Some(3));
        assert_eq!(percentile(&mut v, 100.0), Some(5));
        assert_eq!(percentile(&mut v, 0.1), Some(1));
        let mut v: Vec<Nanos> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 90.0), Some(90));
    }

    #[test]
    fn jitter_stays_within_its_share_of_the_interval() {
        let g = Gradient::default()
            .probe_interval(Duration::from_secs(10))
            .probe_jitter(20.0);
        let mut state = GradientState::start(g, 10, 0);
        for _ in 0..1000 {
            let next = g.jittered_interval(state.draw());
            assert!((10_000 * MS..=12_000 * MS).contains(&next), "{next}");
        }
        let exact = g.probe_jitter(0.0);
        assert_eq!(exact.jittered_interval(u64::MAX), 10_000 * MS);
    }

    #[test]
    fn it_probes_first_then_resumes_at_the_initial_limit() {
        let mut state = GradientState::start(quick(), 10, 100 * MS);
        assert_eq!(state.limit(), 1);
        // A request admitted before the probe says nothing of it.
        assert_eq!(answer(&mut state, 8, 50 * MS, 120 * MS), 1);
        // Drops neither.
        assert_eq!(state.sample(1, Outcome::Drop, 125 * MS), 1);
        for i in 0..3 {
            assert_eq!(answer(&mut state, 1, 10 * MS, (130 + 10 * i) * MS), 1);
        }
        assert_eq!(state.latencies().baseline, None);
        assert_eq!(answer(&mut state, 1, 12 * MS, 170 * MS), 10);
        assert_eq!(state.latencies().baseline, Some(10 * MS));
    }

    /// A [`quick`] controller at `initial`, its probe done at 40 ms with a
    /// baseline of `baseline`.
    fn probed(settings: Gradient, initial: usize, baseline: Nanos) -> GradientState {
        let mut state = GradientState::start(settings, initial, 0);
        for i in 1..=4 {
            answer(&mut state, 1, baseline, baseline + i * MS);
        }
        assert_eq!(state.latencies().baseline, Some(baseline));
        state
    }

    #[test]
    fn a_window_moves_the_limit_once_it_has_enough_answers() {
        let mut state = probed(quick().smoothing(1.0), 16, 10 * MS);
        // Steady from 14 ms; the window ends at 114 ms.
        assert_eq!(answer(&mut state, 16, 40 * MS, 100 * MS), 16);
        // Past its end with 2 answers: 16 × 0.5 + √8 = 10.8.
        assert_eq!(answer(&mut state, 16, 40 * MS, 150 * MS), 10);
        assert_eq!(state.latencies().window, Some(40 * MS));
        // A window of drops alone pushes it down too: 5.4 + √5.4 = 7.7.
        state.sample(10, Outcome::Drop, 200 * MS);
        assert_eq!(state.sample(10, Outcome::Drop, 260 * MS), 7);
        assert_eq!(state.latencies().window, None);
    }

    #[test]
    fn the_reservoir_keeps_a_fixed_size_and_a_fair_percentile() {
        let mut state = probed(quick().window(Duration::from_secs(10)), 50, 10 * MS);
        let capacity = state.samples.capacity();
        // 10 000 successes, uniformly 1..=100 ms.
        for i in 0..10_000u64 {
            answer(&mut state, 50, (i % 100 + 1) * MS, 200 * MS);
        }
        assert_eq!(state.samples.len(), RESERVOIR);
        assert_eq!(state.samples.capacity(), capacity);
        assert_eq!(state.successes, 10_000);
        // The kept sample's median is near the true one (50 ms): 256 draws
        // put it within 20-80 ms with overwhelming odds.
        let median = percentile(&mut state.samples.clone(), 50.0).unwrap_or(0);
        assert!((20 * MS..=80 * MS).contains(&median), "{median}");
    }

    #[test]
    fn five_windows_at_the_floor_probe_again_at_once() {
        let mut state = probed(quick().smoothing(1.0), 2, 10 * MS);
        assert_eq!(state.limit(), 2);
        let mut t = 20 * MS;
        let mut windows = 0;
        while state.limit() == 2 {
            // Two slow answers per window, each window past the last.
            t += 100 * MS;
            answer(&mut state, 2, 100 * MS, t);
            answer(&mut state, 2, 100 * MS, t);
            windows += 1;
            assert!(windows <= 10, "no early probe");
        }
        assert_eq!(windows, 5);
        assert_eq!(state.limit(), 1, "probing");
        assert!(matches!(state.phase, Phase::Probe { .. }));
        // Once the probe re-measured the slower service, the limit is free
        // to rise from the floor again.
        for _ in 0..4 {
            t += 100 * MS;
            answer(&mut state, 1, 100 * MS, t);
        }
        assert_eq!(state.latencies().baseline, Some(100 * MS));
        t += 200 * MS;
        answer(&mut state, 2, 100 * MS, t);
        t += 200 * MS;
        assert!(answer(&mut state, 2, 100 * MS, t) > 2);
    }

    #[test]
    fn settings_are_checked() {
        assert!(Gradient::default().check(3).is_ok());
        assert!(Gradient::default().check(1000).is_ok());
        assert!(Gradient::default().check(2).is_err());
        assert!(Gradient::default().check(1001).is_err());
        assert!(Gradient::new(0, 10).check(5).is_err());
        assert!(Gradient::new(6, 5).check(5).is_err());
        use LimitSettingError as E;
        let bad = [
            (Gradient::default().tolerance(0.9), E::Tolerance),
            (Gradient::default().tolerance(f64::NAN), E::Tolerance),
            (Gradient::default().tolerance(f64::INFINITY), E::Tolerance),
            (Gradient::default().smoothing(0.0), E::Smoothing),
            (Gradient::default().smoothing(1.5), E::Smoothing),
            (Gradient::default().window(Duration::ZERO), E::ZeroWindow),
            (
                Gradient::default().min_window_samples(0),
                E::ZeroWindowSamples,
            ),
            (Gradient::default().percentile(0.0), E::Percentile),
            (Gradient::default().percentile(100.5), E::Percentile),
            (Gradient::default().percentile(f64::NAN), E::Percentile),
            (
                Gradient::default().probe_interval(Duration::ZERO),
                E::ZeroProbeInterval,
            ),
            (Gradient::default().probe_jitter(-1.0), E::ProbeJitter),
            (Gradient::default().probe_jitter(101.0), E::ProbeJitter),
            (
                Gradient::default().probe_limit(0),
                E::ProbeLimit {
                    limit: 0,
                    ceiling: 1000,
                },
            ),
            (
                Gradient::new(3, 10).probe_limit(11),
                E::ProbeLimit {
                    limit: 11,
                    ceiling: 10,
                },
            ),
            (
                Gradient::default().probe_samples(0),
                E::ProbeSamples {
                    samples: 0,
                    max: 10_000,
                },
            ),
            (
                Gradient::default().probe_samples(10_001),
                E::ProbeSamples {
                    samples: 10_001,
                    max: 10_000,
                },
            ),
        ];
        for (gradient, refused) in bad {
            assert_eq!(gradient.check(5), Err(refused), "{gradient:?}");
        }
        let edge = Gradient::new(3, 10)
            .tolerance(1.0)
            .smoothing(1.0)
            .percentile(100.0)
            .probe_jitter(100.0)
            .probe_limit(10)
            .probe_samples(10_000);
        assert!(edge.check(5).is_ok());
    }
}
