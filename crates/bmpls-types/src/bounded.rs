//! Length-bounded containers whose decoding checks the bound before reading the elements, so a
//! hostile length prefix cannot make the decoder allocate or loop beyond the limit.

use borsh::io::{Error, ErrorKind, Read, Result, Write};
use borsh::{BorshDeserialize, BorshSerialize};

/// A `Vec<T>` of at most `N` elements, encoded like a borsh `Vec` (u32 length, then items).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

/// The length was over the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{len} elements where at most {max} are allowed")]
pub struct TooLong {
    /// Length given.
    pub len: usize,
    /// The bound.
    pub max: usize,
}

impl<T, const N: usize> BoundedVec<T, N> {
    /// Wraps `items` if there are at most `N`.
    pub fn new(items: Vec<T>) -> std::result::Result<Self, TooLong> {
        if items.len() > N {
            return Err(TooLong {
                len: items.len(),
                max: N,
            });
        }
        Ok(Self(items))
    }

    /// An empty list.
    pub fn empty() -> Self {
        Self(Vec::new())
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The elements, owned.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T, const N: usize> std::ops::Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: BorshSerialize, const N: usize> BorshSerialize for BoundedVec<T, N> {
    fn serialize<W: Write>(&self, writer: &mut W) -> Result<()> {
        self.0.serialize(writer)
    }
}

impl<T: BorshDeserialize, const N: usize> BorshDeserialize for BoundedVec<T, N> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> Result<Self> {
        let len32 = u32::deserialize_reader(reader)?;
        let len = len32 as usize;
        if len > N {
            return Err(Error::new(ErrorKind::InvalidData, "length over bound"));
        }
        // Bytes (ciphertexts, the sealed fix) are read in one piece, as borsh reads a
        // `Vec<u8>`, not one `read` call per byte: that was a fifth of a validator's work
        // answering a query. `vec_from_reader` is borsh's own hook for this (hidden from its
        // docs but public); the bound is checked above, so it allocates at most `N` items.
        if let Some(items) = T::vec_from_reader(len32, reader)? {
            return Ok(Self(items));
        }
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(T::deserialize_reader(reader)?);
        }
        Ok(Self(items))
    }
}

/// UTF-8 text of at most `N` bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedString<const N: usize>(String);

impl<const N: usize> BoundedString<N> {
    /// Wraps `text` if it has at most `N` bytes.
    pub fn new(text: impl Into<String>) -> std::result::Result<Self, TooLong> {
        let text = text.into();
        if text.len() > N {
            return Err(TooLong {
                len: text.len(),
                max: N,
            });
        }
        Ok(Self(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> BorshSerialize for BoundedString<N> {
    fn serialize<W: Write>(&self, writer: &mut W) -> Result<()> {
        self.0.serialize(writer)
    }
}

impl<const N: usize> BorshDeserialize for BoundedString<N> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> Result<Self> {
        let bytes = BoundedVec::<u8, N>::deserialize_reader(reader)?;
        String::from_utf8(bytes.into_inner())
            .map(Self)
            .map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(len: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn bytes_up_to_the_bound_decode_in_one_piece_and_past_it_are_refused() {
        let body: Vec<u8> = (0..=255).collect();
        let got =
            BoundedVec::<u8, 256>::try_from_slice(&encoded(256, &body)).expect("at the bound");
        assert_eq!(got.as_slice(), &body[..]);
        let empty = BoundedVec::<u8, 256>::try_from_slice(&encoded(0, &[])).expect("empty");
        assert!(empty.is_empty());
        assert!(BoundedVec::<u8, 255>::try_from_slice(&encoded(256, &body)).is_err());
        // A length beyond the bytes that follow is refused, not padded.
        assert!(BoundedVec::<u8, 512>::try_from_slice(&encoded(257, &body)).is_err());
        // Trailing bytes after the vector are refused by the whole-slice decode.
        assert!(BoundedVec::<u8, 256>::try_from_slice(&encoded(255, &body)).is_err());
    }

    #[test]
    fn other_items_decode_one_by_one_within_the_bound() {
        let items = BoundedVec::<u16, 3>::new(vec![1, 2, 0xffff]).expect("fits");
        let bytes = borsh::to_vec(&items).expect("encodes");
        assert_eq!(
            BoundedVec::<u16, 3>::try_from_slice(&bytes).expect("decodes"),
            items
        );
        assert!(BoundedVec::<u16, 2>::try_from_slice(&bytes).is_err());
    }
}
