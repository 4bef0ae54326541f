//! Networking: loopback at boot, then DHCP in a thread of its own, so the server never waits
//! for a network. The thread watches for the Ethernet interface (a driver may bind late, a
//! USB adapter may be plugged in later) and its link (a cable plugged in later), runs DHCP
//! whenever the link comes up, and renews the lease.

mod dhcp;
pub mod dhcp_packet;
mod ifconfig;
pub mod interfaces;

use std::time::{Duration, Instant};

use edge_config::NetworkConfig;

use dhcp_packet::Reply;

use crate::console;

/// How often the interface and its link are looked at.
const POLL: Duration = Duration::from_secs(1);
/// How long one DHCP exchange may take, and the pause before the next after it failed.
const LEASE_PATIENCE: Duration = Duration::from_secs(30);
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Written when the lease names DNS servers; the image links /etc/resolv.conf here since /etc
/// may be read-only.
const RESOLV_CONF: &str = "/run/resolv.conf";

pub fn bring_up_loopback() {
    if let Err(error) = ifconfig::link_up("lo") {
        console::error("net:lo", error);
    }
}

/// Starts DHCP as the config asks, in the background; problems are reported as they happen.
pub fn start(network: &NetworkConfig, hostname: &str) {
    if !network.dhcp {
        return;
    }
    let mut watch = Watch {
        wanted: network.interface.clone(),
        hostname: hostname.to_string(),
        link: None,
        said_waiting: false,
        refused: None,
    };
    let spawned = std::thread::Builder::new()
        .name("net".into())
        .spawn(move || loop {
            watch.step();
            std::thread::sleep(POLL);
        });
    if let Err(error) = spawned {
        console::error("net", format!("cannot start the network thread: {error}"));
    }
}

struct Watch {
    /// `network.interface`, or the first physical Ethernet interface.
    wanted: Option<String>,
    hostname: String,
    link: Option<Link>,
    said_waiting: bool,
    /// An interface that could not be brought up (reported once), and when to try again.
    refused: Option<(String, Instant)>,
}

/// The interface being configured.
struct Link {
    name: String,
    mac: [u8; 6],
    /// The lease in force since the link last came up.
    lease: Option<Lease>,
    /// What is on the interface now (kept across a link down: Linux keeps the address).
    applied: Option<Reply>,
    retry_at: Instant,
    said_no_carrier: bool,
    reported_failure: bool,
}

struct Lease {
    renew_at: Option<Instant>,
}

impl Watch {
    fn step(&mut self) {
        let Some(name) = interfaces::find(self.wanted.as_deref()) else {
            if !self.said_waiting {
                let what = self.wanted.as_deref().unwrap_or("Ethernet");
                console::info(format!(
                    "no {what} interface yet: the server runs without one, DHCP starts when it appears"
                ));
                self.said_waiting = true;
            }
            self.link = None;
            return;
        };
        if self.link.as_ref().is_none_or(|l| l.name != name) {
            let retry = match &self.refused {
                Some((refused, at)) if *refused == name => Some(*at),
                _ => None,
            };
            if retry.is_some_and(|at| Instant::now() < at) {
                return;
            }
            match Link::bring_up(&name, retry.is_none()) {
                Ok(link) => {
                    self.link = Some(link);
                    self.refused = None;
                }
                Err(()) => {
                    self.refused = Some((name, Instant::now() + RETRY_AFTER));
                    return;
                }
            }
        }
        if let Some(link) = &mut self.link {
            link.step(&self.hostname);
        }
    }
}

impl Link {
    /// Sets the interface up; a failure is reported when `report` (the first try).
    fn bring_up(name: &str, report: bool) -> Result<Link, ()> {
        let what = format!("dhcp:{name}");
        let fail = |why: String| {
            if report {
                console::error(
                    &what,
                    format!("{why} (tried again every {}s)", RETRY_AFTER.as_secs()),
                );
            }
        };
        if let Err(error) = ifconfig::link_up(name) {
            fail(error.to_string());
            return Err(());
        }
        let Some(mac) = interfaces::mac_address(name) else {
            fail("cannot read the interface's hardware address from sysfs".into());
            return Err(());
        };
        Ok(Link {
            name: name.to_string(),
            mac,
            lease: None,
            applied: None,
            retry_at: Instant::now(),
            said_no_carrier: false,
            reported_failure: false,
        })
    }

