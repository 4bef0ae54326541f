use std::io;

/// Why an artifact was refused: each message names the problem and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The tar itself (a bad header, an early end) or, rarely, the file it is read from.
    #[error("the update is not a readable tar ({0}): upload the whole <name>.update file again")]
    Io(#[source] io::Error),
    #[error("this is not an edgeimg system update (its first member is {found:?}, not update.json): upload the <name>.update file that `edgeimg build` wrote")]
    NotAnUpdate { found: String },
    #[error("the update has no {member}: it is truncated or not an edgeimg system update; upload the whole <name>.update file again")]
    MissingHeader { member: &'static str },
    #[error("the update's {member} is larger than {limit} bytes: it was not written by `edgeimg build`; rebuild it")]
    HeaderTooBig { member: &'static str, limit: u64 },
    #[error("the update's signature is unreadable ({0}): rebuild the update with `edgeimg build`")]
    BadSignatureText(String),
    #[error("the update's signature does not verify with this device's public key: sign it with the secret key whose public half this device was built with (system.public_key_file)")]
    BadSignature,
    #[error("the update's update.json is not valid ({0}): rebuild it with this version of `edgeimg build`")]
    BadManifest(String),
    #[error("the update is format {found}, this device reads format {expected}: build it with an edgeimg of the device's generation")]
    Format { found: u32, expected: u32 },
    #[error("the update is for board {update}, this device is {device}: build it from this device's recipe")]
    Board { update: String, device: String },
    #[error("the update is for architecture {update}, this device is {device}: build it from this device's recipe")]
    Arch { update: String, device: String },
    #[error("the update is for another disk (its partitions {update}, this device's {device}): build it from the recipe this device's card was built from, with its partition ids")]
    Disk { update: String, device: String },
    #[error(
        "the update's part {0:?} has a name no update may use: rebuild it with `edgeimg build`"
    )]
    BadPartName(String),
    #[error("the update lists {0:?} twice: rebuild it with `edgeimg build`")]
    DuplicatePart(String),
    #[error(
        "the update's first part is {found:?}, not root.squashfs: rebuild it with `edgeimg build`"
    )]
    RootNotFirst { found: Option<String> },
    #[error("the update's root.squashfs is {size} bytes, a root slot of this device holds {slot_bytes}: make the image smaller, or reflash with larger slots")]
    RootTooBig { size: u64, slot_bytes: u64 },
    #[error("the update's boot files for slot {slot} take {size} bytes, this device has room for {room}: drop boot files, or reflash with a larger boot partition")]
    BootTooBig {
        slot: &'static str,
        size: u64,
        room: u64,
    },
    #[error("the update's member {found:?} came where {expected:?} was due: rebuild it with `edgeimg build`")]
    OutOfOrder { expected: String, found: String },
    #[error("the update's member {0:?} is not a regular file: rebuild it with `edgeimg build`")]
    NotAFile(String),
    #[error("the update ends before its part {0:?}: it is truncated; upload the whole file again")]
    MissingPart(String),
    #[error(
        "the update holds {0:?}, which update.json does not list: rebuild it with `edgeimg build`"
    )]
    Unexpected(String),
    #[error("the update's part {part:?} holds {got} bytes, update.json says {expected}: it is truncated or corrupt; upload the whole file again")]
    Size {
        part: String,
        got: u64,
        expected: u64,
    },
    #[error("the update's part {part:?} does not match its sha256 in update.json: it is corrupt; upload it again")]
    Digest { part: String },
    #[error("storing the update's part {part:?} failed: {source}")]
    Sink {
        part: String,
        #[source]
        source: io::Error,
    },
}

/// Whose fault a refusal is, for the server's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The bytes are not a well-formed update (400).
    Malformed,
    /// Not signed with this device's key (403).
    Unsigned,
    /// Well formed and signed, but not for this device (422).
    Unsuitable,
    /// Storing a part failed on this side (500).
    Local,
}

impl ArtifactError {
    pub fn class(&self) -> ErrorClass {
        use ArtifactError::*;
        match self {
            Sink { .. } => ErrorClass::Local,
            BadSignatureText(_) | BadSignature => ErrorClass::Unsigned,
            Format { .. }
            | Board { .. }
            | Arch { .. }
            | Disk { .. }
            | RootTooBig { .. }
            | BootTooBig { .. } => ErrorClass::Unsuitable,
            _ => ErrorClass::Malformed,
        }
    }
}
