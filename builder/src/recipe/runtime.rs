//! Checks of the `[runtime]` keys that bound what clients may cost and keep the API's secrets:
//! timeouts in seconds, the body rate, the connection cap, one source for the bearer token.

use toml::Spanned;

use super::schema::parse_size;
use super::{LoadedRecipe, RecipeError};

/// The longest timeout a recipe may set: beyond it a slow client holds a connection for good.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

pub(super) fn validate(loaded: &LoadedRecipe) -> Result<(), RecipeError> {
    let r = &loaded.recipe.runtime;
    for (key, secs) in [
        ("runtime.header_timeout_secs", &r.header_timeout_secs),
        ("runtime.body_timeout_secs", &r.body_timeout_secs),
        (
            "runtime.keep_alive_timeout_secs",
            &r.keep_alive_timeout_secs,
        ),
    ] {
        if let Some(secs) = secs {
            let value = *secs.get_ref();
            // A millisecond at least: the device config counts in milliseconds.
            if !(0.001..=MAX_TIMEOUT_SECS).contains(&value) {
                return Err(loaded.error_at(
                    secs.span(),
                    key,
                    format!("{value} is out of range; give seconds from 0.001 to {MAX_TIMEOUT_SECS}, e.g. 10 or 2.5"),
                ));
            }
        }
    }
    if let Some(rate) = &r.body_min_rate {
        let bytes = parse_size(rate.get_ref())
            .map_err(|msg| loaded.error_at(rate.span(), "runtime.body_min_rate", msg))?;
        if bytes == 0 {
            return Err(loaded.error_at(
                rate.span(),
                "runtime.body_min_rate",
                "a rate of 0 lets a client trickle forever; give bytes per second, e.g. \"8KiB\"",
            ));
        }
    }
    if let Some(cap) = &r.max_connections {
        if *cap.get_ref() == 0 {
            return Err(loaded.error_at(
                cap.span(),
                "runtime.max_connections",
                "0 connections would serve no one; give at least 1 (default 128)",
            ));
        }
    }
    let sources: Vec<(&str, std::ops::Range<usize>)> = [
        ("bearer_token", r.bearer_token.as_ref().map(Spanned::span)),
        (
            "bearer_token_file",
            r.bearer_token_file.as_ref().map(Spanned::span),
        ),
        (
            "bearer_token_env",
            r.bearer_token_env.as_ref().map(Spanned::span),
        ),
    ]
    .into_iter()
    .filter_map(|(key, span)| Some((key, span?)))
    .collect();
    if let [_, (second, span), ..] = sources.as_slice() {
        return Err(loaded.error_at(
            span.clone(),
            &format!("runtime.{second}"),
            format!(
                "the bearer token has more than one source ({}); keep one",
                sources
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if let Some(token) = &r.bearer_token {
        if token.get_ref().trim().is_empty() {
            return Err(loaded.error_at(
                token.span(),
                "runtime.bearer_token",
                "the token is empty; remove the key to disable authentication, or use bearer_token_file",
            ));
        }
    }
    validate_model_updates(loaded, !sources.is_empty())?;
    if let Some(var) = &r.bearer_token_env {
        let name = var.get_ref();
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(loaded.error_at(
                var.span(),
                "runtime.bearer_token_env",
                format!("{name:?} is not an environment variable name; e.g. \"EDGE_API_TOKEN\""),
            ));
        }
    }
    Ok(())
}

/// Model updates replace what the device serves: they need the bearer token, and their own
/// keys mean nothing without them. A new version must pass the recipe's golden check, which
/// is one model's, so an image that serves several takes no updates.
fn validate_model_updates(loaded: &LoadedRecipe, has_token: bool) -> Result<(), RecipeError> {
    let r = &loaded.recipe.runtime;
    match &r.model_updates {
        Some(on) if *on.get_ref() => {
            if loaded.recipe.models.len() > 1 {
                return Err(loaded.error_at(
                    on.span(),
                    "runtime.model_updates",
                    format!(
                        "model updates are checked against one model's golden test, and this recipe serves {} models; serve one [model], or remove runtime.model_updates",
                        loaded.recipe.models.len()
                    ),
                ));
            }
            if !has_token {
                return Err(loaded.error_at(
                    on.span(),
                    "runtime.model_updates",
                    "model updates let whoever can reach the API replace the model, so they need a bearer token; add runtime.bearer_token_file = \"secrets/api-token\" (or bearer_token_env)",
                ));
            }
        }
        _ => {
            let needs = [
                ("runtime.max_model", r.max_model.as_ref().map(Spanned::span)),
                (
                    "runtime.model_public_key",
                    r.model_public_key.as_ref().map(Spanned::span),
                ),
            ];
            if let Some((key, Some(span))) = needs.into_iter().find(|(_, span)| span.is_some()) {
                return Err(loaded.error_at(
                    span,
                    key,
                    "has no effect while model updates are off; add runtime.model_updates = true, or remove it",
                ));
            }
        }
    }
    if let Some(max) = &r.max_model {
        if parse_size(max.get_ref()).ok() == Some(0) {
            return Err(loaded.error_at(
                max.span(),
                "runtime.max_model",
                "0 bytes takes no model; give a size such as \"64MiB\" (default 256MiB)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::LoadedRecipe;

    fn with_runtime(runtime: &str) -> Result<LoadedRecipe, String> {
        let text =
            format!("[image]\nname = \"x\"\nboard = \"qemu-x86_64\"\n\n[runtime]\n{runtime}\n");
        LoadedRecipe::parse(Path::new("r.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_parse() {
        let loaded = with_runtime(
            "header_timeout_secs = 2.5\nbody_timeout_secs = 3\nbody_min_rate = \"16KiB\"\nkeep_alive_timeout_secs = 60\nmax_connections = 32",
        )
        .unwrap();
        let r = &loaded.recipe.runtime;
        assert_eq!(
            r.header_timeout_secs.as_ref().map(|s| *s.get_ref()),
            Some(2.5)
        );
        assert_eq!(
            r.body_timeout_secs.as_ref().map(|s| *s.get_ref()),
            Some(3.0)
        );
    }

    #[test]
    fn limit_mistakes_name_the_key_and_the_fix() {
        let error = with_runtime("header_timeout_secs = 0").unwrap_err();
        assert!(
            error.contains("r.toml:6") && error.contains("runtime.header_timeout_secs"),
            "{error}"
        );
        assert!(error.contains("from 0.001 to 3600"), "{error}");
        let error = with_runtime("body_min_rate = \"0\"").unwrap_err();
        assert!(error.contains("trickle forever"), "{error}");
        let error = with_runtime("body_min_rate = \"fast\"").unwrap_err();
        assert!(
            error.contains("runtime.body_min_rate") && error.contains("not a size"),
            "{error}"
        );
        let error = with_runtime("max_connections = 0").unwrap_err();
        assert!(error.contains("runtime.max_connections"), "{error}");
    }

    #[test]
    fn the_token_has_one_source() {
        let error = with_runtime("bearer_token = \"a\"\nbearer_token_env = \"TOKEN\"").unwrap_err();
        assert!(
            error.contains("runtime.bearer_token_env") && error.contains("keep one"),
            "{error}"
        );
        let error = with_runtime("bearer_token_env = \"1 TOKEN\"").unwrap_err();
        assert!(
            error.contains("not an environment variable name"),
            "{error}"
        );
        let error = with_runtime("bearer_token = \" \"").unwrap_err();
        assert!(error.contains("the token is empty"), "{error}");
        assert!(with_runtime("bearer_token_file = \"secrets/token\"").is_ok());
    }

    #[test]
    fn model_updates_need_the_token() {
        let error = with_runtime("model_updates = true").unwrap_err();
        assert!(
            error.contains("runtime.model_updates")
                && error.contains("need a bearer token")
                && error.contains("bearer_token_file"),
            "{error}"
        );
        assert!(with_runtime(
            "model_updates = true\nbearer_token_env = \"T\"\nmax_model = \"8MiB\"\nmodel_public_key = \"k.pub\""
        )
        .is_ok());
        let error = with_runtime("model_public_key = \"k.pub\"").unwrap_err();
        assert!(
            error.contains("runtime.model_public_key") && error.contains("model_updates = true"),
            "{error}"
        );
        let error =
            with_runtime("model_updates = true\nbearer_token_env = \"T\"\nmax_model = \"0\"")
                .unwrap_err();
        assert!(error.contains("runtime.max_model"), "{error}");
    }
}
