//! [`LoadShedLayer`]: the tower layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::builder::LoadShedBuilder;
use super::gate::Gate;
use super::service::LoadShed;
use super::snapshot::Snapshot;

/// Bounds the requests in flight of the wrapped service, queues a few and
/// sheds the rest with 503; see the [module docs](super).
///
/// Every clone of the layer, and every service it makes (one per route, per
/// connection), shares one limit and one queue through an `Arc`. For a
/// limit per route, build one layer per route.
///
/// ```
/// use std::time::Duration;
/// use tollgate::shed::{LoadShedLayer, Priority};
///
/// let layer = LoadShedLayer::builder(32)
///     .max_queue(64)
///     .max_queue_wait(Duration::from_millis(50))
///     .reserve(Priority::Critical, 20)
///     .build()?;
/// let snapshot = layer.snapshot();
/// assert_eq!((snapshot.limit, snapshot.in_flight, snapshot.queued), (32, 0, 0));
/// # Ok::<(), tollgate::shed::ShedConfigError>(())
/// ```
pub struct LoadShedLayer {
    gate: Arc<Gate>,
}

impl LoadShedLayer {
    /// Starts a layer that lets at most `max_in_flight` requests run at once.
    pub fn builder(max_in_flight: usize) -> LoadShedBuilder {
        LoadShedBuilder::new(max_in_flight)
    }

    pub(crate) fn from_gate(gate: Arc<Gate>) -> Self {
        Self { gate }
    }

    #[cfg(test)]
    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The current limit, requests in flight and waiting, queue delay and
    /// shed counts.
    pub fn snapshot(&self) -> Snapshot {
        self.gate.snapshot()
    }
}

impl Clone for LoadShedLayer {
    fn clone(&self) -> Self {
        Self {
            gate: Arc::clone(&self.gate),
        }
    }
}

impl fmt::Debug for LoadShedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShedLayer")
            .field("gate", &self.gate)
            .finish()
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed::new(inner, Arc::clone(&self.gate))
    }
}
