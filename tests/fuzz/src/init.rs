//! PID 1's parsers of outside bytes: DHCP replies from the LAN, partition tables and
//! superblocks from whatever card or disk is plugged in, the kernel command line from the
//! boot partition. Each function takes arbitrary bytes, must not panic (the fuzz build checks
//! every arithmetic overflow), and asserts what init relies on. Shared by the fuzz targets and
//! by `runtime/init/tests/fuzz_corpus.rs`, which replays the corpus in CI.

use edge_init::cmdline;
use edge_init::data::probe;
use edge_init::net::dhcp_packet::{self, Client, MessageType};

const CLIENT: Client = Client {
    xid: 0x1234_abcd,
    mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
};

/// A DHCP reply. The first byte picks the form: bit 0 set, the harness writes a BOOTREPLY
/// header for [`CLIENT`] with the magic cookie over the rest, so what follows is read as
/// options; clear, the rest is the packet as it is.
///
/// A reply that parses is for the client, has a message type, and its DNS list fits the
/// packet; the client's next request built from it parses as our own BOOTREQUEST.
pub fn dhcp(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut packet = rest.to_vec();
    if mode & 1 != 0 {
        if packet.len() < 240 {
            packet.resize(240, 0);
        }
        packet[0] = 2;
        packet[4..8].copy_from_slice(&CLIENT.xid.to_be_bytes());
        packet[28..34].copy_from_slice(&CLIENT.mac);
        packet[236..240].copy_from_slice(&[99, 130, 83, 99]);
    }
    let Ok(reply) = dhcp_packet::parse_reply(&CLIENT, &packet) else {
        return;
    };
    assert!(
        matches!(
            reply.kind,
            MessageType::Offer
                | MessageType::Ack
                | MessageType::Nak
                | MessageType::Discover
                | MessageType::Request
        ),
        "{reply:?}"
    );
    assert!(reply.dns.len() * 4 <= packet.len(), "{reply:?}");
    let _ = dhcp_packet::prefix_len(dhcp_packet::netmask_or_default(&reply));
    let hostname = String::from_utf8_lossy(&packet[..packet.len().min(300)]);
    let request = dhcp_packet::request(&CLIENT, &hostname, &reply);
    assert_eq!(request[0], 1, "a BOOTREQUEST");
    assert_eq!(&request[4..8], &CLIENT.xid.to_be_bytes());
    assert_eq!(&request[28..34], &CLIENT.mac);
    assert!(options_are_well_formed(&request[240..]), "{request:?}");
}

/// Every option's length stays inside the packet, up to the end option.
fn options_are_well_formed(mut options: &[u8]) -> bool {
    while let Some((&code, rest)) = options.split_first() {
        match code {
            255 => return true,
            0 => options = rest,
            _ => {
                let Some((&len, rest)) = rest.split_first() else {
                    return false;
                };
                if rest.len() < usize::from(len) {
                    return false;
                }
                options = &rest[usize::from(len)..];
            }
        }
    }
    false
}

/// The start of a block device: the first 4 bytes are the partition number to look up (u32
/// LE), the rest the device's first bytes (its MBR, GPT header and entries, or superblock).
///
/// A PARTUUID found is `xxxxxxxx-NN` (an MBR's) or a GUID, lower-case hex; a label found is
/// non-empty text; and a device matches only what was asked of it.
pub fn probe(data: &[u8]) {
    let Some((number, start)) = data.split_first_chunk::<4>() else {
        return;
    };
    let partn = u32::from_le_bytes(*number);
    if let Some(uuid) = probe::table_partuuid(start, partn) {
        let is_hex = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let parts: Vec<&str> = uuid.split('-').collect();
        let mbr = parts.len() == 2 && parts[0].len() == 8 && parts[1].len() >= 2;
        let gpt = parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]);
        assert!((mbr || gpt) && parts.iter().all(|p| is_hex(p)), "{uuid:?}");
        assert!(probe::matches(
            None,
            Some(&uuid.to_uppercase()),
            None,
            Some(&uuid)
        ));
    }
    let label = probe::label(start);
    if let Some(label) = &label {
        assert!(!label.is_empty());
        assert!(probe::matches(Some(label), None, Some(label), None));
    }
    assert!(
        !probe::matches(None, None, label.as_deref(), None),
        "nothing asked, nothing matches"
    );
    let uevent = probe::parse_uevent(&String::from_utf8_lossy(start));
    if let Some(name) = &uevent.devname {
        assert!(!name.contains('\n'), "{name:?}");
    }
}

/// `/proc/cmdline` text: `edgeimg.*` words are read or reported, the rest is the kernel's.
pub fn cmdline(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let flags = cmdline::parse(&text);
    let words: Vec<&str> = text.split_whitespace().collect();
    for unknown in &flags.unknown {
        assert!(
            unknown.starts_with("edgeimg.") && words.contains(&unknown.as_str()),
            "{unknown:?}"
        );
    }
    if let Some(root) = &flags.root {
        assert!(words.contains(&format!("root={root}").as_str()), "{root:?}");
    }
    if flags.kill_server_once {
        assert!(words.contains(&"edgeimg.selftest=kill-server"));
    }
    if flags.debug_shell_asked {
        assert!(words.iter().any(|w| w.starts_with("edgeimg.debug_shell")));
    }
}
