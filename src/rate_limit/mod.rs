//! The rate-limit middleware: [`RateLimitLayer`](crate::RateLimitLayer) and
//! its [`RateLimit`](crate::RateLimit) service, a peer of [`shed`](crate::shed).
//!
//! A layer is configured once, by its [`builder`], and fixed from then on.
//! A request goes through [`evaluate`]: its rules (the layer's main rule
//! and each `.also(...)` rule, [`rules`]) name its keys and tiers, one
//! store check charges every limit all or nothing, and the answer is the
//! inner service's response or the layer's refusal
//! ([`response`](crate::response)). [`refund`] gives charges back after the
//! response, [`reload`] swaps plans at run time, [`peek`] asks without
//! charging. The types both middlewares share (bodies, clocks, decisions,
//! errors, limits) live at the crate's root.

pub(crate) mod builder;
pub(crate) mod charge;
pub(crate) mod conclude;
pub(crate) mod delay;
pub(crate) mod evaluate;
pub mod future;
pub(crate) mod layer;
pub(crate) mod locate;
pub(crate) mod peek;
pub(crate) mod refund;
pub(crate) mod reload;
pub(crate) mod rule;
pub(crate) mod rules;
pub(crate) mod service;
pub(crate) mod state;
