//! A request body as it arrives, within the limits: no more than `max_body_bytes`, and never
//! slower than `body_min_rate` once `body_timeout` of grace has passed, so a client cannot
//! hold the server by trickling. Reading it is the decoder's [`Source`].

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::limits::Limits;
use crate::protocol::Source;

/// Why the body could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    /// More bytes than `max_body_bytes` (413).
    TooLarge { limit: usize },
    /// Slower than the limits allow (408).
    TooSlow {
        received: u64,
        seconds: f64,
        min_rate: u64,
    },
    /// The connection broke or the framing was wrong (400).
    Broken(String),
}

impl ReadError {
    pub fn status(&self) -> StatusCode {
        match self {
            ReadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ReadError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            ReadError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge { limit } => write!(
                f,
                "request body is larger than max_body_bytes = {limit} (raise runtime.max_body in the recipe, or send binary tensor data)"
            ),
            ReadError::TooSlow {
                received,
                seconds,
                min_rate,
            } => write!(
                f,
                "request body too slow: {received} bytes in {seconds:.1} s, below the minimum of {min_rate} bytes/s after the grace period (runtime.body_min_rate, runtime.body_timeout_secs)"
            ),
            ReadError::Broken(why) => write!(f, "could not read the request body: {why}"),
        }
    }
}

/// The body of one request, read chunk by chunk under the limits.
pub struct BodyReader {
    body: Body,
    chunk: Bytes,
    /// The bytes the last `read_chunk` handed out.
    taken: Bytes,
    received: u64,
    started: Instant,
    limits: Limits,
    ended: bool,
}

impl BodyReader {
    /// Refuses a `Content-Length` over the limit before reading anything.
    pub fn new(
        body: Body,
        content_length: Option<u64>,
        limits: &Limits,
    ) -> Result<Self, ReadError> {
        if content_length.is_some_and(|n| n > limits.max_body_bytes as u64) {
            return Err(ReadError::TooLarge {
                limit: limits.max_body_bytes,
            });
        }
        Ok(BodyReader {
            body,
            chunk: Bytes::new(),
            taken: Bytes::new(),
            received: 0,
            started: Instant::now(),
            limits: limits.clone(),
            ended: false,
        })
    }
}

impl BodyReader {
    /// Waits, within the limits, until some bytes are at hand (`chunk`) or the body has ended.
    async fn fill(&mut self) -> Result<(), ReadError> {
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(());
            }
            // The next bytes must come before the body falls below the minimum rate.
            let deadline = self.started + self.limits.body_allowance(self.received);
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => {
                    return Err(ReadError::TooSlow {
                        received: self.received,
                        seconds: self.started.elapsed().as_secs_f64(),
                        min_rate: self.limits.body_min_rate,
                    })
                }
                Ok(None) => self.ended = true,
                Ok(Some(Err(e))) => return Err(ReadError::Broken(e.to_string())),
                Ok(Some(Ok(frame))) => {
                    // Trailers carry no request bytes.
                    if let Ok(data) = frame.into_data() {
                        self.received += data.len() as u64;
                        if self.received > self.limits.max_body_bytes as u64 {
                            return Err(ReadError::TooLarge {
                                limit: self.limits.max_body_bytes,
                            });
                        }
                        self.chunk = data;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Source for BodyReader {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.fill().await?;
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }

    async fn read_chunk(&mut self, max: usize) -> Result<&[u8], ReadError> {
        if max == 0 {
            return Ok(&[]);
        }
        self.fill().await?;
        let n = max.min(self.chunk.len());
        self.taken = self.chunk.split_to(n);
        Ok(&self.taken)
    }
}
