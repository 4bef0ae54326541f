//! Requests no well-behaved HTTP client sends (bytes in slow pieces, a body cut off, bytes that
//! are not HTTP), written on a plain socket. Each uses its own connection and asks the server
//! to close it, so an answer is simply everything read until the end.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::REQUEST_TIMEOUT;

/// The head of an inference POST of `body_len` bytes.
pub fn post_head(authority: &str, path: &str, body_len: usize, token: Option<&str>) -> Vec<u8> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
Content-Length: {body_len}\r\nConnection: close\r\n{auth}\r\n"
    )
    .into_bytes()
}

/// An answer read off a socket.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

pub fn connect(authority: &str) -> Result<TcpStream> {
    let stream =
        TcpStream::connect(authority).with_context(|| format!("connecting to {authority}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Connects, writes `pieces` with `pause` between them and reads the answer.
pub fn exchange(authority: &str, pieces: &[&[u8]], pause: Duration) -> Result<Answer> {
    exchange_on(connect(authority)?, pieces, pause)?
        .context("the server closed the connection without an answer")
}

/// Writes `pieces` with `pause` between them and reads the answer; `None` when the server
/// hung up without one. A server may answer and close before it has read everything (an
/// oversized body): what it said still counts.
pub fn exchange_on(
    mut stream: TcpStream,
    pieces: &[&[u8]],
    pause: Duration,
) -> Result<Option<Answer>> {
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        if let Err(e) = stream.write_all(piece) {
            if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                break;
            }
            return Err(e).context("sending the request");
        }
    }
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        // A reset ends the exchange; it does not undo an answer that arrived before it.
        if e.kind() != ErrorKind::ConnectionReset {
            return Err(e).context("reading the answer");
        }
    }
    if answer.is_empty() {
        return Ok(None);
    }
    parse(&answer).map(Some)
}

/// Status and body of an HTTP/1.1 answer (no chunked bodies: the server sends lengths).
pub fn parse(answer: &[u8]) -> Result<Answer> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!(
            "no HTTP answer, got {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(120)])
        );
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {:?}", head.lines().next().unwrap_or("")))?;
    Ok(Answer {
        status,
        body: answer[end + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_body() {
        let a = parse(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!(a.status, 413);
        assert_eq!(a.body, b"{}");
        assert!(parse(b"").is_err());
        assert!(parse(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn head_carries_length_token_and_close() {
        let head = String::from_utf8(post_head("h:1", "/p", 12, Some("t"))).unwrap();
        assert!(
            head.starts_with("POST /p HTTP/1.1\r\nHost: h:1\r\n"),
            "{head}"
        );
        assert!(head.contains("Content-Length: 12\r\n"));
        assert!(head.contains("Authorization: Bearer t\r\n"));
        assert!(head.contains("Connection: close\r\n") && head.ends_with("\r\n\r\n"));
    }
}
