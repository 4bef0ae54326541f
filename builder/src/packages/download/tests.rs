//! Downloads from a local server that misbehaves on purpose: cuts a body off, stalls, never
//! answers, fails, or ignores `Range`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// What the server does with one connection.
#[derive(Clone, Copy)]
enum Act {
    /// The whole file (200), or the asked range (206).
    Serve,
    /// The whole file every time, whatever was asked.
    IgnoreRange,
    /// 200 with the full length, then this many bytes, then hang up.
    CutAfter(usize),
    /// 200 with the full length, this many bytes, then nothing for a long time.
    StallAfter(usize),
    /// Read the request and never answer.
    Silent,
    Status(u16),
}

/// Serves `body` at any path, each connection answered by the next act (the last repeats).
/// The `Range` header of every request, in order.
fn server(body: Vec<u8>, acts: Vec<Act>) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/v3.23/main/x86_64/pkg.apk",
        listener.local_addr().unwrap()
    );
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let act = acts[i.min(acts.len() - 1)];
            let body = body.clone();
            let seen = seen.clone();
            // Each on its own thread: a stalled or silent one must not hold the next.
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let (mut line, mut range) = (String::new(), None);
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    if let Some(r) = line.to_ascii_lowercase().strip_prefix("range: ") {
                        range = Some(r.trim().to_string());
                    }
                    line.clear();
                }
                let from = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
                seen.lock().unwrap().push(range);
                let head = |status: &str, extra: &str, len: usize| {
                    format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {len}\r\nConnection: close\r\n\r\n")
                };
                let _ = match act {
                    Act::Serve if from.is_some() => {
                        let from = from.unwrap();
                        let range = format!(
                            "Content-Range: bytes {from}-{}/{}\r\n",
                            body.len() - 1,
                            body.len()
                        );
                        conn.write_all(
                            head("206 Partial Content", &range, body.len() - from).as_bytes(),
                        )
                        .and_then(|()| conn.write_all(&body[from..]))
                    }
                    Act::Serve | Act::IgnoreRange => conn
                        .write_all(head("200 OK", "", body.len()).as_bytes())
                        .and_then(|()| conn.write_all(&body)),
                    Act::CutAfter(n) => conn
                        .write_all(head("200 OK", "", body.len()).as_bytes())
                        .and_then(|()| conn.write_all(&body[..n])),
                    Act::StallAfter(n) => conn
                        .write_all(head("200 OK", "", body.len()).as_bytes())
                        .and_then(|()| conn.write_all(&body[..n]))
                        .map(|()| std::thread::sleep(Duration::from_secs(20))),
                    Act::Silent => {
                        std::thread::sleep(Duration::from_secs(20));
                        Ok(())
                    }
                    Act::Status(code) => {
                        conn.write_all(head(&format!("{code} Nope"), "", 0).as_bytes())
                    }
                };
            });
        }
    });
    (url, ranges)
}

fn body() -> Vec<u8> {
    (0..50_000u32).map(|i| (i % 251) as u8).collect()
}

/// Short timeouts and pauses, so a test takes a second, not minutes.
fn patience(attempts: u32) -> Patience {
    Patience {
        connect: Duration::from_secs(2),
        read: Duration::from_millis(300),
        attempts,
        first_pause: Duration::from_millis(10),
    }
}

fn fetch(url: &str, attempts: u32) -> Result<Vec<u8>> {
    download_with(
        &patience(attempts),
        url,
        "pkg",
        &Progress::hidden(),
        1 << 20,
    )
}

fn ranges(seen: &Arc<Mutex<Vec<Option<String>>>>) -> Vec<Option<String>> {
    seen.lock().unwrap().clone()
}

#[test]
fn a_cut_off_download_resumes_where_it_stopped() {
    let (url, seen) = server(body(), vec![Act::CutAfter(12_000), Act::Serve]);
    assert_eq!(fetch(&url, 3).unwrap(), body());
    assert_eq!(ranges(&seen), vec![None, Some("bytes=12000-".into())]);
}

#[test]
fn a_stalled_download_times_out_and_resumes() {
    let (url, seen) = server(body(), vec![Act::StallAfter(20_000), Act::Serve]);
    let started = Instant::now();
    assert_eq!(fetch(&url, 3).unwrap(), body());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ranges(&seen), vec![None, Some("bytes=20000-".into())]);
}

#[test]
fn a_server_that_ignores_the_range_sends_it_all_again() {
    let (url, seen) = server(body(), vec![Act::CutAfter(7), Act::IgnoreRange]);
    assert_eq!(fetch(&url, 3).unwrap(), body());
    assert_eq!(ranges(&seen).len(), 2);
}

#[test]
fn a_server_error_is_retried_and_a_missing_file_is_not() {
    let (url, seen) = server(body(), vec![Act::Status(503), Act::Serve]);
    assert_eq!(fetch(&url, 3).unwrap(), body());
    assert_eq!(ranges(&seen).len(), 2);

    let (url, seen) = server(body(), vec![Act::Status(404), Act::Serve]);
    let err = format!("{:#}", fetch(&url, 3).unwrap_err());
    assert!(err.contains("404") && err.contains(&url), "{err}");
    assert_eq!(ranges(&seen).len(), 1, "a 404 is final");
}

#[test]
fn a_silent_mirror_fails_after_the_attempts_naming_it() {
    let (url, seen) = server(body(), vec![Act::Silent]);
    let started = Instant::now();
    let err = format!("{:#}", fetch(&url, 3).unwrap_err());
    assert!(
        err.contains("after 3 attempts") && err.contains(&url),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ranges(&seen).len(), 3);
}

#[test]
fn a_file_over_the_limit_is_refused_without_retrying() {
    let (url, seen) = server(body(), vec![Act::Serve]);
    let err = download_with(&patience(3), &url, "pkg", &Progress::hidden(), 1000).unwrap_err();
    assert!(format!("{err:#}").contains("larger than"), "{err:#}");
    assert_eq!(ranges(&seen).len(), 1);
}
