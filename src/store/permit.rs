use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use super::memory::{ByteKey, Counter, IpKey};

/// One held unit of a concurrency limit, given back when dropped.
pub struct Permit {
    release: Release,
}

enum Release {
    /// An in-memory concurrency counter (under an IP key or a byte key) and
    /// the units this permit holds.
    Ip {
        counter: Arc<Counter<IpKey>>,
        cost: u64,
    },
    Bytes {
        counter: Arc<Counter<ByteKey>>,
        cost: u64,
    },
    Custom(Option<Box<dyn FnOnce() + Send + Sync>>),
}

impl Permit {
    pub(crate) fn ip_counter(counter: Arc<Counter<IpKey>>, cost: u64) -> Self {
        Self {
            release: Release::Ip { counter, cost },
        }
    }

    pub(crate) fn bytes_counter(counter: Arc<Counter<ByteKey>>, cost: u64) -> Self {
        Self {
            release: Release::Bytes { counter, cost },
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
            Release::Ip { counter, cost } => counter.release(*cost),
            Release::Bytes { counter, cost } => counter.release(*cost),
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
/// allocates nothing for it, and a request under none drops nothing.
#[derive(Debug, Default)]
pub struct Permits {
    /// Dropped by hand (see `Drop`), so that dropping no permit is one
    /// comparison, inlined, not a call into the whole drop code.
    held: ManuallyDrop<Held>,
}

impl Drop for Permits {
    #[inline]
    fn drop(&mut self) {
        if !matches!(*self.held, Held::None) {
            release(std::mem::take(&mut *self.held));
        }
    }
}

/// Drops held permits, out of the way of the common case.
#[cold]
#[inline(never)]
fn release(held: Held) {
    // An explicit match rather than `drop(held)`: with the drop glue of
    // `Held` spelled out, the compiler keeps it here, out of line, instead
    // of inlining it back into the allowed path (9 instructions there).
    match held {
        Held::None => {}
        Held::One(permit) => drop(permit),
        Held::Many(all) => drop(all),
    }
}

#[derive(Debug, Default)]
enum Held {
    #[default]
    None,
    One(Permit),
    Many(Vec<Permit>),
}

impl Permits {
    /// No permit.
    pub fn none() -> Self {
        Self {
            held: ManuallyDrop::new(Held::None),
        }
    }

    /// Adds a permit.
    pub fn push(&mut self, permit: Permit) {
        match &mut *self.held {
            Held::None => *self.held = Held::One(permit),
            Held::Many(all) => all.push(permit),
            Held::One(_) => {
                if let Held::One(first) = std::mem::take(&mut *self.held) {
                    *self.held = Held::Many(vec![first, permit]);
                }
            }
        }
    }

    /// How many permits are held.
    pub fn len(&self) -> usize {
        match &*self.held {
            Held::None => 0,
            Held::One(_) => 1,
            Held::Many(all) => all.len(),
        }
    }

    /// Whether no permit is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases every permit now.
    pub fn release(&mut self) {
        *self.held = Held::None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn holds_any_number_and_releases_each_once() {
        let released = Arc::new(AtomicUsize::new(0));
        let permit = || {
            let released = Arc::clone(&released);
            Permit::from_fn(move || {
                released.fetch_add(1, Ordering::SeqCst);
            })
        };
        let mut permits = Permits::none();
        assert!(permits.is_empty());
        for held in 1..=3 {
            permits.push(permit());
            assert_eq!(permits.len(), held);
        }
        assert_eq!(released.load(Ordering::SeqCst), 0);
        permits.release();
        assert_eq!(released.load(Ordering::SeqCst), 3);
        assert!(permits.is_empty());

        permits.push(permit());
        drop(permits);
        assert_eq!(released.load(Ordering::SeqCst), 4);
    }
}
