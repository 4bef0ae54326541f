use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use toml_edit::{DocumentMut, InlineTable, Item, Value};

use edgeimg::model::{inspect_model, Dim};
use edgeimg::recipe::{Board, LoadedRecipe};

/// The project's own recipes are the templates, so `new` always writes what the docs describe.
const PI_TEMPLATE: &str = include_str!("../../../recipes/pi.toml");
const X86_TEMPLATE: &str = include_str!("../../../recipes/qemu-x86_64.toml");
const ARM64_TEMPLATE: &str = include_str!("../../../recipes/qemu-aarch64.toml");

/// The example model those recipes serve (tests/models/make_models.py makes it), written
/// beside a new recipe when the user brings none.
const EXAMPLE_MODEL: &[u8] = include_bytes!("../../../tests/models/tiny-mlp.onnx");
const EXAMPLE_MODEL_NAME: &str = "tiny-mlp";
/// The example's next version (other weights, same signature): the QEMU templates' update
/// check uploads it.
const EXAMPLE_UPDATE: &[u8] = include_bytes!("../../../tests/models/tiny-mlp-v2.onnx");
const EXAMPLE_UPDATE_FILE: &str = "tiny-mlp-v2.onnx";

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  edgeimg new mydevice --board qemu-aarch64          # with the example model tiny-mlp\n  edgeimg new camera --board rpi4 --model detector.onnx"
)]
pub struct NewArgs {
    /// Name of the device image (lowercase letters, digits, '-').
    name: String,
    /// Board: rpi4, rpi3, qemu-x86_64, qemu-aarch64.
    #[arg(long, value_parser = parse_board, default_value = "rpi4")]
    board: Board,
    /// Your ONNX model (the recipe refers to it where it is; symbolic input dims are frozen
    /// to 1 in model.inputs). Default: the example model, written to models/tiny-mlp.onnx.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Folder for the recipe.
    #[arg(long, default_value = "recipes")]
    dir: PathBuf,
    /// Overwrite an existing recipe (and example model).
    #[arg(long)]
    force: bool,
}

fn parse_board(s: &str) -> Result<Board, String> {
    Board::ALL
        .into_iter()
        .find(|b| b.name() == s)
        .ok_or_else(|| {
            let names: Vec<_> = Board::ALL.iter().map(|b| b.name()).collect();
            format!("unknown board {s:?}; accepted: {}", names.join(", "))
        })
}

/// The model a new recipe serves.
struct ModelChoice {
    /// `model.path`, relative to the recipe's folder.
    path_in_recipe: PathBuf,
    name: String,
    /// For a user's model: every input's shape, symbolic dims frozen to 1; `None` keeps the
    /// template's (the example model's).
    inputs: Option<BTreeMap<String, Vec<i64>>>,
    /// The example model's bytes and where they go.
    write: Option<PathBuf>,
    /// What the template's update checks upload: the example's next version beside the
    /// example model, or the user's own model again.
    update_in_recipe: PathBuf,
}

pub fn run(args: NewArgs) -> Result<ExitCode> {
    let path = args.dir.join(format!("{}.toml", args.name));
    if path.exists() && !args.force {
        bail!(
            "{} already exists; pick another name or pass --force to overwrite it",
            path.display()
        );
    }
    let model = match &args.model {
        Some(file) => users_model(file, &args.dir)?,
        None => example_model(&args.dir, args.force)?,
    };
    let text = fill_template(template(args.board), &args.name, args.board, &path, &model)?;
    // Validate before writing so a bad name never leaves a broken recipe behind.
    LoadedRecipe::parse(&path, text.clone()).map_err(|e| {
        anyhow::anyhow!("{e}").context(format!("cannot scaffold a recipe named {:?}", args.name))
    })?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    if let Some(dest) = &model.write {
        let dir = dest.parent().expect("models/<file>");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dest, EXAMPLE_MODEL)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        let update = dir.join(EXAMPLE_UPDATE_FILE);
        std::fs::write(&update, EXAMPLE_UPDATE)
            .with_context(|| format!("cannot write {}", update.display()))?;
        println!(
            "wrote {} (the example model) and {} (its next version, for the update check)",
            dest.display(),
            update.display()
        );
    }
    make_secrets(&text, &args.dir)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let next = if args.board.profile().disk_boot {
        "build"
    } else {
        "test"
    };
    println!(
        "wrote {}; next: edgeimg {next} {}",
        path.display(),
        path.display()
    );
    if std::env::var_os("EDGEIMG_ALPINE_MIRROR").is_none() {
        println!("(if Alpine's mirror is out of reach from here: eval \"$(edgeimg mirror --env)\" first)");
    }
    Ok(ExitCode::SUCCESS)
}

