//! Recovers the packaged content of files the image changed after installation.
//!
//! The quicksand root was customised after apk installed it (a user added to /etc/passwd, root
//! locked in /etc/shadow, hostname and hosts emptied, /etc/mtab relinked). Alpine recorded each
//! file's SHA-1 in the installed database, so candidate originals can be checked exactly: a
//! candidate is used only when its checksum equals Alpine's record.

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// Alpine's checksum notation: `Q1` + base64 of the SHA-1.
pub fn apk_checksum(data: &[u8]) -> String {
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(Sha1::digest(data))
    )
}

/// Alpine 3.23 defaults of files images commonly overwrite; used only when the checksum matches.
const KNOWN_DEFAULTS: &[&[u8]] = &[
    b"localhost\n",
    b"127.0.0.1\tlocalhost localhost.localdomain\n::1\t\tlocalhost localhost.localdomain\n",
];

/// The original file content, if one of the candidates derived from `current` matches.
pub fn restore_file(current: &[u8], expected: &str) -> Option<Vec<u8>> {
    let lines: Vec<&[u8]> = current.split_inclusive(|&b| b == b'\n').collect();
    // Lines appended by adduser/addgroup or setup scripts: try every line prefix, and the same
    // with the root account unlocked again (Alpine ships root with an empty password field).
    let prefixes = (0..=lines.len()).map(|n| lines[..n].concat());
    let unlocked = (0..=lines.len()).filter_map(|n| {
        let text = lines[..n].concat();
        text.starts_with(b"root:*:")
            .then(|| [b"root::".as_slice(), &text[7..]].concat())
    });
    let defaults = KNOWN_DEFAULTS.iter().map(|d| d.to_vec());
    prefixes
        .chain(unlocked)
        .chain(defaults)
        .find(|c| apk_checksum(c) == expected)
}

/// The original symlink target, if the image replaced a relative link with an absolute one.
pub fn restore_symlink(path: &str, current: &str, expected: &str) -> Option<String> {
    let absolute = current.strip_prefix('/')?;
    let depth = path.matches('/').count();
    let relative = format!("{}{absolute}", "../".repeat(depth));
    (apk_checksum(relative.as_bytes()) == expected).then_some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_appended_lines_only_when_the_checksum_matches() {
        let original = b"root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/bin:/sbin/nologin\n";
        let changed = [
            original.as_slice(),
            b"quicksand:x:1000:1000::/home/q:/bin/sh\n",
        ]
        .concat();
        assert_eq!(
            restore_file(&changed, &apk_checksum(original)).as_deref(),
            Some(original.as_slice())
        );
        assert_eq!(
            restore_file(&changed, &apk_checksum(b"something else")),
            None
        );
    }

    #[test]
    fn unlocks_root_and_relativises_links() {
        let original = b"root:::0:::::\nbin:!::0:::::\n";
        let changed = b"root:*::0:::::\nbin:!::0:::::\nq:!:1::::::\n";
        assert_eq!(
            restore_file(changed, &apk_checksum(original)).as_deref(),
            Some(original.as_slice())
        );
        let expected = apk_checksum(b"../proc/mounts");
        assert_eq!(
            restore_symlink("etc/mtab", "/proc/mounts", &expected).as_deref(),
            Some("../proc/mounts")
        );
    }
}
