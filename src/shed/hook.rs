//! [`Shed`]: what the `on_shed` hook is told about a shed request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};

use super::answer::Answers;
use super::priority::Priority;
use super::reason::ShedReason;

/// A request the layer sheds, as given to
/// [`LoadShedBuilder::on_shed`](super::LoadShedBuilder::on_shed).
///
/// [`Shed::to_response`] builds the default answer (a 503 problem), so a
/// hook can start from it.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http::{Response, StatusCode};
/// use tollgate::shed::{LoadShedLayer, Shed, ShedReason};
///
/// fn respond(shed: &Shed<'_>) -> Response<Bytes> {
///     let mut response = shed.to_response();
///     if shed.reason() == ShedReason::QueueFull {
///         // Tell the client to come back later than the default.
///         let later = shed.retry_after() * 2;
///         response.headers_mut().insert("retry-after", later.as_secs().max(1).into());
///     }
///     response
/// }
///
/// let layer = LoadShedLayer::builder(8)
///     .retry_after(Duration::from_secs(2))
///     .on_shed(respond)
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), tollgate::shed::ShedConfigError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Shed<'a> {
    reason: ShedReason,
    priority: Priority,
    answers: &'a Answers,
}

impl<'a> Shed<'a> {
    pub(crate) fn new(reason: ShedReason, priority: Priority, answers: &'a Answers) -> Self {
        Self {
            reason,
            priority,
            answers,
        }
    }

    /// Why the request was shed.
    pub fn reason(&self) -> ShedReason {
        self.reason
    }

    /// The request's priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// How long the client should wait before trying again, as configured
    /// with [`LoadShedBuilder::retry_after`](super::LoadShedBuilder::retry_after)
    /// (exact; the default answer's `Retry-After` rounds it up to whole
    /// seconds, at least 1).
    pub fn retry_after(&self) -> Duration {
        self.answers.retry_after()
    }

    /// The status of the default answer: `503 Service Unavailable`.
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    /// The default answer: `503` with `Retry-After`, `Cache-Control:
    /// no-store` and a problem+json body naming the reason and priority.
    pub fn to_response(&self) -> Response<Bytes> {
        self.answers.default_response(self.reason, self.priority)
    }
}

impl fmt::Debug for Shed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shed")
            .field("reason", &self.reason)
            .field("priority", &self.priority)
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

/// Answers a shed request instead of the default 503.
pub(crate) type ShedFn = Arc<dyn Fn(&Shed<'_>) -> Response<Bytes> + Send + Sync>;
