//! `[system_updates]`: A/B updates of the whole image (kernel, boot files, root), signed at
//! build time and installed by the device into its inactive slot; and the `[[test]]` kind
//! `system_update = { ... }` that proves it on a booted image.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{LoadedRecipe, OutputKind, RecipeError};

/// `[system_updates]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemUpdatesSection {
    /// The ed25519 public key (`edgeimg keygen`) an update must be signed with; relative to
    /// the recipe. The image carries it.
    pub public_key: Spanned<PathBuf>,
    /// Its secret key: the build signs `<name>.update` with it. Without it the build writes no
    /// `.update` (sign elsewhere and say so in CI).
    pub signing_key: Option<Spanned<PathBuf>>,
    /// A trial boot must reach READY, its golden inference passed, within this (default 180).
    pub commit_deadline_secs: Option<Spanned<u64>>,
}

/// `system_update = { set = { "image.version" = "2" }, expect = "committed" }`: this recipe,
/// with `set`'s keys replaced, built as an update and installed on the booted device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemUpdateCheck {
    /// Dotted recipe keys and their new values.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    pub expect: SystemUpdateVerdict,
    /// Kill QEMU (a power cut) at this point of the update instead of letting it finish.
    pub kill: Option<KillPoint>,
    /// Damage the built artifact before pushing it, as a bad link or a bad disk would.
    pub tamper: Option<Tamper>,
    /// Sign it with a key made for the check alone, which the device does not trust.
    #[serde(default)]
    pub wrong_key: bool,
    /// With `expect = "refused"`: words the device's refusal must contain.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tamper {
    /// Only its first half is sent.
    Truncated,
    /// One byte in the middle of its root squashfs is flipped.
    Corrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemUpdateVerdict {
    /// The new version serves; `/data` kept.
    Committed,
    /// The device comes back on the version it ran, reporting the failed attempt.
    RolledBack,
    /// Refused at upload; nothing written, the same version serving.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KillPoint {
    /// While init writes the inactive slot.
    MidWrite,
    /// During the trial boot, before it commits.
    Trial,
}

pub(super) fn validate(loaded: &LoadedRecipe) -> Result<(), RecipeError> {
    let r = &loaded.recipe;
    let Some(updates) = &r.system_updates else {
        if let Some(test) = r.tests.iter().find(|t| t.system_update.is_some()) {
            return Err(loaded.error_at(
                test.name.span(),
                "test.system_update",
                "the device takes no system updates; add a [system_updates] section",
            ));
        }
        return Ok(());
    };
    let disk = r
        .image
        .outputs
        .as_ref()
        .map_or(r.image.board.profile().disk_boot, |o| {
            o.contains(&OutputKind::Disk) || o.contains(&OutputKind::Qcow2)
        });
    if !disk {
        return Err(loaded.error_at(
            updates.public_key.span(),
            "system_updates",
            "A/B updates need the two root slots of a disk image; add \"disk\" to image.outputs",
        ));
    }
    let r = &r.runtime;
    if r.bearer_token.is_none() && r.bearer_token_file.is_none() && r.bearer_token_env.is_none() {
        return Err(loaded.error_at(
            updates.public_key.span(),
            "system_updates",
            "a system update replaces everything the device runs, so the API must want a token; add runtime.bearer_token_file = \"secrets/api-token\"",
        ));
    }
    if let Some(deadline) = &updates.commit_deadline_secs {
        if !(10..=3600).contains(deadline.get_ref()) {
            return Err(loaded.error_at(
                deadline.span(),
                "system_updates.commit_deadline_secs",
                "give 10 to 3600 seconds: long enough for the slowest boot to READY",
            ));
        }
    }
    for test in &loaded.recipe.tests {
        let Some(check) = &test.system_update else {
            continue;
        };
        if test.update.is_some()
            || test.load.is_some()
            || test.attack.is_some()
            || test.reboot.is_some()
        {
            return Err(loaded.error_at(
                check.span(),
                "test.system_update",
                "a system update test is one check; make the others their own [[test]]",
            ));
        }
        let c = check.get_ref();
        if c.kill.is_some() && c.expect != SystemUpdateVerdict::RolledBack {
            return Err(loaded.error_at(
                check.span(),
                "test.system_update",
                "a power cut mid-update ends on the old version: expect = \"rolled-back\"",
            ));
        }
        let refused = c.expect == SystemUpdateVerdict::Refused;
        if (c.tamper.is_some() || c.reason.is_some() || c.wrong_key) && !refused {
            return Err(loaded.error_at(
                check.span(),
                "test.system_update",
                "a damaged or wrongly signed update, or a refusal's reason, means the device refuses it: expect = \"refused\"",
            ));
        }
        for key in c.set.keys() {
            // Another board's update is only built to be refused.
            let fixed = key == "image.name" || (key == "image.board" && !refused);
            if key.split('.').any(str::is_empty) || fixed {
                return Err(loaded.error_at(
                    check.span(),
                    "test.system_update.set",
                    format!("{key:?} cannot be set: an update is built from the same device's recipe (same image.name and board), other keys changed; image.board only with expect = \"refused\""),
                ));
            }
        }
    }
    Ok(())
}

