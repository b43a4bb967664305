//! The layer over a trivial inner service, on a manual clock: admission,
//! fields, multi-limit and cross-rule atomicity, shared state, key errors,
//! options, concurrency permits, async stores and readiness.

mod admission;
mod algorithms;
mod async_store;
mod builder;
mod client;
mod concurrency;
mod delay;
mod draft;
mod fields;
mod keys;
mod multi;
mod options;
mod peek;
mod ready;
mod refund;
mod reload;
mod routes;
mod sf;
mod sf_parser;
mod sharing;
mod support;
