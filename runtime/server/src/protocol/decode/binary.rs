//! The binary tensor data that follows the JSON: each claimed input's bytes, in the order the
//! JSON listed them, converted into its typed buffer straight from the body's chunks.

use super::input::{Claim, Claims};
use super::{invalid, DecodeError};
use crate::protocol::Source;
use crate::strings::{Strings, LENGTH_PREFIX};
use crate::tensor::{Tensor, TensorData};

/// Reads every claim's bytes from `source` into `decoded`, then checks nothing follows.
/// `available` is the most the rest of the body can hold.
pub async fn read_claims<S: Source + Send>(
    source: &mut S,
    claims: &Claims,
    decoded: &mut [Option<Tensor>],
    mut available: usize,
) -> Result<(), DecodeError> {
    for claim in &claims.0 {
        if claim.bytes > available {
            return Err(short(&claim.name, claim.bytes, available));
        }
        let mut sink = Sink::new(claim);
        let mut left = claim.bytes;
        while left > 0 {
            let chunk = source.read_chunk(left).await.map_err(DecodeError::Body)?;
            if chunk.is_empty() {
                return Err(short(&claim.name, claim.bytes, claim.bytes - left));
            }
            left -= chunk.len();
            sink.feed(chunk, claim)?;
        }
        available -= claim.bytes;
        decoded[claim.index] = Some(Tensor {
            name: claim.name.clone(),
            shape: claim.shape.clone(),
            data: sink.finish(claim)?,
        });
    }
    let mut extra = 0usize;
    loop {
        let n = source
            .read_chunk(usize::MAX)
            .await
            .map_err(DecodeError::Body)?
            .len();
        if n == 0 {
            break;
        }
        extra += n;
    }
    if extra > 0 {
        return Err(invalid(format!(
            "{extra} bytes of binary data follow the JSON header but no input claims them \
             (set parameters.binary_data_size on each binary input)"
        )));
    }
    Ok(())
}

fn short(name: &str, claimed: usize, remain: usize) -> DecodeError {
    invalid(format!(
        "input '{name}' claims {claimed} bytes of binary data but only {remain} remain in the body"
    ))
}

/// One claim's bytes on their way into its buffer; they arrive in reads of any size.
enum Sink {
    /// Fixed-size elements; the bytes of one split across two reads wait in `partial`.
    Fixed {
        data: TensorData,
        size: usize,
        partial: Vec<u8>,
    },
    /// BYTES: each element a 4-byte little-endian length, then that many bytes.
    Strings {
        data: Strings,
        /// The length being read, and how much of it has come.
        prefix: [u8; LENGTH_PREFIX],
        prefix_read: usize,
        /// The element being read, once its length is known.
        element: Option<(usize, Vec<u8>)>,
        /// The claim's bytes read so far.
        consumed: usize,
    },
}

impl Sink {
    fn new(claim: &Claim) -> Sink {
        match claim.datatype.byte_size() {
            Some(size) => Sink::Fixed {
                data: TensorData::with_capacity(claim.datatype, claim.bytes / size),
                size,
                partial: Vec::with_capacity(size),
            },
            // `count` is at most a quarter of the claim's bytes, which the body holds.
            None => Sink::Strings {
                data: Strings::with_capacity(claim.count),
                prefix: [0; LENGTH_PREFIX],
                prefix_read: 0,
                element: None,
                consumed: 0,
            },
        }
    }

    fn feed(&mut self, mut bytes: &[u8], claim: &Claim) -> Result<(), DecodeError> {
        match self {
            Sink::Fixed {
                data,
                size,
                partial,
            } => {
                let size = *size;
                if !partial.is_empty() {
                    let take = (size - partial.len()).min(bytes.len());
                    partial.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if partial.len() == size {
                        data.extend_le(partial);
                        partial.clear();
                    }
                }
                let whole = bytes.len() - bytes.len() % size;
                data.extend_le(&bytes[..whole]);
                partial.extend_from_slice(&bytes[whole..]);
            }
            Sink::Strings {
                data,
                prefix,
                prefix_read,
                element,
                consumed,
            } => {
                while !bytes.is_empty() {
                    let index = data.len();
                    let take = match element {
                        None => {
                            let take = (LENGTH_PREFIX - *prefix_read).min(bytes.len());
                            prefix[*prefix_read..*prefix_read + take]
                                .copy_from_slice(&bytes[..take]);
                            *prefix_read += take;
                            if *prefix_read == LENGTH_PREFIX {
                                *prefix_read = 0;
                                if index == claim.count {
                                    return Err(invalid(format!(
                                        "input '{}' has more than {} BYTES elements in its binary data, as many as shape {:?} needs",
                                        claim.name, claim.count, claim.shape
                                    )));
                                }
                                let len = u32::from_le_bytes(*prefix) as usize;
                                let remain = claim.bytes - (*consumed + take);
                                if len > remain {
                                    return Err(invalid(format!(
                                        "input '{}': BYTES element {index} has a length of {len} bytes, but only {remain} remain of its binary_data_size {} (each element is a 4-byte little-endian length, then that many bytes)",
                                        claim.name, claim.bytes
                                    )));
                                }
                                // At most what the body still holds.
                                *element = Some((len, Vec::with_capacity(len)));
                            }
                            take
                        }
                        Some((len, text)) => {
                            let take = (*len - text.len()).min(bytes.len());
                            text.extend_from_slice(&bytes[..take]);
                            take
                        }
                    };
                    bytes = &bytes[take..];
                    *consumed += take;
                    if let Some((len, text)) = element {
                        if text.len() == *len {
                            data.push_bytes(text).map_err(|why| {
                                invalid(format!(
                                    "input '{}': BYTES element {index} {}",
                                    claim.name,
                                    why.reason()
                                ))
                            })?;
                            *element = None;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, claim: &Claim) -> Result<TensorData, DecodeError> {
        match self {
            Sink::Fixed { data, .. } => Ok(data),
            Sink::Strings {
                data, prefix_read, ..
            } => {
                // Lengths are checked against the claim as they are read, so only a length
                // itself can be cut short.
                if prefix_read > 0 {
                    return Err(invalid(format!(
                        "input '{}': its binary data ends inside the 4-byte length of BYTES element {}",
                        claim.name,
                        data.len()
                    )));
                }
                if data.len() != claim.count {
                    return Err(invalid(format!(
                        "input '{}' has {} BYTES elements in its binary data, shape {:?} needs {}",
                        claim.name,
                        data.len(),
                        claim.shape,
                        claim.count
                    )));
                }
                Ok(TensorData::Bytes(data))
            }
        }
    }
}
