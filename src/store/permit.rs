use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::algorithm::Concurrency;

/// One held unit of a concurrency limit, given back when dropped.
pub struct Permit {
    release: Release,
}

enum Release {
    /// An in-memory concurrency counter and the units this permit holds.
    Memory {
        state: Arc<AtomicU64>,
        cost: u64,
    },
    Custom(Option<Box<dyn FnOnce() + Send + Sync>>),
}

impl Permit {
    pub(crate) fn memory(state: Arc<AtomicU64>, cost: u64) -> Self {
        Self {
            release: Release::Memory { state, cost },
        }
    }

    /// A permit that runs `release` when dropped (for stores other than the
    /// in-memory one).
    pub fn from_fn(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self {
            release: Release::Custom(Some(Box::new(release))),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        match &mut self.release {
            Release::Memory { state, cost } => Concurrency::release(state, *cost),
            Release::Custom(release) => {
                if let Some(release) = release.take() {
                    release();
                }
            }
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// The permits of one request; released together when dropped.
///
/// One permit is held inline: a request under one concurrency limit
/// allocates nothing for it.
#[derive(Debug, Default)]
pub struct Permits {
    held: SmallVec<[Permit; 1]>,
}

impl Permits {
    /// No permit.
    pub fn none() -> Self {
        Self {
            held: SmallVec::new(),
        }
    }

    /// Adds a permit.
    pub fn push(&mut self, permit: Permit) {
        self.held.push(permit);
    }

    /// How many permits are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no permit is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Releases every permit now.
    pub fn release(&mut self) {
        self.held.clear();
    }
}
