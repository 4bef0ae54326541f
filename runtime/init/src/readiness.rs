//! Asking the server whether it is ready: `GET /v2/health/ready` over loopback.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

const READY_PATH: &str = "/v2/health/ready";

/// Where to probe a server that listens on `listen`: a wildcard address means loopback.
pub fn probe_target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The status code of an HTTP response (`HTTP/1.1 200 OK` -> 200).
pub fn parse_status(response: &[u8]) -> Option<u16> {
    let line = response.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

/// One HTTP/1.0 request; ready means a 200 answer.
pub fn is_ready(target: SocketAddr) -> bool {
    let timeout = Duration::from_millis(800);
    let Ok(mut stream) = TcpStream::connect_timeout(&target, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET {READY_PATH} HTTP/1.0\r\nHost: {target}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    parse_status(&head[..len]) == Some(200)
}

/// Milliseconds since the kernel started (CLOCK_BOOTTIME counts from kernel start).
pub fn ms_since_boot() -> u128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| Duration::from(t).as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn wildcard_listen_is_probed_on_loopback() {
        assert_eq!(
            probe_target("0.0.0.0:8000".parse().unwrap()),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(
            probe_target("[::]:9000".parse().unwrap()),
            "[::1]:9000".parse().unwrap()
        );
        assert_eq!(
            probe_target("10.0.2.15:8000".parse().unwrap()),
            "10.0.2.15:8000".parse().unwrap()
        );
    }

    #[test]
    fn reads_status_codes() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }

    /// Serves one connection with `answer` and returns the address.
    fn one_shot_server(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 256];
            let n = stream.read(&mut request).unwrap();
            assert!(request[..n].starts_with(b"GET /v2/health/ready HTTP/1.0\r\n"));
            stream.write_all(answer).unwrap();
        });
        addr
    }

    #[test]
    fn a_200_answer_is_ready_and_503_is_not() {
        assert!(is_ready(one_shot_server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        )));
        assert!(!is_ready(one_shot_server(
            b"HTTP/1.1 503 Service Unavailable\r\n\r\n"
        )));
    }

    #[test]
    fn nothing_listening_is_not_ready() {
        let unused = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!is_ready(unused));
    }
}
