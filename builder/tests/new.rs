//! `edgeimg new` in an empty folder, for every board: a recipe that plans there (its model
//! found, only the image renamed), the example model or the user's, and the next command.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{project_root, stderr};
use edgeimg::plan::{Overrides, Plan};
use edgeimg::recipe::{Board, LoadedRecipe};

fn new_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeimg"))
        .arg("new")
        .args(args)
        .current_dir(dir)
        .env_remove("EDGEIMG_ALPINE_MIRROR")
        .output()
        .unwrap()
}

fn plan(recipe: &Path) -> Plan {
    let loaded = LoadedRecipe::load(recipe).unwrap();
    Plan::new(&loaded, &Overrides::default()).unwrap()
}

#[test]
fn every_board_gets_a_recipe_that_plans_in_an_empty_folder() {
    for board in Board::ALL {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("dev-{}", board.name().replace('_', "-"));
        let out = new_in(dir.path(), &[&name, "--board", board.name()]);
        assert!(out.status.success(), "{board:?}: {}", stderr(&out));
        let said = String::from_utf8_lossy(&out.stdout);
        let recipe = dir.path().join("recipes").join(format!("{name}.toml"));
        let next = if board.profile().disk_boot {
            "build"
        } else {
            "test"
        };
        assert!(
            said.contains(&format!("next: edgeimg {next} recipes/{name}.toml")),
            "{said}"
        );
        assert!(said.contains("edgeimg mirror --env"), "{said}");
        let plan = plan(&recipe);
        assert_eq!(plan.name, name);
        assert_eq!(plan.board, board);
        let model = &plan.models[0];
        // The bug this guards: the model and the checks kept their own names.
        assert_eq!(model.name, "tiny-mlp");
        assert!(
            plan.tests.iter().all(|t| *t.name.get_ref() != name),
            "{board:?}"
        );
        assert_eq!(
            std::fs::read(&model.path).unwrap(),
            std::fs::read(project_root().join("tests/models/tiny-mlp.onnx")).unwrap(),
            "the example model, in models/ beside recipes/"
        );
        assert!(dir.path().join("models/tiny-mlp.onnx").is_file());
        // The QEMU templates take signed model updates: the new project gets its own token
        // and key pair, and its update checks upload files that are there.
        let recipes = dir.path().join("recipes");
        for test in &plan.tests {
            if let Some(update) = &test.update {
                let file = recipes.join(&update.get_ref().model);
                assert!(file.is_file(), "{board:?}: {} is not there", file.display());
            }
        }
        if plan.runtime.model_updates.is_some() {
            for secret in [
                "secrets/api-token",
                "secrets/models.key",
                "secrets/models.pub",
            ] {
                assert!(recipes.join(secret).is_file(), "{board:?}: no {secret}");
            }
            let token = std::fs::read_to_string(recipes.join("secrets/api-token")).unwrap();
            assert!(token.trim().len() >= 32, "{token:?}");
        }
    }
}

#[test]
fn a_users_model_is_referenced_where_it_is_with_its_inputs_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("my-models");
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(
        project_root().join("tests/models/fixtures/two-inputs.onnx"),
        models.join("Two_Inputs.onnx"),
    )
    .unwrap();
    let out = new_in(
        dir.path(),
        &[
            "adder",
            "--board",
            "qemu-x86_64",
            "--model",
            "my-models/Two_Inputs.onnx",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("symbolic dims, frozen to 1"),
        "{}",
        stderr(&out)
    );
    let plan = plan(&dir.path().join("recipes/adder.toml"));
    let model = &plan.models[0];
    assert_eq!(model.name, "two-inputs");
    assert_eq!(model.inputs["a"], [1, 8]);
    assert_eq!(model.inputs["b"], [1, 8]);
    for test in &plan.tests {
        let inputs: Vec<&String> = test.inputs.keys().collect();
        assert_eq!(inputs, ["a", "b"], "{}", test.name.get_ref());
    }
    let text = std::fs::read_to_string(dir.path().join("recipes/adder.toml")).unwrap();
    assert!(
        text.contains("path = \"../my-models/Two_Inputs.onnx\""),
        "{text}"
    );
    assert!(!dir.path().join("models").exists(), "no example model");
}

#[test]
fn an_existing_recipe_or_a_bad_name_leaves_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    assert!(new_in(dir.path(), &["first", "--board", "rpi3"])
        .status
        .success());
    let again = new_in(dir.path(), &["first", "--board", "rpi4"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));

    let bad = new_in(dir.path(), &["Bad_Name", "--board", "rpi4"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("not a valid image name"),
        "{}",
        stderr(&bad)
    );
    assert!(!dir.path().join("recipes/Bad_Name.toml").exists());

    let not_a_model = dir.path().join("notes.onnx");
    std::fs::write(&not_a_model, b"not a model").unwrap();
    let refused = new_in(dir.path(), &["other", "--model", "notes.onnx"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not a model edgeimg can serve"),
        "{}",
        stderr(&refused)
    );
    assert!(!dir.path().join("recipes/other.toml").exists());
}
