//! Split concatenated gzip members (the .apk / APKINDEX layout: signature, control, data),
//! keeping each member's compressed byte range: signatures and checksums cover those bytes.

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
#[error("gzip stream {index} (at byte {offset}) is corrupt")]
pub struct GzError {
    pub index: usize,
    pub offset: usize,
    #[source]
    pub source: std::io::Error,
}

/// Decode every gzip member of `bytes`, one at a time (flate2's bufread decoder stops exactly
/// at the end of a member, so what it leaves unread is where the next one starts).
pub fn split_members(bytes: &[u8]) -> Result<Vec<GzMember>, GzError> {
    let mut members = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let mut rest = &bytes[offset..];
        let mut data = Vec::new();
        let mut decoder = GzDecoder::new(&mut rest);
        decoder.read_to_end(&mut data).map_err(|source| GzError {
            index: members.len() + 1,
            offset,
            source,
        })?;
        drop(decoder);
        let end = bytes.len() - rest.len();
        if end == offset {
            return Err(GzError {
                index: members.len() + 1,
                offset,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "empty member"),
            });
        }
        members.push(GzMember {
            compressed: offset..end,
            data,
        });
        offset = end;
    }
    Ok(members)
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
        let members = split_members(&joined).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].compressed, 0..a.len());
        assert_eq!(members[0].data, b"first");
        assert_eq!(members[1].compressed, a.len()..joined.len());
        assert_eq!(members[1].data.len(), 100_000);
    }

    #[test]
    fn corrupt_member_is_an_error() {
        let mut joined = [gz(b"first"), gz(b"second")].concat();
        let n = joined.len();
        joined[n - 3] ^= 0xff; // inside the second member's length/CRC trailer
        let err = split_members(&joined).unwrap_err();
        assert_eq!(err.index, 2, "{err}");
    }
}
