//! [`LoadShedBuilder`]: the settings of a [`LoadShedLayer`], checked once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::adaptive::{Adaptive, Aimd};
use super::answer::Answers;
use super::codel::Codel;
use super::core::Config;
use super::error::ShedConfigError;
use super::gate::Gate;
use super::gradient::Gradient;
use super::hook::{Shed, ShedFn};
use super::layer::LoadShedLayer;
use super::priority::{self, Priority, PriorityFn};
use crate::clock::nanos_saturating;
use crate::clock::{Clock, MonotonicClock};
use crate::key::{KeyExtractor, RequestInfo};

/// Builds a [`LoadShedLayer`]; start from [`LoadShedLayer::builder`].
///
/// | setting | default |
/// |---|---|
/// | `max_queue` | `max_in_flight` |
/// | `max_queue_wait` | 100 ms (the CoDel interval: "Fail at Scale" bounds a queue that was recently empty by it) |
/// | `retry_after` | 1 s |
/// | CoDel | on: target 5 ms, interval 100 ms ("Fail at Scale") |
/// | priority | [`Priority::Normal`] for every request |
/// | reservations | none |
/// | answer to a shed request | 503 problem+json ([`on_shed`](LoadShedBuilder::on_shed) to replace it) |
/// | adaptive limit | none: the limit stays `max_in_flight` ([`aimd`](LoadShedBuilder::aimd) or [`gradient`](LoadShedBuilder::gradient) to move it) |
///
/// Errors are reported by [`build`](LoadShedBuilder::build), never by a panic.
#[must_use]
pub struct LoadShedBuilder {
    max_in_flight: usize,
    max_queue: Option<usize>,
    max_queue_wait: Duration,
    retry_after: Duration,
    codel: Option<Codel>,
    reservations: Vec<(Priority, u8)>,
    adaptive: Option<Adaptive>,
    priority: Option<PriorityFn>,
    default_priority: Priority,
    clock: Option<Arc<dyn Clock>>,
    on_shed: Option<ShedFn>,
}

impl LoadShedBuilder {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Self {
            max_in_flight,
            max_queue: None,
            max_queue_wait: Duration::from_millis(100),
            retry_after: Duration::from_secs(1),
            codel: Some(Codel::new()),
            reservations: Vec::new(),
            adaptive: None,
            priority: None,
            default_priority: Priority::Normal,
            clock: None,
            on_shed: None,
        }
    }

    /// How many requests may wait for a place (default `max_in_flight`; 0:
    /// shed at once when every place is taken).
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = Some(max_queue);
        self
    }

    /// The longest a request waits before it is shed (default 100 ms).
    pub fn max_queue_wait(mut self, wait: Duration) -> Self {
        self.max_queue_wait = wait;
        self
    }

    /// The `Retry-After` of a shed request (default 1 s; sent in whole
    /// seconds, rounded up, at least 1).
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// CoDel queue management with these settings (on by default with
    /// [`Codel::new`]).
    pub fn codel(mut self, codel: Codel) -> Self {
        self.codel = Some(codel);
        self
    }

    /// Turns CoDel off: the queue is always FIFO and bounded by
    /// `max_queue_wait` alone.
    pub fn without_codel(mut self) -> Self {
        self.codel = None;
        self
    }

    /// Reserves `percent` of the limit for requests of `priority` and
    /// above: lower priorities may fill only the rest. Reservations for
    /// several priorities nest (each lower priority is kept out of the
    /// largest share reserved above it). The reserved part is rounded up,
    /// but every priority may use at least one place.
    ///
    /// Stripe keeps about 20% of capacity for critical traffic.
    pub fn reserve(mut self, priority: Priority, percent: u8) -> Self {
        self.reservations.push((priority, percent));
        self
    }

    /// Gives each request a priority with `priority`.
    pub fn priority(
        mut self,
        priority: impl Fn(&RequestInfo<'_>) -> Priority + Send + Sync + 'static,
    ) -> Self {
        self.priority = Some(Arc::new(priority));
        self
    }

    /// Gives each request the priority `map` answers for the tier
    /// `extractor` names (`None` when it names none or finds no key): the
    /// tiers of the rate limits decide who is shed first.
    pub fn priority_from_tier<E, M>(mut self, extractor: E, map: M) -> Self
    where
        E: KeyExtractor,
        M: Fn(Option<&str>) -> Priority + Send + Sync + 'static,
    {
        self.priority = Some(priority::from_tier(extractor, map));
        self
    }

    /// The priority of every request when none is computed (default
    /// [`Priority::Normal`]).
    pub fn default_priority(mut self, priority: Priority) -> Self {
        self.default_priority = priority;
        self
    }

    /// Moves the limit with AIMD, starting from `max_in_flight` (replaces
    /// a [`gradient`](LoadShedBuilder::gradient) controller).
    pub fn aimd(mut self, aimd: Aimd) -> Self {
        self.adaptive = Some(Adaptive::Aimd(aimd));
        self
    }

    /// Moves the limit with the gradient controller: it measures the
    /// baseline latency first (the limit pinned at the probe limit), then
    /// resumes from `max_in_flight` (replaces an [`aimd`](LoadShedBuilder::aimd)
    /// controller).
    pub fn gradient(mut self, gradient: Gradient) -> Self {
        self.adaptive = Some(Adaptive::Gradient(gradient));
        self
    }

    /// Answers shed requests with `respond` instead of the default 503
    /// problem ([`Shed::to_response`] builds that one, so a closure can
    /// start from it). `respond` runs outside the layer's lock.
    pub fn on_shed(
        mut self,
        respond: impl Fn(&Shed<'_>) -> http::Response<bytes::Bytes> + Send + Sync + 'static,
    ) -> Self {
        self.on_shed = Some(Arc::new(respond));
        self
    }

    /// Answers shed requests as gRPC: trailers-only `UNAVAILABLE` with
    /// `RetryInfo` and `ErrorInfo` details (see [`crate::grpc::respond_shed`]).
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn grpc(self) -> Self {
        self.on_shed(crate::grpc::respond_shed)
    }

    /// Reads time from `clock` (default [`MonotonicClock`]); tests use a
    /// [`ManualClock`](crate::clock::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Checks the settings and builds the layer.
    pub fn build(self) -> Result<LoadShedLayer, ShedConfigError> {
        if self.max_in_flight == 0 {
            return Err(ShedConfigError::ZeroInFlight);
        }
        let max_queue = self.max_queue.unwrap_or(self.max_in_flight);
        if max_queue > 0 && self.max_queue_wait.is_zero() {
            return Err(ShedConfigError::ZeroQueueWait);
        }
        let mut withheld = [0u8; Priority::COUNT];
        for &(priority, percent) in &self.reservations {
            if priority == Priority::Low {
                return Err(ShedConfigError::ReserveForLowest);
            }
            if percent > 99 {
                return Err(ShedConfigError::ReserveTooLarge { priority, percent });
            }
            for lower in Priority::ALL.iter().filter(|&&p| p < priority) {
                let slot = &mut withheld[lower.index()];
                *slot = (*slot).max(percent);
            }
        }
        if let Some(codel) = &self.codel {
            if codel.target_delay().is_zero() || codel.target_delay() >= codel.interval_length() {
                return Err(ShedConfigError::Codel);
            }
        }
        if let Some(adaptive) = &self.adaptive {
            adaptive.check(self.max_in_flight)?;
        }
        let config = Config {
            max_queue,
            max_queue_wait: nanos_saturating(self.max_queue_wait),
            codel: self.codel,
            withheld,
            adaptive: self.adaptive,
        };
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(MonotonicClock::new()));
        let gate = Gate::new(
            config,
            self.max_in_flight,
            clock,
            self.priority,
            self.default_priority,
            Answers::new(self.retry_after, self.max_in_flight).with_hook(self.on_shed),
        );
        Ok(LoadShedLayer::from_gate(Arc::new(gate)))
    }
}

