//! [`Priority`]: how important a request is, and how a request gets one.

use std::fmt;
use std::sync::Arc;

use crate::key::{KeyExtractor, RequestInfo};

/// How important a request is. Under overload lower priorities are shed
/// first, and capacity can be reserved for the higher ones
/// ([`LoadShedBuilder::reserve`](super::LoadShedBuilder::reserve)).
///
/// Ordered from `Low` to `Critical`; the default is `Normal`.
///
/// ```
/// use tollgate::shed::Priority;
///
/// assert!(Priority::Critical > Priority::High);
/// assert_eq!(Priority::default(), Priority::Normal);
/// assert_eq!(Priority::Low.as_str(), "low");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Shed first: anonymous or background traffic.
    Low,
    /// The priority of a request nothing else is said about.
    #[default]
    Normal,
    /// Shed after `Low` and `Normal`: paying customers.
    High,
    /// Shed last: health checks, admin and control traffic.
    Critical,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// How many priorities there are.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// The name used in answers and logs: `low`, `normal`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// The position in [`Priority::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Gives a request its priority.
pub(crate) type PriorityFn = Arc<dyn Fn(&RequestInfo<'_>) -> Priority + Send + Sync>;

/// A [`PriorityFn`] from the tier a key extractor names: `map` gets the tier
/// (`None` when the extractor names none or finds no key).
pub(crate) fn from_tier<E, M>(extractor: E, map: M) -> PriorityFn
where
    E: KeyExtractor,
    M: Fn(Option<&str>) -> Priority + Send + Sync + 'static,
{
    Arc::new(
        move |request: &RequestInfo<'_>| match extractor.extract(request) {
            Ok(identity) => map(identity.tier().map(|tier| tier.as_str())),
            Err(_) => map(None),
        },
    )
}
