//! Where a request's bytes come from: the HTTP body as it arrives (`crate::body`), or a slice
//! (tests and fuzzing).

use std::future::Future;

use crate::body::ReadError;

/// Bytes read in order, with the body's limits enforced by the reader.
pub trait Source {
    /// Reads the next bytes into `buf`: how many, 0 at the end of the body.
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = Result<usize, ReadError>> + Send;
}

impl Source for &[u8] {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let n = buf.len().min(self.len());
        buf[..n].copy_from_slice(&self[..n]);
        *self = &self[n..];
        Ok(n)
    }
}

/// The first `left` bytes of a source: the JSON part of a body with binary tensor data.
pub(crate) struct Prefix<'s, S> {
    pub source: &'s mut S,
    pub left: usize,
}

impl<S: Source + Send> Source for Prefix<'_, S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let want = buf.len().min(self.left);
        let n = self.source.read(&mut buf[..want]).await?;
        self.left -= n;
        Ok(n)
    }
}
