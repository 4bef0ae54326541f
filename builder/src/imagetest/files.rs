//! The files a recipe's checks name, as local paths: a path relative to the recipe, or a
//! pinned download (`{ url, sha256, member }`) fetched into the cache like a model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::model::fetch::ModelDownload;
use crate::packages::Progress;
use crate::recipe::{TestCase, TestFile};

/// `case` with each of its `files` a local path (downloads fetched and verified now) and every
/// `{ image = NAME }` input naming the local file of `files.NAME`.
pub fn localize(case: &TestCase, recipe_dir: &Path, cache_dir: &Path) -> Result<TestCase> {
    let mut files = BTreeMap::new();
    for (name, file) in &case.files {
        let path = local_file(file, recipe_dir, cache_dir)
            .with_context(|| format!("test {:?}, file {name:?}", case.name.get_ref()))?;
        files.insert(name.clone(), path);
    }
    let mut case = case.clone();
    for (input, value) in case.inputs.iter_mut() {
        let Some(image) = value.as_table_mut().and_then(|t| t.get_mut("image")) else {
            continue;
        };
        let path = image.as_str().and_then(|name| files.get(name)).with_context(|| {
            let names: Vec<&String> = files.keys().collect();
            format!(
                "test {:?}, input {input:?}: `image` names one of the test's `files` ({names:?}), e.g. files = {{ page = \"page.png\" }} and image = \"page\"",
                case.name.get_ref()
            )
        })?;
        *image = toml::Value::String(path.display().to_string());
    }
    case.files = files
        .into_iter()
        .map(|(name, path)| (name, TestFile::Path(path.display().to_string())))
        .collect();
    Ok(case)
}

fn local_file(file: &TestFile, recipe_dir: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let path = match file {
        TestFile::Path(path) => recipe_dir.join(path),
        TestFile::Download {
            url,
            sha256,
            member,
        } => {
            // A relative url is a file beside the recipe, as a model's is.
            let url = if url.contains("://") {
                url.clone()
            } else {
                recipe_dir.join(url).display().to_string()
            };
            let download = ModelDownload {
                url,
                sha256: sha256.to_ascii_lowercase(),
                member: member.clone(),
            };
            download.ensure(cache_dir, &Progress::auto())?
        }
    };
    if !path.is_file() {
        bail!("{} does not exist", path.display());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(toml_text: &str) -> TestCase {
        toml::from_str(&format!(
            "name = \"t\"\ncompare_onnxruntime = true\n{toml_text}"
        ))
        .unwrap()
    }

    #[test]
    fn an_image_input_names_a_file_of_the_test_which_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("page.png"), b"png").unwrap();
        let local = localize(
            &case("files = { page = \"page.png\" }\ninputs = { x = { image = \"page\" } }"),
            dir.path(),
            dir.path(),
        )
        .unwrap();
        let path = dir.path().join("page.png").display().to_string();
        assert_eq!(local.inputs["x"]["image"].as_str(), Some(path.as_str()));

        let error = localize(
            &case("files = { page = \"page.png\" }\ninputs = { x = { image = \"pgae\" } }"),
            dir.path(),
            dir.path(),
        )
        .unwrap_err();
        let error = format!("{error:#}");
        assert!(
            error.contains("input \"x\": `image` names one of the test's `files` ([\"page\"])"),
            "{error}"
        );

        let error = localize(
            &case("files = { page = \"gone.png\" }"),
            dir.path(),
            dir.path(),
        )
        .unwrap_err();
        let error = format!("{error:#}");
        assert!(
            error.contains("file \"page\"") && error.contains("gone.png does not exist"),
            "{error}"
        );
    }
}
