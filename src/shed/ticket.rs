//! [`Ticket`]: one admitted request's place in flight.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;

use super::adaptive::Outcome;
use super::gate::Gate;
use crate::clock::Nanos;
use crate::store::{Permit, Permits};

/// Holds one place in flight; gives it back when dropped, with the
/// request's outcome for the adaptive limit (none recorded: the caller
/// went away, which says nothing about the service).
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    started: Nanos,
    outcome: Option<Outcome>,
}

impl Ticket {
    pub(crate) fn new(gate: Arc<Gate>, started: Nanos) -> Self {
        Self {
            gate,
            started,
            outcome: None,
        }
    }

    /// The inner service answered with `status`.
    pub(crate) fn answered(&mut self, status: StatusCode) {
        if self.gate.adaptive() {
            self.outcome = Some(Outcome::of(status, self.started, self.gate.now()));
        }
    }

    /// The inner service failed.
    pub(crate) fn failed(&mut self) {
        self.outcome = Some(Outcome::Drop);
    }

    /// The ticket as a permit for a response body.
    pub(crate) fn into_permits(self) -> Permits {
        let mut permits = Permits::none();
        permits.push(Permit::from_fn(move || drop(self)));
        permits
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.release(self.outcome.take());
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}
