//! [`ResponseFuture`]: the inner service's future, a wait in the queue, or
//! the layer's own 503.

use crate::rate_limit::future::polled_after_completion;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use super::ticket::Ticket;
use crate::body::ResponseBody;

pub(crate) type Boxed<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

pin_project! {
    /// The future of [`LoadShed`](super::LoadShed).
    ///
    /// A request admitted at once runs the inner future as it is, holding
    /// its place in flight; a shed request is a ready 503. Only a request
    /// that has to wait is boxed (it keeps the request and a clone of the
    /// inner service until its turn). Dropping the future gives back the
    /// place in the queue or in flight. Like tower's futures, it panics when
    /// polled again after it finished.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Running {
            #[pin]
            future: F,
            ticket: Option<Ticket>,
        },
        Shed {
            response: Option<Box<Response<Bytes>>>,
        },
        Queued {
            future: Boxed<B, E>,
        },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn running(future: F, ticket: Ticket) -> Self {
        Self {
            state: State::Running {
                future,
                ticket: Some(ticket),
            },
        }
    }

    pub(crate) fn shed(response: Response<Bytes>) -> Self {
        Self {
            state: State::Shed {
                response: Some(Box::new(response)),
            },
        }
    }

    pub(crate) fn queued(future: Boxed<B, E>) -> Self {
        Self {
            state: State::Queued { future },
        }
    }
}

/// Wraps an admitted response: its body holds the ticket until it ends or
/// is dropped.
pub(crate) fn admitted<B>(response: Response<B>, mut ticket: Ticket) -> Response<ResponseBody<B>> {
    ticket.answered(response.status());
    let permits = ticket.into_permits();
    response.map(|body| ResponseBody::inner(body, permits))
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running { future, ticket } => {
                let result = ready!(future.poll(cx));
                let Some(mut ticket) = ticket.take() else {
                    polled_after_completion();
                };
                Poll::Ready(match result {
                    Ok(response) => Ok(admitted(response, ticket)),
                    Err(error) => {
                        ticket.failed();
                        Err(error)
                    }
                })
            }
            StateProj::Shed { response } => match response.take() {
                Some(response) => Poll::Ready(Ok((*response).map(ResponseBody::answer))),
                None => polled_after_completion(),
            },
            StateProj::Queued { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Running { .. } => "running",
            State::Shed { .. } => "shed",
            State::Queued { .. } => "queued",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
