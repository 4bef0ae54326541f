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

#[cfg(test)]
mod tests {
    use super::super::LoadedRecipe;
    use std::path::Path;

    fn with_alpine(alpine: &str) -> Result<LoadedRecipe, String> {
        let text = format!("[image]\nname = \"x\"\nboard = \"qemu-x86_64\"\n\n[alpine]\n{alpine}");
        LoadedRecipe::parse(Path::new("r.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn repository_mistakes_name_the_line_and_the_fix() {
        let repo = "[[alpine.repository]]\nurl = \"https://v.example/alpine\"\n";
        let err = with_alpine(repo).unwrap_err();
        assert!(
            err.contains("r.toml:7") && err.contains("add key = \"keys/NAME.rsa.pub\""),
            "{err}"
        );
        let err = with_alpine(
            "[[alpine.repository]]\nurl = \"http://v.example/alpine\"\nkey = \"v.rsa.pub\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("alpine.repository.url")
                && err.contains("give an https:// URL or a folder"),
            "{err}"
        );
        let err = with_alpine(
            "[[alpine.repository]]\nurl = \"vendor\"\nkey = \"v.rsa.pub\"\ndevice_url = \"/srv/vendor\"\n",
        )
        .unwrap_err();
        assert!(err.contains("alpine.repository.device_url"), "{err}");
        let err = with_alpine("device_mirror = \"/srv/mirror\"\n").unwrap_err();
        assert!(
            err.contains("alpine.device_mirror") && err.contains("https://dl-cdn.alpinelinux.org"),
            "{err}"
        );
        let ok = with_alpine(
            "[[alpine.repository]]\nurl = \"vendor\"\nkeys = [\"a.rsa.pub\", \"b.rsa.pub\"]\n",
        )
        .unwrap();
        assert_eq!(ok.recipe.alpine.third_party[0].all_keys().count(), 2);
    }
}
