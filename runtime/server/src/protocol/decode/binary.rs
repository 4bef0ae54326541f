//! The binary tensor data that follows the JSON: each claimed input's bytes, in the order the
//! JSON listed them, converted into its typed buffer a read at a time.

use super::input::Claims;
use super::{invalid, DecodeError};
use crate::protocol::Source;
use crate::tensor::{Tensor, TensorData};

/// Bytes read from the body at once.
const READ: usize = 16 << 10;

/// Reads every claim's bytes from `source` into `decoded`, then checks nothing follows.
/// `available` is the most the rest of the body can hold.
pub async fn read_claims<S: Source + Send>(
    source: &mut S,
    claims: &Claims,
    decoded: &mut [Option<Tensor>],
    mut available: usize,
) -> Result<(), DecodeError> {
    let mut buf = vec![0u8; READ];
    for claim in &claims.0 {
        if claim.bytes > available {
            return Err(short(&claim.name, claim.bytes, available));
        }
        let size = claim.datatype.byte_size();
        let mut data = TensorData::with_capacity(claim.datatype, claim.bytes / size);
        // Bytes of an element split across two reads wait here.
        let mut partial = Vec::with_capacity(size);
        let mut left = claim.bytes;
        while left > 0 {
            let want = left.min(READ);
            let n = source
                .read(&mut buf[..want])
                .await
                .map_err(DecodeError::Body)?;
            if n == 0 {
                return Err(short(&claim.name, claim.bytes, claim.bytes - left));
            }
            left -= n;
            let mut bytes = &buf[..n];
            if !partial.is_empty() {
                let take = (size - partial.len()).min(bytes.len());
                partial.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if partial.len() == size {
                    data.extend_le(&partial);
                    partial.clear();
                }
            }
            let whole = bytes.len() - bytes.len() % size;
            data.extend_le(&bytes[..whole]);
            partial.extend_from_slice(&bytes[whole..]);
        }
        available -= claim.bytes;
        decoded[claim.index] = Some(Tensor {
            name: claim.name.clone(),
            shape: claim.shape.clone(),
            data,
        });
    }
    let mut extra = 0usize;
    loop {
        let n = source.read(&mut buf).await.map_err(DecodeError::Body)?;
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
