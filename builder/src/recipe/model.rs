//! The recipe's models: one `[model]` table or several `[[model]]` entries, each a local file
//! (`path`) or a download (`url` + `sha256`, with `member` for a file inside a wheel, zip or tar).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// ONNX file, relative to the recipe.
    pub path: Option<Spanned<PathBuf>>,
    /// Where to download the model (or the archive holding it): https or a local folder's file.
    pub url: Option<Spanned<String>>,
    /// The file inside the downloaded wheel, zip or tar (`.tar`, `.tar.gz`, `.tgz`).
    pub member: Option<Spanned<String>>,
    /// Name clients use in `/v2/models/{name}` (default: the file stem).
    pub name: Option<Spanned<String>>,
    /// Expected sha256 of the file (of the download, with `url`); the build stops if it differs.
    pub sha256: Option<Spanned<String>>,
    /// Concrete shapes for inputs with symbolic dimensions, e.g. `x = [1, 16]`.
    #[serde(default)]
    pub inputs: BTreeMap<String, Vec<i64>>,
}

impl ModelSection {
    /// The span errors about this entry point at: its source key.
    pub fn span(&self) -> std::ops::Range<usize> {
        self.path
            .as_ref()
            .map(Spanned::span)
            .or_else(|| self.url.as_ref().map(Spanned::span))
            .unwrap_or(0..0)
    }
}

/// `[model]` (one table) or `[[model]]` (an array of them): both read as a list. Written by
/// hand because an untagged enum would buffer the table and lose `Spanned`'s positions.
pub(super) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ModelSection>, D::Error> {
    struct OneOrMany;
    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<ModelSection>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a [model] table or [[model]] entries")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            ModelSection::deserialize(de::value::MapAccessDeserializer::new(map)).map(|m| vec![m])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut models = Vec::new();
            while let Some(m) = seq.next_element()? {
                models.push(m);
            }
            Ok(models)
        }
    }
    d.deserialize_any(OneOrMany)
}

/// What serde cannot check: one source per model, a pinned download, unique names.
pub(super) fn validate(
    loaded: &super::LoadedRecipe,
    models: &[ModelSection],
) -> Result<(), super::RecipeError> {
    let mut names = Vec::new();
    for m in models {
        match (&m.path, &m.url) {
            (Some(_), Some(url)) => {
                return Err(loaded.error_at(
                    url.span(),
                    "model.url",
                    "give either `path` (a file here) or `url` (a download), not both",
                ))
            }
            (None, None) => {
                return Err(loaded.error_at(
                    m.name.as_ref().map_or(0..0, Spanned::span),
                    "model",
                    "a model needs `path` (an ONNX file, relative to the recipe) or `url` + `sha256` (a download)",
                ))
            }
            (None, Some(url)) if m.sha256.is_none() => {
                return Err(loaded.error_at(
                    url.span(),
                    "model.sha256",
                    format!(
                        "a downloaded model must be pinned: add sha256 = \"...\" (of the file at {}, `sha256sum FILE`)",
                        url.get_ref()
                    ),
                ))
            }
            _ => {}
        }
        if let (Some(member), None) = (&m.member, &m.url) {
            return Err(loaded.error_at(
                member.span(),
                "model.member",
                "`member` names a file inside a downloaded archive; it needs `url`",
            ));
        }
        if let Some(sha) = &m.sha256 {
            let s = sha.get_ref();
            if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(loaded.error_at(
                    sha.span(),
                    "model.sha256",
                    format!("{s:?} is not a sha256; give 64 hex digits (`sha256sum MODEL`)"),
                ));
            }
        }
        if let Some(name) = &m.name {
            let n = name.get_ref();
            let valid = !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !n.starts_with('.');
            if !valid {
                return Err(loaded.error_at(
                    name.span(),
                    "model.name",
                    format!("{n:?} is not a model name; use 1-64 letters, digits, '-', '_' or '.' (it is part of the API's URLs)"),
                ));
            }
        }
        let name = default_name(m);
        if names.contains(&name) {
            return Err(loaded.error_at(
                m.name.as_ref().map_or(m.span(), Spanned::span),
                "model.name",
                format!("two models are named {name:?}; give each [[model]] its own `name`"),
            ));
        }
        names.push(name);
    }
    Ok(())
}

