//! A byte buffer for plaintext that is wiped when cleared or dropped, and whose growth never
//! leaves an unwiped copy behind in freed memory.

use zeroize::{Zeroize, Zeroizing};

pub(crate) struct WipedBuf(Zeroizing<Vec<u8>>);

impl WipedBuf {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// Makes room for `additional` more bytes. Growth copies into a new allocation and wipes
    /// the old one (a `Vec` reallocation would free it unwiped).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.0.len().saturating_add(additional);
        if needed > self.0.capacity() {
            let capacity = needed.max(self.0.capacity().saturating_mul(2));
            self.grow_to(capacity);
        }
    }

    fn grow_to(&mut self, capacity: usize) {
        let mut bigger = Zeroizing::new(Vec::with_capacity(capacity));
        bigger.extend_from_slice(&self.0);
        std::mem::swap(&mut self.0, &mut bigger);
    }

    /// Bytes the buffer can hold without growing.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// [`WipedBuf::reserve`], but growing to at most `limit` bytes of capacity (or exactly what
    /// is needed, if that is more): for a buffer whose largest size is known.
    pub(crate) fn reserve_within(&mut self, additional: usize, limit: usize) {
        let needed = self.0.len().saturating_add(additional);
        if needed > self.0.capacity() {
            let capacity = needed.max(self.0.capacity().saturating_mul(2).min(limit));
            self.grow_to(capacity);
        }
    }

    /// Sets the length to `len` zero bytes (previous content wiped).
    pub(crate) fn reset_zeroed(&mut self, len: usize) {
        self.wipe();
        self.reserve(len);
        self.0.resize(len, 0);
    }

    /// Wipes the content (and the spare capacity) and sets the length to zero.
    pub(crate) fn wipe(&mut self) {
        self.0.zeroize();
    }

    /// The underlying vector, for appending within the reserved capacity.
    pub(crate) fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_keeps_content() {
        let mut b = WipedBuf::with_capacity(2);
        b.vec().extend_from_slice(&[1, 2]);
        b.reserve(10);
        assert!(b.vec().capacity() >= 12);
        b.vec().extend_from_slice(&[3]);
        assert_eq!(b.as_slice(), &[1, 2, 3]);
        b.reserve_within(15, 20);
        assert_eq!(b.capacity(), 20, "doubling stops at the limit");
        b.reserve_within(30, 20);
        assert!(b.capacity() >= 33, "but what is needed is always there");
        assert_eq!(b.as_slice(), &[1, 2, 3]);
        b.reset_zeroed(4);
        assert_eq!(b.as_slice(), &[0, 0, 0, 0]);
        b.wipe();
        assert_eq!(b.len(), 0);
    }
}
