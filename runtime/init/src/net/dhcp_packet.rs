//! DHCPv4 messages (RFC 2131/2132): the few a client sends and the answers it reads.
//!
//! Hand-written because the packet-format crate (`dhcproto`) drags hickory-proto and ICU
//! (~40 crates) into PID 1 for the dozen fields a client needs.

use std::net::Ipv4Addr;

const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const FIXED_LEN: usize = 236;
/// Ask servers to broadcast replies: an interface without an address may drop unicast.
const FLAG_BROADCAST: u16 = 0x8000;

const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_HOSTNAME: u8 = 12;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMETER_LIST: u8 = 55;
const OPT_END: u8 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Ack = 5,
    Nak = 6,
}

impl MessageType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            _ => return None,
        })
    }
}

/// Who is asking: the transaction id and the interface's hardware address.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub xid: u32,
    pub mac: [u8; 6],
}

/// A server's answer, with the fields a client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub your_address: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    pub subnet_mask: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("packet too short ({0} bytes)")]
    Short(usize),
    #[error("not a BOOTREPLY")]
    NotReply,
    #[error("not for us (transaction or hardware address differs)")]
    NotOurs,
    #[error("no DHCP magic cookie")]
    NoCookie,
    #[error("option {0} runs past the end of the packet")]
    Truncated(u8),
    #[error("no or unknown DHCP message type")]
    NoMessageType,
}

/// DHCPDISCOVER.
pub fn discover(client: &Client, hostname: &str) -> Vec<u8> {
    let mut packet = header(client);
    push_option(
        &mut packet,
        OPT_MESSAGE_TYPE,
        &[MessageType::Discover as u8],
    );
    push_common_options(&mut packet, hostname);
    packet
}

/// DHCPREQUEST for an offered address (SELECTING state).
pub fn request(client: &Client, hostname: &str, offer: &Reply) -> Vec<u8> {
    let mut packet = header(client);
    push_option(&mut packet, OPT_MESSAGE_TYPE, &[MessageType::Request as u8]);
    push_option(&mut packet, OPT_REQUESTED_IP, &offer.your_address.octets());
    if let Some(server) = offer.server_id {
        push_option(&mut packet, OPT_SERVER_ID, &server.octets());
    }
    push_common_options(&mut packet, hostname);
    packet
}

fn header(client: &Client) -> Vec<u8> {
    let mut packet = vec![0u8; FIXED_LEN];
    packet[0] = BOOTREQUEST;
    packet[1] = HTYPE_ETHERNET;
    packet[2] = 6;
    packet[4..8].copy_from_slice(&client.xid.to_be_bytes());
    packet[10..12].copy_from_slice(&FLAG_BROADCAST.to_be_bytes());
    packet[28..34].copy_from_slice(&client.mac);
    packet.extend_from_slice(&MAGIC_COOKIE);
    packet
}

fn push_common_options(packet: &mut Vec<u8>, hostname: &str) {
    push_option(
        packet,
        OPT_PARAMETER_LIST,
        &[
            OPT_SUBNET_MASK,
            OPT_ROUTER,
            OPT_DNS,
            OPT_LEASE_TIME,
            OPT_SERVER_ID,
        ],
    );
    let name = hostname.as_bytes();
    if !name.is_empty() {
        push_option(packet, OPT_HOSTNAME, &name[..name.len().min(255)]);
    }
    packet.push(OPT_END);
    // Some old servers ignore requests shorter than a BOOTP packet (300 bytes).
    if packet.len() < 300 {
        packet.resize(300, OPT_PAD);
    }
}

fn push_option(packet: &mut Vec<u8>, code: u8, value: &[u8]) {
    packet.push(code);
    packet.push(value.len() as u8);
    packet.extend_from_slice(value);
}

/// Reads a server's answer to `client`; anything else is an error to skip.
pub fn parse_reply(client: &Client, packet: &[u8]) -> Result<Reply, PacketError> {
    if packet.len() < FIXED_LEN + MAGIC_COOKIE.len() {
        return Err(PacketError::Short(packet.len()));
    }
    if packet[0] != BOOTREPLY {
        return Err(PacketError::NotReply);
    }
    if packet[4..8] != client.xid.to_be_bytes() || packet[28..34] != client.mac {
        return Err(PacketError::NotOurs);
    }
    if packet[FIXED_LEN..FIXED_LEN + 4] != MAGIC_COOKIE {
        return Err(PacketError::NoCookie);
    }
    let mut reply = Reply {
        kind: MessageType::Discover,
        your_address: ipv4(&packet[16..20]),
        server_id: None,
        subnet_mask: None,
        router: None,
        dns: Vec::new(),
        lease_secs: None,
    };
    let mut kind = None;
    let mut options = &packet[FIXED_LEN + 4..];
    while let Some((&code, rest)) = options.split_first() {
        if code == OPT_END {
            break;
        }
        if code == OPT_PAD {
            options = rest;
            continue;
        }
        let (&len, rest) = rest.split_first().ok_or(PacketError::Truncated(code))?;
        let len = len as usize;
        if rest.len() < len {
            return Err(PacketError::Truncated(code));
        }
        let (value, rest) = rest.split_at(len);
        match (code, len) {
            (OPT_MESSAGE_TYPE, 1) => kind = MessageType::from_code(value[0]),
            (OPT_SUBNET_MASK, 4) => reply.subnet_mask = Some(ipv4(value)),
            (OPT_ROUTER, n) if n >= 4 => reply.router = Some(ipv4(&value[..4])),
            (OPT_DNS, n) if n >= 4 => reply.dns = value.chunks_exact(4).map(ipv4).collect(),
            (OPT_SERVER_ID, 4) => reply.server_id = Some(ipv4(value)),
            (OPT_LEASE_TIME, 4) => {
                reply.lease_secs =
                    Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
            }
            _ => {}
        }
        options = rest;
    }
    reply.kind = kind.ok_or(PacketError::NoMessageType)?;
    Ok(reply)
}

