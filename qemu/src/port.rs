//! Host ports for forwarding the guest's API.

use std::net::{Ipv4Addr, TcpListener};

use crate::error::{Error, Result};

/// A localhost port that was free a moment ago. Another process can take it before QEMU
/// binds it, so the caller retries with a new port when QEMU reports the forward failed.
pub(crate) fn free_local_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("finding a free port on 127.0.0.1", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("reading the free port's address", e))?
        .port();
    Ok(port)
}

/// QEMU's complaint when a `hostfwd` port is already taken.
pub(crate) fn is_port_conflict(qemu_stderr: &str) -> bool {
    qemu_stderr.to_ascii_lowercase().contains("host forwarding")
}

#[cfg(test)]
mod tests {
    #[test]
    fn recognises_qemu_7_2s_forwarding_failure() {
        let stderr = "qemu-system-x86_64: -netdev user,id=n0,hostfwd=tcp:127.0.0.1:42403-:8000: \
                      Could not set up host forwarding rule 'tcp:127.0.0.1:42403-:8000'";
        assert!(super::is_port_conflict(stderr));
        assert!(!super::is_port_conflict("could not load kernel"));
    }
}
