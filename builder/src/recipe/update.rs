//! `update = { ... }` checks: a new model uploaded to the booted device through its repository
//! API, and what the device must do with it.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{LoadedRecipe, RecipeError};

/// `update = { model = "new.onnx", expect = "committed", key = "secrets/models.key",
/// clients = 4 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCheck {
    /// The new ONNX file, relative to the recipe; its dims are frozen as `[model].inputs` says,
    /// as the build does for the image's own model.
    pub model: PathBuf,
    /// What the device must do with it.
    pub expect: UpdateVerdict,
    /// Sign the upload with this secret key (`edgeimg keygen`), relative to the recipe.
    pub key: Option<PathBuf>,
    /// Sign it with a key made for this test alone, which the device does not know.
    #[serde(default)]
    pub wrong_key: bool,
    /// Upload the first half of the file only: a corrupt model.
    #[serde(default)]
    pub corrupt: bool,
    /// Clients asking the test's inputs again and again during the upload; none may fail.
    #[serde(default)]
    pub clients: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateVerdict {
    /// Checked and serving, in place of the old version.
    Committed,
    /// Refused with a reason; the old version still serving, answering as before.
    Refused,
}

const MAX_CLIENTS: usize = 64;

pub(super) fn validate(
    loaded: &LoadedRecipe,
    update: &Spanned<UpdateCheck>,
) -> Result<(), RecipeError> {
    let u = update.get_ref();
    let problem = if !loaded
        .recipe
        .runtime
        .model_updates
        .as_ref()
        .is_some_and(|on| *on.get_ref())
    {
        Some("the device takes no updates; add runtime.model_updates = true".to_string())
    } else if u.key.is_some() && u.wrong_key {
        Some("give `key` or `wrong_key`, not both".into())
    } else if u.clients > MAX_CLIENTS {
        Some(format!(
            "clients = {} is out of range; use 0 to {MAX_CLIENTS}",
            u.clients
        ))
    } else if u.expect == UpdateVerdict::Committed && (u.corrupt || u.wrong_key) {
        Some("a corrupt or wrongly signed model cannot be committed; expect = \"refused\"".into())
    } else {
        None
    };
    match problem {
        Some(msg) => Err(loaded.error_at(update.span(), "test.update", msg)),
        None => Ok(()),
    }
}

/// `reboot = "clean"` or `reboot = "kill-mid-upload"`: the device is restarted, and must come
/// back serving the version it served before, answering the test's inputs as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebootCheck {
    /// Powered off cleanly and booted again.
    Clean,
    /// QEMU killed (a power cut) while half a model upload has reached the device.
    KillMidUpload,
}

pub(super) fn validate_reboot(
    loaded: &LoadedRecipe,
    reboot: &Spanned<RebootCheck>,
) -> Result<(), RecipeError> {
    let updates = loaded
        .recipe
        .runtime
        .model_updates
        .as_ref()
        .is_some_and(|on| *on.get_ref());
    if *reboot.get_ref() == RebootCheck::KillMidUpload && !updates {
        return Err(loaded.error_at(
            reboot.span(),
            "test.reboot",
            "kill-mid-upload needs a device that takes uploads; add runtime.model_updates = true",
        ));
    }
    Ok(())
}
