use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read recipe {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `file:line:col: key: message`, then the offending line with a caret.
    #[error("{location}: {key}: {message}\n{snippet}")]
    Invalid {
        location: String,
        key: String,
        message: String,
        snippet: String,
    },
}

impl RecipeError {
    pub fn invalid(
        path: &Path,
        text: &str,
        span: Range<usize>,
        key: &str,
        message: String,
    ) -> Self {
        let (line, col) = line_col(text, span.start);
        let line_text = text.lines().nth(line - 1).unwrap_or("");
        let width = span
            .len()
            .clamp(1, line_text.len().saturating_sub(col - 1).max(1));
        let snippet = format!(
            "{line:>4} | {line_text}\n     | {}{}",
            " ".repeat(col - 1),
            "^".repeat(width)
        );
        RecipeError::Invalid {
            location: format!("{}:{line}:{col}", path.display()),
            key: if key.is_empty() {
                "(top level)".into()
            } else {
                key.into()
            },
            message,
            snippet,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// Deserialize strictly, keeping the key path and the span of whatever was wrong.
pub(super) fn deserialize<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, RecipeError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        // `toml::Spanned` deserializes through a private field the author never wrote.
        let key = err
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let inner = err.into_inner();
        let span = inner.span().unwrap_or(0..0);
        let key = if key == "." { String::new() } else { key };
        RecipeError::invalid(path, text, span, &key, explain(inner.message()))
    })
}

/// serde's messages talk about "variants" and "fields"; say it the way a recipe author thinks.
fn explain(message: &str) -> String {
    let accepted = if message.starts_with("unknown field") {
        "accepted keys here are"
    } else {
        "accepted values are"
    };
    message
        .replace("unknown variant", "unknown value")
        .replace("unknown field", "unknown key")
        .replace("expected one of", accepted)
        .replace("missing field", "missing required key")
}
