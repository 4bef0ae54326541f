//! The offline Alpine mirror (`tests/mirror.sh`): real Alpine 3.23 packages signed by a key of
//! its own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::project_root;

pub struct Mirror {
    pub dir: PathBuf,
    /// The mirror's public key, to trust explicitly.
    pub key: PathBuf,
}

/// The offline mirror: from `EDGEIMG_ALPINE_MIRROR`/`EDGEIMG_ALPINE_KEYS` when the test
/// script exported them, else built (or reused) by `tests/mirror.sh`.
pub fn mirror() -> &'static Mirror {
    static MIRROR: OnceLock<Mirror> = OnceLock::new();
    MIRROR.get_or_init(|| {
        if let (Ok(dir), Ok(key)) = (
            std::env::var("EDGEIMG_ALPINE_MIRROR"),
            std::env::var("EDGEIMG_ALPINE_KEYS"),
        ) {
            return Mirror {
                dir: dir.into(),
                key: key.split(':').next().unwrap_or_default().into(),
            };
        }
        let out = Command::new(project_root().join("tests/mirror.sh"))
            .output()
            .expect("run tests/mirror.sh");
        assert!(
            out.status.success(),
            "tests/mirror.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("tests/mirror.sh prints text");
        let value = |var: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {var}='")))
                .map(|v| v.trim_end_matches('\'').to_string())
                .unwrap_or_else(|| panic!("tests/mirror.sh did not print {var}"))
        };
        Mirror {
            dir: value("EDGEIMG_ALPINE_MIRROR").into(),
            key: value("EDGEIMG_ALPINE_KEYS").into(),
        }
    })
}