fn ipv4(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

/// The default mask for a lease without option 1 (RFC 2131 leaves it to the client).
pub fn netmask_or_default(reply: &Reply) -> Ipv4Addr {
    reply.subnet_mask.unwrap_or(Ipv4Addr::new(255, 255, 255, 0))
}

/// Prefix length of a netmask, for messages (`/24`).
pub fn prefix_len(mask: Ipv4Addr) -> u32 {
    u32::from(mask).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Client = Client {
        xid: 0x1234_abcd,
        mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
    };

    /// A reply as QEMU's slirp server sends it.
    fn slirp_reply(kind: u8) -> Vec<u8> {
        let mut packet = vec![0u8; FIXED_LEN];
        packet[0] = BOOTREPLY;
        packet[1] = 1;
        packet[2] = 6;
        packet[4..8].copy_from_slice(&CLIENT.xid.to_be_bytes());
        packet[16..20].copy_from_slice(&[10, 0, 2, 15]);
        packet[20..24].copy_from_slice(&[10, 0, 2, 2]);
        packet[28..34].copy_from_slice(&CLIENT.mac);
        packet.extend_from_slice(&MAGIC_COOKIE);
        packet.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, kind]);
        packet.extend_from_slice(&[OPT_SERVER_ID, 4, 10, 0, 2, 2]);
        packet.extend_from_slice(&[OPT_LEASE_TIME, 4, 0, 1, 0x51, 0x80]);
        packet.extend_from_slice(&[OPT_PAD, OPT_PAD]);
        packet.extend_from_slice(&[OPT_SUBNET_MASK, 4, 255, 255, 255, 0]);
        packet.extend_from_slice(&[OPT_ROUTER, 4, 10, 0, 2, 2]);
        packet.extend_from_slice(&[OPT_DNS, 8, 10, 0, 2, 3, 1, 1, 1, 1]);
        packet.push(OPT_END);
        packet
    }

    #[test]
    fn discover_is_a_broadcast_bootrequest_with_our_mac() {
        let packet = discover(&CLIENT, "edge");
        assert_eq!(packet[0], BOOTREQUEST);
        assert_eq!(&packet[4..8], &CLIENT.xid.to_be_bytes());
        assert_eq!(&packet[10..12], &[0x80, 0]);
        assert_eq!(&packet[28..34], &CLIENT.mac);
        assert_eq!(&packet[FIXED_LEN..FIXED_LEN + 4], &MAGIC_COOKIE);
        assert_eq!(
            &packet[FIXED_LEN + 4..FIXED_LEN + 7],
            &[OPT_MESSAGE_TYPE, 1, 1]
        );
        assert!(packet
            .windows(6)
            .any(|w| w == [OPT_HOSTNAME, 4, b'e', b'd', b'g', b'e']));
        assert!(packet.len() >= 300);
    }

    #[test]
    fn request_names_the_offered_address_and_server() {
        let offer = parse_reply(&CLIENT, &slirp_reply(2)).unwrap();
        let packet = request(&CLIENT, "edge", &offer);
        assert_eq!(
            &packet[FIXED_LEN + 4..FIXED_LEN + 7],
            &[OPT_MESSAGE_TYPE, 1, 3]
        );
        assert!(packet
            .windows(6)
            .any(|w| w == [OPT_REQUESTED_IP, 4, 10, 0, 2, 15]));
        assert!(packet
            .windows(6)
            .any(|w| w == [OPT_SERVER_ID, 4, 10, 0, 2, 2]));
    }

    #[test]
    fn parses_a_slirp_offer() {
        let reply = parse_reply(&CLIENT, &slirp_reply(2)).unwrap();
        assert_eq!(reply.kind, MessageType::Offer);
        assert_eq!(reply.your_address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(reply.server_id, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(reply.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(reply.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(
            reply.dns,
            vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)]
        );
        assert_eq!(reply.lease_secs, Some(86400));
        assert_eq!(prefix_len(netmask_or_default(&reply)), 24);
    }

    #[test]
    fn ack_and_nak_are_recognised() {
        assert_eq!(
            parse_reply(&CLIENT, &slirp_reply(5)).unwrap().kind,
            MessageType::Ack
        );
        assert_eq!(
            parse_reply(&CLIENT, &slirp_reply(6)).unwrap().kind,
            MessageType::Nak
        );
    }

    #[test]
    fn replies_for_other_clients_are_skipped() {
        let other = Client { xid: 7, ..CLIENT };
        assert_eq!(
            parse_reply(&other, &slirp_reply(2)),
            Err(PacketError::NotOurs)
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert_eq!(parse_reply(&CLIENT, &[2; 10]), Err(PacketError::Short(10)));
        let mut truncated = slirp_reply(2);
        let end = truncated.len() - 1;
        truncated[end] = OPT_DNS;
        truncated.push(200);
        assert_eq!(
            parse_reply(&CLIENT, &truncated),
            Err(PacketError::Truncated(OPT_DNS))
        );
        let mut no_type = slirp_reply(2);
        no_type[FIXED_LEN + 6] = 99;
        assert_eq!(
            parse_reply(&CLIENT, &no_type),
            Err(PacketError::NoMessageType)
        );
        let mut no_cookie = slirp_reply(2);
        no_cookie[FIXED_LEN] = 0;
        assert_eq!(parse_reply(&CLIENT, &no_cookie), Err(PacketError::NoCookie));
    }
}
