use http::StatusCode;

/// Why no key could be read from a request.
///
/// The layer answers each with a response and never counts the request;
/// [`KeyError::status`] gives the default status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The request carries no key for this extractor (no header, no peer address).
    #[error("no {what} in the request")]
    Missing {
        /// What was looked for, such as `header x-api-key`.
        what: &'static str,
        /// The status code to answer with.
        status: StatusCode,
    },
    /// A key is present but unusable: not valid text, empty, or malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was read.
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The key is longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN) bytes.
    #[error("{what} is {len} bytes, longer than the {max} allowed")]
    TooLong {
        /// What was read.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum accepted.
        max: usize,
    },
    /// The key is well formed but not known (for example an API key no plan lists).
    #[error("unknown {what}")]
    Unknown {
        /// What was not recognised.
        what: &'static str,
    },
}

impl KeyError {
    /// The status code the layer answers with by default:
    /// 401 for missing or unknown credentials, 400 for malformed or
    /// oversized keys, 500 when the server gave no peer address.
    pub fn status(&self) -> StatusCode {
        match self {
            KeyError::Missing { status, .. } => *status,
            KeyError::Malformed { .. } | KeyError::TooLong { .. } => StatusCode::BAD_REQUEST,
            KeyError::Unknown { .. } => StatusCode::UNAUTHORIZED,
        }
    }
}
