//! Hotplug after boot: the kernel announces every new device on a netlink socket (what udev
//! and mdev listen to); a device with a `MODALIAS` gets its driver loaded. So a USB Ethernet
//! adapter plugged in later gets its driver, and then its interface and DHCP.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    bind, recvfrom, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

use super::loader::Loader;
use super::{coldplug, sysfs};
use crate::console;

/// The kernel's uevent multicast group.
const KERNEL_GROUP: u32 = 1;
/// The kernel's uevent buffer is 2 KiB; anything longer is cut, never allocated.
const MESSAGE_MAX: usize = 8192;
/// Without the netlink socket: how often to look at sysfs again.
const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// The uevent socket, opened before coldplug so that no device added meanwhile is missed.
pub struct Listener(Option<OwnedFd>);

impl Listener {
    pub fn open() -> Listener {
        match open_socket() {
            Ok(fd) => Listener(Some(fd)),
            Err(errno) => {
                console::info(format!(
                    "uevent socket: {errno}; looking for new devices every {} s instead",
                    RESCAN_EVERY.as_secs()
                ));
                Listener(None)
            }
        }
    }

    /// Loads drivers for devices that appear from now on, in a thread of its own.
    pub fn spawn(self, mut loader: Loader) {
        let spawned =
            std::thread::Builder::new()
                .name("hotplug".into())
                .spawn(move || match self.0 {
                    Some(fd) => listen(&fd, &mut loader),
                    None => loop {
                        std::thread::sleep(RESCAN_EVERY);
                        coldplug::run(
                            &mut loader,
                            std::path::Path::new(sysfs::SYS),
                            coldplug::Until::NothingNew,
                            Instant::now(),
                        );
                    },
                });
        if let Err(error) = spawned {
            console::error(
                "hotplug",
                format!("cannot start the hotplug thread: {error}"),
            );
        }
    }
}

fn open_socket() -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkKObjectUEvent,
    )?;
    // Devices appear in bursts (a USB hub and everything on it).
    let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP))?;
    Ok(fd)
}

fn listen(fd: &OwnedFd, loader: &mut Loader) {
    let mut buffer = vec![0u8; MESSAGE_MAX];
    loop {
        match recvfrom::<NetlinkAddr>(fd.as_raw_fd(), &mut buffer) {
            Ok((len, from)) => {
                // Only the kernel (port 0) speaks for devices.
                if from.is_some_and(|a| a.pid() == 0) {
                    if let Some(modalias) = added_modalias(&buffer[..len]) {
                        loader.load_for_modalias(&modalias);
                    }
                }
            }
            // ENOBUFS: a burst overflowed the socket; catch up from sysfs.
            Err(nix::errno::Errno::ENOBUFS) => {
                coldplug::run(
                    loader,
                    std::path::Path::new(sysfs::SYS),
                    coldplug::Until::NothingNew,
                    Instant::now(),
                );
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => {
                console::error("hotplug", format!("uevent socket: {errno}"));
                return;
            }
        }
    }
}

/// The modalias of an `add` uevent (`add@/devices/...\0ACTION=add\0...MODALIAS=...\0`).
pub fn added_modalias(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let mut fields = text.split('\0');
    let header = fields.next()?;
    if !header.starts_with("add@") {
        return None;
    }
    sysfs::uevent_modalias(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_added_devices_with_a_modalias_count() {
        let add = b"add@/devices/platform/usb/1-1\0ACTION=add\0SUBSYSTEM=usb\0MODALIAS=usb:v0424pEC00d0200dc00dsc00dp00ic00isc00ip00in00\0SEQNUM=7\0";
        assert_eq!(
            added_modalias(add).as_deref(),
            Some("usb:v0424pEC00d0200dc00dsc00dp00ic00isc00ip00in00")
        );
        let remove = b"remove@/devices/platform/usb/1-1\0ACTION=remove\0MODALIAS=usb:v0424\0";
        assert_eq!(added_modalias(remove), None);
        assert_eq!(
            added_modalias(b"add@/devices/virtual/net/lo\0ACTION=add\0"),
            None
        );
        // libudev's re-broadcasts start differently and are not the kernel's.
        assert_eq!(added_modalias(b"libudev\0\xfe\xed\xca\xfe"), None);
    }
}
