//! [`ResponseFuture`]: the inner service's future, or the layer's own answer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use crate::body::ResponseBody;
use crate::rate_limit::refund::After;
use crate::store::Permits;

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

pin_project! {
    /// The future of [`RateLimit`](crate::RateLimit).
    ///
    /// With the in-memory store it is the inner future (admitted) or a ready
    /// answer (refused): nothing is boxed. Only a store that answers later
    /// (a remote one) makes it wait on a boxed future.
    ///
    /// Like tower's futures, it panics when polled again after it finished.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Called {
            #[pin]
            future: F,
            permits: Permits,
            after: Option<Box<After>>,
        },
        Answered {
            response: Option<Response<Bytes>>,
        },
        Waiting {
            future: Boxed<B, E>,
        },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn called(future: F, permits: Permits, after: Option<Box<After>>) -> Self {
        Self {
            state: State::Called {
                future,
                permits,
                after,
            },
        }
    }

    /// The layer's own answer.
    pub(crate) fn answered(response: Response<Bytes>) -> Self {
        Self {
            state: State::Answered {
                response: Some(response),
            },
        }
    }

    pub(crate) fn waiting(future: Boxed<B, E>) -> Self {
        Self {
            state: State::Waiting { future },
        }
    }
}

/// Wraps an admitted response: its body holds the permits, the rate-limit
/// fields are added when asked for, and a refund is settled on its status.
pub(crate) fn finish<B>(
    response: Response<B>,
    permits: Permits,
    after: Option<Box<After>>,
) -> Response<ResponseBody<B>> {
    let mut response = response.map(|body| ResponseBody::inner(body, permits));
    if let Some(after) = after {
        let status = response.status();
        after.apply(status, response.headers_mut());
    }
    response
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called {
                future,
                permits,
                after,
            } => {
                // An error drops the permits here: the request is over. It
                // settles no refund: without an answer, the charge stays.
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(finish(response, std::mem::take(permits), after.take())))
            }
            StateProj::Answered { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response.map(ResponseBody::answer))),
                // As tower's futures do: a caller that polls a finished
                // future is told, rather than left waiting forever.
                None => polled_after_completion(),
            },
            StateProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

/// The panic of a future polled again after it finished, out of line so
/// the poll that answers stays small.
#[cold]
#[inline(never)]
pub(crate) fn polled_after_completion() -> ! {
    panic!("tollgate ResponseFuture polled after completion")
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
