//! [`LoadShed`]: the service the layer makes.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::{admitted, ResponseFuture};
use super::gate::{Admit, Gate};
use super::snapshot::Snapshot;
use crate::body::ResponseBody;
use crate::key::RequestInfo;

/// Admits, queues or sheds the requests of the inner service `S`.
///
/// `poll_ready` is the inner service's; the place in flight is taken in
/// `call`, so an idle keep-alive connection holds nothing. A shed request
/// is answered 503 and never reaches `S`; `Error` stays `S::Error`.
///
/// A request that must wait takes the inner service made ready for it and
/// leaves a clone in its place, as axum's `from_fn` middleware does.
pub struct LoadShed<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> LoadShed<S> {
    pub(crate) fn new(inner: S, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
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

    /// The state of the layer this service came from (shared by every
    /// clone of it).
    pub fn snapshot(&self) -> Snapshot {
        self.gate.snapshot()
    }
}

impl<S: Clone> Clone for LoadShed<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            gate: Arc::clone(&self.gate),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for LoadShed<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadShed")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LoadShed<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let priority = self.gate.priority_of(&RequestInfo::new(&request));
        match self.gate.admit(priority) {
            Admit::Now(ticket) => ResponseFuture::running(self.inner.call(request), ticket),
            Admit::Shed(reason) => ResponseFuture::shed(self.gate.answer(reason, priority)),
            Admit::Queued(wait) => {
                // Take the service that was made ready, leave a clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let gate = Arc::clone(&self.gate);
                ResponseFuture::queued(Box::pin(async move {
                    match wait.await {
                        Ok(mut ticket) => match inner.call(request).await {
                            Ok(response) => Ok(admitted(response, ticket)),
                            Err(error) => {
                                ticket.failed();
                                Err(error)
                            }
                        },
                        Err(reason) => Ok(gate.answer(reason, priority).map(ResponseBody::answer)),
                    }
                }))
            }
        }
    }
}