/// The recipe text with `set`'s dotted keys replaced: the update a check builds.
pub fn with_keys_set(text: &str, set: &BTreeMap<String, toml::Value>) -> Result<String, String> {
    let mut doc: toml::Table = text.parse().map_err(|e| format!("the recipe: {e}"))?;
    for (key, value) in set {
        let parts: Vec<&str> = key.split('.').collect();
        let (last, path) = parts.split_last().expect("split gives one part at least");
        let mut table = &mut doc;
        for part in path {
            let next = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match next {
                toml::Value::Table(t) => t,
                // `[[model]]`: the first one, as the single `[model]` form reads.
                toml::Value::Array(a) => match a.first_mut() {
                    Some(toml::Value::Table(t)) => t,
                    _ => return Err(format!("{key}: {part} is not a table")),
                },
                _ => return Err(format!("{key}: {part} is not a table")),
            };
        }
        table.insert(last.to_string(), value.clone());
    }
    Ok(toml::to_string(&doc).expect("a TOML table serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_check_key_is_named_by_the_path_the_author_wrote() {
        let text = "[image]\nname = \"x\"\nboard = \"qemu-aarch64\"\n[model]\npath = \"m.onnx\"\n\
            [[test]]\nname = \"t\"\nsystem_update = { expect = \"refused\", wrong_kee = true }\n";
        let e = LoadedRecipe::parse(std::path::Path::new("r.toml"), text.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test[0].system_update.wrong_kee: unknown key"),
            "{e}"
        );
        assert!(!e.contains("serde"), "{e}");
    }

    #[test]
    fn set_replaces_nested_keys_and_keeps_the_rest() {
        let text = "[image]\nname = \"x\"\n[runtime]\nlisten = \"0.0.0.0:8000\"\n[[model]]\npath = \"m.onnx\"\n";
        let set = BTreeMap::from([
            ("image.version".to_string(), toml::Value::String("2".into())),
            (
                "runtime.listen".to_string(),
                toml::Value::String("0.0.0.0:80".into()),
            ),
            (
                "model.path".to_string(),
                toml::Value::String("n.onnx".into()),
            ),
        ]);
        let out: toml::Table = with_keys_set(text, &set).unwrap().parse().unwrap();
        assert_eq!(out["image"]["name"].as_str(), Some("x"));
        assert_eq!(out["image"]["version"].as_str(), Some("2"));
        assert_eq!(out["runtime"]["listen"].as_str(), Some("0.0.0.0:80"));
        assert_eq!(out["model"][0]["path"].as_str(), Some("n.onnx"));
    }
}
