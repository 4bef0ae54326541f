//! A minimal DHCP client: DISCOVER -> OFFER -> REQUEST -> ACK on one interface.
//!
//! A UDP socket bound to port 68 on the interface is enough on Linux: with SO_BINDTODEVICE a
//! broadcast leaves the interface even before it has an address, and the broadcast flag makes
//! servers broadcast their replies.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
};

use super::dhcp_packet::{self, Client, MessageType, Reply};

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("cannot open the DHCP socket: {0}")]
    Socket(#[from] nix::errno::Errno),
    #[error("DHCP socket I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("no DHCP lease within {0:?} (is a DHCP server on this network? is the cable in?)")]
    Timeout(Duration),
}

/// Runs DHCP on `interface` until a lease is acknowledged or `patience` runs out.
pub fn acquire(
    interface: &str,
    mac: [u8; 6],
    hostname: &str,
    patience: Duration,
) -> Result<Reply, DhcpError> {
    let socket = client_socket(interface)?;
    let client = Client {
        xid: random_u32(),
        mac,
    };
    let deadline = Instant::now() + patience;
    let mut wait = Duration::from_millis(500);
    while Instant::now() < deadline {
        socket.send_to(&dhcp_packet::discover(&client, hostname), server())?;
        if let Some(offer) = receive(
            &socket,
            &client,
            MessageType::Offer,
            wait.min(left(deadline)),
        )? {
            let request = dhcp_packet::request(&client, hostname, &offer);
            for _ in 0..3 {
                socket.send_to(&request, server())?;
                match receive_any(
                    &socket,
                    &client,
                    &[MessageType::Ack, MessageType::Nak],
                    Duration::from_secs(1).min(left(deadline)),
                )? {
                    Some(ack) if ack.kind == MessageType::Ack => return Ok(ack),
                    Some(_nak) => break,
                    None => continue,
                }
            }
        }
        wait = (wait * 2).min(Duration::from_secs(4));
    }
    Err(DhcpError::Timeout(patience))
}

fn server() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::BROADCAST, 67)
}

fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(10))
}

fn client_socket(interface: &str) -> Result<UdpSocket, DhcpError> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::Broadcast, &true)?;
    setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(interface),
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)),
    )?;
    Ok(UdpSocket::from(fd))
}

fn receive(
    socket: &UdpSocket,
    client: &Client,
    kind: MessageType,
    timeout: Duration,
) -> Result<Option<Reply>, DhcpError> {
    receive_any(socket, client, &[kind], timeout)
}

/// Waits for a reply of one of `kinds` to this client, skipping everything else.
fn receive_any(
    socket: &UdpSocket,
    client: &Client,
    kinds: &[MessageType],
    timeout: Duration,
) -> Result<Option<Reply>, DhcpError> {
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 1500];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(remaining))?;
        match socket.recv_from(&mut buffer) {
            Ok((len, _from)) => {
                if let Ok(reply) = dhcp_packet::parse_reply(client, &buffer[..len]) {
                    if kinds.contains(&reply.kind) {
                        return Ok(Some(reply));
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A transaction id; only needs to differ between boots and clients.
fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u32::from_ne_bytes(bytes);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.subsec_nanos() ^ std::process::id()
}
