//! Networking at boot: loopback, then DHCP on the chosen Ethernet interface.

mod dhcp;
pub mod dhcp_packet;
mod ifconfig;
pub mod interfaces;

use std::time::Duration;

use edge_config::NetworkConfig;

use crate::console;

/// How long to wait for the interface to appear and for a lease.
const INTERFACE_PATIENCE: Duration = Duration::from_secs(5);
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
    let netmask = dhcp_packet::netmask_or_default(&lease);
    if let Err(error) = ifconfig::set_address(&interface, lease.your_address, netmask) {
        return console::error(&what, error);
    }
    if let Some(router) = lease.router {
        if let Err(error) = ifconfig::add_default_route(&interface, router) {
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
}
