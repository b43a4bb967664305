//! tollgate: tower middleware for rate limiting and admission control.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod algorithm;
pub mod body;
pub mod clock;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod config;
pub mod decision;
pub mod error;
pub mod future;
pub mod key;
mod layer;
pub mod limit;
pub mod plan;
pub mod quota;
pub mod response;
mod rule;
mod service;
mod shared;
pub mod store;

pub use decision::Decision;
pub use error::{ConfigError, StoreError};
pub use layer::RateLimitLayer;
pub use limit::Limit;
pub use plan::Plans;
pub use quota::Quota;
pub use service::RateLimit;
pub use shared::OnStoreError;
