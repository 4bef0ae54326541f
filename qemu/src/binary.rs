//! Finding a QEMU system emulator that has the board's machine.
//!
//! Debian 12's QEMU 7.2 has every machine but `raspi4b` (QEMU 9.0 and later). `tests/setup.sh`
//! unpacks bookworm-backports' QEMU 10 into the edgeimg cache (`qemu/bin/`) beside the system's,
//! which stays for the other boards; a QEMU on PATH that has the machine is used first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::board::{Arch, MachineProfile};
use crate::error::{Error, Result};

/// Where, under the edgeimg cache, `tests/setup.sh` puts its QEMU's launchers.
pub const CACHED_QEMU_DIR: &str = "qemu/bin";

/// The `qemu-system-*` binary for `arch` on PATH, or an error saying how to install it.
pub fn find_qemu(arch: Arch) -> Result<PathBuf> {
    let binary = arch.qemu_binary();
    which::which(binary).map_err(|_| Error::QemuNotFound {
        binary: binary.to_string(),
    })
}

/// The first QEMU for the board's architecture that has its machine: the one on PATH, then
/// the one in the edgeimg cache (`$EDGEIMG_CACHE`'s, then the default one's).
pub fn find_qemu_for(profile: &MachineProfile) -> Result<PathBuf> {
    let binary = profile.arch().qemu_binary();
    let mut candidates: Vec<PathBuf> = which::which(binary).into_iter().collect();
    for cache in [edge_config::cache_dir(), edge_config::default_cache_dir()]
        .into_iter()
        .flatten()
    {
        let cached = cache.join(CACHED_QEMU_DIR).join(binary);
        if cached.is_file() && !candidates.contains(&cached) {
            candidates.push(cached);
        }
    }
    if candidates.is_empty() {
        return Err(Error::QemuNotFound {
            binary: binary.to_string(),
        });
    }
    let mut tried = Vec::new();
    for qemu in candidates {
        match machines(&qemu) {
            Ok(list) if list.iter().any(|m| m == profile.machine) => return Ok(qemu),
            Ok(_) => tried.push(qemu.display().to_string()),
            Err(why) => tried.push(format!("{} ({why})", qemu.display())),
        }
    }
    Err(Error::MachineMissing {
        machine: profile.machine.to_string(),
        tried: tried.join(", "),
    })
}

/// The machines `qemu -M help` lists, asked once per binary.
fn machines(qemu: &Path) -> Result<Vec<String>, String> {
    static KNOWN: Mutex<Option<HashMap<PathBuf, Vec<String>>>> = Mutex::new(None);
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(list) = known.get_or_insert_with(HashMap::new).get(qemu) {
        return Ok(list.clone());
    }
    let output = Command::new(qemu)
        .args(["-M", "help"])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    let list = parse_machine_list(&String::from_utf8_lossy(&output.stdout));
    known
        .get_or_insert_with(HashMap::new)
        .insert(qemu.to_path_buf(), list.clone());
    Ok(list)
}

/// `-M help` prints a header, then one machine per line: its name, then its description.
pub fn parse_machine_list(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Supported machines"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_machine_names() {
        let text = "Supported machines are:\nraspi3b              Raspberry Pi 3B (revision 1.2)\nraspi4b              Raspberry Pi 4B (revision 1.5)\nvirt                 QEMU 10.0 ARM Virtual Machine (alias of virt-10.0)\nnone                 empty machine\n";
        assert_eq!(
            parse_machine_list(text),
            ["raspi3b", "raspi4b", "virt", "none"]
        );
    }
}
