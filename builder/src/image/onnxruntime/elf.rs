//! What a dynamically linked ELF file asks the loader for: its interpreter and `DT_NEEDED`.

use std::path::Path;

use anyhow::{Context, Result};
use goblin::elf::Elf;

fn parse<T>(path: &Path, read: impl FnOnce(&Elf) -> T) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let elf =
        Elf::parse(&bytes).with_context(|| format!("{} is not an ELF file", path.display()))?;
    Ok(read(&elf))
}

/// The `PT_INTERP` path, if the file has one.
pub fn interpreter(path: &Path) -> Result<Option<String>> {
    parse(path, |elf| elf.interpreter.map(str::to_string))
}

/// The shared objects the file names in `DT_NEEDED`.
pub fn needed(path: &Path) -> Result<Vec<String>> {
    parse(path, |elf| {
        elf.libraries.iter().map(|l| l.to_string()).collect()
    })
}
