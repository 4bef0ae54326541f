//! Requests no well-behaved HTTP client sends (bytes in slow pieces, a body cut off, bytes that
//! are not HTTP), written on a plain socket. Each uses its own connection and asks the server
//! to close it, so an answer is simply everything read until the end.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

/// How often a trickling client looks whether the server has answered or hung up.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// How a trickled request ended.
#[derive(Debug)]
pub enum Trickled {
    Answered(Answer),
    /// The server hung up without an answer.
    Closed,
    /// The server still held the connection at the deadline.
    Held,
    /// Reading the answer failed, or it was not HTTP.
    Failed(String),
}

impl Trickled {
    /// `"408"`, `"closed"`, `"held to the end"` or what failed.
    pub fn label(&self) -> String {
        match self {
            Trickled::Answered(a) => a.status.to_string(),
            Trickled::Closed => "closed".into(),
            Trickled::Held => "held to the end".into(),
            Trickled::Failed(why) => why.clone(),
        }
    }
}

/// Writes `at_once`, then `trickled` one byte per `pause`, until the server answers or hangs
/// up, or `deadline`.
pub fn trickle(
    mut stream: TcpStream,
    at_once: &[u8],
    trickled: &[u8],
    pause: Duration,
    deadline: Instant,
) -> Trickled {
    if stream.write_all(at_once).is_ok() {
        for byte in trickled {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            match wait_quietly(&stream, pause, deadline) {
                Quiet::Waited => {}
                Quiet::Spoke => break,
                Quiet::Deadline => return Trickled::Held,
            }
        }
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        if answer.is_empty() && e.kind() != ErrorKind::ConnectionReset {
            return Trickled::Failed(format!("no answer: {e}"));
        }
    }
    if answer.is_empty() {
        return Trickled::Closed;
    }
    match parse(&answer) {
        Ok(a) => Trickled::Answered(a),
        Err(e) => Trickled::Failed(format!("{e:#}")),
    }
}

enum Quiet {
    Waited,
    Spoke,
    Deadline,
}

/// Sleeps `pause`, looking out for the server answering or hanging up, and for `deadline`.
fn wait_quietly(stream: &TcpStream, pause: Duration, deadline: Instant) -> Quiet {
    let until = Instant::now() + pause;
    loop {
        if server_spoke(stream) {
            return Quiet::Spoke;
        }
        let now = Instant::now();
        if now >= deadline {
            return Quiet::Deadline;
        }
        if now >= until {
            return Quiet::Waited;
        }
        std::thread::sleep(LOOK_EVERY.min(until - now));
    }
}

/// Whether the server sent anything or closed the connection, without waiting.
fn server_spoke(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let spoke = match stream.peek(&mut [0u8; 1]) {
        Ok(_) => true, // bytes, or 0 at the end of the stream
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    spoke
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
