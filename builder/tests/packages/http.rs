//! A tiny static HTTP server over a folder, so the tests exercise the remote code path
//! (download, index cache, offline fallback) without the internet. It honours `Range`
//! requests, and can cut off the first answer for each file half way, as a flaky mirror does.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct Server {
    pub url: String,
    /// Answers cut off half way, and `Range` requests served (206).
    pub cut: Arc<AtomicUsize>,
    pub resumed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: std::net::SocketAddr,
}

pub fn serve(root: PathBuf) -> Server {
    serve_with(root, false)
}

/// Cuts off the first answer for each file after half its bytes (Content-Length says all).
pub fn serve_cutting(root: PathBuf) -> Server {
    serve_with(root, true)
}

fn serve_with(root: PathBuf, cut_first: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (cut, resumed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (flag, cut_count, resumed_count) = (stop.clone(), cut.clone(), resumed.clone());
    let thread = std::thread::spawn(move || {
        let mut seen = HashSet::new();
        for conn in listener.incoming() {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(conn) = conn {
                let faults = Faults {
                    seen: &mut seen,
                    cut_first,
                    cut: &cut_count,
                    resumed: &resumed_count,
                };
                let _ = answer(conn, &root, faults);
            }
        }
    });
    Server {
        url: format!("http://{addr}"),
        cut,
        resumed,
        stop,
        thread: Some(thread),
        addr,
    }
}

struct Faults<'a> {
    seen: &'a mut HashSet<String>,
    cut_first: bool,
    cut: &'a AtomicUsize,
    resumed: &'a AtomicUsize,
}

fn answer(mut conn: TcpStream, root: &std::path::Path, faults: Faults) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut line = String::new();
    let mut from = None;
    while reader.read_line(&mut line)? > 2 {
        let lower = line.to_ascii_lowercase();
        if let Some(range) = lower.strip_prefix("range: bytes=") {
            from = range.trim().trim_end_matches('-').parse::<usize>().ok();
        }
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    match std::fs::read(root.join(path.trim_start_matches('/'))) {
        Ok(body) if !path.contains("..") => {
            if let Some(from) = from.filter(|&f| f <= body.len()) {
                faults.resumed.fetch_add(1, Ordering::SeqCst);
                write!(
                    conn,
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len().saturating_sub(1),
                    body.len(),
                    body.len() - from
                )?;
                return conn.write_all(&body[from..]);
            }
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if faults.cut_first && body.len() > 1 && faults.seen.insert(path.to_string()) {
                faults.cut.fetch_add(1, Ordering::SeqCst);
                return conn.write_all(&body[..body.len() / 2]);
            }
            conn.write_all(&body)
        }
        _ => write!(
            conn,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
