//! A byte key as a table keeps it: a short key inside the map slot, a
//! longer one on the heap.
//!
//! Most byte keys are short (`ak_` and 16 hex digits is 19 bytes), and a
//! heap copy of a short key costs more than the key: the allocator's chunk
//! header and size-class rounding, and at a million keys one more cache
//! miss per lookup to compare it. A key of at most [`INLINE`] bytes lives in
//! the slot's own 24 bytes instead, which is no larger than the pointer and
//! length a heap copy keeps there.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// The longest key kept in the slot itself.
pub(crate) const INLINE: usize = 22;

/// A table's copy of a byte key. Hashed and compared as its bytes, so a
/// lookup by a borrowed `[u8]` finds it whichever way it is kept.
#[derive(Clone)]
pub(crate) enum ByteKey {
    /// At most [`INLINE`] bytes: `len` of `bytes` are the key.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer key.
    Heap(Box<[u8]>),
}

// As small as the `Box<[u8]>` it replaces: the inline form costs no slot room.
const _: () = assert!(std::mem::size_of::<ByteKey>() == 24);

impl ByteKey {
    /// Copies `key`: into the slot when it fits, to the heap otherwise.
    #[inline]
    pub(crate) fn new(key: &[u8]) -> Self {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..key.len()].copy_from_slice(key);
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(Box::from(key)),
        }
    }

    /// The key's bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            // `len <= INLINE` by construction; the `min` spares the bounds check.
            Self::Inline { len, bytes } => &bytes[..usize::from(*len).min(INLINE)],
            Self::Heap(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for ByteKey {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Must hash exactly as `[u8]` does: lookups hash the borrowed bytes.
impl Hash for ByteKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for ByteKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ByteKey {}

impl std::fmt::Debug for ByteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ByteKey")
            .field(&String::from_utf8_lossy(self.as_bytes()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        // A fixed seed: both sides of each comparison hash with the same one.
        let build = foldhash::fast::FixedState::with_seed(7);
        build.hash_one(value)
    }

    #[test]
    fn short_keys_are_kept_inline_and_long_ones_on_the_heap() {
        for len in [1, 19, INLINE] {
            let key = vec![b'k'; len];
            assert!(
                matches!(ByteKey::new(&key), ByteKey::Inline { .. }),
                "{len}"
            );
        }
        for len in [INLINE + 1, 255, 256, 512] {
            let key = vec![b'k'; len];
            assert!(matches!(ByteKey::new(&key), ByteKey::Heap(_)), "{len}");
        }
    }

    #[test]
    fn either_form_gives_back_its_bytes_and_hashes_as_them() {
        for len in [1, 2, 19, INLINE - 1, INLINE, INLINE + 1, 64, 512] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let key = ByteKey::new(&bytes);
            assert_eq!(key.as_bytes(), &bytes[..], "{len}");
            assert_eq!(hash_of(&key), hash_of(&bytes[..]), "{len}");
        }
    }

    #[test]
    fn keys_differing_only_in_length_or_trailing_zeros_differ() {
        // The inline form pads with zeros: the length must still tell them apart.
        let a = ByteKey::new(b"ab");
        let b = ByteKey::new(b"ab\0");
        assert_ne!(a, b);
        assert_ne!(hash_of(&a), hash_of(&b));
        assert_eq!(a, ByteKey::new(b"ab"));
    }

    #[test]
    fn a_map_finds_either_form_by_borrowed_bytes() {
        let mut map = HashMap::new();
        let keys: Vec<Vec<u8>> = (1..=40).map(|len| vec![b'x'; len]).collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(map.insert(ByteKey::new(key), i).is_none());
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(map.get(&key[..]), Some(&i), "len {}", key.len());
        }
        assert_eq!(map.get(&b"y"[..]), None);
    }

    proptest! {
        /// Two keys are equal, and hash alike, exactly when their bytes are.
        #[test]
        fn equality_and_hash_follow_the_bytes(
            a in vec(any::<u8>(), 1..48),
            b in vec(any::<u8>(), 1..48),
        ) {
            let (ka, kb) = (ByteKey::new(&a), ByteKey::new(&b));
            prop_assert_eq!(ka.as_bytes(), &a[..]);
            prop_assert_eq!(ka == kb, a == b);
            prop_assert_eq!(hash_of(&ka), hash_of(&a[..]));
            if a == b {
                prop_assert_eq!(hash_of(&ka), hash_of(&kb));
            }
        }
    }
}
