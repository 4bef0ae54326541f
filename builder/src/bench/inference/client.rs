//! The benchmark's HTTP/1.1 client: one kept-alive connection, the whole request written at
//! once, the answer read to its last byte. Hand-written on a socket because ureq spends 45-90 us
//! of its own per request (measured against this client on the same server, cls model), time
//! the benchmark would count as the server's HTTP overhead.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long one request may take, model run included.
const TIMEOUT: Duration = Duration::from_secs(300);
/// The most header bytes an answer (or, to the floor server, a request) may have.
pub(super) const MAX_HEAD: usize = 64 << 10;
/// The most body bytes an answer may have (a det output map is 1.6 MB).
const MAX_BODY: usize = 256 << 20;

/// An answer's status and `server-timing` header.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub server_timing: Option<String>,
}

/// One connection to a server, sending the same POST over and over.
pub struct Connection {
    stream: TcpStream,
    /// The request, head and body, as it goes on the wire.
    request: Vec<u8>,
    /// Bytes read past the answer being parsed (none from a server that answers in turn).
    read: Vec<u8>,
}

impl Connection {
    /// Connects to `url` (`http://host:port/path`) to POST `body` there with `headers`.
    pub fn open(url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<Connection> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url} is not an http:// URL"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let stream =
            TcpStream::connect(authority).with_context(|| format!("connecting to {authority}"))?;
        // The request goes out in one write; the answer must not wait on delayed ACKs either.
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        Ok(Connection {
            stream,
            request,
            read: Vec::with_capacity(MAX_HEAD),
        })
    }

    /// Sends the request and reads the whole answer: its status and headers, and its body.
    pub fn send(&mut self) -> Result<(Answer, &[u8])> {
        self.stream
            .write_all(&self.request)
            .context("sending the request")?;
        self.read.clear();
        let mut chunk = [0u8; 16 << 10];
        let (head_len, answer, body_len) = loop {
            let n = self.stream.read(&mut chunk).context("reading the answer")?;
            if n == 0 {
                bail!("the server closed the connection before answering in full");
            }
            self.read.extend_from_slice(&chunk[..n]);
            if let Some(parsed) = parse_head(&self.read)? {
                break parsed;
            }
            if self.read.len() > MAX_HEAD {
                bail!("the answer's head is longer than {MAX_HEAD} bytes");
            }
        };
        let end = head_len + body_len;
        if self.read.len() < end {
            let have = self.read.len();
            self.read.resize(end, 0);
            self.stream
                .read_exact(&mut self.read[have..])
                .context("reading the answer's body")?;
        }
        if self.read.len() > end {
            bail!("the server sent bytes past its answer");
        }
        Ok((answer, &self.read[head_len..end]))
    }
}

/// The answer whose head `bytes` begin with, the head's length and the body's, once the head
/// has arrived whole.
fn parse_head(bytes: &[u8]) -> Result<Option<(usize, Answer, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response
        .parse(bytes)
        .context("the answer is not HTTP/1.1")?
    {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let body_len: usize = header("content-length")
        .context("the answer has no Content-Length (this client reads no chunked bodies)")?
        .trim()
        .parse()
        .context("the answer's Content-Length is not a number")?;
    if body_len > MAX_BODY {
        bail!("the answer's body of {body_len} bytes is over {MAX_BODY}");
    }
    let answer = Answer {
        status: response.code.unwrap_or(0),
        server_timing: header("server-timing"),
    };
    Ok(Some((head_len, answer, body_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head_once_it_is_whole() {
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nserver-timing: infer;dur=1.5\r\n\r\nabc";
        assert!(parse_head(&answer[..20]).unwrap().is_none());
        let (head_len, parsed, body_len) = parse_head(answer).unwrap().unwrap();
        assert_eq!((parsed.status, body_len), (200, 3));
        assert_eq!(&answer[head_len..], b"abc");
        assert_eq!(parsed.server_timing.as_deref(), Some("infer;dur=1.5"));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked).is_err());
    }
}
