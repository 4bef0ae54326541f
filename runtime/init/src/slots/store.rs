//! `state.json` on the data partition: read, and replaced whole so a power cut leaves the old
//! or the new one (temporary file, fsync, rename, fsync of the folder).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use edge_config::system::SlotState;

/// The state in `path`; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> io::Result<Option<SlotState>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a slot state ({e})", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `state`, durably, before returning.
pub fn save(path: &Path, state: &SlotState) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("json.new");
    let mut file = File::create(&temporary)?;
    file.write_all(&serde_json::to_vec_pretty(state).map_err(io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_none_is_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("system/state.json");
        assert_eq!(load(&path).unwrap(), None);
        let state = SlotState {
            committed: "b".into(),
            committed_version: "2".into(),
            ..SlotState::default()
        };
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state));
        assert!(!path.with_extension("json.new").exists());
        std::fs::write(&path, "{").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .to_string()
            .contains("not a slot state"));
    }
}
