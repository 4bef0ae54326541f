//! Setting link state, addresses and the default route with the classic socket ioctls.
//!
//! Ioctls instead of netlink: four calls cover what a DHCP lease needs, with no extra crates
//! (`rtnetlink` needs tokio, `neli` is a large generic netlink layer).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

#[derive(Debug, thiserror::Error)]
#[error("{what} on {interface}: {errno}")]
pub struct IfError {
    what: &'static str,
    interface: String,
    errno: Errno,
}

fn control_socket() -> Result<OwnedFd, Errno> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *slot = byte as libc::c_char;
    }
    req
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let inet = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it as sockaddr_in.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(inet) }
}

fn ioctl<T>(
    what: &'static str,
    interface: &str,
    request: libc::Ioctl,
    arg: &mut T,
) -> Result<(), IfError> {
    let fd = control_socket().map_err(|errno| IfError {
        what,
        interface: interface.to_string(),
        errno,
    })?;
    // SAFETY: `arg` is the struct this request expects and lives across the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg as *mut T) };
    Errno::result(rc).map(drop).map_err(|errno| IfError {
        what,
        interface: interface.to_string(),
        errno,
    })
}

/// Sets IFF_UP on an interface.
pub fn link_up(name: &str) -> Result<(), IfError> {
    let mut req = ifreq(name);
    ioctl(
        "reading flags",
        name,
        libc::SIOCGIFFLAGS as libc::Ioctl,
        &mut req,
    )?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(
        "setting IFF_UP",
        name,
        libc::SIOCSIFFLAGS as libc::Ioctl,
        &mut req,
    )
}

/// Gives an interface its IPv4 address and netmask.
pub fn set_address(name: &str, address: Ipv4Addr, netmask: Ipv4Addr) -> Result<(), IfError> {
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_addr = sockaddr(address);
    ioctl(
        "setting address",
        name,
        libc::SIOCSIFADDR as libc::Ioctl,
        &mut req,
    )?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_netmask = sockaddr(netmask);
    ioctl(
        "setting netmask",
        name,
        libc::SIOCSIFNETMASK as libc::Ioctl,
        &mut req,
    )
}

/// Adds `default via gateway dev name`; an existing default route counts as done.
pub fn add_default_route(name: &str, gateway: Ipv4Addr) -> Result<(), IfError> {
    default_route(RouteChange::Add, name, gateway)
}

/// Removes `default via gateway dev name`; a route that is already gone counts as done.
pub fn delete_default_route(name: &str, gateway: Ipv4Addr) -> Result<(), IfError> {
    default_route(RouteChange::Delete, name, gateway)
}

#[derive(Clone, Copy)]
enum RouteChange {
    Add,
    Delete,
}

fn default_route(change: RouteChange, name: &str, gateway: Ipv4Addr) -> Result<(), IfError> {
    // (what, request, the errno that means it is already so)
    let (what, request, done) = match change {
        RouteChange::Add => ("adding default route", libc::SIOCADDRT, Errno::EEXIST),
        RouteChange::Delete => ("deleting default route", libc::SIOCDELRT, Errno::ESRCH),
    };
    let mut device = std::ffi::CString::new(name)
        .unwrap_or_default()
        .into_bytes_with_nul();
    // SAFETY: rtentry is plain old data; all-zero is a valid value.
    let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
    route.rt_dst = sockaddr(Ipv4Addr::UNSPECIFIED);
    route.rt_genmask = sockaddr(Ipv4Addr::UNSPECIFIED);
    route.rt_gateway = sockaddr(gateway);
    route.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    route.rt_dev = device.as_mut_ptr() as *mut libc::c_char;
    match ioctl(what, name, request as libc::Ioctl, &mut route) {
        Err(IfError { errno, .. }) if errno == done => Ok(()),
        other => other,
    }
}
