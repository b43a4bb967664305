//! The Redis store against a real `redis-server` the tests start themselves
//! on free loopback ports (or the server `REDIS_URL` names): the same
//! answers as the memory store, all or nothing over several limits and
//! keys, exact quotas under concurrency across two stores, script reloads,
//! key expiry, outages and recovery, clock skew between instances, and the
//! layer's answers.
//!
//! Without `redis-server` on PATH and without `REDIS_URL`, these tests fail
//! (they never skip): `apt-get install redis-server`, as `.ci/run` does.
#![cfg(feature = "redis")]

mod algorithms;
mod atomicity;
mod breaker;
mod chaos;
mod cluster;
mod delay;
mod example;
mod failures;
mod fallback;
mod keys;
mod layer;
mod lease;
mod over_limit;
mod proxy;
mod refund;
mod skew;
mod support;
mod weights;