fn template(board: Board) -> &'static str {
    match board {
        Board::Rpi4 | Board::Rpi3 => PI_TEMPLATE,
        Board::QemuX86_64 => X86_TEMPLATE,
        Board::QemuAarch64 => ARM64_TEMPLATE,
    }
}

/// The example model goes to `models/` beside the recipes folder (as images/ does), or into
/// the recipe's folder when that is not called `recipes`.
fn example_model(dir: &Path, force: bool) -> Result<ModelChoice> {
    let models = match (dir.file_name(), dir.parent()) {
        (Some(n), Some(parent)) if n == "recipes" => parent.join("models"),
        _ => dir.join("models"),
    };
    let dest = models.join(format!("{EXAMPLE_MODEL_NAME}.onnx"));
    let write = match std::fs::read(&dest) {
        Ok(bytes) if bytes == EXAMPLE_MODEL => None,
        Ok(_) if !force => bail!(
            "{} exists and is not the example model; move it or pass --force",
            dest.display()
        ),
        _ => Some(dest.clone()),
    };
    let update = models.join(EXAMPLE_UPDATE_FILE);
    Ok(ModelChoice {
        path_in_recipe: relative_path(&std::path::absolute(dir)?, &std::path::absolute(&dest)?),
        name: EXAMPLE_MODEL_NAME.into(),
        inputs: None,
        write,
        update_in_recipe: relative_path(&std::path::absolute(dir)?, &std::path::absolute(&update)?),
    })
}

fn users_model(file: &Path, dir: &Path) -> Result<ModelChoice> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info = inspect_model(&bytes)
        .with_context(|| format!("{} is not a model edgeimg can serve", file.display()))?;
    info.check_servable()
        .with_context(|| format!("{} is not a model edgeimg can serve", file.display()))?;
    let mut inputs = BTreeMap::new();
    for input in &info.inputs {
        let dims = input.dims.as_ref().with_context(|| {
            format!(
                "{}: input {:?} declares no shape; write model.inputs by hand",
                file.display(),
                input.name
            )
        })?;
        let frozen = dims.iter().map(|d| d.fixed().unwrap_or(1)).collect();
        if dims.iter().any(|d| !matches!(d, Dim::Fixed(_))) {
            eprintln!(
                "note: input {:?} has symbolic dims, frozen to 1 in model.inputs; edit them there",
                input.name
            );
        }
        inputs.insert(input.name.clone(), frozen);
    }
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path_in_recipe = relative_path(&std::path::absolute(dir)?, &std::path::absolute(file)?);
    Ok(ModelChoice {
        update_in_recipe: path_in_recipe.clone(),
        path_in_recipe,
        name: model_name(&stem),
        inputs: Some(inputs),
        write: None,
    })
}

/// A file stem as a model name: lowercase letters, digits and '-'.
fn model_name(stem: &str) -> String {
    let name: String = stem
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "model".into()
    } else {
        name
    }
}

/// `to` relative to the folder `from` (both absolute), so a recipe and a model in one
/// repository stay together wherever it is checked out. Hand-written: six lines, and no
/// path-diffing crate is in the lock.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path: PathBuf = from[common..].iter().map(|_| "..").collect();
    path.extend(&to[common..]);
    path
}

