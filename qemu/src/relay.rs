//! The guest's API on a host port that takes many connections at once.
//!
//! QEMU's user-mode network (libslirp) listens for a `hostfwd` rule with a backlog of one
//! and accepts a few milliseconds after a connect under TCG. A burst of connects (16
//! load-test clients starting together) overflows that queue: SYNs are dropped (a 1 s
//! retransmit) and the host kernel falls back to SYN cookies, which reset a connection whose
//! second segment arrives first. The relay listens with a normal backlog, opens its own
//! connections to QEMU only once QEMU has taken the previous one, then copies bytes both
//! ways; a reset on one side is passed on as a reset, so clients see what the device did.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Listens on `127.0.0.1:<port>` (any free one unless given) and forwards every connection to
/// QEMU's forwarded port.
/// Dropping it stops accepting; connections already open run until either side closes.
#[derive(Debug)]
pub(crate) struct ApiRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ApiRelay {
    pub(crate) fn start(qemu_port: SocketAddr, port: Option<u16>) -> Result<ApiRelay> {
        let port = port.unwrap_or(0);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| {
            Error::io(
                format!("listening on 127.0.0.1:{port} for the guest's API"),
                e,
            )
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the API relay's address", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = thread::Builder::new()
            .name("api-relay".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(&listener, qemu_port, &stop)
            })
            .map_err(|e| Error::io("starting the API relay", e))?;
        Ok(ApiRelay {
            addr,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ApiRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, qemu_port: SocketAddr, stop: &AtomicBool) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        // Connecting here, in the one accepting thread, is what keeps QEMU's queue short.
        let connected = TcpStream::connect(qemu_port);
        wait_until_taken(qemu_port);
        match connected {
            Ok(guest) => {
                if let Err(e) = splice(client, guest) {
                    tracing::debug!("API relay: cannot copy a connection: {e}");
                }
            }
            Err(e) => {
                tracing::debug!("API relay: QEMU's forwarded port refused: {e}");
                abort(&client);
            }
        }
    }
}

/// The longest the relay waits for QEMU to accept before it connects again regardless.
const ACCEPT_WAIT: Duration = Duration::from_secs(2);

/// Waits until QEMU has accepted every connection made to `port` (its listening socket's
/// queue is empty), so the next connect finds room.
fn wait_until_taken(port: SocketAddr) {
    let deadline = Instant::now() + ACCEPT_WAIT;
    while Instant::now() < deadline {
        match listen_queue(port) {
            Some(0) | None => return,
            Some(_) => thread::sleep(Duration::from_micros(500)),
        }
    }
}

/// Connections waiting to be accepted on the IPv4 listening socket at `port`, from
/// `/proc/net/tcp` (for a listener, `rx_queue` is its accept queue); `None` if not found.
fn listen_queue(port: SocketAddr) -> Option<u32> {
    let SocketAddr::V4(port) = port else {
        return None;
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    parse_listen_queue(&table, port)
}

fn parse_listen_queue(table: &str, port: SocketAddrV4) -> Option<u32> {
    const LISTEN: &str = "0A";
    // The kernel prints the address as the hex of its bytes in host order (little-endian).
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(port.ip().octets()),
        port.port()
    );
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&local.as_str()) || fields.get(3) != Some(&LISTEN) {
            return None;
        }
        let (_, rx) = fields.get(4)?.split_once(':')?;
        u32::from_str_radix(rx, 16).ok()
    })
}

/// Copies both ways on two threads until both directions are finished.
fn splice(client: TcpStream, guest: TcpStream) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = guest.set_nodelay(true);
    let (client2, guest2) = (client.try_clone()?, guest.try_clone()?);
    thread::Builder::new()
        .name("api-relay-up".into())
        .spawn(move || copy_one_way(client, guest))?;
    thread::Builder::new()
        .name("api-relay-down".into())
        .spawn(move || copy_one_way(guest2, client2))?;
    Ok(())
}

/// Copies `from` to `to`: an end of stream becomes a half-close, a reset becomes a reset.
fn copy_one_way(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    abort(&from);
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                abort(&to);
                return;
            }
        }
    }
}

/// Makes the last close of `stream` a reset, and wakes the thread reading it (a read
/// shutdown sends nothing, so no FIN goes out ahead of the reset).
fn abort(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized `linger` value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_listeners_accept_queue_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B4C3 00000000:0000 0A 00000001:00000002 00:00000000 00000000     0        0 1 1
   1: 0100007F:B4C3 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1
";
        let at = |port| parse_listen_queue(table, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        assert_eq!(at(0xB4C3), Some(2));
        assert_eq!(at(0x1F41), None);
    }

    #[test]
    fn sees_its_own_listener_in_the_kernels_table() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(listen_queue(addr), Some(0));
        let _waiting = TcpStream::connect(addr).unwrap();
        assert_eq!(listen_queue(addr), Some(1));
        drop(listener.accept().unwrap());
        assert_eq!(listen_queue(addr), Some(0));
    }

    /// An echo server that answers each connection with what it read, then closes.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut stream = stream;
                    let mut got = Vec::new();
                    stream.read_to_end(&mut got).unwrap();
                    stream.write_all(&got).unwrap();
                });
            }
        });
        addr
    }

    #[test]
    fn many_clients_at_once_all_get_their_own_answer() {
        let relay = ApiRelay::start(echo_server(), None).unwrap();
        let clients: Vec<_> = (0..64)
            .map(|i| {
                let addr = relay.addr();
                thread::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let message = format!("client {i}");
                    stream.write_all(message.as_bytes()).unwrap();
                    stream.shutdown(Shutdown::Write).unwrap();
                    let mut answer = String::new();
                    stream.read_to_string(&mut answer).unwrap();
                    assert_eq!(answer, message);
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    }

    /// Connects through `relay` and reads until the end; the error if it ended in one.
    fn read_through(relay: &ApiRelay) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(relay.addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).map(|_| buf)
    }

    #[test]
    fn a_reset_from_the_guest_side_reaches_the_client() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let upstream = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            abort(&stream);
        });
        let relay = ApiRelay::start(upstream, None).unwrap();
        let err = read_through(&relay).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    }

    #[test]
    fn nothing_listening_behind_it_resets_the_client() {
        let unused = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let upstream = unused.local_addr().unwrap();
        drop(unused);
        let relay = ApiRelay::start(upstream, None).unwrap();
        let err = read_through(&relay).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    }
}
