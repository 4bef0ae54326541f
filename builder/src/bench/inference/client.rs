//! The benchmark's HTTP/1.1 client: one kept-alive connection, the whole request written at
//! once, the answer read to its last byte. Hand-written on a socket because ureq spends 45-90 us
//! of its own per request (measured against this client on the same server, cls model), time
//! the benchmark would count as the server's HTTP overhead.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long one request may take, model run included.
const TIMEOUT: Duration = Duration::from_secs(300);
/// The most header bytes an answer (or, to the floor server, a request) may have.
pub(super) const MAX_HEAD: usize = 64 << 10;
/// The most body bytes an answer may have (a det output map is 1.6 MB).
const MAX_BODY: usize = 256 << 20;

/// How the client waits for the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Sleeps in the kernel until bytes come: right when several clients share the CPUs with
    /// the server, or with QEMU.
    Block,
    /// Polls the socket on a busy CPU. A client that slept through a model's run pays for its
    /// own wake-up, which on a virtual machine is the host's business: waking a vCPU that
    /// halted for 1.7 ms took 180 us on this project's 2-core host against 25 us when it polled
    /// (same request, same server). That is not the server's overhead, so the one-at-a-time
    /// latency client polls.
    Poll,
}

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
    wait: Wait,
}

impl Connection {
    /// Connects to `url` (`http://host:port/path`) to POST `body` there with `headers`.
    pub fn open(
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
        wait: Wait,
    ) -> Result<Connection> {
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
        stream.set_nonblocking(wait == Wait::Poll)?;
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
            wait,
        })
    }

    /// Sends the request and reads the whole answer: its status and headers, and its body.
    pub fn send(&mut self) -> Result<(Answer, &[u8])> {
        let deadline = Instant::now() + TIMEOUT;
        let (stream, read, wait) = (&mut self.stream, &mut self.read, self.wait);
        let mut sent = 0;
        while sent < self.request.len() {
            sent += retry(wait, deadline, || stream.write(&self.request[sent..]))
                .context("sending the request")?;
        }
        read.clear();
        let mut chunk = [0u8; 16 << 10];
        let (head_len, answer, body_len) = loop {
            let n =
                retry(wait, deadline, || stream.read(&mut chunk)).context("reading the answer")?;
            if n == 0 {
                bail!("the server closed the connection before answering in full");
            }
            read.extend_from_slice(&chunk[..n]);
            if let Some(parsed) = parse_head(read)? {
                break parsed;
            }
            if read.len() > MAX_HEAD {
                bail!("the answer's head is longer than {MAX_HEAD} bytes");
            }
        };
        let end = head_len + body_len;
        let mut have = read.len();
        if have > end {
            bail!("the server sent bytes past its answer");
        }
        read.resize(end, 0);
        while have < end {
            match retry(wait, deadline, || stream.read(&mut read[have..]))
                .context("reading the answer's body")?
            {
                0 => bail!("the server closed the connection in the middle of its answer"),
                n => have += n,
            }
        }
        Ok((answer, &self.read[head_len..end]))
    }
}

/// `op` on the socket, again if a signal interrupted it or, on a polling connection, while it
/// would block.
fn retry<T>(wait: Wait, deadline: Instant, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && wait == Wait::Poll => {
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("nothing moved on the socket in {TIMEOUT:?}"),
                    ));
                }
                std::hint::spin_loop();
            }
            other => return other,
        }
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
