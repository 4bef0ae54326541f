//! Concatenated gzip members (the .apk / APKINDEX layout: signature, control, data), read one
//! at a time so the caller can verify a member's compressed bytes before unpacking it, each
//! with a cap on what it may unpack to: a small hostile file can otherwise claim gigabytes.

use std::io::Read;
use std::ops::Range;

use flate2::bufread::GzDecoder;

/// One gzip member: where it sits in the file and what it decompresses to.
#[derive(Debug)]
pub struct GzMember {
    pub compressed: Range<usize>,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum GzError {
    #[error("gzip stream {index} (at byte {offset}) is corrupt")]
    Corrupt {
        index: usize,
        offset: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("gzip stream {index} (at byte {offset}) unpacks to more than {limit}, the most edgeimg accepts there; the file is broken or hostile (a decompression bomb)")]
    TooLarge {
        index: usize,
        offset: usize,
        limit: bytesize::ByteSize,
    },
}

/// The members of one file, in order.
pub struct Members<'a> {
    bytes: &'a [u8],
    offset: usize,
    index: usize,
}

impl<'a> Members<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Members {
            bytes,
            offset: 0,
            index: 0,
        }
    }

    /// Everything from the next member on: what a signature or checksum over "the rest of
    /// the file" covers.
    pub fn rest(&self) -> Range<usize> {
        self.offset..self.bytes.len()
    }

    pub fn is_done(&self) -> bool {
        self.offset == self.bytes.len()
    }

    /// Decompress the next member (None at the end of the file), refusing one that unpacks to
    /// more than `limit` bytes. flate2's bufread decoder stops exactly at the end of a member,
    /// so what it leaves unread is where the next one starts.
    pub fn next_member(&mut self, limit: u64) -> Result<Option<GzMember>, GzError> {
        if self.is_done() {
            return Ok(None);
        }
        self.index += 1;
        let (index, offset) = (self.index, self.offset);
        let corrupt = |source| GzError::Corrupt {
            index,
            offset,
            source,
        };
        let mut rest = &self.bytes[offset..];
        let mut data = Vec::new();
        let mut decoder = GzDecoder::new(&mut rest).take(limit.saturating_add(1));
        decoder.read_to_end(&mut data).map_err(corrupt)?;
        if data.len() as u64 > limit {
            return Err(GzError::TooLarge {
                index,
                offset,
                limit: bytesize::ByteSize::b(limit),
            });
        }
        drop(decoder);
        let end = self.bytes.len() - rest.len();
        if end == offset {
            let empty = std::io::Error::new(std::io::ErrorKind::InvalidData, "empty member");
            return Err(corrupt(empty));
        }
        self.offset = end;
        Ok(Some(GzMember {
            compressed: offset..end,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn finds_member_boundaries() {
        let (a, b) = (gz(b"first"), gz(&[7u8; 100_000]));
        let joined = [a.clone(), b.clone()].concat();
        let mut members = Members::new(&joined);
        let first = members.next_member(5).unwrap().unwrap();
        assert_eq!(first.compressed, 0..a.len());
        assert_eq!(first.data, b"first");
        assert_eq!(members.rest(), a.len()..joined.len());
        let second = members.next_member(1 << 20).unwrap().unwrap();
        assert_eq!(second.compressed, a.len()..joined.len());
        assert_eq!(second.data.len(), 100_000);
        assert!(members.is_done());
        assert!(members.next_member(1).unwrap().is_none());
    }

    #[test]
    fn corrupt_member_is_an_error() {
        let mut joined = [gz(b"first"), gz(b"second")].concat();
        let n = joined.len();
        joined[n - 3] ^= 0xff; // inside the second member's length/CRC trailer
        let mut members = Members::new(&joined);
        members.next_member(100).unwrap();
        let err = members.next_member(100).unwrap_err();
        assert!(matches!(err, GzError::Corrupt { index: 2, .. }), "{err}");
    }

    #[test]
    fn a_member_larger_than_its_limit_is_refused_without_unpacking_it_all() {
        let bomb = gz(&vec![0u8; 10 << 20]);
        let err = Members::new(&bomb).next_member(1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gzip stream 1 (at byte 0) unpacks to more than 1.0 MiB, the most edgeimg accepts there; the file is broken or hostile (a decompression bomb)"
        );
    }
}
