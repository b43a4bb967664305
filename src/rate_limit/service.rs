//! [`RateLimit`]: the service the layer makes.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::rate_limit::delay::wait_then_call;
use crate::rate_limit::evaluate::{Conclusion, Evaluation};
use crate::rate_limit::future::{finish, ResponseFuture};
use crate::rate_limit::state::Shared;
use crate::store::{MemoryStore, Store};

/// Rate-limits the requests of the inner service `S`.
///
/// `poll_ready` is the inner service's; the decision is taken in `call`, so
/// an idle connection holds nothing. A refused request is answered with a
/// response (429, 400/401, 503), never an error: `Error` stays `S::Error`.
pub struct RateLimit<S, St: Store = MemoryStore> {
    inner: S,
    shared: Arc<Shared<St>>,
}

impl<S, St: Store> RateLimit<S, St> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<St>>) -> Self {
        Self { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the wrapper.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, St: Store> Clone for RateLimit<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, St: Store> fmt::Debug for RateLimit<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    St: Store,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: From<Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.shared.evaluate(&request) {
            Evaluation::Done(Conclusion::Admit { permits, after }) => {
                ResponseFuture::called(self.inner.call(request), permits, after)
            }
            Evaluation::Done(Conclusion::Answer(response)) => ResponseFuture::answered(response),
            Evaluation::Done(Conclusion::Delay(wait)) => {
                // A clone no one made ready: the ready one stays for the
                // next call, and the waiter holds nothing inside.
                let inner = self.inner.clone();
                ResponseFuture::waiting(wait_then_call(inner, request, *wait))
            }
            Evaluation::Pending(pending) => {
                // The store answers later: take the service that was made
                // ready, leave a fresh clone in its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                ResponseFuture::waiting(Box::pin(async move {
                    // Only the parts are read while waiting: the body need
                    // not be `Sync`.
                    let (parts, body) = request.into_parts();
                    let conclusion = shared.conclude_pending(pending, &parts).await;
                    let request = Request::from_parts(parts, body);
                    match conclusion {
                        Conclusion::Admit { permits, after } => {
                            let response = inner.call(request).await?;
                            Ok(finish(response, permits, after))
                        }
                        Conclusion::Answer(response) => Ok(response.map(ResponseBody::answer)),
                        Conclusion::Delay(wait) => {
                            // Give back what the ready service holds while
                            // waiting: a fresh clone is made ready later.
                            let fresh = inner.clone();
                            drop(inner);
                            wait_then_call(fresh, request, *wait).await
                        }
                    }
                }))
            }
        }
    }
}