/// The model's name: `name`, else the stem of its file (the member's, for archives).
pub fn default_name(m: &ModelSection) -> String {
    if let Some(name) = &m.name {
        return name.get_ref().clone();
    }
    let file = match (&m.path, &m.member, &m.url) {
        (Some(p), _, _) => p.get_ref().to_string_lossy().into_owned(),
        (None, Some(member), _) => member.get_ref().clone(),
        (None, None, Some(url)) => url.get_ref().clone(),
        _ => String::new(),
    };
    let base = file.rsplit('/').next().unwrap_or_default();
    match std::path::Path::new(base).file_stem() {
        Some(stem) => stem.to_string_lossy().into_owned(),
        None => "model".into(),
    }
}

/// A check names a model the image serves; with several models it must name one.
pub(super) fn validate_test_model(
    loaded: &super::LoadedRecipe,
    models: &[ModelSection],
    test: &super::TestCase,
) -> Result<(), super::RecipeError> {
    let names: Vec<String> = models.iter().map(default_name).collect();
    match &test.model {
        Some(m) if !names.contains(m.get_ref()) => Err(loaded.error_at(
            m.span(),
            "test.model",
            format!(
                "test {:?} asks model {:?}, which the recipe does not serve; its models are {names:?}",
                test.name.get_ref(),
                m.get_ref()
            ),
        )),
        None if names.len() > 1 && (!test.inputs.is_empty() || !test.expect.is_empty()) => {
            Err(loaded.error_at(
                models[0].span(),
                "test.model",
                format!(
                    "test {:?} does not say which model it asks, and the image serves {names:?}; add model = \"NAME\" to it",
                    test.name.get_ref()
                ),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::LoadedRecipe;
    use std::path::Path;

    fn parse(models: &str, tests: &str) -> Result<LoadedRecipe, String> {
        let text = format!("[image]\nname = \"x\"\nboard = \"qemu-x86_64\"\n\n{models}\n{tests}");
        LoadedRecipe::parse(Path::new("r.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn one_model_table_and_an_array_of_models_both_parse() {
        let one = parse("[model]\npath = \"m.onnx\"\n", "").unwrap();
        assert_eq!(one.recipe.models.len(), 1);
        assert_eq!(super::default_name(&one.recipe.models[0]), "m");
        let two = parse(
            "[[model]]\npath = \"a.onnx\"\n\n[[model]]\nname = \"det\"\nurl = \"https://h/p.whl\"\nsha256 = \"{}\"\nmember = \"p/models/det.onnx\"\n"
                .replace("{}", &"ab".repeat(32))
                .as_str(),
            "[[test]]\nname = \"t\"\nmodel = \"det\"\ninputs = { x = { random = 1 } }\ncompare_onnxruntime = true\n",
        )
        .unwrap();
        let names: Vec<String> = two.recipe.models.iter().map(super::default_name).collect();
        assert_eq!(names, ["a", "det"]);
    }

    #[test]
    fn model_mistakes_name_the_line_and_the_fix() {
        let err = parse("[model]\nurl = \"https://h/m.onnx\"\n", "").unwrap_err();
        assert!(
            err.contains("r.toml:6") && err.contains("must be pinned"),
            "{err}"
        );
        let err = parse("[model]\npath = \"m.onnx\"\nmember = \"x\"\n", "").unwrap_err();
        assert!(err.contains("it needs `url`"), "{err}");
        let err = parse(
            "[[model]]\npath = \"a/m.onnx\"\n[[model]]\npath = \"b/m.onnx\"\n",
            "",
        )
        .unwrap_err();
        assert!(err.contains("two models are named \"m\""), "{err}");
        let err = parse(
            "[[model]]\npath = \"a.onnx\"\n[[model]]\npath = \"b.onnx\"\n",
            "[[test]]\nname = \"t\"\ninputs = { x = { random = 1 } }\ncompare_onnxruntime = true\n",
        )
        .unwrap_err();
        assert!(err.contains("add model = \"NAME\""), "{err}");
        let err = parse(
            "[model]\npath = \"a.onnx\"\n",
            "[[test]]\nname = \"t\"\nmodel = \"b\"\ninputs = { x = { random = 1 } }\ncompare_onnxruntime = true\n",
        )
        .unwrap_err();
        assert!(err.contains("which the recipe does not serve"), "{err}");
        let updates = "[runtime]\nmodel_updates = true\nbearer_token_env = \"T\"\n";
        parse("[model]\npath = \"a.onnx\"\n", updates).unwrap();
        let err = parse(
            "[[model]]\npath = \"a.onnx\"\n[[model]]\npath = \"b.onnx\"\n",
            updates,
        )
        .unwrap_err();
        assert!(
            err.contains("runtime.model_updates") && err.contains("serves 2 models"),
            "{err}"
        );
    }
}
