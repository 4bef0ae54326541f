//! The HTTP overhead's floor on this host: the same request, client and connection against a
//! server that does nothing but read the request whole, keep a CPU busy for the model's time,
//! and answer. What the real server's overhead has above it is the server's own; the floor itself
//! is the loopback and the wake-ups of a client that waited a model's time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::client::{Wait, MAX_HEAD};
use super::timing::{self, Endpoint};

/// The HTTP overhead p50, ms, of `request` against a server that takes `engine` per request,
/// the client waiting as `wait` says.
pub fn overhead_p50_ms(
    request: &[u8],
    json_len: usize,
    wait: Wait,
    engine: Duration,
    warmup: usize,
    runs: usize,
) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the floor server")?;
    let url = format!("http://{}/v2/models/floor/infer", listener.local_addr()?);
    let server = std::thread::spawn(move || -> Result<()> {
        let (stream, _) = listener.accept()?;
        serve(stream, engine)
    });
    let endpoint = Endpoint {
        url,
        request,
        json_len,
        latency_wait: wait,
    };
    let latency = timing::latency(&endpoint, warmup, runs);
    // The client's connection closed with `latency`'s return: the server ends on that.
    server
        .join()
        .map_err(|_| anyhow::anyhow!("the floor server panicked"))?
        .context("the floor server")?;
    Ok(latency?.http_overhead_p50_ms)
}

/// Answers each request on `stream` once its body is in and `engine` has passed on a busy CPU
/// (a sleep would let this CPU idle, which a model run does not).
fn serve(mut stream: TcpStream, engine: Duration) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut read = Vec::with_capacity(MAX_HEAD);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        read.clear();
        let (head_len, body_len) = loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            read.extend_from_slice(&chunk[..n]);
            if let Some(parsed) = parse_request_head(&read)? {
                break parsed;
            }
            if read.len() > MAX_HEAD {
                bail!("a request head longer than {MAX_HEAD} bytes");
            }
        };
        let mut left = (head_len + body_len).saturating_sub(read.len());
        while left > 0 {
            let take = left.min(chunk.len());
            let n = stream.read(&mut chunk[..take])?;
            if n == 0 {
                bail!("the client left in the middle of a request");
            }
            left -= n;
        }
        let started = Instant::now();
        while started.elapsed() < engine {
            std::hint::spin_loop();
        }
        let took = started.elapsed().as_secs_f64() * 1e3;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nserver-timing: infer;dur={took:.3}\r\ncontent-length: 2\r\n\r\n{{}}"
        );
        stream.write_all(answer.as_bytes())?;
    }
}

/// The head's length and the body's, once the head has arrived whole.
fn parse_request_head(bytes: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes).context("not an HTTP/1.1 request")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let body_len = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .context("a request without a Content-Length")?;
    Ok(Some((head_len, body_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_measured_through_a_real_connection() {
        let json = br#"{"inputs":[]}"#;
        let mut request = json.to_vec();
        request.extend_from_slice(&[7u8; 200 << 10]);
        for wait in [Wait::Block, Wait::Poll] {
            let engine = Duration::from_millis(1);
            let floor = overhead_p50_ms(&request, json.len(), wait, engine, 2, 20).unwrap();
            // Above nothing, and far below the model's own millisecond on any host that runs
            // this.
            assert!(floor > 0.0 && floor < 50.0, "{wait:?}: floor {floor} ms");
        }
    }
}
