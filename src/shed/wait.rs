//! [`Wait`]: a queued request waiting for its ticket.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::gate::Gate;
use super::queue::WaiterId;
use super::reason::ShedReason;
use super::ticket::Ticket;

/// Resolves to a [`Ticket`] once the request may run, or to the reason it
/// was shed. Dropped before that, it leaves the queue (and hands on a
/// ticket granted but not yet taken).
#[derive(Debug)]
pub(crate) struct Wait {
    gate: Arc<Gate>,
    id: Option<WaiterId>,
}

impl Wait {
    pub(crate) fn new(gate: Arc<Gate>, id: WaiterId) -> Self {
        Self { gate, id: Some(id) }
    }
}

impl Future for Wait {
    type Output = Result<Ticket, ShedReason>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(id) = self.id else {
            return Poll::Pending;
        };
        let result = std::task::ready!(self.gate.poll_wait(id, cx));
        self.id = None;
        Poll::Ready(result)
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.gate.cancel_wait(id);
        }
    }
}
