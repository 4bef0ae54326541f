//! Stage 1: the recipe, a TOML file a user writes. Parsed strictly (`deny_unknown_fields`) and
//! validated; every error names the file, line:column, the key, the bad value and the fix.

mod attack;
mod board;
mod error;
mod model;
mod repository;
mod runtime;
mod schema;
mod system_updates;
mod update;
mod values;

pub use board::{Board, BoardModule, BoardProfile};
pub use error::RecipeError;
pub use model::default_name as model_name;
pub use schema::*;
pub use system_updates::with_keys_set;
pub use values::{flatten_numbers, input_values};

use std::path::{Path, PathBuf};

/// The folder of the recipe at `path`, which its relative paths are relative to.
pub fn recipe_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A parsed, validated recipe and where it came from (relative paths in it are resolved
/// against the recipe's folder).
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub path: PathBuf,
    pub text: String,
    pub recipe: Recipe,
}

impl LoadedRecipe {
    pub fn load(path: &Path) -> Result<Self, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> Result<Self, RecipeError> {
        let recipe = error::deserialize(path, &text)?;
        let loaded = LoadedRecipe {
            path: path.to_path_buf(),
            text,
            recipe,
        };
        loaded.validate()?;
        Ok(loaded)
    }

    /// The folder relative paths in the recipe are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        recipe_dir(&self.path)
    }

    pub fn resolve(&self, rel: &Path) -> PathBuf {
        if rel.is_absolute() {
            rel.to_path_buf()
        } else {
            self.base_dir().join(rel)
        }
    }

    fn validate(&self) -> Result<(), RecipeError> {
        schema::validate(self)
    }

    /// An error about one value of the recipe, located at its span.
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> RecipeError {
        RecipeError::invalid(&self.path, &self.text, span, key, message.into())
    }
}
