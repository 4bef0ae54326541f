//! Where a request's bytes come from: the HTTP body as it arrives (`crate::body`), or a slice
//! (tests and fuzzing).

use std::future::Future;

use crate::body::ReadError;

/// Bytes read in order, with the body's limits enforced by the reader.
pub trait Source {
    /// Reads the next bytes into `buf`: how many, 0 at the end of the body.
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = Result<usize, ReadError>> + Send;

    /// The next bytes as they arrived, at most `max` of them, without copying them (binary
    /// tensor data goes from here straight into its typed buffer); empty at the end of the body.
    fn read_chunk(&mut self, max: usize) -> impl Future<Output = Result<&[u8], ReadError>> + Send;
}

impl Source for &[u8] {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let n = buf.len().min(self.len());
        buf[..n].copy_from_slice(&self[..n]);
        *self = &self[n..];
        Ok(n)
    }

    async fn read_chunk(&mut self, max: usize) -> Result<&[u8], ReadError> {
        let (chunk, rest) = self.split_at(max.min(self.len()));
        *self = rest;
        Ok(chunk)
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

    async fn read_chunk(&mut self, max: usize) -> Result<&[u8], ReadError> {
        let chunk = self.source.read_chunk(max.min(self.left)).await?;
        self.left -= chunk.len();
        Ok(chunk)
    }
}
