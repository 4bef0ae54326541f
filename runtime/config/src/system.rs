//! A/B system updates: what the builder, `edge-init` and `edge-runtime` agree on.
//!
//! - The disk: one FAT boot partition holding a folder per slot (`a/`, `b/`: kernel, boot
//!   initramfs, device trees, `cmdline.txt`, `config.txt`) and a top-level `config.txt` that
//!   names the slot the firmware boots (`os_prefix=a/`), two root partitions (the squashfs of
//!   slot a and of slot b) and the data partition. On QEMU the harness reads that `config.txt`
//!   as the Pi firmware does.
//! - The artifact (`<name>.update`): a tar whose first member is [`MANIFEST`] and second
//!   [`MANIFEST_SIG`], then every part the manifest lists, in its order.
//! - The state ([`SlotState`] in `<state_dir>/state.json`): written by init alone, read by the
//!   server's status endpoint and by the next boot.
//!
//! docs/updates.md, "System updates", tells the whole sequence.

use serde::{Deserialize, Serialize};

/// The slot names, in partition order: `root_partuuids[0]` is slot a's root.
pub const SLOTS: [&str; 2] = ["a", "b"];

/// The top-level `config.txt` and every slot's own are exactly this long (padded with a
/// comment), so switching slots overwrites one sector in place: no FAT table or directory
/// entry changes, and a power cut leaves the old or the new one.
pub const CONFIG_TXT_BYTES: usize = 512;

/// The line of `config.txt` that names the slot the firmware boots, as the Pi firmware reads
/// it: `os_prefix=a/`.
pub const OS_PREFIX: &str = "os_prefix=";

/// The artifact's first member: the [`UpdateManifest`] as JSON.
pub const MANIFEST: &str = "update.json";
/// Its second: the base64 ed25519ph signature of [`MANIFEST`]'s bytes, made with
/// `signing::SYSTEM_UPDATE_CONTEXT`.
pub const MANIFEST_SIG: &str = "update.json.sig";
/// The member of the root squashfs.
pub const ROOT_MEMBER: &str = "root.squashfs";
/// Boot files every slot gets the same (`boot/kernel8.img` goes to `<slot>/kernel8.img`).
pub const BOOT_PREFIX: &str = "boot/";
/// Boot files of one slot (its `cmdline.txt` names its own root partition):
/// `slot-b/cmdline.txt` goes to `b/cmdline.txt`, and only when slot b is written.
pub const SLOT_PREFIX: &str = "slot-";

/// The artifact format this build writes and this device reads.
pub const FORMAT: u32 = 1;

/// The device config's `[system]`: this image's identity and where its slots are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// The image's version (`image.version` in the recipe).
    pub version: String,
    /// The recipe's board (`rpi4`, `qemu-aarch64`, ...) and the image's architecture
    /// (`aarch64`, `x86_64`): an update for another is refused.
    pub board: String,
    pub arch: String,
    /// The FAT boot partition and the root partitions of slot a and b.
    pub boot_partuuid: String,
    pub root_partuuids: [String; 2],
    /// Each root partition's size: a bigger squashfs is refused.
    pub slot_bytes: u64,
    /// Room on the boot partition for one slot's boot files.
    pub boot_slot_bytes: u64,
    /// Take system updates over the API (`POST /v2/edgeimg/system/update`).
    #[serde(default)]
    pub updates: bool,
    /// The ed25519 public key an update's manifest must be signed with (world-readable).
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// Largest artifact accepted, in bytes.
    pub max_update_bytes: u64,
    /// Where init keeps [`SlotState`] (root's) and, in `inbox/`, the server stages an upload.
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
    /// A trial boot commits only if the server is READY (and its golden inference passed)
    /// within this many seconds of init starting it.
    #[serde(default = "default_commit_deadline")]
    pub commit_deadline_secs: u64,
    /// The server's start-up check on a trial boot: this model must answer the golden
    /// inference (inputs, and the outputs expected within tolerance) before it reports READY.
    #[serde(default)]
    pub golden_model: Option<String>,
    #[serde(default)]
    pub golden: Option<crate::GoldenCheck>,
}

pub const DEFAULT_STATE_DIR: &str = "/data/system";
pub const DEFAULT_COMMIT_DEADLINE_SECS: u64 = 180;

fn default_state_dir() -> String {
    DEFAULT_STATE_DIR.into()
}

