//! Networking at boot: loopback, then DHCP on the chosen Ethernet interface.

mod dhcp;
pub mod dhcp_packet;
mod ifconfig;
pub mod interfaces;

use std::time::Duration;

use edge_config::NetworkConfig;

use dhcp_packet::Reply;

use crate::console;

/// How long to wait for the interface to appear and for a lease.
/// USB network adapters (a Pi 3's Ethernet, QEMU raspi3b's usb-net) enumerate slowly.
const INTERFACE_PATIENCE: Duration = Duration::from_secs(20);
const LEASE_PATIENCE: Duration = Duration::from_secs(30);
/// Written when the lease names DNS servers; the image links /etc/resolv.conf here since /etc
/// may be read-only.
const RESOLV_CONF: &str = "/run/resolv.conf";

pub fn bring_up_loopback() {
    if let Err(error) = ifconfig::link_up("lo") {
        console::error("net:lo", error);
    }
}

/// Configures the network as the config asks; problems are reported, boot goes on (the API
/// still answers on loopback).
pub fn configure(network: &NetworkConfig, hostname: &str) {
    if !network.dhcp {
        return;
    }
    let Some(interface) = interfaces::wait_for(network.interface.as_deref(), INTERFACE_PATIENCE)
    else {
        let what = network.interface.as_deref().unwrap_or("ethernet");
        console::error(
            &format!("net:{what}"),
            "no such network interface (is its driver module in init.modules?)",
        );
        return;
    };
    let what = format!("dhcp:{interface}");
    if let Err(error) = ifconfig::link_up(&interface) {
        console::error(&what, error);
        return;
    }
    let Some(mac) = interfaces::mac_address(&interface) else {
        console::error(
            &what,
            "cannot read the interface's hardware address from sysfs",
        );
        return;
    };
    let lease = match dhcp::acquire(&interface, mac, hostname, LEASE_PATIENCE) {
        Ok(lease) => lease,
        Err(error) => return console::error(&what, error),
    };
    if apply_lease(&interface, &lease) {
        keep_lease(interface, mac, hostname.to_string(), lease);
    }
}

/// Puts a lease on the interface and prints `EDGEIMG-NET`; false when the address failed.
fn apply_lease(interface: &str, lease: &Reply) -> bool {
    let what = format!("dhcp:{interface}");
    let netmask = dhcp_packet::netmask_or_default(lease);
    if let Err(error) = ifconfig::set_address(interface, lease.your_address, netmask) {
        console::error(&what, error);
        return false;
    }
    if let Some(router) = lease.router {
        if let Err(error) = ifconfig::add_default_route(interface, router) {
            console::error(&what, error);
        }
    }
    if !lease.dns.is_empty() {
        let text: String = lease
            .dns
            .iter()
            .map(|d| format!("nameserver {d}\n"))
            .collect();
        if let Err(error) = std::fs::write(RESOLV_CONF, text) {
            console::error("net:resolv.conf", format!("{RESOLV_CONF}: {error}"));
        }
    }
    let router = lease
        .router
        .map(|r| r.to_string())
        .unwrap_or_else(|| "-".into());
    console::line(&format!(
        "EDGEIMG-NET interface={interface} address={}/{} gateway={router}",
        lease.your_address,
        dhcp_packet::prefix_len(netmask)
    ));
    true
}

/// Renews the lease in a thread of its own (so the run loop keeps reaping) at half its
/// time, by running the DHCP exchange again; a changed address is applied and printed.
fn keep_lease(interface: String, mac: [u8; 6], hostname: String, mut lease: Reply) {
    let spawned = std::thread::Builder::new()
        .name("dhcp-renew".to_string())
        .spawn(move || {
            while let Some(wait) = renew_after(lease.lease_secs) {
                std::thread::sleep(wait);
                match dhcp::acquire(&interface, mac, &hostname, wait.min(LEASE_PATIENCE)) {
                    Ok(renewed) => {
                        let changed = renewed.your_address != lease.your_address
                            || renewed.subnet_mask != lease.subnet_mask
                            || renewed.router != lease.router;
                        if changed {
                            apply_lease(&interface, &renewed);
                        }
                        lease = renewed;
                    }
                    // Keep the address (Linux never expires it) and try again later.
                    Err(error) => console::error(&format!("dhcp-renew:{interface}"), error),
                }
            }
        });
    if let Err(error) = spawned {
        console::error("dhcp-renew", error);
    }
}

/// When to renew a lease of `lease_secs` (T1 = half the lease, at least a minute apart);
/// never for an infinite lease or one without a time.
pub fn renew_after(lease_secs: Option<u32>) -> Option<Duration> {
    match lease_secs {
        None | Some(u32::MAX) => None,
        Some(secs) => Some(Duration::from_secs(u64::from(secs / 2).max(60))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_half_the_lease() {
        assert_eq!(renew_after(Some(86400)), Some(Duration::from_secs(43200)));
        assert_eq!(renew_after(Some(10)), Some(Duration::from_secs(60)));
        assert_eq!(renew_after(Some(u32::MAX)), None);
        assert_eq!(renew_after(None), None);
    }
}
