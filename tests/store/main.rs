//! Integration tests of the algorithms and the in-memory store, all on a
//! `ManualClock`:
//!
//! - each algorithm against a small reference model (property tests);
//! - several charges per check are all-or-nothing;
//! - threads on one key admit exactly the quota;
//! - the store's key bound, eviction of idle keys and its bookkeeping;
//! - a flood of new keys refuses no fresh client and resets no limited one;
//! - IP keys and byte keys never share a counter.

mod all_or_nothing;
mod bounds;
mod concurrency_limit;
mod delay;
mod eviction;
mod fixed_window;
mod flood;
mod gcra;
mod keys;
mod sliding_log;
mod sliding_window;
mod support;
mod sweep_races;
mod threads;