fn default_commit_deadline() -> u64 {
    DEFAULT_COMMIT_DEADLINE_SECS
}

/// `<state_dir>/inbox/`: the server's (it runs unprivileged); it writes `incoming.partial` as
/// an upload arrives and renames it to [`STAGED`] once every byte checked out.
pub const INBOX: &str = "inbox";
/// The artifact init installs: `<state_dir>/inbox/staged.update`.
pub const STAGED: &str = "staged.update";
/// `<state_dir>/state.json`.
pub const STATE: &str = "state.json";

/// `update.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateManifest {
    pub format: u32,
    /// The recipe's `image.name`, `image.version`, board and architecture.
    pub name: String,
    pub version: String,
    pub board: String,
    pub arch: String,
    /// The disk it fits: the partitions its `cmdline.txt` files name.
    pub boot_partuuid: String,
    pub root_partuuids: [String; 2],
    /// Every member after the signature, in the artifact's order: [`ROOT_MEMBER`] first, then
    /// `boot/...` and `slot-a/...`, `slot-b/...`.
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// The tar member's path.
    pub name: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// `state.json`: which slot the device boots, any trial under way, and how the last update
/// ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SlotState {
    /// The slot that boots when nothing is on trial ("a" or "b").
    pub committed: String,
    /// The version in the committed slot.
    pub committed_version: String,
    /// An update init is writing into the other slot: still set at boot means the power
    /// failed mid-write, and that attempt is recorded as rolled back (never resumed).
    #[serde(default)]
    pub installing: Option<Installing>,
    #[serde(default)]
    pub trial: Option<Trial>,
    #[serde(default)]
    pub last_attempt: Option<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installing {
    pub slot: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    pub slot: String,
    pub version: String,
    /// Boots of the trial slot so far: a second one means the first never committed
    /// (a crash, a hang the watchdog ended, a power cut), and init rolls back.
    pub boots: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    pub version: String,
    pub outcome: Outcome,
    /// Why, in a sentence (empty when committed).
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Committed,
    RolledBack,
    /// The install failed before anything was switched (a bad artifact, a write that did not
    /// read back): the device never left its committed slot.
    Refused,
}

/// The other slot.
pub fn other_slot(slot: &str) -> &'static str {
    if slot == SLOTS[0] {
        SLOTS[1]
    } else {
        SLOTS[0]
    }
}

/// A slot's `config.txt` contents padded to [`CONFIG_TXT_BYTES`]: `body` (whose lines do not
/// set `os_prefix`), then `os_prefix=<slot>/`, then a comment to the length. `None` if `body`
/// is too long.
pub fn slot_config_txt(body: &str, slot: &str) -> Option<Vec<u8>> {
    let mut text = format!("{body}{OS_PREFIX}{slot}/\n");
    let pad_line = "# edgeimg pads this file to 512 bytes so a slot switch rewrites one sector\n";
    if text.len() + 2 > CONFIG_TXT_BYTES {
        return None;
    }
    text.push_str(&pad_line[..pad_line.len().min(CONFIG_TXT_BYTES - text.len() - 1)]);
    while text.len() < CONFIG_TXT_BYTES - 1 {
        text.push('#');
    }
    text.push('\n');
    Some(text.into_bytes())
}

/// The slot a `config.txt` boots: its last `os_prefix=X/` line.
pub fn booted_slot(config_txt: &str) -> Option<&str> {
    config_txt
        .lines()
        .filter_map(|l| l.trim().strip_prefix(OS_PREFIX))
        .next_back()
        .map(|p| p.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_configs_are_one_sector_and_name_their_slot() {
        let body = "arm_64bit=1\nkernel=kernel8.img\n";
        let a = slot_config_txt(body, "a").unwrap();
        let b = slot_config_txt(body, "b").unwrap();
        assert_eq!(a.len(), CONFIG_TXT_BYTES);
        assert_eq!(b.len(), CONFIG_TXT_BYTES);
        assert_eq!(booted_slot(std::str::from_utf8(&a).unwrap()), Some("a"));
        assert_eq!(booted_slot(std::str::from_utf8(&b).unwrap()), Some("b"));
        assert!(slot_config_txt(&"x".repeat(600), "a").is_none());
        assert_eq!(other_slot("a"), "b");
        assert_eq!(other_slot("b"), "a");
    }
}