/// The template with this device's name, board, model and checks. Only the keys that name
/// the device change: the model's and the tests' names stay theirs (edited as TOML, not as
/// lines). Comments naming the template's own files follow the new names.
fn fill_template(
    template: &str,
    name: &str,
    board: Board,
    recipe_path: &Path,
    model: &ModelChoice,
) -> Result<String> {
    let template_doc: DocumentMut = template.parse().context("a template recipe")?;
    let template_name = template_doc["image"]["name"]
        .as_str()
        .context("the template names its image")?
        .to_string();
    let text = template
        .lines()
        .map(|line| match line.trim_start().starts_with('#') {
            true => rename_in_comment(line, &template_name, name, recipe_path),
            false => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let mut doc: DocumentMut = text.parse().context("a template recipe")?;
    set_string(&mut doc["image"]["name"], name);
    set_string(&mut doc["image"]["board"], board.name());
    set_string(
        &mut doc["model"]["path"],
        &model.path_in_recipe.display().to_string(),
    );
    set_string(&mut doc["model"]["name"], &model.name);
    retarget_updates(&mut doc, &model.update_in_recipe);
    if let Some(inputs) = &model.inputs {
        let mut shapes = InlineTable::new();
        for (input, dims) in inputs {
            shapes.insert(input, Value::Array(dims.iter().copied().collect()));
        }
        set_value(&mut doc["model"]["inputs"], Value::InlineTable(shapes));
        retarget_tests(&mut doc, inputs);
    }
    Ok(doc.to_string())
}

/// In a comment line, the template's recipe file and image name become the new ones.
fn rename_in_comment(line: &str, template_name: &str, name: &str, recipe_path: &Path) -> String {
    let mut line = line.to_string();
    for template_file in [
        "recipes/pi.toml",
        "recipes/qemu-x86_64.toml",
        "recipes/qemu-aarch64.toml",
    ] {
        line = line.replace(template_file, &recipe_path.display().to_string());
    }
    line.replace(
        &format!("images/{template_name}/{template_name}"),
        &format!("images/{name}/{name}"),
    )
}

/// The template's update checks upload the example's next version; in a new recipe, what
/// `new` wrote beside the example model, or the user's own model again (a new version of it).
fn retarget_updates(doc: &mut DocumentMut, update: &Path) {
    let Some(tests) = doc.get_mut("test").and_then(Item::as_array_of_tables_mut) else {
        return;
    };
    for test in tests.iter_mut() {
        if let Some(upload) = test.get_mut("update").and_then(Item::as_inline_table_mut) {
            if let Some(model) = upload.get_mut("model") {
                let decor = model.decor().clone();
                *model = Value::from(update.display().to_string());
                *model.decor_mut() = decor;
            }
        }
    }
}

/// The secrets a template names (`runtime.bearer_token_file`, `runtime.model_public_key` and
/// its `.key`), made where the new recipe expects them unless they exist: a new project
/// builds at once, and its secrets are its own, never the template's.
fn make_secrets(recipe: &str, dir: &Path) -> Result<()> {
    let doc: DocumentMut = recipe.parse().context("the new recipe")?;
    let runtime = &doc["runtime"];
    if let Some(token) = runtime.get("bearer_token_file").and_then(Item::as_str) {
        let path = dir.join(token);
        if !path.exists() {
            create_parent(&path)?;
            let mut bytes = [0u8; 24];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
                .context("cannot read /dev/urandom for a new API token")?;
            let token = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())?;
            println!(
                "wrote {} (a new API token; keep it out of git)",
                path.display()
            );
        }
    }
    if let Some(public) = runtime.get("model_public_key").and_then(Item::as_str) {
        let public = dir.join(public);
        if !public.exists() {
            create_parent(&public)?;
            let (secret, public) = edgeimg::update::keygen(&public.with_extension(""))?;
            println!(
                "wrote {} and {} (a new key pair for signing models; keep the .key out of git)",
                secret.display(),
                public.display()
            );
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    let dir = path.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Each check sends `{ random = SEED }` to every input of the user's model (the template's
/// seed kept).
fn retarget_tests(doc: &mut DocumentMut, inputs: &BTreeMap<String, Vec<i64>>) {
    let Some(tests) = doc.get_mut("test").and_then(Item::as_array_of_tables_mut) else {
        return;
    };
    for (i, test) in tests.iter_mut().enumerate() {
        let seed = test
            .get("inputs")
            .and_then(Item::as_inline_table)
            .and_then(|t| t.iter().next())
            .and_then(|(_, v)| v.as_inline_table()?.get("random")?.as_integer())
            .unwrap_or(i as i64 + 1);
        let mut random = InlineTable::new();
        for input in inputs.keys() {
            let mut value = InlineTable::new();
            value.insert("random", seed.into());
            random.insert(input, Value::InlineTable(value));
        }
        set_value(&mut test["inputs"], Value::InlineTable(random));
    }
}

fn set_string(item: &mut Item, value: &str) {
    set_value(item, Value::from(value));
}

/// Replace a value keeping the comment after it.
fn set_value(item: &mut Item, mut value: Value) {
    if let Some(old) = item.as_value() {
        *value.decor_mut() = old.decor().clone();
    }
    *item = Item::Value(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> ModelChoice {
        ModelChoice {
            path_in_recipe: "../models/tiny-mlp.onnx".into(),
            name: "tiny-mlp".into(),
            inputs: None,
            write: None,
            update_in_recipe: "../models/tiny-mlp-v2.onnx".into(),
        }
    }

    fn filled(board: Board, model: &ModelChoice) -> (String, LoadedRecipe) {
        let path = PathBuf::from("recipes/mydevice.toml");
        let text = fill_template(template(board), "mydevice", board, &path, model).unwrap();
        let loaded = LoadedRecipe::parse(&path, text.clone()).unwrap();
        (text, loaded)
    }

    #[test]
    fn only_the_image_is_renamed_for_every_board() {
        for board in Board::ALL {
            let (text, loaded) = filled(board, &example());
            let r = &loaded.recipe;
            assert_eq!(r.image.name.get_ref(), "mydevice", "{board:?}");
            assert_eq!(r.image.board, board);
            let model = &r.models[0];
            assert_eq!(
                model.name.as_ref().map(|n| n.get_ref().as_str()),
                Some("tiny-mlp"),
                "{board:?}:\n{text}"
            );
            assert_eq!(
                model.path.as_ref().unwrap().get_ref(),
                Path::new("../models/tiny-mlp.onnx")
            );
            let template =
                LoadedRecipe::parse(Path::new("t.toml"), template(board).into()).unwrap();
            let names: Vec<&str> = r.tests.iter().map(|t| t.name.get_ref().as_str()).collect();
            let template_names: Vec<&str> = template
                .recipe
                .tests
                .iter()
                .map(|t| t.name.get_ref().as_str())
                .collect();
            assert_eq!(names, template_names, "{board:?}");
            assert!(!names.is_empty());
            // The comments keep their place and follow the new names.
            assert!(
                text.contains("# required: names the output folder"),
                "{text}"
            );
            assert!(!text.contains("recipes/pi.toml"), "{text}");
        }
    }

    #[test]
    fn a_users_model_gets_its_inputs_in_the_shapes_and_every_check() {
        let inputs = BTreeMap::from([
            ("image".to_string(), vec![1, 3, 224, 224]),
            ("scale".to_string(), vec![1]),
        ]);
        let model = ModelChoice {
            path_in_recipe: "../../models/detector.onnx".into(),
            name: "detector".into(),
            inputs: Some(inputs.clone()),
            write: None,
            update_in_recipe: "../../models/detector.onnx".into(),
        };
        let (text, loaded) = filled(Board::QemuAarch64, &model);
        let m = &loaded.recipe.models[0];
        assert_eq!(m.inputs, inputs);
        for test in &loaded.recipe.tests {
            let keys: Vec<&String> = test.inputs.keys().collect();
            assert_eq!(keys, ["image", "scale"], "{text}");
        }
        // The template leaves max_body to the device, which derives it from the model's
        // largest valid request: 150 529 numbers fit without the recipe saying so.
        assert!(loaded.recipe.runtime.max_body.is_none(), "{text}");
    }

    #[test]
    fn model_names_and_relative_paths() {
        assert_eq!(model_name("My Detector_v2"), "my-detector-v2");
        assert_eq!(model_name("__"), "model");
        assert_eq!(
            relative_path(Path::new("/w/proj/recipes"), Path::new("/w/models/m.onnx")),
            PathBuf::from("../../models/m.onnx")
        );
        assert_eq!(
            relative_path(
                Path::new("/w/recipes"),
                Path::new("/w/recipes/models/m.onnx")
            ),
            PathBuf::from("models/m.onnx")
        );
    }
}
