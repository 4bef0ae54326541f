//! Install scripts and triggers that apk-tools keeps beside the installed database.

use crate::package::Script;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

/// Scripts keyed by `<name>-<version>`, read from `lib/apk/db/scripts.tar[.gz]`.
/// Members are named `<name>-<version>.<identity>.<action>`.
pub fn read_scripts(db_dir: &Path) -> Result<HashMap<String, Vec<Script>>> {
    let mut scripts: HashMap<String, Vec<Script>> = HashMap::new();
    let (path, gzipped) = if db_dir.join("scripts.tar.gz").is_file() {
        (db_dir.join("scripts.tar.gz"), true)
    } else if db_dir.join("scripts.tar").is_file() {
        (db_dir.join("scripts.tar"), false)
    } else {
        return Ok(scripts);
    };
    let file = fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive
        .entries()
        .with_context(|| format!("reading {}", path.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading {}", path.display()))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let Some((rest, action)) = name.rsplit_once('.') else {
            continue;
        };
        let Some((name_version, _identity)) = rest.rsplit_once('.') else {
            continue;
        };
        let mut body = Vec::new();
        entry.read_to_end(&mut body)?;
        scripts
            .entry(name_version.to_owned())
            .or_default()
            .push(Script {
                action: action.to_owned(),
                body,
            });
    }
    Ok(scripts)
}

/// Trigger paths keyed by package identity (`C:`), read from `lib/apk/db/triggers`.
pub fn read_triggers(db_dir: &Path) -> Result<HashMap<String, Vec<String>>> {
    let path = db_dir.join("triggers");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let identity = words.next()?.to_owned();
            Some((identity, words.map(str::to_owned).collect()))
        })
        .collect())
}