    fn step(&mut self, hostname: &str) {
        let now = Instant::now();
        let carrier = interfaces::carrier(&self.name);
        let renew_due = self
            .lease
            .as_ref()
            .and_then(|l| l.renew_at)
            .is_some_and(|at| now >= at);
        match (carrier, self.lease.is_some()) {
            (false, true) => {
                console::info(format!(
                    "{}: link down; DHCP again when it comes back",
                    self.name
                ));
                self.lease = None;
                self.reported_failure = false;
                self.retry_at = now;
            }
            (false, false) => {
                if !self.said_no_carrier {
                    console::info(format!(
                        "{}: no link (is a cable in?); DHCP starts when it comes up",
                        self.name
                    ));
                    self.said_no_carrier = true;
                }
            }
            (true, false) if now >= self.retry_at => self.acquire(hostname),
            (true, true) if renew_due => self.renew(hostname),
            (true, _) => {}
        }
    }

    fn acquire(&mut self, hostname: &str) {
        self.said_no_carrier = false;
        match dhcp::acquire(&self.name, self.mac, hostname, LEASE_PATIENCE) {
            Ok(reply) => {
                self.apply(&reply);
                self.lease = Some(Lease {
                    renew_at: renew_after(reply.lease_secs).map(|d| Instant::now() + d),
                });
                self.applied = Some(reply);
            }
            Err(error) => {
                // Once per link-up: a missing DHCP server is one problem, not one per retry.
                if !self.reported_failure {
                    console::error(&format!("dhcp:{}", self.name), error);
                    self.reported_failure = true;
                }
                self.retry_at = Instant::now() + RETRY_AFTER;
            }
        }
    }

    /// Renews at half the lease by running the exchange again; a changed lease is applied.
    fn renew(&mut self, hostname: &str) {
        let wait = renew_after(self.applied.as_ref().and_then(|r| r.lease_secs));
        match dhcp::acquire(&self.name, self.mac, hostname, LEASE_PATIENCE) {
            Ok(reply) => {
                if self
                    .applied
                    .as_ref()
                    .is_none_or(|old| lease_changed(old, &reply))
                {
                    self.apply(&reply);
                }
                self.lease = Some(Lease {
                    renew_at: renew_after(reply.lease_secs).map(|d| Instant::now() + d),
                });
                self.applied = Some(reply);
            }
            // Keep the address (Linux never expires it) and try again later.
            Err(error) => {
                console::error(&format!("dhcp-renew:{}", self.name), error);
                self.lease = Some(Lease {
                    renew_at: wait.map(|d| Instant::now() + d),
                });
            }
        }
    }

    /// Puts a lease on the interface and prints `EDGEIMG-NET`.
    fn apply(&self, lease: &Reply) {
        let what = format!("dhcp:{}", self.name);
        let netmask = dhcp_packet::netmask_or_default(lease);
        if let Err(error) = ifconfig::set_address(&self.name, lease.your_address, netmask) {
            console::error(&what, error);
            return;
        }
        // A cable moved to another network: the old gateway is gone.
        if let Some(old) = self.applied.as_ref().and_then(|a| a.router) {
            if lease.router != Some(old) {
                if let Err(error) = ifconfig::delete_default_route(&self.name, old) {
                    console::error(&what, error);
                }
            }
        }
        if let Some(router) = lease.router {
            if let Err(error) = ifconfig::add_default_route(&self.name, router) {
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
            "EDGEIMG-NET interface={} address={}/{} gateway={router}",
            self.name,
            lease.your_address,
            dhcp_packet::prefix_len(netmask)
        ));
    }
}

fn lease_changed(old: &Reply, new: &Reply) -> bool {
    new.your_address != old.your_address
        || new.subnet_mask != old.subnet_mask
        || new.router != old.router
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