impl fmt::Debug for LoadShedBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShedBuilder")
            .field("max_in_flight", &self.max_in_flight)
            .field("max_queue", &self.max_queue)
            .field("max_queue_wait", &self.max_queue_wait)
            .field("retry_after", &self.retry_after)
            .field("codel", &self.codel)
            .field("reservations", &self.reservations)
            .field("adaptive", &self.adaptive)
            .field("default_priority", &self.default_priority)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shed::LimitSettingError;

    #[test]
    fn bad_settings_are_refused() {
        let err = |b: LoadShedBuilder| b.build().err();
        assert_eq!(
            err(LoadShedBuilder::new(0)),
            Some(ShedConfigError::ZeroInFlight)
        );
        assert_eq!(
            err(LoadShedBuilder::new(1).max_queue_wait(Duration::ZERO)),
            Some(ShedConfigError::ZeroQueueWait)
        );
        assert_eq!(
            err(LoadShedBuilder::new(1)
                .max_queue(0)
                .max_queue_wait(Duration::ZERO)),
            None
        );
        assert_eq!(
            err(LoadShedBuilder::new(1).reserve(Priority::Low, 10)),
            Some(ShedConfigError::ReserveForLowest)
        );
        assert_eq!(
            err(LoadShedBuilder::new(1).reserve(Priority::High, 100)),
            Some(ShedConfigError::ReserveTooLarge {
                priority: Priority::High,
                percent: 100
            })
        );
        assert_eq!(
            err(LoadShedBuilder::new(1).codel(Codel::new().target(Duration::ZERO))),
            Some(ShedConfigError::Codel)
        );
        assert_eq!(
            err(LoadShedBuilder::new(1).codel(Codel::new().target(Duration::from_secs(1)))),
            Some(ShedConfigError::Codel)
        );
        let refused = err(LoadShedBuilder::new(1).aimd(Aimd::new(2, 4)));
        assert_eq!(
            refused,
            Some(ShedConfigError::Aimd(
                LimitSettingError::StartOutsideBounds {
                    initial: 1,
                    floor: 2,
                    ceiling: 4
                }
            ))
        );
        // The setting is the error's source, for reporters that walk it.
        let refused = refused.expect("refused");
        let source = std::error::Error::source(&refused).expect("a source");
        assert_eq!(
            source.to_string(),
            "max_in_flight 1 lies outside the floor 2 and the ceiling 4"
        );
        assert!(matches!(
            err(LoadShedBuilder::new(1).gradient(Gradient::default())),
            Some(ShedConfigError::Gradient(
                LimitSettingError::StartOutsideBounds { initial: 1, .. }
            ))
        ));
    }

    #[test]
    fn reservations_nest() {
        let layer = LoadShedBuilder::new(10)
            .reserve(Priority::Critical, 20)
            .reserve(Priority::High, 10)
            .build()
            .expect("valid");
        assert_eq!(layer.gate().config.withheld, [20, 20, 20, 0]);
        let layer = LoadShedBuilder::new(10)
            .reserve(Priority::Critical, 10)
            .reserve(Priority::High, 30)
            .build()
            .expect("valid");
        assert_eq!(layer.gate().config.withheld, [30, 30, 10, 0]);
    }
}
