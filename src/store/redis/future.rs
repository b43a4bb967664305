//! [`CheckFuture`]: a check on its way to Redis and back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::StoreError;
use crate::store::Verdict;

type Boxed = Pin<Box<dyn Future<Output = Result<Verdict, StoreError>> + Send>>;

/// The future of a [`RedisStore`](super::RedisStore) check: one script call,
/// bounded by the store's timeout. Owns everything it needs (`'static`).
pub struct CheckFuture {
    inner: Boxed,
}

impl CheckFuture {
    pub(super) fn new(
        future: impl Future<Output = Result<Verdict, StoreError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }
}

impl Future for CheckFuture {
    type Output = Result<Verdict, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for CheckFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckFuture").finish_non_exhaustive()
    }
}
