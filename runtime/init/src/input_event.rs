//! Linux evdev power keys: which `/dev/input/event*` devices have KEY_POWER, and whether a
//! `struct input_event` read from one is a press of it.
//!
//! Hand-written against `<linux/input.h>` (two constants, one struct, one ioctl): an evdev
//! crate would pull in far more than PID 1 needs.

use std::os::fd::AsRawFd;

/// `EV_KEY` from `<linux/input-event-codes.h>`.
const EV_KEY: u16 = 0x01;
/// `KEY_POWER`: what the ACPI button driver (x86 q35, arm64 with ACPI) reports.
pub const KEY_POWER: u16 = 116;
/// `KEY_MAX`: the key capability bitmap covers codes 0..=KEY_MAX.
const KEY_MAX: usize = 0x2ff;
/// `struct input_event` on 64-bit Linux: `struct timeval` (16 bytes), type, code, value.
pub const EVENT_SIZE: usize = 24;

// EVIOCGBIT(EV_KEY, len) = _IOC(_IOC_READ, 'E', 0x20 + EV_KEY, len).
nix::ioctl_read_buf!(eviocgbit_key, b'E', 0x20 + EV_KEY as u8, u8);

/// A decoded `struct input_event` (the timestamp is not needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl InputEvent {
    /// Decodes one native-endian 64-bit `struct input_event`.
    pub fn parse(bytes: &[u8; EVENT_SIZE]) -> InputEvent {
        let u16_at = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
        InputEvent {
            kind: u16_at(16),
            code: u16_at(18),
            value: i32::from_ne_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
        }
    }

    /// A press of the power key (value 1; 0 is the release, 2 autorepeat).
    pub fn is_power_press(&self) -> bool {
        self.kind == EV_KEY && self.code == KEY_POWER && self.value == 1
    }
}

/// Whether bit `code` is set in an evdev capability bitmap (an array of native `long`s).
pub fn bitmap_has(bitmap: &[u8], code: u16) -> bool {
    let bits_per_long = usize::BITS as usize;
    let code = code as usize;
    let long = code / bits_per_long;
    let bit = code % bits_per_long;
    let start = long * (bits_per_long / 8);
    let Some(word) = bitmap.get(start..start + bits_per_long / 8) else {
        return false;
    };
    let word = usize::from_ne_bytes(word.try_into().expect("one long"));
    word & (1 << bit) != 0
}

/// Whether the open event device can report KEY_POWER.
pub fn has_power_key(device: &impl AsRawFd) -> nix::Result<bool> {
    // Rounded up to whole longs, as the kernel fills it.
    let mut bitmap = [0u8; (KEY_MAX / 64 + 1) * 8];
    // SAFETY: the buffer is valid for its whole length, which the ioctl's size encodes.
    unsafe { eviocgbit_key(device.as_raw_fd(), &mut bitmap)? };
    Ok(bitmap_has(&bitmap, KEY_POWER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> [u8; EVENT_SIZE] {
        let mut bytes = [0u8; EVENT_SIZE];
        // A non-zero timestamp, which must not disturb the fields after it.
        bytes[..16].copy_from_slice(&[0xab; 16]);
        bytes[16..18].copy_from_slice(&kind.to_ne_bytes());
        bytes[18..20].copy_from_slice(&code.to_ne_bytes());
        bytes[20..24].copy_from_slice(&value.to_ne_bytes());
        bytes
    }

    #[test]
    fn power_press_is_ev_key_116_value_1() {
        let press = InputEvent::parse(&event(1, 116, 1));
        assert_eq!(
            press,
            InputEvent {
                kind: 1,
                code: 116,
                value: 1
            }
        );
        assert!(press.is_power_press());
    }

    #[test]
    fn release_repeat_sync_and_other_keys_are_not_presses() {
        for (kind, code, value) in [
            (1, 116, 0),
            (1, 116, 2),
            (0, 0, 0),
            (1, 115, 1),
            (2, 116, 1),
        ] {
            let parsed = InputEvent::parse(&event(kind, code, value));
            assert!(!parsed.is_power_press(), "{parsed:?}");
        }
    }

    #[test]
    fn negative_values_decode() {
        assert_eq!(InputEvent::parse(&event(2, 0, -5)).value, -5);
    }

    #[test]
    fn capability_bitmap_finds_key_power() {
        let mut bitmap = [0u8; 96];
        assert!(!bitmap_has(&bitmap, KEY_POWER));
        // Bit 116 lives in long 1 (bits 64..128), bit 52 of it.
        let word = 1usize << (KEY_POWER as usize - 64);
        bitmap[8..16].copy_from_slice(&word.to_ne_bytes());
        assert!(bitmap_has(&bitmap, KEY_POWER));
        assert!(!bitmap_has(&bitmap, KEY_POWER + 1));
        assert!(!bitmap_has(&bitmap[..8], KEY_POWER), "short bitmap");
    }
}
