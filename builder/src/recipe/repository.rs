//! `[[alpine.repository]]`: a third-party Alpine repository at its own url, signed by its own
//! key, searched after the branch repositories.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThirdPartyRepository {
    /// The repository as apk names it, without the arch: an https URL or a folder (relative
    /// to the recipe) holding `<arch>/APKINDEX.tar.gz`.
    pub url: Spanned<String>,
    /// Its signing key (`NAME.rsa.pub`, named as its signatures name it).
    pub key: Option<Spanned<PathBuf>>,
    /// Several signing keys (e.g. during a key rotation).
    #[serde(default)]
    pub keys: Vec<Spanned<PathBuf>>,
    /// What the image's `/etc/apk/repositories` names for it (default: `url` when it is an
    /// https URL; a folder is left out, since a host path means nothing on the device).
    pub device_url: Option<Spanned<String>>,
}

impl ThirdPartyRepository {
    /// `key` and `keys` together.
    pub fn all_keys(&self) -> impl Iterator<Item = &Spanned<PathBuf>> {
        self.key.iter().chain(self.keys.iter())
    }
}

/// Each repository brings a key, and URLs are URLs.
pub(super) fn validate(
    loaded: &super::LoadedRecipe,
    repos: &[ThirdPartyRepository],
) -> Result<(), super::RecipeError> {
    for repo in repos {
        if repo.all_keys().next().is_none() {
            return Err(loaded.error_at(
                repo.url.span(),
                "alpine.repository.key",
                format!(
                    "repository {} has no key; add key = \"keys/NAME.rsa.pub\" (its signing key, named as in its signatures)",
                    repo.url.get_ref()
                ),
            ));
        }
        for (key, value) in [
            ("url", Some(&repo.url)),
            ("device_url", repo.device_url.as_ref()),
        ] {
            let Some(value) = value else { continue };
            let v = value.get_ref();
            if v.starts_with("http://") || (key == "device_url" && !v.starts_with("https://")) {
                return Err(loaded.error_at(
                    value.span(),
                    &format!("alpine.repository.{key}"),
                    format!(
                        "{v:?}: give an https:// URL{}",
                        if key == "url" {
                            " or a folder"
                        } else {
                            " (what the device fetches from)"
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}
